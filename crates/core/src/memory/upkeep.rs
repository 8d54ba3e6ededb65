//! Memory stays bounded over thousands of tasks (issue 24 §7): in the background, once memory
//! is open and then after every tenth of `memory.autoRecords.maxCount` new automatic records
//! (at least `MIN_WRITES_PER_PASS`; and every `UPKEEP_EVERY` in any case), automatic records
//! past `memory.autoRecords` are deleted and the change log is compacted (see
//! `orchestra_memory`'s `upkeep`). Each pass is bounded; a pass
//! that stopped at its bound is followed by another after `BETWEEN_PASSES`, so the store's write
//! lock is never held for long.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use orchestra_memory::{AutoRecordPolicy, MemoryService};
use tokio::sync::{mpsc, watch};

use super::indexer::index_now;
use super::opening::{Opened, ready_now};
use crate::config::Config;

/// A pass costs about as much as the records kept (the index rewrites the segments the deletes
/// touched, and those hold the oldest records), so passes come every tenth of the limit: per
/// task the cost stays the same whatever the limit, and the count goes over it by at most a
/// tenth (or `MIN_WRITES_PER_PASS` records).
const MIN_WRITES_PER_PASS: u32 = 100;
const UPKEEP_EVERY: Duration = Duration::from_secs(600);
const BETWEEN_PASSES: Duration = Duration::from_secs(1);
const DELETES_PER_PASS: usize = 2_000;
const ENTRIES_PER_PASS: u32 = 20_000;

fn writes_per_pass(policy: AutoRecordPolicy) -> u32 {
    (policy.max_count / 10).max(MIN_WRITES_PER_PASS)
}

/// `memory.autoRecords` as the engine's policy.
pub(super) fn policy_of(config: &Config) -> AutoRecordPolicy {
    let auto = &config.memory.auto_records;
    AutoRecordPolicy {
        max_count: u32::try_from(auto.max_count).unwrap_or(u32::MAX),
        max_age_days: u32::try_from(auto.max_age_days).unwrap_or(u32::MAX),
    }
}

/// Change-log consumers that must be waited for even before their first run.
fn required_consumers() -> Vec<&'static str> {
    #[cfg(feature = "neo4j")]
    if orchestra_memory::neo4j::Neo4jConfig::from_env().is_some() {
        return vec![orchestra_memory::neo4j::CURSOR_NAME];
    }
    Vec::new()
}

/// Wakes the upkeep task; it ends when the last handle is dropped.
pub(super) struct Upkeep {
    wake: mpsc::Sender<()>,
    writes: AtomicU32,
    writes_per_pass: u32,
}

impl Upkeep {
    pub(super) fn spawn(opened: watch::Receiver<Opened>, policy: AutoRecordPolicy) -> Upkeep {
        let (wake, mut woken) = mpsc::channel::<()>(1);
        tokio::spawn(async move {
            let mut waiting = opened.clone();
            tokio::select! {
                _ = waiting.wait_for(|state| !matches!(state, Opened::Opening)) => {}
                // The hub stopped before memory opened.
                None = woken.recv() => return,
            }
            loop {
                let more = match ready_now(&opened) {
                    Some(service) => tokio::task::spawn_blocking(move || pass(&service, policy))
                        .await
                        .unwrap_or_else(|err| {
                            tracing::warn!(error = %err, "a memory upkeep pass stopped unexpectedly");
                            false
                        }),
                    // Memory failed to open: nothing to keep.
                    None => return,
                };
                let wait = if more { BETWEEN_PASSES } else { UPKEEP_EVERY };
                tokio::select! {
                    woke = woken.recv() => if woke.is_none() { return },
                    () = tokio::time::sleep(wait) => {}
                }
            }
        });
        Upkeep {
            wake,
            writes: AtomicU32::new(0),
            writes_per_pass: writes_per_pass(policy),
        }
    }

    /// Counts an automatic record; every `writes_per_pass` of them wake a pass.
    pub(super) fn automatic_written(&self) {
        let written = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        if written.is_multiple_of(self.writes_per_pass) {
            let _ = self.wake.try_send(());
        }
    }
}

/// One bounded pass: the age-out, the index brought up to it, the compaction. Returns whether
/// either stopped at its bound.
fn pass(service: &Arc<MemoryService>, policy: AutoRecordPolicy) -> bool {
    let aged = match service.age_out_automatic(
        policy,
        orchestra_protocol::now_ms(),
        DELETES_PER_PASS,
    ) {
        Ok(report) => report,
        Err(err) => {
            tracing::warn!(error = %err, "aging out automatic memory records failed; trying again later");
            return false;
        }
    };
    if aged.deleted > 0 {
        tracing::info!(
            deleted = aged.deleted,
            max_count = policy.max_count,
            max_age_days = policy.max_age_days,
            "automatic memory records aged out (`memory.autoRecords`)"
        );
        // The index consumes the deletes now, so this pass can compact them too.
        index_now(service);
    }
    let required = required_consumers();
    let compacted = match service.compact_change_logs(&required, ENTRIES_PER_PASS) {
        Ok(report) => report,
        Err(err) => {
            tracing::warn!(error = %err, "compacting the memory change log failed; trying again later");
            return aged.more;
        }
    };
    if compacted.dropped > 0 {
        tracing::debug!(
            dropped = compacted.dropped,
            "memory change-log entries every consumer has passed dropped"
        );
    }
    aged.more || compacted.more
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_come_every_tenth_of_the_limit_and_never_more_often_than_every_100_records() {
        let policy = |max_count| AutoRecordPolicy {
            max_count,
            max_age_days: 90,
        };
        assert_eq!(writes_per_pass(policy(2_000)), 200);
        assert_eq!(writes_per_pass(policy(100_000)), 10_000);
        assert_eq!(writes_per_pass(policy(500)), 100);
        assert_eq!(writes_per_pass(policy(1)), 100);
    }
}
