//! `kb keys`: create, list and revoke API keys in the database (safe while a server runs).

use crate::config::Config;
use anyhow::Context;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it (it is shown only this once).
    Create {
        #[arg(long, value_parser = ["read", "write", "learners", "admin"])]
        scope: String,
        #[arg(long, default_value = "unnamed")]
        name: String,
        /// This key's quota, e.g. `1200/min` or `50/s` (default: the server's key quota).
        #[arg(long)]
        rate: Option<String>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke a key by id.
    Revoke { id: i64 },
}

/// `kb keys …`: manage API keys in the database (safe while a server runs).
pub(super) async fn keys(config: &Config, command: &KeysCommand) -> anyhow::Result<String> {
    use crate::domain::{Rate, Scope};
    let rate_text = |r: Option<u32>| match r {
        Some(r) => format!("{r}/min"),
        None => "default".to_string(),
    };
    let store = crate::open_store(config).await?;
    let out = match command {
        KeysCommand::Create { scope, name, rate } => {
            let scope = Scope::parse(scope).map_err(anyhow::Error::msg)?;
            let rate = rate
                .as_deref()
                .map(Rate::parse)
                .transpose()
                .map_err(anyhow::Error::msg)
                .context("--rate")?;
            let (key, k) = crate::service::keys::create_key(&store, name, scope, rate).await?;
            format!(
                "{key}\n(id {}, scope {}, rate {}, name {:?}) — store it now: it is not shown again\n",
                k.id,
                k.scope.as_str(),
                rate_text(k.rate_per_minute),
                k.name
            )
        }
        KeysCommand::List => {
            let mut out = format!(
                "{:>4}  {:<8}  {:<10}  {:<12}  {:<25}  {:<25}  name\n",
                "id", "scope", "prefix", "rate", "created", "revoked"
            );
            for k in store.list_keys().await? {
                out.push_str(&format!(
                    "{:>4}  {:<8}  {:<10}  {:<12}  {:<25}  {:<25}  {}\n",
                    k.id,
                    k.scope.as_str(),
                    k.prefix,
                    rate_text(k.rate_per_minute),
                    k.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    k.revoked_at
                        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                        .unwrap_or_else(|| "-".into()),
                    k.name
                ));
            }
            out
        }
        KeysCommand::Revoke { id } => {
            crate::service::keys::revoke_key(&store, *id).await?;
            format!("revoked key {id}\n")
        }
    };
    store.close().await;
    Ok(out)
}
