//! Threads for expensive index work (search, suggest, similar, highlighting), kept apart from
//! tokio's blocking pool and run at a lower CPU priority: on a saturated machine the scheduler
//! then prefers the runtime threads that answer cheap requests (a GET by id stays fast while
//! searches queue for the cores). At most `KB_MAX_EXPENSIVE` such requests run at once (the HTTP
//! edge sheds the rest), so the pool needs no bound of its own beyond a generous one.

use std::sync::OnceLock;

/// How much lower than the rest of kb these threads run (nice +10: about a tenth of the CPU
/// share of a normal thread when both want it).
const NICENESS: libc::c_int = 10;

fn runtime() -> &'static tokio::runtime::Runtime {
    static POOL: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    POOL.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .max_blocking_threads(64)
            .thread_name("kb-expensive")
            .on_thread_start(lower_priority)
            .build()
            .expect("the expensive-work pool starts")
    })
}

#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: gettid and setpriority only read and set this thread's scheduling attribute; on
    // Linux the nice value is per thread.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, NICENESS);
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// Runs `f` on a low-priority thread and waits for it without blocking the runtime.
pub async fn expensive<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, tokio::task::JoinError> {
    runtime().spawn_blocking(f).await
}
