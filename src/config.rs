//! Command line and environment configuration. Every flag has a `KB_*` environment variable.
//!
//! [`Cli`] is what clap reads; [`Cli::into_parts`] validates it once into a [`Config`] (and the
//! logging settings), failing with a message that names the setting rather than quietly
//! clamping or dropping it.

use crate::domain::Rate;
use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use secrecy::SecretString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

const DEFAULT_DATA_DIR: &str = "./data";
const DEFAULT_BIND: &str = "127.0.0.1:8080";
const DEFAULT_TIMEOUT_SECS: u64 = 30;
const DEFAULT_HEADER_TIMEOUT_SECS: u64 = 10;
const DEFAULT_MAX_CONNECTIONS: usize = 1024;
const DEFAULT_MAX_PER_CLIENT: usize = 128;
const DEFAULT_ANONYMOUS_RATE: &str = "600/min";
const DEFAULT_CACHE_MB: u64 = 32;
const DEFAULT_KEY_RATE: &str = "6000/min";
/// The shortest `KB_ADMIN_KEY` accepted.
pub const ADMIN_KEY_MIN_CHARS: usize = 32;

/// Flags shared by every command.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Directory for the database (and the search index).
    #[arg(long, env = "KB_DATA_DIR", default_value = DEFAULT_DATA_DIR, global = true)]
    pub data_dir: PathBuf,
    /// PostgreSQL to keep the knowledge base in (`postgres://user@host/db`), shared by every
    /// replica; without it, SQLite in the data directory. The search index stays per replica,
    /// under the data directory.
    #[arg(long, env = "KB_DATABASE_URL", global = true, hide_env_values = true)]
    pub database_url: Option<String>,
    /// Connections to PostgreSQL this process keeps at most (0: four per core, at most 32).
    #[arg(
        long,
        env = "KB_DATABASE_CONNECTIONS",
        default_value_t = 0,
        global = true
    )]
    pub database_connections: u32,
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
    #[arg(long, env = "KB_BIND", default_value = DEFAULT_BIND, global = true)]
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
        default_value_t = DEFAULT_TIMEOUT_SECS,
        global = true
    )]
    pub request_timeout_secs: u64,
    /// Seconds a connection may take to send a request's headers, counted from when it is
    /// ready for a request: also how long an idle keep-alive connection stays open.
    #[arg(long, env = "KB_HEADER_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_TIMEOUT_SECS, global = true)]
    pub header_timeout_secs: u64,
    /// Open connections at most; beyond it a new connection gets 503 and is closed.
    #[arg(long, env = "KB_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS, global = true)]
    pub max_connections: usize,
    /// Open connections from one client address at most (IPv6: per /64); loopback and trusted
    /// proxies are not limited.
    #[arg(long, env = "KB_MAX_CONNECTIONS_PER_CLIENT", default_value_t = DEFAULT_MAX_PER_CLIENT, global = true)]
    pub max_connections_per_client: usize,
    /// Also serve `/metrics`, without a key, on this address (keep it private).
    #[arg(long, env = "KB_METRICS_BIND", global = true)]
    pub metrics_bind: Option<SocketAddr>,
    /// Quotas per API key and per client address: `on` or `off` (benchmarks, trusted private
    /// deployments).
    #[arg(long, env = "KB_QUOTAS", default_value = "on", value_parser = ["on", "off"], global = true)]
    pub quotas: String,
    /// Quota of each client address without a credential, in request units (a GET by id costs
    /// 1, a search 5).
    #[arg(long, env = "KB_ANONYMOUS_RATE", default_value = DEFAULT_ANONYMOUS_RATE, global = true)]
    pub anonymous_rate: String,
    /// Quota of a key created without `--rate`, of `KB_ADMIN_KEY` and of learner tokens.
    #[arg(long, env = "KB_KEY_RATE", default_value = DEFAULT_KEY_RATE, global = true)]
    pub key_rate: String,
    /// Proxies whose `X-Forwarded-For` names the client: addresses or CIDR ranges,
    /// comma-separated. Without it the socket peer is the client.
    #[arg(long, env = "KB_TRUSTED_PROXIES", value_delimiter = ',', global = true)]
    pub trusted_proxies: Vec<String>,
    /// Expensive requests (search, suggest, similar, multiple-choice draws, import, export) run
    /// at most this many at once; more get 503 `overloaded` at once. 0: four per core.
    #[arg(long, env = "KB_MAX_EXPENSIVE", default_value_t = 0, global = true)]
    pub max_expensive: usize,
    /// MiB of rendered questions kept in memory for reads by id (0: none).
    #[arg(long, env = "KB_CACHE_MB", default_value_t = DEFAULT_CACHE_MB, global = true)]
    pub cache_mb: u64,
    /// MiB of the database each SQLite connection may read through a memory map (0: plain
    /// reads). Mapped pages count in the process's RSS once per connection, though they are
    /// the same page-cache pages.
    #[arg(long, env = "KB_MMAP_MB", default_value_t = crate::store::DEFAULT_MMAP_MB, global = true)]
    pub mmap_mb: u64,
    /// Seconds after which a replica that stopped recording its position no longer holds
    /// back pruning of the change log (it rebuilds its index if it comes back later).
    #[arg(long, env = "KB_REPLICA_EXPIRY_SECS",
          default_value_t = crate::service::DEFAULT_REPLICA_EXPIRY.as_secs(), global = true)]
    pub replica_expiry_secs: u64,
}

