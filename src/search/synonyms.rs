//! Synonyms applied at query time: a knowledge base's own table (managed through the API) and
//! a small built-in set of programming terms and their Chinese names, which a knowledge base
//! can turn off. Nothing is indexed differently, so editing the table needs no reindex.

use super::analyzer::{analyze, is_cjk};
use crate::domain::{SynonymSet, SynonymTable};
use std::collections::HashMap;

/// Programming terms and their usual Chinese names, both ways.
pub const BUILTIN: &[&[&str]] = &[
    &["协程", "goroutine", "coroutine"],
    &["通道", "channel"],
    &["哈希", "hash", "散列"],
    &["哈希表", "hash map", "hashmap", "散列表"],
    &["垃圾回收", "gc", "garbage collection"],
    &["互斥锁", "mutex"],
    &["读写锁", "rwmutex"],
    &["切片", "slice"],
    &["接口", "interface"],
    &["反射", "reflection", "reflect"],
    &["死锁", "deadlock"],
    &["调度器", "scheduler"],
    &["并发", "concurrency", "concurrent"],
    &["并行", "parallelism", "parallel"],
    &["线程", "thread"],
    &["进程", "process"],
    &["内存逃逸", "逃逸分析", "escape analysis"],
    &["内存泄漏", "memory leak"],
    &["指针", "pointer"],
    &["数组", "array"],
    &["字符串", "string"],
    &["结构体", "struct"],
    &["闭包", "closure"],
    &["泛型", "generics"],
    &["上下文", "context"],
    &["分布式锁", "distributed lock"],
    &["一致性哈希", "consistent hashing"],
    &["选主", "leader election"],
    &["共识", "consensus"],
    &["事务", "transaction"],
    &["缓存", "cache"],
    &["索引", "index"],
    &["消息队列", "message queue", "mq"],
    &["负载均衡", "load balancing", "load balancer"],
    &["限流", "rate limiting", "rate limit"],
    &["熔断", "circuit breaker"],
    &["幂等", "idempotent", "idempotency"],
    &["序列化", "serialization"],
    &["反序列化", "deserialization"],
    &["微服务", "microservice", "microservices"],
    &["主从复制", "replication"],
    &["分片", "sharding"],
    &["心跳", "heartbeat"],
    &["超时", "timeout"],
    &["重试", "retry"],
    &["栈", "stack"],
    &["堆", "heap"],
    &["队列", "queue"],
    &["链表", "linked list"],
    &["二叉树", "binary tree"],
    &["红黑树", "red-black tree"],
    &["布隆过滤器", "bloom filter"],
    // Everyday computing words, which help texts and questions use in either language.
    &["电脑", "计算机", "computer"],
    &["笔记本", "笔记本电脑", "laptop"],
    &["屏幕", "screen"],
    &["显示器", "monitor", "display"],
    &["键盘", "keyboard"],
    &["鼠标", "mouse"],
    &["触摸板", "touchpad"],
    &["打印机", "printer"],
    &["文件", "file"],
    &["文件夹", "目录", "folder", "directory"],
    &["密码", "password"],
    &["用户", "user"],
    &["帐号", "账号", "帐户", "账户", "account"],
    &["登录", "login", "log in"],
    &["注销", "log out", "logout"],
    &["关机", "shut down", "power off"],
    &["重启", "restart", "reboot"],
    &["网络", "network"],
    &["无线", "wireless", "wifi", "wi-fi"],
    &["蓝牙", "bluetooth"],
    &["电池", "battery"],
    &["声音", "sound", "audio"],
    &["音量", "volume"],
    &["亮度", "brightness"],
    &["分辨率", "resolution"],
    &["快捷键", "shortcut"],
    &["窗口", "window"],
    &["工作区", "workspace"],
    &["通知", "notification"],
    &["壁纸", "背景", "wallpaper", "background"],
    &["字体", "font"],
    &["语言", "language"],
    &["时钟", "clock"],
    &["时区", "time zone", "timezone"],
    &["日历", "calendar"],
    &["备份", "backup"],
    &["磁盘", "硬盘", "disk"],
    &["分区", "partition"],
    &["格式化", "format"],
    &["截图", "截屏", "屏幕截图", "抓图", "screenshot"],
    &["录屏", "屏幕录制", "screencast"],
    &["下载", "download"],
    &["上传", "upload"],
    &["安装", "install"],
    &["卸载", "uninstall"],
    &["升级", "更新", "upgrade", "update"],
    &["设置", "settings"],
    &["隐私", "privacy"],
    &["权限", "permission"],
    &["管理员", "administrator", "admin"],
    &["代理", "proxy"],
    &["防火墙", "firewall"],
    &["浏览器", "browser"],
    &["邮件", "电子邮件", "email"],
    &["联系人", "contact"],
    &["麦克风", "microphone"],
    &["耳机", "headphones", "headset"],
    &["扬声器", "音箱", "speaker", "speakers"],
    &["摄像头", "webcam", "camera"],
];

/// Longest key, in characters, looked for in a query.
const MAX_KEY_CHARS: usize = 24;
/// Latin keys of up to this many words (a term of 24 characters has at most 12).
const MAX_KEY_WORDS: usize = 12;

