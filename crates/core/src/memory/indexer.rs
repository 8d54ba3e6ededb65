//! The hub's background indexer: automatic records (one per finished task) and other
//! processes' writes are indexed in batches — one tantivy writer and one commit for all the
//! writes of `BATCH_DELAY` — off the task path. Explicit writes (tools, ops, the HTTP API,
//! imports) are indexed before they return (`index_now`), so the next task's block shows them.
//! Task starts read the indexes as they stand (`render_context_as_indexed`) and never pay for
//! indexing; searches still sync first (read-your-writes).

use std::time::Duration;

use orchestra_memory::MemoryService;
use tokio::sync::{mpsc, watch};

use super::opening::{Opened, ready_now};

/// Writes arriving within this delay share one commit. The memory block of a task started in
/// that window may miss them; nothing else does (searches sync). Each batch makes a tantivy
/// segment writer (a hash table of some megabytes, filled on fresh pages) and a commit that
/// serializes every field (an FST builder of about a megabyte each), so its cost is mostly per
/// batch, not per record: at 500 ms that was about a tenth of the hub's CPU in the 3,000-task
/// soak; from 2 s to 5 s the hub's page faults fell from about 100 to 52 and 61 a task (two
/// 1,000-task soaks; its CPU a task moved less than the runs' noise). The records describe
/// finished tasks and lose nothing by reaching the next block a few seconds later.
const BATCH_DELAY: Duration = Duration::from_secs(5);

/// Wakes the indexer; it ends when the last handle is dropped.
pub(super) struct Indexer {
    wake: mpsc::Sender<()>,
}

impl Indexer {
    pub(super) fn spawn(opened: watch::Receiver<Opened>) -> Indexer {
        // One pending wake-up is enough: the batch reads everything up to the log's head.
        let (wake, mut woken) = mpsc::channel::<()>(1);
        tokio::spawn(async move {
            while woken.recv().await.is_some() {
                tokio::time::sleep(BATCH_DELAY).await;
                while woken.try_recv().is_ok() {}
                let Some(service) = ready_now(&opened) else {
                    // Opening brings the indexes up to the stores itself.
                    continue;
                };
                let synced = tokio::task::spawn_blocking(move || index_now(&service)).await;
                if let Err(err) = synced {
                    tracing::warn!(error = %err, "the memory indexer's batch stopped unexpectedly");
                }
            }
        });
        Indexer { wake }
    }

    /// Asks for a batch soon (a no-op when one is already due).
    pub(super) fn poke(&self) {
        let _ = self.wake.try_send(());
    }
}

/// Brings both indexes up to their stores now (a blocking call). Failures are logged: the next
/// search catches up, or reports, on its own.
pub(super) fn index_now(service: &MemoryService) {
    let banks = std::iter::once(service.project_bank()).chain(service.global_bank());
    for bank in banks {
        if let Err(err) = bank.sync() {
            tracing::debug!(error = %err, "indexing memory writes failed");
        }
    }
}
