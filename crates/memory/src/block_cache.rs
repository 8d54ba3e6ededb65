//! The last memory blocks rendered, keyed on what they were computed from: the indexes'
//! generations (the change-log sequence each reader reflects), the task text and the budget.
//! A block is a pure function of those (see `context`), so a hit is the same text a new render
//! would give; any indexed write moves a generation on and so misses.

use std::collections::VecDeque;
use std::sync::{Mutex, PoisonError};

use orchestra_protocol::memory::MemoryContext;

/// Blocks remembered: tasks repeated soon after (retries, a workflow's steps, the plugin asking
/// for the same text) hit; older ones fall out.
const ENTRIES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockKey {
    /// (project index, global index) sequence numbers.
    pub generation: (i64, i64),
    pub budget_tokens: Option<u32>,
    pub task_text: String,
}

#[derive(Debug, Default)]
pub(crate) struct BlockCache {
    entries: Mutex<VecDeque<(BlockKey, MemoryContext)>>,
}

impl BlockCache {
    pub(crate) fn get(&self, key: &BlockKey) -> Option<MemoryContext> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, block)| block.clone())
    }

    pub(crate) fn put(&self, key: BlockKey, block: MemoryContext) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Blocks of older generations can never hit again.
        entries.retain(|(k, _)| k.generation == key.generation && k != &key);
        if entries.len() >= ENTRIES {
            entries.pop_front();
        }
        entries.push_back((key, block));
    }
}
