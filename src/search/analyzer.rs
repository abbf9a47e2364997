//! The text analyzer shared by documents and queries: jieba word segmentation (search mode),
//! punctuation and whitespace dropped, Latin text lowercased, positions sequential.
//!
//! One `Jieba` (≈ 33 MB, ≈ 130 ms to build) is created per process and shared through an
//! `Arc`; tantivy clones the tokenizer on every lookup, which is then only a pointer copy.

use jieba_rs::Jieba;
use std::sync::{Arc, LazyLock};
use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// Name under which the word analyzer is registered with the index.
pub const TOKENIZER_NAME: &str = "kb_jieba";
/// Name under which the CJK bigram analyzer is registered with the index.
pub const BIGRAM_TOKENIZER_NAME: &str = "kb_cjk_bigram";

static JIEBA: LazyLock<Arc<Jieba>> = LazyLock::new(|| Arc::new(Jieba::new()));

/// The tantivy tokenizer. Cheap to clone.
#[derive(Clone)]
pub struct KbTokenizer {
    jieba: Arc<Jieba>,
}

impl Default for KbTokenizer {
    fn default() -> Self {
        Self {
            jieba: JIEBA.clone(),
        }
    }
}

/// A token is worth indexing when it has at least one letter or digit in any script.
fn is_word(s: &str) -> bool {
    s.chars().any(char::is_alphanumeric)
}

impl Tokenizer for KbTokenizer {
    type TokenStream<'a> = KbTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> KbTokenStream {
        let tokens = self
            .jieba
            .cut_for_search(text, true)
            .into_iter()
            .filter(|t| is_word(t.word))
            .enumerate()
            .map(|(position, t)| Token {
                offset_from: t.byte_start,
                offset_to: t.byte_end,
                position,
                text: t.word.to_lowercase(),
                position_length: 1,
            })
            .collect();
        KbTokenStream {
            tokens,
            index: None,
        }
    }
}

/// The word analyzer for highlighting: the same tokens, in order of where they start (search
/// mode emits `垃圾`, `回收` and then `垃圾回收`, which starts before `回收`; tantivy's
/// snippet builder assumes tokens never start before the fragment it is filling).
#[derive(Clone, Default)]
pub struct SnippetTokenizer(KbTokenizer);

impl Tokenizer for SnippetTokenizer {
    type TokenStream<'a> = KbTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> KbTokenStream {
        let mut stream = self.0.token_stream(text);
        stream
            .tokens
            .sort_by_key(|t| (t.offset_from, std::cmp::Reverse(t.offset_to)));
        for (i, t) in stream.tokens.iter_mut().enumerate() {
            t.position = i;
        }
        stream
    }
}

pub struct KbTokenStream {
    tokens: Vec<Token>,
    index: Option<usize>,
}

impl TokenStream for KbTokenStream {
    fn advance(&mut self) -> bool {
        let next = self.index.map_or(0, |i| i + 1);
        self.index = Some(next);
        next < self.tokens.len()
    }

    fn token(&self) -> &Token {
        &self.tokens[self.index.unwrap_or(0)]
    }

    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.index.unwrap_or(0)]
    }
}

/// Han, kana and hangul: scripts written without spaces between words.
pub fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7AF
        | 0xF900..=0xFAFF | 0x20000..=0x2EBEF)
}

/// Overlapping character bigrams of every run of CJK text (a lone character stands alone).
/// They find compounds the dictionary does not know: `读写锁` reaches a text that only says
/// `写锁`, whatever jieba made of either.
#[derive(Clone, Default)]
pub struct CjkBigramTokenizer;

impl Tokenizer for CjkBigramTokenizer {
    type TokenStream<'a> = KbTokenStream;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> KbTokenStream {
        KbTokenStream {
            tokens: cjk_bigrams(text),
            index: None,
        }
    }
}

fn cjk_bigrams(text: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut run: Vec<(usize, char)> = Vec::new();
    let flush = |run: &mut Vec<(usize, char)>, tokens: &mut Vec<Token>| {
        let mut push = |from: usize, to: usize, text: String| {
            let position = tokens.len();
            tokens.push(Token {
                offset_from: from,
                offset_to: to,
                position,
                text,
                position_length: 1,
            });
        };
        if let [(at, c)] = run.as_slice() {
            push(*at, at + c.len_utf8(), c.to_string());
        }
        for w in run.windows(2) {
            let (a, ca) = w[0];
            let (b, cb) = w[1];
            push(a, b + cb.len_utf8(), format!("{ca}{cb}"));
        }
        run.clear();
    };
    for (i, c) in text.char_indices() {
        if is_cjk(c) {
            run.push((i, c));
        } else if !run.is_empty() {
            flush(&mut run, &mut tokens);
        }
    }
    flush(&mut run, &mut tokens);
    tokens
}

