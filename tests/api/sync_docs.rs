//! The examples of docs/sync.md, run as written against a real `kb` process: one shell runs
//! the page's `sh` blocks in order (so a block can use what an earlier one set), and where the
//! page says the test prunes the change log, it does, between two blocks.

use crate::helpers::{ADMIN_KEY, database_url_for};
use crate::process::Server;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::Duration;

const PAGE: &str = include_str!("../../docs/sync.md");
const PRUNE_MARK: &str = "<!-- test: the change log is pruned here";

/// The page's `sh` blocks, each with whether the log is pruned before it.
fn blocks() -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let mut prune_next = false;
    let mut current: Option<String> = None;
    for line in PAGE.lines() {
        match &mut current {
            Some(block) if line.trim_end() == "```" => {
                out.push((prune_next, std::mem::take(block)));
                current = None;
                prune_next = false;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None if line.starts_with(PRUNE_MARK) => prune_next = true,
            None if line.trim_end() == "```sh" => current = Some(String::new()),
            None => {}
        }
    }
    out
}

/// Reads the shell's output until `marker`, returning what came before; panics with the
/// output when the shell exits first (a command failed under `set -e`).
fn until(lines: &Receiver<String>, marker: &str, block: &str) -> String {
    let mut seen = String::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(120)) {
            Ok(line) if line == marker => return seen,
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => {
                panic!("this example of docs/sync.md failed:\n{block}\n--- output ---\n{seen}")
            }
        }
    }
}

/// Prunes the change log as a month of absence would: once this server's index has recorded
/// every change as applied, everything goes.
fn prune_everything(dir: &std::path::Path) {
    let dir = dir.to_path_buf();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let store = crate::replicas::store_of(&dir).await;
                let last = store.last_change_seq().await.unwrap();
                for _ in 0..600 {
                    let applied = store.replica_positions().await.unwrap();
                    if applied.iter().all(|p| p.applied >= last) && !applied.is_empty() {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let now = chrono::Utc::now().timestamp_micros();
                assert!(store.prune_changes(0, now).await.unwrap() >= last);
                store.close().await;
            })
    })
    .join()
    .unwrap();
}

#[test]
fn every_example_of_keeping_a_copy_in_sync_runs_as_written() {
    let blocks = blocks();
    assert!(blocks.len() >= 6, "the page's examples were found");
    assert_eq!(blocks.iter().filter(|(p, _)| *p).count(), 1);
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let server = Server::start(data.path(), &[]);
    let mut shell = Command::new("bash")
        .args(["-eu", "-o", "pipefail"])
        .current_dir(work.path())
        .env("KB", format!("http://{}", server.addr))
        .env("KEY", ADMIN_KEY)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    let (tx, lines) = std::sync::mpsc::channel();
    for pipe in [
        Box::new(shell.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(shell.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            // Bytes, not `lines()`: an example may print half a character, which must not
            // end the reading.
            for line in BufReader::new(pipe).split(b'\n').map_while(Result::ok) {
                let _ = tx.send(String::from_utf8_lossy(&line).into_owned());
            }
        });
    }
    drop(tx);
    let mut stdin = shell.stdin.take().unwrap();
    for (i, (prune, block)) in blocks.iter().enumerate() {
        if *prune {
            // Something happens after the script's cursor, then the log is pruned past it.
            let body = r#"{"title": "一个月之后", "category": "golang"}"#;
            let (status, _) = server.request("POST", "/api/v1/questions", Some(body));
            assert_eq!(status, 201);
            let _ = database_url_for(data.path());
            prune_everything(data.path());
        }
        let marker = format!("__example_{i}_done__");
        // On a line of its own, even after output that did not end one.
        writeln!(stdin, "{block}\nprintf '\\n%s\\n' {marker}").unwrap();
        stdin.flush().unwrap();
        until(&lines, &marker, block);
    }
    drop(stdin);
    assert!(shell.wait().unwrap().success());
}