/// Which alternatives each term has.
#[derive(Debug, Clone, Default)]
pub struct Synonyms {
    map: HashMap<String, Vec<String>>,
}

/// Alternatives kept per term: bounds what one search does for a term in many sets.
const MAX_ALTERNATIVES: usize = 32;

/// A term as it is looked up: lowercased, words split at whitespace, `-`, `_` and `/` and
/// joined by one space (`Red-Black  tree` → `red black tree`), as the query side joins words.
pub fn normalize(term: &str) -> String {
    term.to_lowercase()
        .split(|c: char| c.is_whitespace() || matches!(c, '-' | '_' | '/'))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Synonyms {
    /// The table of a knowledge base, with the built-in set unless it is turned off.
    pub fn new(table: &SynonymTable) -> Self {
        let mut s = Self::default();
        if table.builtin {
            for set in BUILTIN {
                let terms: Vec<String> = set.iter().map(|t| t.to_string()).collect();
                s.add(&SynonymSet::Equivalent(terms));
            }
        }
        for set in &table.sets {
            s.add(set);
        }
        s
    }

    fn add(&mut self, set: &SynonymSet) {
        let mut link = |from: &str, to: &str| {
            let (from, to) = (normalize(from), normalize(to));
            if from.is_empty() || to.is_empty() || from == to {
                return;
            }
            let alts = self.map.entry(from).or_default();
            if !alts.contains(&to) && alts.len() < MAX_ALTERNATIVES {
                alts.push(to);
            }
        };
        match set {
            SynonymSet::Equivalent(terms) => {
                for a in terms {
                    for b in terms {
                        link(a, b);
                    }
                }
            }
            SynonymSet::OneWay { from, to } => {
                for b in to {
                    link(from, b);
                }
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The terms of the table found in `text` (CJK anywhere, Latin as whole words), each
    /// with its alternatives, longest first.
    pub fn matches(&self, text: &str) -> Vec<(String, Vec<String>)> {
        if self.map.is_empty() {
            return Vec::new();
        }
        let lower = text.to_lowercase();
        let mut candidates: Vec<String> = Vec::new();
        // CJK: every substring of every run, up to the longest key.
        let chars: Vec<char> = lower.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            if !is_cjk(chars[i]) {
                i += 1;
                continue;
            }
            let start = i;
            while i < chars.len() && is_cjk(chars[i]) {
                i += 1;
            }
            for a in start..i {
                for b in a + 1..=i.min(a + MAX_KEY_CHARS) {
                    candidates.push(chars[a..b].iter().collect());
                }
            }
        }
        // Latin: whitespace-separated pieces, analyzed words, and runs of a few words.
        let words: Vec<String> = analyze(&lower)
            .into_iter()
            .filter(|w| !w.chars().any(is_cjk))
            .collect();
        candidates.extend(lower.split_whitespace().map(normalize));
        for n in 1..=MAX_KEY_WORDS {
            for run in words.windows(n) {
                candidates.push(normalize(&run.join(" ")));
            }
        }
        candidates.sort();
        candidates.dedup();
        let mut found: Vec<(String, Vec<String>)> = candidates
            .into_iter()
            .filter_map(|c| self.map.get(&c).map(|alts| (c, alts.clone())))
            .collect();
        found.sort_by(|a, b| {
            b.0.chars()
                .count()
                .cmp(&a.0.chars().count())
                .then(a.0.cmp(&b.0))
        });
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equivalent_sets_link_every_way_and_one_way_sets_one_way() {
        let s = Synonyms::new(&SynonymTable {
            builtin: false,
            sets: vec![
                SynonymSet::Equivalent(vec!["捐款".into(), "捐赠".into()]),
                SynonymSet::OneWay {
                    from: "禁止升级".into(),
                    to: vec!["保留".into(), "Hold".into()],
                },
            ],
        });
        assert_eq!(
            s.matches("怎么捐款"),
            [("捐款".into(), vec!["捐赠".to_string()])]
        );
        assert_eq!(
            s.matches("捐赠"),
            [("捐赠".into(), vec!["捐款".to_string()])]
        );
        assert_eq!(
            s.matches("禁止升级某个包"),
            [(
                "禁止升级".into(),
                vec!["保留".to_string(), "hold".to_string()]
            )]
        );
        assert!(s.matches("hold").is_empty(), "one way only");
    }

    #[test]
    fn latin_terms_match_whole_words_and_phrases_in_any_case() {
        let s = Synonyms::new(&SynonymTable::default());
        assert!(s.matches("GC 是怎么工作的").iter().any(|(k, _)| k == "gc"));
        assert!(s.matches("gcflags").is_empty());
        assert!(s.matches("红黑树 和 Red-Black tree").len() >= 2);
        let m = s.matches("what is Load  Balancing");
        assert!(
            m.iter()
                .any(|(k, alts)| k == "load balancing" && alts.contains(&"负载均衡".into()))
        );
        assert!(
            s.matches("协程")
                .iter()
                .any(|(_, alts)| alts.contains(&"goroutine".into()))
        );
        let off = SynonymTable {
            builtin: false,
            sets: vec![],
        };
        assert!(Synonyms::new(&off).is_empty());
    }
}
