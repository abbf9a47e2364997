//! Command line and environment configuration. Every flag has a `KB_*` environment variable.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// kb: a knowledge base of interview questions and answers, over HTTP.
#[derive(Debug, Parser)]
#[command(name = "kb", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(flatten)]
    pub serve: ServeArgs,
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

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (it is shown only this once).
    Create {
        #[arg(long, value_parser = ["read", "write", "admin"])]
        scope: String,
        #[arg(long, default_value = "unnamed")]
        name: String,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by id.
    Revoke { id: i64 },
}

/// Flags shared by every command.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Directory for the database (and the search index).
    #[arg(long, env = "KB_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// Log filter, in `tracing` env-filter syntax (e.g. `info,kb=debug`).
    #[arg(long, env = "KB_LOG", default_value = "info", global = true)]
    pub log: String,
    /// Log line format.
    #[arg(long, env = "KB_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// Flags of `kb serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "KB_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: SocketAddr,
    /// Origins allowed by CORS, comma-separated; `*` allows any. Empty: no CORS headers.
    #[arg(
        long,
        env = "KB_CORS_ORIGINS",
        value_delimiter = ',',
        default_value = "",
        global = true
    )]
    pub cors_origins: Vec<String>,
    /// Do not load the bundled seed knowledge base into an empty database.
    #[arg(long, env = "KB_NO_SEED", global = true,
          action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_seed: bool,
    /// A key accepted with admin scope, in addition to stored keys (never stored).
    #[arg(long, env = "KB_ADMIN_KEY", global = true, hide_env_values = true)]
    pub admin_key: Option<String>,
    /// Require an API key (any scope) for reads too.
    #[arg(long, env = "KB_REQUIRE_KEY_FOR_READS", global = true,
          action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub require_key_for_reads: bool,
    /// Seconds a request may take before it is cancelled with 503.
    #[arg(
        long,
        env = "KB_REQUEST_TIMEOUT_SECS",
        default_value_t = 30,
        global = true
    )]
    pub request_timeout_secs: u64,
    /// MiB of the database each SQLite connection may read through a memory map (0: plain
    /// reads). Mapped pages count in the process's RSS once per connection, though they are
    /// the same page-cache pages.
    #[arg(long, env = "KB_MMAP_MB", default_value_t = crate::store::DEFAULT_MMAP_MB, global = true)]
    pub mmap_mb: u64,
}

impl Default for ServeArgs {
    fn default() -> Self {
        Self {
            bind: "127.0.0.1:8080".parse().expect("valid default address"),
            cors_origins: Vec::new(),
            no_seed: false,
            admin_key: None,
            require_key_for_reads: false,
            request_timeout_secs: 30,
            mmap_mb: crate::store::DEFAULT_MMAP_MB,
        }
    }
}

/// Everything needed to build the app, independent of how it was given.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    pub serve: ServeArgs,
}

impl Config {
    /// A config for the given data directory with every other setting at its default.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            serve: ServeArgs::default(),
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("kb.sqlite3")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}
