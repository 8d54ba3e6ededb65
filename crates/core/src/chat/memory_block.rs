//! The memory block of the chat hooks (`memory.autoInject`): built once per query on the
//! blocking pool, kept until memory changes, and never waited for longer than the hook can
//! afford. A session's query is its first message, so its block is the same on every request
//! (the provider's prompt cache keeps working) until a record changes.
//!
//! `chat.message` starts building the block before OpenCode asks for the system prompt, so the
//! first request of a session usually finds it ready even when the index is cold.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::task::TaskTracker;

use crate::memory::HubMemory;

/// How long a hook waits for a block being built: the plugin gives up on a hook whose answer
/// takes longer than 150 ms, and the rest of the answer must still fit.
pub(super) const MEMORY_WAIT: Duration = Duration::from_millis(100);
/// Queries kept at most; all are dropped when there are more (they are rebuilt on demand).
const MAX_QUERIES: usize = 256;

/// A block being built (`None` inside) or built (`Some(block)`; an empty block is `Some(None)`).
type Slot = watch::Receiver<Option<Option<String>>>;

/// One query's block: the newest build, and the block before it while that one runs.
struct Entry {
    slot: Slot,
    /// Memory changed since `slot` was started: the next hook starts a new build.
    stale: bool,
    /// The last finished block, served while a newer one is not ready in time.
    previous: Option<Option<String>>,
}

/// The blocks by query. A write to memory marks them stale; a hook then starts a new build and,
/// when it is not ready in time, gets the previous block, so a write (a finished task's record)
/// does not take the block out of the next request.
#[derive(Clone)]
pub(super) struct MemoryBlocks {
    cache: Arc<Mutex<HashMap<String, Entry>>>,
    /// The chat hooks' tracker: a build in flight is waited for when the hooks stop.
    builds: TaskTracker,
}

impl MemoryBlocks {
    pub(super) fn new(builds: TaskTracker) -> MemoryBlocks {
        MemoryBlocks {
            cache: Arc::default(),
            builds,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Memory changed: every block is built again when next asked for.
    pub(super) fn invalidate(&self) {
        for entry in self.lock().values_mut() {
            entry.stale = true;
        }
    }

    /// Starts building the block for `query` unless a current one is built or being built.
    /// Returns the build and the previous block.
    pub(super) fn prepare(
        &self,
        memory: &HubMemory,
        query: &str,
    ) -> (Slot, Option<Option<String>>) {
        let mut entries = self.lock();
        let previous = match entries.get(query) {
            Some(entry) if !entry.stale => return (entry.slot.clone(), entry.previous.clone()),
            // Still being built: that build is the one to wait for (it may miss the newest
            // write; the entry stays stale, so the next hook builds again).
            Some(entry) if entry.slot.borrow().is_none() => {
                return (entry.slot.clone(), entry.previous.clone());
            }
            Some(entry) => entry.slot.borrow().clone(),
            None => None,
        };
        if entries.len() >= MAX_QUERIES && !entries.contains_key(query) {
            entries.clear();
        }
        let (tx, rx) = watch::channel(None);
        entries.insert(
            query.to_owned(),
            Entry {
                slot: rx.clone(),
                stale: false,
                previous: previous.clone(),
            },
        );
        let (memory, query) = (memory.clone(), query.to_owned());
        self.builds.spawn(async move {
            let block = memory.block_for_worker(&query).await;
            // Sent even when nobody waits: the value stays in the slot for later hooks.
            tx.send_replace(Some(block));
        });
        (rx, previous)
    }

    /// The block for `query`, if it is ready within [`MEMORY_WAIT`]; else the one before it,
    /// else the block for no particular task (pinned records), if that one is built.
    pub(super) async fn get(&self, memory: &HubMemory, query: &str) -> Option<String> {
        let (mut slot, previous) = self.prepare(memory, query);
        let ready = tokio::time::timeout(MEMORY_WAIT, slot.wait_for(Option::is_some)).await;
        if let Ok(Ok(value)) = ready {
            return value.clone().flatten();
        }
        tracing::debug!(
            "the memory block was not ready within {MEMORY_WAIT:?}; this request gets an older one, if any"
        );
        match previous {
            Some(block) => block,
            None => self.built(""),
        }
    }

    /// The newest finished block for `query`, without waiting or building.
    fn built(&self, query: &str) -> Option<String> {
        let entries = self.lock();
        let entry = entries.get(query)?;
        let current = entry.slot.borrow().clone();
        current.or_else(|| entry.previous.clone()).flatten()
    }
}
