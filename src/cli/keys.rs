//! `kb keys`: create, list and revoke API keys in the database (safe while a server runs),
//! through the same service functions as `/api/v1/keys`.

use crate::config::Config;
use crate::domain::keys::{KeyName, NewKey, parse_expires};
use crate::domain::{Rate, Scope};
use crate::service::keys::{create_key, list_keys, revoke_key};
use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
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
        /// When the key stops working: an RFC 3339 time, or a lifetime such as `30d`, `12h`
        /// or `90m` (default: never; at most 3650 days ahead).
        #[arg(long)]
        expires: Option<String>,
    },
    /// List keys (never the keys themselves), with when each was last used (to the minute)
    /// and when it expires.
    List,
    /// Revoke a key by id.
    Revoke { id: i64 },
}

fn when(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The key `kb keys create` asks for, checked as `POST /api/v1/keys` checks it.
fn new_key(
    scope: &str,
    name: &str,
    rate: Option<&str>,
    expires: Option<&str>,
) -> anyhow::Result<NewKey> {
    let msg = anyhow::Error::msg;
    Ok(NewKey {
        name: KeyName::parse(name).map_err(msg).context("--name")?,
        scope: Scope::parse(scope).map_err(msg).context("--scope")?,
        rate: rate
            .map(Rate::parse)
            .transpose()
            .map_err(msg)
            .context("--rate")?,
        expires_at: expires
            .map(|raw| parse_expires(raw, Utc::now()))
            .transpose()
            .map_err(msg)
            .context("--expires")?,
    })
}

/// `kb keys …`: manage API keys in the database (safe while a server runs).
pub(super) async fn keys(config: &Config, command: &KeysCommand) -> anyhow::Result<String> {
    let rate_text = |r: Option<u32>| r.map_or_else(|| "default".to_string(), Rate::per_minute_text);
    let store = crate::open_store(config).await?;
    let out = match command {
        KeysCommand::Create {
            scope,
            name,
            rate,
            expires,
        } => {
            let new = new_key(scope, name, rate.as_deref(), expires.as_deref())?;
            let (key, k) = create_key(&store, &new).await?;
            let expires = k
                .expires_at
                .map_or_else(|| "never".to_string(), |t| format!("at {}", when(t)));
            format!(
                "{key}\n(id {}, scope {}, rate {}, expires {expires}, name {:?}) — store it now: it is not shown again\n",
                k.id,
                k.scope.as_str(),
                rate_text(k.rate_per_minute),
                k.name
            )
        }
        KeysCommand::List => {
            let mut out = format!(
                "{:>4}  {:<8}  {:<10}  {:<12}  {:<20}  {:<20}  {:<20}  {:<20}  name\n",
                "id", "scope", "prefix", "rate", "created", "last used", "expires", "revoked"
            );
            for k in list_keys(&store).await? {
                out.push_str(&format!(
                    "{:>4}  {:<8}  {:<10}  {:<12}  {:<20}  {:<20}  {:<20}  {:<20}  {}\n",
                    k.id,
                    k.scope.as_str(),
                    k.prefix,
                    rate_text(k.rate_per_minute),
                    when(k.created_at),
                    k.last_used_at.map_or_else(|| "never".into(), when),
                    k.expires_at.map_or_else(|| "never".into(), when),
                    k.revoked_at.map_or_else(|| "-".into(), when),
                    k.name
                ));
            }
            out
        }
        KeysCommand::Revoke { id } => {
            revoke_key(&store, *id).await?;
            format!("revoked key {id}\n")
        }
    };
    store.close().await;
    Ok(out)
}