/// One thing the person asked for; documents matching more units rank first.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum QueryUnit {
    /// A word-analyzer term (Latin words, identifiers and their parts, numbers).
    Word(String),
    /// A bigram (or lone character) of a run of CJK text, matched in the bigram fields.
    /// Counting coverage in bigrams rather than in dictionary words makes `读写锁` reach
    /// `写锁` and keeps a query that matches more of the typed characters on top.
    Bigram(String),
}

/// How much a unit can say about what the person wants, before its rarity is considered.
pub mod prior {
    /// A content word, or a bigram inside one.
    pub const CONTENT: f32 = 1.0;
    /// A bigram straddling two words (`开机加载` → `机加`): it matches by accident.
    pub const CROSSING: f32 = 0.3;
    /// Question words, particles and pronouns (`怎么`, `需要`, `吗`, `how`, `my`).
    pub const FILLER: f32 = 0.1;
}

/// Words that carry the shape of a question, not its subject. Kept short on purpose: anything
/// else that is common is down-weighted by its document frequency instead.
const FILLER_WORDS: &[&str] = &[
    "怎么",
    "怎样",
    "怎么样",
    "怎么办",
    "如何",
    "什么",
    "什么样",
    "为什么",
    "为何",
    "哪里",
    "在哪",
    "在哪里",
    "在哪儿",
    "哪儿",
    "哪个",
    "哪些",
    "是否",
    "能否",
    "可以",
    "能",
    "吗",
    "呢",
    "吧",
    "啊",
    "的",
    "了",
    "是",
    "我",
    "我的",
    "你",
    "您",
    "您的",
    "它",
    "这",
    "那",
    "这个",
    "那个",
    "一个",
    "有",
    "和",
    "与",
    "或",
    "需要",
    "应该",
    "要",
    "想",
    "会",
    "一下",
    "还是",
    "就",
    "都",
    "也",
    "请问",
    "把",
    "被",
    "让",
    "给",
    "在",
    "对",
    "得",
    "地",
    "着",
    "过",
    "么",
    "啥",
    "how",
    "what",
    "why",
    "where",
    "when",
    "which",
    "who",
    "is",
    "are",
    "was",
    "do",
    "does",
    "did",
    "can",
    "could",
    "should",
    "would",
    "will",
    "i",
    "my",
    "me",
    "you",
    "your",
    "the",
    "a",
    "an",
    "to",
    "of",
    "in",
    "on",
    "for",
    "with",
    "and",
    "or",
    "it",
    "its",
    "this",
    "that",
    "be",
];

pub fn is_filler(word: &str) -> bool {
    FILLER_WORDS.contains(&word)
}

/// The query analyzed for matching: units for coverage, each with its prior weight, and the
/// dictionary words of its CJK runs, which add relevance (BM25 on whole words) without being
/// required.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AnalyzedQuery {
    pub units: Vec<QueryUnit>,
    pub priors: Vec<f32>,
    pub cjk_words: Vec<String>,
}

impl AnalyzedQuery {
    /// Adds `unit` once, with the highest prior it was given.
    fn unit(&mut self, unit: QueryUnit, prior: f32) {
        match self.units.iter().position(|u| *u == unit) {
            Some(i) => self.priors[i] = self.priors[i].max(prior),
            None => {
                self.units.push(unit);
                self.priors.push(prior);
            }
        }
    }
}

/// jieba's words of a CJK run, as character ranges.
fn word_spans(segment: &str) -> Vec<(usize, usize, String)> {
    let mut spans = Vec::new();
    let mut at = 0;
    for w in JIEBA.cut(segment, true) {
        let n = w.word.chars().count();
        spans.push((at, at + n, w.word.to_lowercase()));
        at += n;
    }
    spans
}

pub fn analyze_query(text: &str) -> AnalyzedQuery {
    let mut q = AnalyzedQuery::default();
    let mut rest = text;
    while !rest.is_empty() {
        let cjk = rest.starts_with(is_cjk);
        let end = rest
            .char_indices()
            .find(|(_, c)| is_cjk(*c) != cjk)
            .map_or(rest.len(), |(i, _)| i);
        let (segment, tail) = rest.split_at(end);
        rest = tail;
        if cjk {
            let spans = word_spans(segment);
            let word_at = |i: usize| spans.iter().find(|(a, b, _)| (*a..*b).contains(&i));
            let grams = cjk_bigrams(segment);
            for (i, t) in grams.into_iter().enumerate() {
                let lone = t.text.chars().count() == 1;
                let (first, second) = (word_at(i), word_at(if lone { i } else { i + 1 }));
                let prior = match (first, second) {
                    (Some(a), Some(b)) if a == b => {
                        if is_filler(&a.2) {
                            prior::FILLER
                        } else {
                            prior::CONTENT
                        }
                    }
                    (Some(a), Some(b)) if is_filler(&a.2) || is_filler(&b.2) => prior::FILLER,
                    _ => prior::CROSSING,
                };
                q.unit(QueryUnit::Bigram(t.text), prior);
            }
            for w in analyze(segment) {
                if !is_filler(&w) && !q.cjk_words.contains(&w) {
                    q.cjk_words.push(w);
                }
            }
        } else {
            for w in analyze(segment) {
                let prior = if is_filler(&w) {
                    prior::FILLER
                } else {
                    prior::CONTENT
                };
                q.unit(QueryUnit::Word(w), prior);
            }
        }
    }
    q
}

