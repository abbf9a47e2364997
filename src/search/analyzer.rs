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

/// The query analyzed for matching: units for coordination, and the dictionary words of its
/// CJK runs, which add relevance (BM25 on whole words) without being required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnalyzedQuery {
    pub units: Vec<QueryUnit>,
    pub cjk_words: Vec<String>,
}

pub fn analyze_query(text: &str) -> AnalyzedQuery {
    let mut q = AnalyzedQuery::default();
    let mut seen = std::collections::HashSet::new();
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
            for t in cjk_bigrams(segment) {
                let unit = QueryUnit::Bigram(t.text);
                if seen.insert(unit.clone()) {
                    q.units.push(unit);
                }
            }
            for w in analyze(segment) {
                if !q.cjk_words.contains(&w) {
                    q.cjk_words.push(w);
                }
            }
        } else {
            for w in analyze(segment) {
                let unit = QueryUnit::Word(w);
                if seen.insert(unit.clone()) {
                    q.units.push(unit);
                }
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
    fn empty_and_symbol_only_text_yields_no_terms() {
        assert!(analyze("").is_empty());
        assert!(analyze("+-:()*~^[]{}").is_empty());
    }
}