/// Which origins CORS allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origins {
    /// `*`: any origin.
    Any,
    /// Exactly these (none: no cross-origin access).
    Only(Vec<String>),
}

impl Origins {
    /// `*`, or `scheme://host[:port]` origins; anything else is refused with a message.
    pub fn parse(raw: &[String]) -> anyhow::Result<Self> {
        let raw: Vec<&str> = raw
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .collect();
        if raw.contains(&"*") {
            if raw.len() > 1 {
                bail!("`*` allows every origin; list origins or use `*` alone");
            }
            return Ok(Self::Any);
        }
        let mut out = Vec::with_capacity(raw.len());
        for origin in raw {
            let valid = origin
                .split_once("://")
                .filter(|(scheme, _)| matches!(*scheme, "http" | "https"))
                .is_some_and(|(_, host)| {
                    !host.is_empty() && !host.contains('/') && origin.is_ascii()
                })
                && !origin.chars().any(|c| c.is_whitespace() || c.is_control());
            if !valid {
                bail!(
                    "`{origin}` is not an origin like `https://study.example` or `http://localhost:3000`"
                );
            }
            out.push(origin.to_string());
        }
        Ok(Self::Only(out))
    }
}

/// Everything needed to build the app, validated.
#[derive(Debug, Clone)]
pub struct Config {
    pub data_dir: PathBuf,
    /// PostgreSQL instead of SQLite in `data_dir` (may carry a password: never printed).
    pub database_url: Option<SecretString>,
    /// Connections to PostgreSQL at most.
    pub database_connections: u32,
    pub bind: SocketAddr,
    pub cors_origins: Origins,
    /// Load the bundled seed into an empty database.
    pub seed: bool,
    /// A key accepted with admin scope; never printed.
    pub admin_key: Option<SecretString>,
    pub require_key_for_reads: bool,
    /// Bounded requests are cancelled after this long.
    pub request_timeout: Duration,
    pub connections: crate::http::serve::ConnectionLimits,
    /// Quotas on or off, and the default rates.
    pub quotas: QuotaConfig,
    pub trusted_proxies: Vec<crate::http::quota::Net>,
    /// Expensive requests at most at once.
    pub max_expensive: usize,
    /// Where `/metrics` is also served without a key.
    pub metrics_bind: Option<SocketAddr>,
    /// Bytes of rendered questions kept in memory.
    pub cache_bytes: u64,
    pub mmap_mb: u64,
    /// A replica silent this long no longer holds back pruning of the change log.
    pub replica_expiry: Duration,
}