/// The analyzed terms of `text`, in order, duplicates kept.
pub fn analyze(text: &str) -> Vec<String> {
    let mut tokenizer = KbTokenizer::default();
    let mut stream = tokenizer.token_stream(text);
    let mut out = Vec::new();
    while stream.advance() {
        out.push(stream.token().text.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::analyze;

    fn has(text: &str, terms: &[&str]) {
        let got = analyze(text);
        for t in terms {
            assert!(got.iter().any(|g| g == t), "{text:?} → {got:?} lacks {t:?}");
        }
    }

    #[test]
    fn chinese_is_segmented_into_words() {
        has("三色标记法配合写屏障", &["标记", "配合", "屏障"]);
        has("读写锁", &["读写", "锁"]);
        has("切片扩容", &["切片", "扩容"]);
        has("垃圾回收", &["垃圾", "回收"]);
    }

    #[test]
    fn latin_is_lowercased_and_identifiers_survive() {
        has("GMP", &["gmp"]);
        has("sync.Map", &["sync", "map"]);
        has("WaitGroup", &["waitgroup"]);
        has("GOMAXPROCS()", &["gomaxprocs"]);
        has("hmap bmap", &["hmap", "bmap"]);
        has("CAP", &["cap"]);
    }

    #[test]
    fn mixed_text_splits_at_script_boundaries() {
        has("new 和make的区别", &["new", "make", "区别"]);
        has("一致性hash是什么", &["一致性", "hash"]);
    }

    #[test]
    fn punctuation_and_whitespace_are_dropped_and_positions_are_sequential() {
        let text = "你好， 世界！ (GMP) ... \u{200b} 😀";
        let mut tok = super::KbTokenizer::default();
        let mut stream = tantivy::tokenizer::Tokenizer::token_stream(&mut tok, text);
        let mut position = 0;
        while tantivy::tokenizer::TokenStream::advance(&mut stream) {
            let t = tantivy::tokenizer::TokenStream::token(&stream);
            assert!(t.text.chars().any(char::is_alphanumeric), "{:?}", t.text);
            assert_eq!(t.position, position);
            assert_eq!(&text[t.offset_from..t.offset_to].to_lowercase(), &t.text);
            position += 1;
        }
        assert!(position >= 3);
    }

    #[test]
    fn cjk_runs_become_bigrams_and_lone_characters_unigrams() {
        let grams: Vec<String> = super::cjk_bigrams("读写锁 and 和make 写锁")
            .into_iter()
            .map(|t| t.text)
            .collect();
        assert_eq!(grams, ["读写", "写锁", "和", "写锁"]);
    }

    #[test]
    fn cjk_runs_count_in_bigrams_and_identifier_parts_in_words() {
        use super::QueryUnit::{Bigram, Word};
        let q = super::analyze_query("读写锁 sync.Map");
        assert_eq!(q.units[..2], [Bigram("读写".into()), Bigram("写锁".into())]);
        for w in ["sync", "map", "sync.map"] {
            assert!(q.units.contains(&Word(w.into())), "{w}: {:?}", q.units);
        }
        assert_eq!(q.cjk_words, ["读写", "锁"]);
    }

    #[test]
    fn filler_and_straddling_bigrams_weigh_less_than_content() {
        use super::QueryUnit::Bigram;
        use super::prior::{CONTENT, CROSSING, FILLER};
        let q = super::analyze_query("开机加载模块");
        let prior =
            |g: &str| q.priors[q.units.iter().position(|u| *u == Bigram(g.into())).unwrap()];
        assert_eq!(prior("开机"), CONTENT);
        assert_eq!(prior("加载"), CONTENT);
        assert_eq!(prior("载模"), CROSSING);
        let q = super::analyze_query("升级软件需要重启吗");
        let prior =
            |g: &str| q.priors[q.units.iter().position(|u| *u == Bigram(g.into())).unwrap()];
        assert_eq!(prior("需要"), FILLER);
        assert_eq!(prior("启吗"), FILLER);
        assert_eq!(prior("重启"), CONTENT);
        assert!(q.cjk_words.contains(&"升级".to_string()));
        assert!(
            !q.cjk_words.contains(&"需要".to_string()),
            "{:?}",
            q.cjk_words
        );
    }

    #[test]
    fn empty_and_symbol_only_text_yields_no_terms() {
        assert!(analyze("").is_empty());
        assert!(analyze("+-:()*~^[]{}").is_empty());
    }
}
