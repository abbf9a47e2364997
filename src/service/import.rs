//! Bulk import and export, shared by the CLI (`kb import`, `kb export`) and the HTTP endpoints.
//!
//! An [`Importer`] takes raw lines (or parsed JSON array elements) one at a time, validates
//! them off the async runtime in batches, and writes each batch in one transaction. Bad lines
//! are collected with their numbers; the good ones are written regardless. The search index
//! follows through the change log, and [`Importer::finish`] returns once it has caught up.

use super::learner_transfer::{LearnerLine, parse_learner_line};
use super::{Error, Result, Service};
use crate::domain::import::{BulkQuestion, ImportItem, parse_line, parse_value, validate};
use crate::domain::{FieldErrors, Question, RawSynonymTable, SynonymTable};
use crate::store::{BatchOutcome, Snapshot, Store, StoreError};
use std::collections::HashSet;

/// Lines validated and written together: large enough that per-transaction costs vanish,
/// small enough that a crash loses little work and memory stays flat.
const BATCH: usize = 2000;
/// Lines longer than this are refused (a question with many 100,000-character answers still
/// fits many times over).
pub const MAX_LINE_BYTES: usize = 16 * 1024 * 1024;
/// At most this many bad lines are listed in a report (all are counted).
pub const MAX_REPORTED_ERRORS: usize = 1000;
/// Questions per page when exporting.
const EXPORT_PAGE: i64 = 500;

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportReport {
    /// Non-blank lines (or array elements) read.
    pub received: u64,
    pub created: u64,
    /// Lines whose `external_id` existed with different content.
    pub updated: u64,
    /// Lines already imported as they are.
    pub unchanged: u64,
    /// Lines refused; the first [`MAX_REPORTED_ERRORS`] are listed in `errors`.
    pub failed: u64,
    pub errors: Vec<LineError>,
    /// A `{"synonyms": …}` line replaced the synonym table.
    pub synonyms_replaced: bool,
    /// Learner lines applied (settings, and lines of reviews).
    pub learner_lines: u64,
    /// Reviews applied (or already there) from learner lines.
    pub reviews: u64,
}

/// A line that was not imported, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number (NDJSON) or element position (JSON array).
    pub line: u64,
    pub message: String,
}

/// Raw input waiting to be validated: a line's text, an element already parsed, or a
/// question already in the bulk shape (the seed).
enum Raw {
    Text(String),
    Value(serde_json::Value),
    Question(Box<BulkQuestion>),
}

/// Feeds lines into the database in batches. Drop it without `finish` and the batches already
/// written stay written (each is atomic); the rest is simply not imported.
///
/// `report()` counts a batch once its write has completed, so it trails the input slightly.
pub struct Importer {
    service: Service,
    /// The unfinished last line of the NDJSON read so far.
    partial: Vec<u8>,
    /// Lines seen so far (the number of the line being assembled is one more).
    lines: u64,
    /// The current line is too long and is being skipped to its end.
    skipping: bool,
    pending: Vec<(u64, Raw)>,
    started: std::time::Instant,
    in_flight: Option<tokio::task::JoinHandle<Result<BatchOutcome, StoreError>>>,
    report: ImportReport,
    last_seq: i64,
    /// Questions looked up by `external_id` for learner lines.
    external_ids: std::collections::HashMap<String, Option<i64>>,
}

impl Service {
    pub fn importer(&self) -> Importer {
        Importer {
            service: self.clone(),
            partial: Vec::new(),
            lines: 0,
            skipping: false,
            pending: Vec::with_capacity(BATCH),
            started: std::time::Instant::now(),
            in_flight: None,
            report: ImportReport::default(),
            last_seq: 0,
            external_ids: std::collections::HashMap::new(),
        }
    }

    /// The whole knowledge base from one snapshot (with its learners when `learners`); see
    /// [`export_snapshot`].
    pub fn export(
        &self,
        learners: bool,
    ) -> tokio::sync::mpsc::Receiver<Result<ExportPart, StoreError>> {
        export_snapshot(self.store.clone(), learners)
    }
}

/// What an export sends, in order: where it stands in the change feed, then its lines.
#[derive(Debug)]
pub enum ExportPart {
    /// The feed cursor the export is consistent with: it holds every change up to this cursor
    /// and none after, so following the feed from here misses nothing and repeats nothing.
    Cursor(String),
    Lines(Vec<BulkQuestion>),
    /// Learner lines (settings, reviews), after every question: see `learner_transfer`.
    Learners(Vec<serde_json::Value>),
}

