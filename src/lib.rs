//! kb: a REST service for interview-style questions and answers.
//!
//! The layers, outside in: [`cli`] (the `kb` commands) and [`http`] (routes, access, DTOs,
//! extractors, problem+json) → [`service`] (the only code that coordinates store and index;
//! its own errors) → [`store`] (SQLite or PostgreSQL) and [`search`] (tantivy). [`domain`]
//! holds the validated types all of them share, [`config`] the settings, [`secret`] every
//! random token and hash, [`idempotency`] a request's claim on its `Idempotency-Key` on its
//! way from the HTTP layer to the transaction that commits its effect, [`webhook`] where outbound
//! webhook deliveries may go and how one is signed and sent. [`App::build`] assembles the real application for the `kb serve`
//! command and for tests.

pub mod cli;
pub mod config;
pub mod domain;
pub mod embedder;
pub mod generate;
pub mod http;
pub mod idempotency;
pub mod quiz;
pub mod search;
pub mod secret;
pub mod service;
pub mod store;
pub mod webhook;

use crate::config::Config;
use crate::http::AppState;
use crate::service::Service;
use crate::store::Store;
use anyhow::Context;
use axum::Router;
use secrecy::ExposeSecret;
use std::future::Future;
use tokio::net::TcpListener;

/// A built application: storage opened and migrated, seed loaded, router ready.
pub struct App {
    service: Service,
    edge: http::edge::Edge,
    limits: config::LimitsConfig,
    state: AppState,
    metrics_bind: Option<std::net::SocketAddr>,
}

impl App {
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let store = open_store(config).await?;
        let service = Service::start_with(
            store,
            &config.index_dir(),
            config.search.cache_bytes,
            crate::service::LogRetention {
                replica_expiry: config.replicas.replica_expiry,
                changes: config.sync.changes_retention,
            },
            Some(&config.embedder),
        )
        .await?
        .with_admin_key(config.server.admin_key.as_ref().map(|k| k.expose_secret()))
        .with_webhooks(crate::service::WebhookSettings {
            allow_private: config.webhooks.allow_private,
            timeout: config.webhooks.timeout,
            retry_for: config.webhooks.retry_for,
            first_retry: config.webhooks.first_retry,
            lease: config.webhooks.lease,
            concurrency: config.webhooks.concurrency,
            keep: config.sync.changes_retention,
        });
        if !config.store.no_seed {
            let report = service.load_seed().await.context("cannot load the seed")?;
            tracing::info!(?report, "seed");
        }
        service.start_webhooks();
        service.start_fitter();
        let state = AppState::new(service.clone(), config);
        let edge = http::edge(state.clone(), config);
        Ok(Self {
            service,
            edge,
            limits: config.limits.clone(),
            state,
            metrics_bind: config.server.metrics_bind,
        })
    }

    pub fn router(&self) -> Router {
        self.edge.clone().into_router()
    }

    pub fn service(&self) -> &Service {
        &self.service
    }

    /// What every handler reaches (tests use it to act as the server would, e.g. begin a
    /// shutdown of live streams).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, lets in-flight requests finish, then closes the
    /// database cleanly.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        if let Some(addr) = self.metrics_bind {
            let metrics = TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?;
            tracing::info!(address = %metrics.local_addr()?, "metrics are served without a key");
            let router = http::metrics_router(self.state.clone());
            tokio::spawn(async move {
                if let Err(e) = axum::serve(metrics, router).await {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            });
        }
        // Streams and long polls end as soon as shutdown begins, so they do not hold up the
        // graceful drain of in-flight requests.
        let live = self.state.live.clone();
        let shutdown = async move {
            shutdown.await;
            live.close();
        };
        http::serve::serve(
            listener,
            self.edge,
            &self.limits,
            self.state.trusted_proxies.as_ref().clone(),
            self.state.open_connections.clone(),
            shutdown,
        )
        .await?;
        self.service.shutdown().await;
        Ok(())
    }

    /// Stops background work and closes the database and the index, as `serve` does on exit.
    pub async fn shutdown(self) {
        self.service.shutdown().await;
    }
}

/// Opens the store of `config`: PostgreSQL when it names one, else SQLite in the data dir
/// (creating the data dir and the database if needed).
pub async fn open_store(config: &Config) -> anyhow::Result<Store> {
    let settings = &config.store;
    std::fs::create_dir_all(&settings.data_dir)
        .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
    if let Some(url) = &settings.database_url {
        return Store::connect_postgres_with(url.expose_secret(), settings.database_connections)
            .await
            .context("cannot open the PostgreSQL database of KB_DATABASE_URL");
    }
    let db = config.database_path();
    Store::open_sqlite(&db, settings.mmap_mb)
        .await
        .with_context(|| format!("cannot open database {}", db.display()))
}
