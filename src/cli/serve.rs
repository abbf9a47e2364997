//! `kb serve` (the default command): the HTTP API until SIGINT or SIGTERM.

use crate::App;
use crate::config::Config;
use anyhow::Context;

pub(super) async fn serve(config: Config) -> anyhow::Result<()> {
    let app = App::build(&config).await?;
    let bind = config.server.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    tracing::info!(address = %listener.local_addr()?, data_dir = %config.store.data_dir.display(), "kb is serving");
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("stopped cleanly");
    Ok(())
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
pub(super) fn limit_malloc_arenas(arenas: usize) {
    // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas as libc::c_int);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(super) fn limit_malloc_arenas(_: usize) {}

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