impl Config {
    /// A config for the given data directory with every other setting at its default.
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            data_dir: data_dir.into(),
            database_url: None,
            database_connections: crate::store::default_pg_connections(),
            bind: DEFAULT_BIND.parse().expect("the default address parses"),
            cors_origins: Origins::Only(Vec::new()),
            seed: true,
            admin_key: None,
            require_key_for_reads: false,
            request_timeout: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            connections: crate::http::serve::ConnectionLimits {
                header_timeout: Duration::from_secs(DEFAULT_HEADER_TIMEOUT_SECS),
                max_connections: DEFAULT_MAX_CONNECTIONS,
                max_per_client: DEFAULT_MAX_PER_CLIENT,
                shutdown_grace: Duration::from_secs(DEFAULT_TIMEOUT_SECS),
            },
            quotas: QuotaConfig {
                enabled: true,
                anonymous: Rate::parse(DEFAULT_ANONYMOUS_RATE).expect("the default rate parses"),
                key_default: Rate::parse(DEFAULT_KEY_RATE).expect("the default rate parses"),
            },
            trusted_proxies: Vec::new(),
            max_expensive: default_max_expensive(),
            metrics_bind: None,
            cache_bytes: DEFAULT_CACHE_MB * 1024 * 1024,
            mmap_mb: crate::store::DEFAULT_MMAP_MB,
            replica_expiry: crate::service::DEFAULT_REPLICA_EXPIRY,
        }
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("kb.sqlite3")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.data_dir.join("index")
    }
}

/// Whether quotas apply, and the rates of callers without one of their own.
#[derive(Debug, Clone, Copy)]
pub struct QuotaConfig {
    pub enabled: bool,
    pub anonymous: Rate,
    pub key_default: Rate,
}

