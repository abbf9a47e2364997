//! The `kb` binary: parse configuration, set up logging, run the chosen command.

use anyhow::Context;
use clap::Parser;
use kb::App;
use kb::config::{Cli, Command, Config, LogFormat, Logging};

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    if matches!(cli.command, None | Some(Command::Serve)) {
        limit_malloc_arenas(cores * 2);
    }
    // Searches and index commits run on blocking threads; they are CPU-bound, so more threads
    // than a few per core only add stacks and allocator arenas (memory that stays resident),
    // not throughput.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(cores * 4)
        .build()?
        .block_on(run(cli))
}

/// glibc gives threads their own malloc arenas (up to eight per core) and keeps freed memory in
/// each: after bursts of searches on many threads, RSS stayed far above what was live. A few
/// arenas per core keep RSS serving 100k questions near 200 MB instead of 300 MB. One per core
/// was tried first, but with the threads the server now runs (runtime, blocking pool, the
/// database's and the low-priority search threads) `perf` showed a third of the CPU in malloc
/// lock waits and their wake-ups; two per core took cached reads from 18k to 25k requests a
/// second. Only for serving: a bulk import, which allocates from several busy threads at once,
/// was 25 % slower with a limit. Called before any thread starts.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas(arenas: usize) {
    // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas as libc::c_int);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn limit_malloc_arenas(_: usize) {}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let (command, config, logging) = cli.into_parts()?;
    init_tracing(logging);
    match command {
        Some(Command::Openapi) => {
            println!("{}", kb::http::openapi().to_pretty_json()?);
            Ok(())
        }
        Some(Command::Reindex) => {
            let n = kb::reindex(&config).await?;
            println!("reindexed {n} questions");
            Ok(())
        }
        Some(Command::Keys(cmd)) => {
            print!("{}", kb::keys(&config, &cmd).await?);
            Ok(())
        }
        Some(Command::Import { file }) => {
            let (report, secs) = kb::bulk::import(&config, &file).await?;
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
            // Scripts can tell "all good" from "some lines were refused".
            if report.failed > 0 {
                std::process::exit(1);
            }
            Ok(())
        }
        Some(Command::Export { output }) => {
            let n = match output {
                Some(path) => {
                    let file = std::fs::File::create(&path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    kb::bulk::export(&config, &mut std::io::BufWriter::new(file)).await?
                }
                None => kb::bulk::export(&config, &mut std::io::stdout().lock()).await?,
            };
            eprintln!("exported {n} questions");
            Ok(())
        }
        Some(Command::Gen {
            count,
            seed,
            output,
        }) => match output {
            Some(path) => {
                let file = std::fs::File::create(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                kb::bulk::generate(count, seed, &mut std::io::BufWriter::new(file))
            }
            None => kb::bulk::generate(
                count,
                seed,
                &mut std::io::BufWriter::new(std::io::stdout().lock()),
            ),
        },
        Some(Command::Serve) | None => serve(config).await,
    }
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(&config).await?;
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .with_context(|| format!("cannot listen on {}", config.bind))?;
    tracing::info!(address = %listener.local_addr()?, data_dir = %config.data_dir.display(), "kb is serving");
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped cleanly");
    Ok(())
}

fn init_tracing(logging: Logging) {
    let builder = tracing_subscriber::fmt().with_env_filter(logging.filter);
    match logging.format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
