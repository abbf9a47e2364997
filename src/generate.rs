//! A deterministic generator of realistic synthetic questions: Chinese technical prose mixed
//! with English identifiers, over several categories, for benchmarks and load tests.
//!
//! The same `seed` always yields the same questions, on every machine.

use crate::domain::import::{BulkAnswer, BulkQuestion};

/// A small, fast, deterministic PRNG (SplitMix64); good enough for test data.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The categories generated questions belong to: `(slug, name)`.
pub const CATEGORIES: &[(&str, &str)] = &[
    ("golang", "Golang"),
    ("distributed", "分布式"),
    ("database", "数据库"),
    ("network", "计算机网络"),
    ("os", "操作系统"),
];

/// `(term, tag)` per category: the subject words questions are about.
const TOPICS: &[&[(&str, &str)]] = &[
    &[
        ("goroutine", "goroutine"),
        ("channel", "channel"),
        ("sync.Mutex", "mutex"),
        ("sync.WaitGroup", "sync"),
        ("GMP 调度器", "scheduler"),
        ("垃圾回收", "gc"),
        ("三色标记", "gc"),
        ("写屏障", "write-barrier"),
        ("内存逃逸", "escape-analysis"),
        ("slice 扩容", "slice"),
        ("map 哈希表", "map"),
        ("interface 底层", "interface"),
        ("defer 语句", "defer"),
        ("context 取消", "context"),
        ("逃逸分析", "escape-analysis"),
        ("GOMAXPROCS", "scheduler"),
        ("select 多路复用", "channel"),
        ("sync.Pool", "sync"),
    ],
    &[
        ("CAP 理论", "cap"),
        ("BASE 理论", "base"),
        ("Raft 选主", "raft"),
        ("Paxos", "paxos"),
        ("一致性哈希", "hash"),
        ("分布式锁", "lock"),
        ("两阶段提交", "transaction"),
        ("TCC 补偿", "transaction"),
        ("最终一致性", "consistency"),
        ("幂等性", "idempotency"),
        ("服务发现", "discovery"),
        ("限流算法", "rate-limit"),
        ("熔断降级", "circuit-breaker"),
        ("消息队列", "mq"),
        ("ZooKeeper", "zookeeper"),
        ("etcd", "etcd"),
    ],
    &[
        ("B+ 树索引", "index"),
        ("MVCC", "mvcc"),
        ("事务隔离级别", "transaction"),
        ("redo log", "log"),
        ("binlog", "log"),
        ("死锁检测", "lock"),
        ("覆盖索引", "index"),
        ("分库分表", "sharding"),
        ("主从复制", "replication"),
        ("Redis 持久化", "redis"),
        ("缓存穿透", "cache"),
        ("缓存雪崩", "cache"),
        ("WAL 预写日志", "log"),
    ],
    &[
        ("TCP 三次握手", "tcp"),
        ("TCP 四次挥手", "tcp"),
        ("拥塞控制", "tcp"),
        ("HTTP/2 多路复用", "http"),
        ("HTTPS 握手", "tls"),
        ("DNS 解析", "dns"),
        ("TIME_WAIT", "tcp"),
        ("滑动窗口", "tcp"),
        ("QUIC", "quic"),
        ("epoll", "io"),
        ("零拷贝", "io"),
        ("WebSocket", "http"),
    ],
    &[
        ("进程与线程", "process"),
        ("虚拟内存", "memory"),
        ("页面置换", "memory"),
        ("上下文切换", "scheduler"),
        ("系统调用", "syscall"),
        ("文件描述符", "io"),
        ("信号量", "sync"),
        ("自旋锁", "lock"),
        ("CPU 缓存行", "cache"),
        ("伪共享", "cache"),
        ("写时复制", "memory"),
        ("僵尸进程", "process"),
    ],
];

const ASPECTS: &[&str] = &[
    "原理",
    "实现",
    "底层结构",
    "使用场景",
    "优缺点",
    "性能问题",
    "常见陷阱",
    "工作流程",
    "与替代方案的区别",
    "调优方法",
];