/// Reads the whole knowledge base from one database snapshot, in the background, a page at a
/// time: the receiver gets the snapshot's feed cursor first, then the lines. The reader sets
/// the pace (two pages are read ahead); dropping the receiver ends the read. With `learners`
/// (personal data: opt-in), every question has an `external_id` (derived when it has none)
/// and the learners' lines follow the questions.
pub fn export_snapshot(
    store: Store,
    learners: bool,
) -> tokio::sync::mpsc::Receiver<Result<ExportPart, StoreError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::spawn(async move {
        let tag = match store.database_id().await {
            Ok(id) => crate::domain::changes::Cursor::database_tag(&id),
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return;
            }
        };
        let (snap_tx, mut snap_rx) = tokio::sync::mpsc::channel(1);
        let reader = {
            let store = store.clone();
            tokio::spawn(async move { store.export_snapshot(EXPORT_PAGE, learners, snap_tx).await })
        };
        let mut carry = None;
        while let Some(part) = snap_rx.recv().await {
            let part = match part {
                Snapshot::Seq(seq) => {
                    ExportPart::Cursor(crate::domain::changes::Cursor { seq }.encode(tag))
                }
                Snapshot::Questions(qs) => ExportPart::Lines(
                    qs.iter()
                        .map(|q| export_line(q, learners.then_some(tag)))
                        .collect(),
                ),
                Snapshot::LearnerSettings(all) => ExportPart::Learners(
                    all.into_iter()
                        .map(super::learner_transfer::settings_line)
                        .collect(),
                ),
                Snapshot::Reviews(rows) => ExportPart::Learners(
                    super::learner_transfer::review_lines(tag, rows, &mut carry),
                ),
            };
            if tx.send(Ok(part)).await.is_err() {
                // The reader sees its channel closed and ends its snapshot.
                return;
            }
        }
        if let Some(last) = super::learner_transfer::flush_reviews(&mut carry)
            && tx.send(Ok(ExportPart::Learners(vec![last]))).await.is_err()
        {
            return;
        }
        match reader.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                let _ = tx.send(Err(e)).await;
            }
            Err(e) => tracing::error!(error = %e, "the export's reader panicked"),
        }
    });
    rx
}

/// A question's export line; with `derive` (an export with learners, whose reviews point at
/// questions by `external_id`), one without an `external_id` gets a stable one.
fn export_line(q: &Question, derive: Option<[u8; 4]>) -> BulkQuestion {
    let external_id = q
        .external_id
        .clone()
        .or_else(|| derive.map(|tag| super::learner_transfer::derived_external_id(tag, q.id)));
    BulkQuestion::from_question(q, external_id)
}

impl Importer {
    /// Feeds the next chunk of an NDJSON stream; chunks may split lines anywhere.
    pub async fn push_ndjson(&mut self, chunk: &[u8]) -> Result<()> {
        let mut rest = chunk;
        while let Some(i) = memchr::memchr(b'\n', rest) {
            let (head, tail) = rest.split_at(i);
            rest = &tail[1..];
            self.lines += 1;
            if std::mem::take(&mut self.skipping) {
                continue;
            }
            let mut line = std::mem::take(&mut self.partial);
            line.extend_from_slice(head);
            self.take_line(line).await?;
        }
        if !self.skipping {
            self.partial.extend_from_slice(rest);
            if self.partial.len() > MAX_LINE_BYTES {
                self.reject(
                    self.lines + 1,
                    format!("longer than {MAX_LINE_BYTES} bytes"),
                );
                self.partial = Vec::new();
                self.skipping = true;
            }
        }
        Ok(())
    }

    async fn take_line(&mut self, line: Vec<u8>) -> Result<()> {
        match String::from_utf8(line) {
            Ok(text) if text.trim().is_empty() => Ok(()),
            Ok(text) => self.push(self.lines, Raw::Text(text)).await,
            Err(_) => {
                self.reject(self.lines, "not valid UTF-8");
                Ok(())
            }
        }
    }

    /// Imports a whole JSON array; elements are numbered from 1. Anything but an array of
    /// objects is refused as a whole (422): per-element validation is for the objects' fields.
    pub async fn push_array(&mut self, bytes: impl AsRef<[u8]> + Send + 'static) -> Result<()> {
        type Objects = Vec<serde_json::Map<String, serde_json::Value>>;
        let parsed =
            tokio::task::spawn_blocking(move || serde_json::from_slice::<Objects>(bytes.as_ref()))
                .await?;
        let items = parsed.map_err(|e| match e.classify() {
            serde_json::error::Category::Data => Error::Invalid(FieldErrors::one(
                "",
                format!("the body must be a JSON array of objects: {e}"),
            )),
            _ => Error::MalformedJson(e.to_string()),
        })?;
        for (i, item) in items.into_iter().enumerate() {
            self.push(i as u64 + 1, Raw::Value(serde_json::Value::Object(item)))
                .await?;
        }
        Ok(())
    }

