//! The last memory blocks rendered, keyed on what they were computed from: the indexes'
//! generations (the change-log sequence each reader reflects), the task text and the budget.
//! A block is a pure function of those (see `context`), so a hit is the same text a new render
//! would give; any indexed write moves a generation on and so misses. Beside them, what a new
//! block reuses: the pinned records of the current generation and the analysed text of recent
//! candidates.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use orchestra_protocol::memory::{MemoryContext, MemoryRecord};

use crate::cursor::fnv1a;

/// Blocks remembered: tasks repeated soon after (retries, a workflow's steps, the plugin asking
/// for the same text) hit; older ones fall out.
const ENTRIES: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockKey {
    pub generation: Generation,
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

/// The distinct words and identifiers of a record's text, as the block's re-ranking counts
/// them: hashes (sorted), so a remembered record costs a few hundred bytes, not a set of
/// strings.
#[derive(Debug, Default)]
pub(crate) struct RecordTerms {
    words: Vec<u64>,
    idents: Vec<u64>,
}

impl RecordTerms {
    pub(crate) fn new(words: &[String], idents: &[String]) -> RecordTerms {
        RecordTerms {
            words: hashes(words),
            idents: hashes(idents),
        }
    }

    /// How many of `words` (hashes, see [`hashes`]) the record holds.
    pub(crate) fn words_found(&self, words: &[u64]) -> usize {
        found_in(&self.words, words)
    }

    pub(crate) fn idents_found(&self, idents: &[u64]) -> usize {
        found_in(&self.idents, idents)
    }
}

/// How many of `terms` the sorted `held` holds.
fn found_in(held: &[u64], terms: &[u64]) -> usize {
    terms
        .iter()
        .filter(|term| held.binary_search(term).is_ok())
        .count()
}

/// Terms as sorted, distinct 64-bit hashes.
pub(crate) fn hashes(terms: &[String]) -> Vec<u64> {
    let mut out: Vec<u64> = terms.iter().map(|t| fnv1a(t.as_bytes())).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Record texts analysed recently: the same records are candidates for task after task, and
/// analysing their text was a quarter of a block's cost. Keyed on a hash of the text itself,
/// so an edited record is analysed again and nothing needs invalidating.
const TERM_ENTRIES: usize = 1024;

#[derive(Debug, Default)]
pub(crate) struct TermCache {
    entries: Mutex<HashMap<u64, Arc<RecordTerms>>>,
}

impl TermCache {
    /// The terms of `text`, analysed by `analyse` unless a text with the same hash was.
    pub(crate) fn terms(
        &self,
        text: &str,
        analyse: impl FnOnce(&str) -> RecordTerms,
    ) -> Arc<RecordTerms> {
        let key = fnv1a(text.as_bytes());
        if let Some(found) = self
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            return found.clone();
        }
        let terms = Arc::new(analyse(text));
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // A full table starts over: cheaper than tracking recency, and the records that
        // matter come back within a few tasks.
        if entries.len() >= TERM_ENTRIES {
            entries.clear();
        }
        entries.insert(key, terms.clone());
        terms
    }
}

/// (project index, global index) change-log sequence numbers.
pub(crate) type Generation = (i64, i64);

/// The pinned records (project summary first) as of an index generation: they change only
/// with a write, and every write moves the generation on.
#[derive(Debug, Default)]
pub(crate) struct PinnedCache {
    entry: Mutex<Option<(Generation, Arc<Vec<MemoryRecord>>)>>,
}

impl PinnedCache {
    /// The records of `generation`, loaded with `load` unless they were for it already.
    pub(crate) fn get_or_load<E>(
        &self,
        generation: Generation,
        load: impl FnOnce() -> Result<Vec<MemoryRecord>, E>,
    ) -> Result<Arc<Vec<MemoryRecord>>, E> {
        if let Some((at, records)) = &*self.entry.lock().unwrap_or_else(PoisonError::into_inner)
            && *at == generation
        {
            return Ok(records.clone());
        }
        let records = Arc::new(load()?);
        *self.entry.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((generation, records.clone()));
        Ok(records)
    }
}