const TITLE_TEMPLATES: &[&str] = &[
    "{t} 的{a}是什么？",
    "请简述 {t} 的{a}",
    "如何理解 {t}？",
    "{t} 和 {u} 有什么区别？",
    "面试题：{t} 的{a}",
    "为什么需要 {t}？",
];

const SENTENCES: &[&str] = &[
    "{t} 的核心思想是用空间换时间，在高并发场景下可以显著降低锁竞争。",
    "在实现上，{t} 依赖 {u} 来保证数据的一致性，同时避免了全局加锁。",
    "需要注意的是，{t} 在极端情况下会退化，导致延迟升高，这时可以结合 {u} 一起使用。",
    "从源码来看，{t} 主要由三个部分组成：元数据、数据区和一个后台协程。",
    "面试时可以先说 {t} 解决了什么问题，再讲它的{a}，最后对比 {u}。",
    "常见的错误用法是在循环里频繁创建对象，这会增加 GC 压力，应该复用 {t}。",
    "{t} 的时间复杂度通常是 O(1)，但在扩容或迁移时会变成 O(n)。",
    "线上排查 {t} 相关问题时，可以借助 pprof、trace 或者日志中的 request id。",
    "In practice, {t} trades memory for latency; benchmark before and after enabling it.",
    "A common pitfall: {t} is not safe for concurrent writes unless guarded by {u}.",
    "总结一下，{t} 适合读多写少的场景，而 {u} 更适合写多读少的场景。",
];

fn fill(template: &str, t: &str, u: &str, a: &str) -> String {
    template
        .replace("{t}", t)
        .replace("{u}", u)
        .replace("{a}", a)
}

/// The `i`-th question of the stream for `seed`, as a bulk line; the same pair always gives
/// the same question.
pub fn question(seed: u64, i: u64) -> BulkQuestion {
    let mut rng = Rng::new(seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ i);
    let c = rng.below(CATEGORIES.len());
    let topics = TOPICS[c];
    let (t, tag) = *rng.pick(topics);
    let (u, other_tag) = *rng.pick(topics);
    let a = *rng.pick(ASPECTS);
    // A serial number keeps titles distinct, as real knowledge bases mostly are.
    let title = format!(
        "{} (#{i})",
        fill(rng.pick::<&str>(TITLE_TEMPLATES), t, u, a)
    );
    let mut tags = vec![tag.to_string()];
    if other_tag != tag {
        tags.push(other_tag.to_string());
    }
    let difficulty = ["easy", "medium", "hard"][rng.below(3)].to_string();
    let answers = (0..1 + rng.below(2))
        .map(|_| {
            let n = 2 + rng.below(4);
            let body = (0..n)
                .map(|_| fill(rng.pick::<&str>(SENTENCES), t, u, a))
                .collect::<Vec<_>>()
                .join("\n");
            BulkAnswer {
                body,
                created_at: None,
                updated_at: None,
            }
        })
        .collect();
    BulkQuestion {
        id: None,
        external_id: Some(format!("gen-{seed}-{i}")),
        title,
        body: None,
        category: CATEGORIES[c].0.to_string(),
        category_name: Some(CATEGORIES[c].1.to_string()),
        tags,
        difficulty: Some(difficulty),
        answers,
        created_at: None,
        updated_at: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_varied() {
        let a = serde_json::to_string(&question(7, 42)).unwrap();
        let b = serde_json::to_string(&question(7, 42)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, serde_json::to_string(&question(8, 42)).unwrap());
        let categories: std::collections::HashSet<String> =
            (0..200).map(|i| question(1, i).category).collect();
        assert_eq!(categories.len(), CATEGORIES.len());
    }

    #[test]
    fn generated_questions_pass_the_domain_rules() {
        for i in 0..500 {
            let line = serde_json::to_value(question(3, i)).unwrap();
            if let Err(e) = crate::domain::import::parse_value(line) {
                panic!("question {i}: {e}");
            }
        }
    }
}