    /// Imports one question already in the bulk shape; `number` names it in the report.
    pub async fn push_question(&mut self, number: u64, question: BulkQuestion) -> Result<()> {
        self.push(number, Raw::Question(Box::new(question))).await
    }

    fn reject(&mut self, number: u64, message: impl Into<String>) {
        self.report.received += 1;
        self.fail(number, message.into());
    }

    async fn push(&mut self, number: u64, raw: Raw) -> Result<()> {
        if is_cursor_line(&raw) {
            return Ok(());
        }
        if let Some(table) = synonyms_line(&raw) {
            self.report.received += 1;
            match table {
                Ok(table) => {
                    self.service
                        .put_synonyms(table, &crate::domain::Precondition::Any)
                        .await?;
                    self.report.synonyms_replaced = true;
                }
                Err(message) => self.fail(number, message),
            }
            return Ok(());
        }
        if let Some(line) = learner_line(&raw) {
            self.report.received += 1;
            return self.take_learner_line(number, line).await;
        }
        self.report.received += 1;
        self.pending.push((number, raw));
        if self.pending.len() >= BATCH {
            self.flush().await?;
        }
        Ok(())
    }

    /// Applies a learner line once every question before it is written (its reviews name
    /// questions by `external_id`).
    async fn take_learner_line(
        &mut self,
        number: u64,
        line: std::result::Result<LearnerLine, String>,
    ) -> Result<()> {
        let line = match line {
            Ok(line) => line,
            Err(message) => {
                self.fail(number, message);
                return Ok(());
            }
        };
        self.flush().await?;
        self.settle().await?;
        let reviews = match &line {
            LearnerLine::Reviews(r) => r.reviews.len() as u64,
            LearnerLine::Settings(_) => 0,
        };
        match self
            .service
            .import_learner_line(line, &mut self.external_ids)
            .await?
        {
            Err(message) => self.fail(number, message),
            Ok(refused) => {
                self.report.learner_lines += 1;
                self.report.reviews += reviews - refused.len() as u64;
                if let Some((i, why)) = refused.first() {
                    self.fail(
                        number,
                        format!(
                            "{} of its reviews refused; the first (item {i}): {why}",
                            refused.len()
                        ),
                    );
                }
            }
        }
        Ok(())
    }

    /// The report so far (for progress displays).
    pub fn report(&self) -> &ImportReport {
        &self.report
    }

    fn fail(&mut self, line: u64, message: String) {
        self.report.failed += 1;
        if self.report.errors.len() < MAX_REPORTED_ERRORS {
            self.report.errors.push(LineError { line, message });
        }
    }

    /// Validates and writes what is pending.
    async fn flush(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let raw = std::mem::take(&mut self.pending);
        // JSON parsing and validation are CPU work: keep them off the async workers.
        let parsed = tokio::task::spawn_blocking(move || {
            raw.into_iter()
                .map(|(n, r)| {
                    let item = match r {
                        Raw::Text(t) => parse_line(&t),
                        Raw::Value(v) => parse_value(v),
                        Raw::Question(q) => validate(*q),
                    };
                    (n, item)
                })
                .collect::<Vec<_>>()
        })
        .await?;
        // A batch may not hold one identity twice (the store classifies a batch against what
        // was stored before it): a repeat starts the next batch.
        let mut batch: Vec<ImportItem> = Vec::with_capacity(parsed.len());
        let mut seen: HashSet<String> = HashSet::new();
        for (n, item) in parsed {
            match item {
                Err(message) => self.fail(n, message),
                Ok(item) => {
                    let key = identity(&item);
                    if !seen.insert(key.clone()) {
                        self.write(std::mem::take(&mut batch)).await?;
                        seen.clear();
                        seen.insert(key);
                    }
                    batch.push(item);
                }
            }
        }
        self.write(batch).await
    }

    /// Starts writing `batch` once the previous batch is written: one write in flight, so the
    /// next batch is parsed while this one is written, and batches commit in order.
    async fn write(&mut self, batch: Vec<ImportItem>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        self.settle().await?;
        let store = self.service.store.clone();
        self.in_flight = Some(tokio::spawn(
            async move { store.import_batch(&batch).await },
        ));
        Ok(())
    }

