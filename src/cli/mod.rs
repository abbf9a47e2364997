//! The `kb` commands: `serve` (the default), `openapi`, `reindex`, `keys`, `learners`,
//! `import`, `export` and `gen`. `main` parses the command line into a [`Cli`] and hands it to [`run`].

mod bulk;
mod keys;
mod serve;

pub use keys::KeysCommand;

use crate::config::{Config, LogFormat, Logging};
use crate::service::Service;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// kb: a knowledge base of interview questions and answers, over HTTP.
#[derive(Debug, Parser)]
#[command(name = "kb", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub config: Config,
    #[command(flatten)]
    pub logging: Logging,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default when no command is given).
    Serve,
    /// Print the OpenAPI document to standard output.
    Openapi,
    /// Rebuild the search index from the database (stop the server first).
    Reindex,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Learners' data: `kb learners delete <learner>` erases everything kb holds of one.
    #[command(subcommand)]
    Learners(LearnersCommand),
    /// Import questions from an NDJSON file (one question per line) or a JSON array; stop the
    /// server first, or use `POST /api/v1/import`. Idempotent: see the README.
    Import {
        /// The file to read (`-` for standard input).
        file: PathBuf,
    },
    /// Write every question as NDJSON, in id order (safe while a server runs).
    Export {
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
        /// Also the learners' settings and reviews (personal data: only when asked).
        #[arg(long)]
        with_learners: bool,
    },
    /// Write deterministic synthetic questions as NDJSON, for benchmarks and tests.
    Gen {
        #[arg(long, default_value_t = 1000)]
        count: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// Validates the settings, sets up logging and runs the chosen command on a runtime sized for
/// it.
/// `kb learners …`.
#[derive(Debug, Subcommand)]
pub enum LearnersCommand {
    /// Erase a learner: cards, reviews, settings and stored idempotent answers; their tokens
    /// issued until now are refused (as `DELETE /api/v1/learners/{learner}`).
    Delete { learner: String },
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    if matches!(cli.command, None | Some(Command::Serve)) {
        serve::limit_malloc_arenas(cores * 2);
    }
    // Searches and index commits run on blocking threads; they are CPU-bound, so more threads
    // than a few per core only add stacks and allocator arenas (memory that stays resident),
    // not throughput.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(cores * 4)
        .build()?
        .block_on(dispatch(cli))
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let config = cli.config.validated()?;
    init_tracing(
        &cli.logging,
        matches!(cli.command, None | Some(Command::Serve)),
    );
    match cli.command {
        Some(Command::Openapi) => {
            println!("{}", crate::http::openapi().to_pretty_json()?);
            Ok(())
        }
        Some(Command::Reindex) => {
            let n = reindex(&config).await?;
            println!("reindexed {n} questions");
            Ok(())
        }
        Some(Command::Keys(cmd)) => {
            print!("{}", keys::keys(&config, &cmd).await?);
            Ok(())
        }
        Some(Command::Learners(LearnersCommand::Delete { learner })) => {
            let learner = crate::domain::LearnerId::parse(&learner).map_err(anyhow::Error::msg)?;
            let store = crate::open_store(&config).await?;
            let gone = crate::service::keys::erase_learner(&store, &learner).await;
            store.close().await;
            let gone = gone?;
            println!(
                "erased learner {} ({gone} rows); their tokens issued until now are refused",
                learner.as_str()
            );
            Ok(())
        }
        Some(Command::Import { file }) => bulk::run_import(&config, &file).await,
        Some(Command::Export {
            output,
            with_learners,
        }) => bulk::run_export(&config, output.as_deref(), with_learners).await,
        Some(Command::Gen {
            count,
            seed,
            output,
        }) => bulk::run_gen(count, seed, output.as_deref()),
        Some(Command::Serve) | None => serve::serve(config).await,
    }
}

/// `kb reindex`: rebuilds the search index from the database. Returns the number of questions
/// indexed.
async fn reindex(config: &Config) -> anyhow::Result<u64> {
    let store = crate::open_store(config).await?;
    let n = Service::reindex(&store, &config.index_dir()).await;
    store.close().await;
    n
}

/// Logs go to standard output when serving (where a service's logs are collected) and to
/// standard error for every other command, whose standard output is its data (an export's
/// lines, a new key): a log line there would corrupt it, and an export holding standard output
/// locked would wait forever for a log line written from another thread.
fn init_tracing(logging: &Logging, serving: bool) {
    let builder = tracing_subscriber::fmt().with_env_filter(logging.env_filter());
    match (logging.format, serving) {
        (LogFormat::Json, true) => builder.json().init(),
        (LogFormat::Text, true) => builder.init(),
        (LogFormat::Json, false) => builder.json().with_writer(std::io::stderr).init(),
        (LogFormat::Text, false) => builder.with_writer(std::io::stderr).init(),
    }
}