/// The default bound on expensive requests: enough to keep every core busy while some wait on
/// the database, few enough that a flood is refused rather than queued.
fn default_max_expensive() -> usize {
    4 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// How to log, validated.
#[derive(Debug)]
pub struct Logging {
    pub filter: EnvFilter,
    pub format: LogFormat,
}

/// Validates the settings once, into the app's config and logging.
pub fn validate(global: GlobalArgs, serve: ServeArgs) -> anyhow::Result<(Config, Logging)> {
    {
        let logging = Logging {
            // PostgreSQL's notices ("relation already exists, skipping" on every start) are
            // not kb's news; a filter that names them still decides.
            filter: EnvFilter::try_new(format!("sqlx::postgres::notice=warn,{}", global.log))
                .with_context(|| {
                    format!("--log / KB_LOG `{}` is not a valid filter", global.log)
                })?,
            format: global.log_format,
        };
        if serve.request_timeout_secs == 0 {
            bail!("--request-timeout-secs / KB_REQUEST_TIMEOUT_SECS must be at least 1");
        }
        if serve.replica_expiry_secs == 0 {
            bail!("--replica-expiry-secs / KB_REPLICA_EXPIRY_SECS must be at least 1");
        }
        if serve.header_timeout_secs == 0 {
            bail!("--header-timeout-secs / KB_HEADER_TIMEOUT_SECS must be at least 1");
        }
        if serve.max_connections == 0 {
            bail!("--max-connections / KB_MAX_CONNECTIONS must be at least 1");
        }
        let cors_origins =
            Origins::parse(&serve.cors_origins).context("--cors-origins / KB_CORS_ORIGINS")?;
        let admin_key = match serve.admin_key {
            Some(k) if k.trim().is_empty() => None,
            // A short key can be guessed; kb's own keys are 256 random bits.
            Some(k) if k.chars().count() < ADMIN_KEY_MIN_CHARS => bail!(
                "--admin-key / KB_ADMIN_KEY must be at least {ADMIN_KEY_MIN_CHARS} characters; \
                 generate one with `head -c 32 /dev/urandom | base64`"
            ),
            Some(k) => Some(SecretString::from(k)),
            None => None,
        };
        let rate =
            |flag: &str, raw: &str| Rate::parse(raw).map_err(|e| anyhow::anyhow!("{flag}: {e}"));
        let quotas = QuotaConfig {
            enabled: serve.quotas == "on",
            anonymous: rate(
                "--anonymous-rate / KB_ANONYMOUS_RATE",
                &serve.anonymous_rate,
            )?,
            key_default: rate("--key-rate / KB_KEY_RATE", &serve.key_rate)?,
        };
        let trusted_proxies = serve
            .trusted_proxies
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| crate::http::quota::Net::parse(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("--trusted-proxies / KB_TRUSTED_PROXIES: {e}"))?;
        let config = Config {
            data_dir: global.data_dir,
            // An empty KB_DATABASE_URL (as `KB_DATABASE_URL= kb`) means SQLite, like none.
            database_url: global
                .database_url
                .filter(|u| !u.trim().is_empty())
                .map(SecretString::from),
            database_connections: match global.database_connections {
                0 => crate::store::default_pg_connections(),
                n => n,
            },
            bind: serve.bind,
            cors_origins,
            seed: !serve.no_seed,
            admin_key,
            require_key_for_reads: serve.require_key_for_reads,
            request_timeout: Duration::from_secs(serve.request_timeout_secs),
            connections: crate::http::serve::ConnectionLimits {
                header_timeout: Duration::from_secs(serve.header_timeout_secs),
                max_connections: serve.max_connections,
                max_per_client: serve.max_connections_per_client.max(1),
                // In-flight requests get as long to finish as any request may take.
                shutdown_grace: Duration::from_secs(serve.request_timeout_secs),
            },
            quotas,
            trusted_proxies,
            max_expensive: if serve.max_expensive == 0 {
                default_max_expensive()
            } else {
                serve.max_expensive
            },
            metrics_bind: serve.metrics_bind,
            cache_bytes: serve.cache_mb * 1024 * 1024,
            mmap_mb: serve.mmap_mb,
            replica_expiry: Duration::from_secs(serve.replica_expiry_secs),
        };
        Ok((config, logging))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parts(args: &[&str]) -> anyhow::Result<Config> {
        let mut all = vec!["kb"];
        all.extend_from_slice(args);
        let cli = crate::cli::Cli::try_parse_from(all)?;
        validate(cli.global, cli.serve).map(|(c, _)| c)
    }

    #[test]
    fn bad_settings_fail_with_the_setting_named() {
        let err = |args: &[&str]| format!("{:#}", parts(args).unwrap_err());
        assert!(err(&["--request-timeout-secs", "0"]).contains("request-timeout"));
        assert!(err(&["--cors-origins", "not an origin"]).contains("cors-origins"));
        assert!(err(&["--cors-origins", "https://a.example/path"]).contains("not an origin"));
        assert!(err(&["--log", "kb=loud"]).contains("KB_LOG"));
        assert!(err(&["--admin-key", "secret"]).contains("at least 32 characters"));
        assert!(err(&["--key-rate", "lots"]).contains("KB_KEY_RATE"));
        assert!(err(&["--trusted-proxies", "proxy.example"]).contains("KB_TRUSTED_PROXIES"));
        assert!(err(&["--replica-expiry-secs", "0"]).contains("KB_REPLICA_EXPIRY_SECS"));
    }

    #[test]
    fn good_settings_are_kept_as_given() {
        let c = parts(&[
            "--cors-origins",
            "https://a.example, http://localhost:3000",
            "--request-timeout-secs",
            "5",
        ])
        .unwrap();
        assert_eq!(
            c.cors_origins,
            Origins::Only(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ])
        );
        assert_eq!(c.request_timeout, Duration::from_secs(5));
        assert_eq!(
            parts(&["--cors-origins", "*"]).unwrap().cors_origins,
            Origins::Any
        );
    }

    #[test]
    fn the_admin_key_never_prints() {
        let c = parts(&["--admin-key", "very-secret-admin-key-0123456789abcdef"]).unwrap();
        assert!(!format!("{c:?}").contains("very-secret"));
    }
}
