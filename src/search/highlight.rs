//! Highlighting: the query's terms marked in titles and answer snippets read back from the
//! database, and everything else HTML-escaped.
//!
//! The index stores no text, so the hits' texts come from the store and are marked here with
//! tantivy's `SnippetGenerator`, fed the terms of the query that found them.

use super::analyzer::SnippetTokenizer;
use super::schema::Fields;
use std::collections::BTreeMap;
use std::ops::Range;
use tantivy::Searcher;
use tantivy::query::Query;
use tantivy::schema::Field;
use tantivy::snippet::SnippetGenerator;
use tantivy::tokenizer::TextAnalyzer;

const ANSWER_SNIPPET_CHARS: usize = 160;
/// Bytes of answer text segmented for a snippet, before and after the first match.
const ANSWER_WINDOW_BEFORE: usize = 240;
const ANSWER_WINDOW_AFTER: usize = 1024;

/// Marks the query's terms in texts read back from the database.
pub struct Highlighter {
    title: Option<SnippetGenerator>,
    answers: Option<SnippetGenerator>,
    /// The query's terms in the answers field, to find where the first match is.
    answer_terms: Vec<String>,
}

impl Highlighter {
    /// For a search that found nothing: there is nothing to mark.
    pub(super) fn none() -> Self {
        Self {
            title: None,
            answers: None,
            answer_terms: Vec::new(),
        }
    }

    pub(super) fn new(
        searcher: &Searcher,
        query: &dyn Query,
        fields: &Fields,
    ) -> anyhow::Result<Self> {
        let title = snippet_generator(searcher, query, fields.title, 10_000)?;
        let answers = snippet_generator(searcher, query, fields.answers, ANSWER_SNIPPET_CHARS)?;
        let mut answer_terms = Vec::new();
        query.query_terms(&mut |term, _| {
            if term.field() == fields.answers
                && let Some(text) = term.value().as_str()
            {
                answer_terms.push(text.to_string());
            }
        });
        Ok(Self {
            title: Some(title),
            answers: Some(answers),
            answer_terms,
        })
    }

    /// The part of `text` worth segmenting for a snippet: from just before the first match of
    /// a query term, a few fragments long. Segmenting a whole answer (up to 500,000
    /// characters) per hit would make a search's cost depend on the answers' length.
    fn answer_window(&self, text: &str) -> Range<usize> {
        let lower = text.to_ascii_lowercase();
        let first = self
            .answer_terms
            .iter()
            .filter_map(|t| lower.find(t.as_str()))
            .min()
            .unwrap_or(0);
        let start = floor_char_boundary(text, first.saturating_sub(ANSWER_WINDOW_BEFORE));
        let end = floor_char_boundary(text, (first + ANSWER_WINDOW_AFTER).min(text.len()));
        start..end
    }

    /// The whole title with matches marked.
    pub fn title(&self, title: &str) -> String {
        match &self.title {
            Some(g) => {
                let s = g.snippet(title);
                if s.highlighted().is_empty() {
                    escape_html(title)
                } else {
                    // The title generator's window is wider than any title: the fragment is it.
                    render(title, &shift(s.highlighted(), s.fragment_range().start))
                }
            }
            None => escape_html(title),
        }
    }

    /// The best fragment of the answers with matches marked, or their opening when none match.
    pub fn answer(&self, answers: &[String]) -> String {
        let text = answers.join("\n");
        if let Some(g) = &self.answers {
            let window = self.answer_window(&text);
            let s = g.snippet(&text[window.clone()]);
            if !s.highlighted().is_empty() {
                let range =
                    shift(std::slice::from_ref(&s.fragment_range()), window.start).remove(0);
                let mut html = String::new();
                if range.start > 0 {
                    html.push('…');
                }
                html.push_str(&render(s.fragment(), s.highlighted()));
                if range.end < text.len() {
                    html.push('…');
                }
                return html;
            }
        }
        let opening: String = text.chars().take(ANSWER_SNIPPET_CHARS).collect();
        let mut html = escape_html(&opening);
        if opening.len() < text.len() {
            html.push('…');
        }
        html
    }
}

/// As tantivy's `SnippetGenerator::create`, with the tokenizer that keeps tokens in offset
/// order.
fn snippet_generator(
    searcher: &Searcher,
    query: &dyn Query,
    field: Field,
    max_chars: usize,
) -> anyhow::Result<SnippetGenerator> {
    let mut terms: BTreeMap<String, f32> = BTreeMap::new();
    let mut failed = None;
    query.query_terms(&mut |term, _| {
        if term.field() != field {
            return;
        }
        let value = term.value();
        let Some(text) = value.as_str() else {
            return;
        };
        match searcher.doc_freq(term) {
            Ok(0) => {}
            Ok(df) => {
                terms.insert(text.to_string(), 1.0 / (1.0 + df as f32));
            }
            Err(e) => failed = Some(e),
        }
    });
    if let Some(e) = failed {
        return Err(e.into());
    }
    let tokenizer = TextAnalyzer::from(SnippetTokenizer::default());
    Ok(SnippetGenerator::new(terms, tokenizer, field, max_chars))
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn shift(ranges: &[Range<usize>], by: usize) -> Vec<Range<usize>> {
    ranges.iter().map(|r| r.start + by..r.end + by).collect()
}

/// `text` HTML-escaped with the byte `ranges` wrapped in `<mark>`.
fn render(text: &str, ranges: &[Range<usize>]) -> String {
    let mut ranges: Vec<Range<usize>> = ranges
        .iter()
        .filter(|r| r.start < r.end && r.end <= text.len())
        .cloned()
        .collect();
    ranges.sort_by_key(|r| (r.start, r.end));
    // Search-mode segmentation yields a word and the words inside it: mark their union.
    let mut merged: Vec<Range<usize>> = Vec::new();
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start < last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    let mut html = String::with_capacity(text.len() + 16 * merged.len());
    let mut at = 0;
    for r in merged {
        if !text.is_char_boundary(r.start) || !text.is_char_boundary(r.end) {
            continue;
        }
        html.push_str(&escape_html(&text[at..r.start]));
        html.push_str("<mark>");
        html.push_str(&escape_html(&text[r.start..r.end]));
        html.push_str("</mark>");
        at = r.end;
    }
    html.push_str(&escape_html(&text[at..]));
    html
}

/// Escapes everything that could start markup or end an attribute.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rendering_escapes_everything_but_the_marks() {
        let text = "<b>GMP</b> & \"x\"";
        let marks: Vec<Range<usize>> = std::iter::once(3..6).collect();
        let html = render(text, &marks);
        assert_eq!(
            html,
            "&lt;b&gt;<mark>GMP</mark>&lt;/b&gt; &amp; &quot;x&quot;"
        );
    }

    #[test]
    fn overlapping_ranges_merge_and_bad_ones_are_skipped_not_panicked_on() {
        let text = "一致性hash";
        assert_eq!(
            render(text, &[0..6, 0..9, 9..13]),
            "<mark>一致性</mark><mark>hash</mark>"
        );
        assert_eq!(render("写屏障", &[1..4, 0..100]), "写屏障");
    }
}
