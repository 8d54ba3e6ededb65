//! The hub's use of glibc's allocator: set up for a process that runs for days, and made to
//! give back what it freed. Only the hub (`orchestra serve`) calls this; the workers, git and
//! checks it starts keep their own allocator defaults.

use std::time::Duration;

use orchestra_core::events::EventBus;

/// glibc's defaults suit short programs, not a hub that runs for days, in three ways, each set
/// here with `mallopt` before the hub starts a thread (an environment variable would reach every
/// child too):
/// - Each thread that allocates gets an arena of its own and keeps what is freed there. The hub
///   does its store, index and memory work on tokio's blocking pool (many threads), so after 100
///   tasks its RSS was ~170 MB, against ~45 MB with two arenas (`orchestra-bench --only rss`).
/// - Blocks above the mmap threshold are given back when freed, but glibc raises that threshold
///   to the largest such block freed (up to 32 MB). The index writer's table of some megabytes,
///   made and freed every batch, then comes from the heap and stays there.
/// - The heap's top is given back only past 128 KB free by default, and never below a block
///   still in use; a fixed mmap threshold keeps the big transient blocks out of it.
///
/// `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES` set by the user win: nothing is changed then.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn tune() {
    use libc::{M_ARENA_MAX, M_MMAP_THRESHOLD, M_TRIM_THRESHOLD, c_int, mallopt};
    const ARENAS: c_int = 2;
    const MMAP_THRESHOLD: c_int = 128 * 1024;
    const TRIM_THRESHOLD: c_int = 256 * 1024;
    if ["MALLOC_ARENA_MAX", "GLIBC_TUNABLES"]
        .iter()
        .any(|var| std::env::var_os(var).is_some())
    {
        return;
    }
    for (param, value, name) in [
        (M_ARENA_MAX, ARENAS, "M_ARENA_MAX"),
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD, "M_MMAP_THRESHOLD"),
        (M_TRIM_THRESHOLD, TRIM_THRESHOLD, "M_TRIM_THRESHOLD"),
    ] {
        // SAFETY: mallopt only sets allocator parameters; glibc takes its own lock for it.
        if unsafe { mallopt(param, value) } != 1 {
            tracing::warn!(
                param = name,
                value,
                "glibc refused a malloc setting; the hub may hold more memory than it needs"
            );
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn tune() {}

/// How often a busy hub gives freed memory back to the system.
const RETURN_EVERY: Duration = Duration::from_secs(10);

/// Every [`RETURN_EVERY`] in which the hub published an event (so it did some work), asks glibc
/// to give the system the free pages inside its heap (`malloc_trim`). glibc on its own gives
/// back only the heap's free top, and a hub's heap is mostly small blocks of many lifetimes
/// (requests, events, store batches). After 1,000 tasks about 10 MB of it was free but held; a
/// trim on the idle hub took its RSS from 52.2 to 46.6 MB. At the end of a 1,000-task soak,
/// where new blocks are still being freed, it was 42.6 and 43.9 MB against 44.8 and 44.1.
/// A hub with nothing to do publishes nothing, and the timer then does nothing.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub fn return_freed_memory(bus: EventBus) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(RETURN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut seen = bus.last_id();
        loop {
            tick.tick().await;
            let last = bus.last_id();
            if last == seen {
                continue;
            }
            seen = last;
            // A trim walks the heap under glibc's lock: on the blocking pool, not the hub's one
            // async thread.
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn trim() {
    // SAFETY: malloc_trim only returns free memory to the system, under glibc's own locks.
    unsafe { libc::malloc_trim(0) };
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn return_freed_memory(_bus: EventBus) {}