    /// Waits for the write in flight and counts what it did.
    async fn settle(&mut self) -> Result<()> {
        let Some(task) = self.in_flight.take() else {
            return Ok(());
        };
        let BatchOutcome {
            created,
            updated,
            unchanged,
            last_seq,
        } = task.await??;
        self.report.created += created;
        self.report.updated += updated;
        self.report.unchanged += unchanged;
        if last_seq > 0 {
            self.last_seq = last_seq;
            self.service.indexing.nudge();
        }
        Ok(())
    }

    /// Writes the rest (a last line needs no newline) and waits until every imported question
    /// is searchable.
    #[tracing::instrument(skip_all, fields(last_seq))]
    pub async fn finish(mut self) -> Result<ImportReport> {
        if !self.skipping && !self.partial.is_empty() {
            self.lines += 1;
            let line = std::mem::take(&mut self.partial);
            self.take_line(line).await?;
        }
        self.flush().await?;
        self.settle().await?;
        // Unreadable lines are noted as they arrive, the rest when their batch is parsed.
        self.report.errors.sort_by_key(|e| e.line);
        tracing::Span::current().record("last_seq", self.last_seq);
        tracing::debug!(elapsed = ?self.started.elapsed(), "import written; waiting for the index");
        self.service.indexing.wait_until(self.last_seq).await;
        Ok(self.report)
    }
}

/// The `{"changes_cursor": "…"}` line an export starts with: where its content stands in the
/// source's change feed, which means nothing to the knowledge base importing it.
fn is_cursor_line(raw: &Raw) -> bool {
    let only_cursor = |v: &serde_json::Value| {
        v.as_object()
            .is_some_and(|o| o.len() == 1 && o.get("changes_cursor").is_some_and(|c| c.is_string()))
    };
    match raw {
        Raw::Text(t) => {
            t.trim_start()
                .strip_prefix('{')
                .is_some_and(|rest| rest.trim_start().starts_with("\"changes_cursor\""))
                && serde_json::from_str::<serde_json::Value>(t).is_ok_and(|v| only_cursor(&v))
        }
        Raw::Value(v) => only_cursor(v),
        Raw::Question(_) => false,
    }
}

/// A learner line (`{"learner": …, "settings" | "reviews": …}`, as an export with learners
/// writes after the questions), parsed; `None` for anything else.
fn learner_line(raw: &Raw) -> Option<std::result::Result<LearnerLine, String>> {
    match raw {
        Raw::Text(t)
            if t.trim_start()
                .strip_prefix('{')
                .is_some_and(|rest| rest.trim_start().starts_with("\"learner\"")) =>
        {
            match serde_json::from_str::<serde_json::Value>(t) {
                Ok(v) => parse_learner_line(&v),
                Err(e) => Some(Err(format!("invalid JSON: {e}"))),
            }
        }
        Raw::Value(v) => parse_learner_line(v),
        _ => None,
    }
}

/// A `{"synonyms": {...}}` line (as `kb export` writes first), parsed; `None` for anything
/// else, which is a question.
fn synonyms_line(raw: &Raw) -> Option<std::result::Result<SynonymTable, String>> {
    let value: serde_json::Value = match raw {
        Raw::Text(t)
            if t.trim_start()
                .strip_prefix('{')
                .is_some_and(|rest| rest.trim_start().starts_with("\"synonyms\"")) =>
        {
            match serde_json::from_str(t) {
                Ok(v) => v,
                Err(e) => return Some(Err(format!("invalid JSON: {e}"))),
            }
        }
        Raw::Value(v) if v.get("synonyms").is_some() => v.clone(),
        _ => return None,
    };
    let obj = value.as_object()?;
    if obj.len() != 1 {
        return Some(Err(
            "a synonyms line holds `synonyms` and nothing else".into()
        ));
    }
    let parsed = serde_json::from_value::<RawSynonymTable>(obj["synonyms"].clone())
        .map_err(|e| format!("synonyms: {e}"))
        .and_then(|raw| {
            SynonymTable::parse(&raw).map_err(|errors| {
                errors
                    .as_slice()
                    .iter()
                    .map(|f| format!("synonyms.{}: {}", f.field, f.message))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        });
    Some(parsed)
}

fn identity(item: &ImportItem) -> String {
    match &item.external_id {
        Some(id) => format!("e:{id}"),
        None => format!("h:{}", item.hash),
    }
}
