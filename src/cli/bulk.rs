//! The command-line side of bulk data: `kb import` (with a progress bar), `kb export` and
//! `kb gen`. The work itself is the service's [`Importer`](crate::service::Importer) and
//! export pages, the same code the HTTP endpoints use.

use crate::config::Config;
use crate::service::{ExportPart, ImportReport, Service};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::time::Instant;

/// `kb import FILE`: imports into the data directory and waits until everything is
/// searchable. Progress goes to standard error when it is a terminal. The bundled seed is not
/// loaded: a knowledge base someone brings gets nothing of ours mixed in.
pub async fn import(config: &Config, file: &Path) -> anyhow::Result<(ImportReport, f64)> {
    let started = Instant::now();
    let store = crate::open_store(config).await?;
    let service = Service::start(store, &config.index_dir())
        .await
        .context("cannot open the search index: is a kb server running on this data dir? Stop it, or use POST /api/v1/import")?;
    let result = import_into(&service, file).await;
    service.shutdown().await;
    Ok((result?, started.elapsed().as_secs_f64()))
}

async fn import_into(service: &Service, file: &Path) -> anyhow::Result<ImportReport> {
    let (mut reader, total): (Box<dyn BufRead + Send>, u64) = if file.as_os_str() == "-" {
        (Box::new(BufReader::new(std::io::stdin())), 0)
    } else {
        let f =
            std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(BufReader::with_capacity(1 << 20, f)), len)
    };
    let bar = if total > 0 {
        ProgressBar::new(total)
    } else {
        ProgressBar::new_spinner()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta}) {msg}",
        )
        .expect("valid template"),
    );
    let mut importer = service.importer();
    let started = Instant::now();
    if starts_with_bracket(&mut reader)? {
        let mut all = Vec::new();
        reader.read_to_end(&mut all)?;
        bar.set_position(all.len() as u64);
        importer.push_array(all).await?;
    } else {
        let mut chunk = vec![0u8; 1 << 20];
        let mut read = 0u64;
        loop {
            let n = reader.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            read += n as u64;
            importer.push_ndjson(&chunk[..n]).await?;
            bar.set_position(read);
            let r = importer.report();
            let rate = r.received as f64 / started.elapsed().as_secs_f64().max(1e-9);
            bar.set_message(format!(
                "{} lines, {rate:.0}/s, {} bad",
                r.received, r.failed
            ));
        }
    }
    bar.set_message("waiting for the search index…");
    let report = importer.finish().await?;
    bar.finish_and_clear();
    Ok(report)
}

/// Peeks at the first non-blank byte without consuming it.
fn starts_with_bracket(reader: &mut dyn BufRead) -> std::io::Result<bool> {
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(false);
        }
        match buf.iter().position(|b| !b.is_ascii_whitespace()) {
            Some(i) => {
                let bracket = buf[i] == b'[';
                reader.consume(i);
                return Ok(bracket);
            }
            None => {
                let n = buf.len();
                reader.consume(n);
            }
        }
    }
}

/// `kb export`: the feed cursor it is consistent with, then every question as NDJSON, in id
/// order, from one snapshot; returns how many questions were written.
pub async fn export(config: &Config, learners: bool, out: &mut dyn Write) -> anyhow::Result<u64> {
    let store = crate::open_store(config).await?;
    let mut parts = crate::service::export_snapshot(store.clone(), learners);
    let mut n = 0;
    while let Some(part) = parts.recv().await {
        match part? {
            ExportPart::Cursor(cursor) => {
                serde_json::to_writer(&mut *out, &serde_json::json!({ "changes_cursor": cursor }))?;
                out.write_all(b"\n")?;
                if let Some(line) = crate::service::export_synonyms_line(&store).await? {
                    serde_json::to_writer(&mut *out, &line)?;
                    out.write_all(b"\n")?;
                }
            }
            ExportPart::Lines(lines) => {
                for line in &lines {
                    serde_json::to_writer(&mut *out, line)?;
                    out.write_all(b"\n")?;
                }
                n += lines.len() as u64;
            }
            ExportPart::Learners(lines) => {
                for line in &lines {
                    serde_json::to_writer(&mut *out, line)?;
                    out.write_all(b"\n")?;
                }
            }
        }
    }
    out.flush()?;
    store.close().await;
    Ok(n)
}

/// `kb gen`: `count` deterministic synthetic questions for `seed`, as NDJSON.
pub fn generate(count: u64, seed: u64, out: &mut dyn Write) -> anyhow::Result<()> {
    for i in 0..count {
        serde_json::to_writer(&mut *out, &crate::generate::question(seed, i))?;
        out.write_all(b"\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Runs `kb import FILE` and prints its report; lines refused make the exit status 1, so
/// scripts can tell "all good" from "some lines were refused".
pub async fn run_import(config: &Config, file: &Path) -> anyhow::Result<()> {
    let (report, secs) = import(config, file).await?;
    for e in &report.errors {
        eprintln!("line {}: {}", e.line, e.message);
    }
    if report.failed > report.errors.len() as u64 {
        eprintln!(
            "… and {} more bad lines",
            report.failed - report.errors.len() as u64
        );
    }
    println!(
        "imported {} lines in {secs:.1} s ({:.0} lines/s): {} created, {} updated, {} unchanged, {} failed",
        report.received,
        report.received as f64 / secs.max(1e-9),
        report.created,
        report.updated,
        report.unchanged,
        report.failed
    );
    if report.learner_lines > 0 {
        println!(
            "learners: {} lines, {} reviews",
            report.learner_lines, report.reviews
        );
    }
    if report.failed > 0 {
        std::process::exit(1);
    }
    Ok(())
}

/// Runs `kb export [--output FILE]`.
pub async fn run_export(
    config: &Config,
    output: Option<&Path>,
    learners: bool,
) -> anyhow::Result<()> {
    let n = match output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            export(config, learners, &mut std::io::BufWriter::new(file)).await?
        }
        None => export(config, learners, &mut std::io::stdout().lock()).await?,
    };
    eprintln!("exported {n} questions");
    Ok(())
}

/// Runs `kb gen [--count N] [--seed S] [--output FILE]`.
pub fn run_gen(count: u64, seed: u64, output: Option<&Path>) -> anyhow::Result<()> {
    match output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?;
            generate(count, seed, &mut std::io::BufWriter::new(file))
        }
        None => generate(
            count,
            seed,
            &mut std::io::BufWriter::new(std::io::stdout().lock()),
        ),
    }
}
