//! Keeping memory bounded (issue 24 §7): every finished task writes an automatic record, and
//! the change log keeps an entry per write. Two bounded passes, run by the hub in the
//! background:
//!
//! - **Age-out**: the project's automatic records (written by the hub — producer `hub`, tag
//!   `auto` — and not pinned) beyond the newest `max_count`, or older than `max_age_days`, are
//!   deleted through the one delete path (`bank::delete_record`: links, a scrubbed log, a
//!   `delete` entry), so the index and the Neo4j mirror learn of it like of any forget. What a
//!   user, tool or worker wrote, and anything pinned, is never aged out.
//! - **Compaction**: change-log entries every consumer has passed are dropped. The consumers
//!   are the search index (the sequence number in its last commit), every cursor in
//!   `memory_cursors` (the Neo4j sync), and the cursors the caller names as required — a
//!   configured consumer that has not run yet counts as at 0, so it keeps everything. The
//!   newest entry always stays (see `Store::memory_compact_changes`).

use orchestra_protocol::memory::MemoryScope;
use orchestra_store::AgedOutQuery;

use crate::MemoryError;
use crate::bank::{MemoryBank, delete_record};
use crate::service::MemoryService;

/// The producer and tag of the records the hub writes on its own (the tag is the store's: the
/// index the age-out reads has it written in).
pub const AUTOMATIC_PRODUCER: &str = "hub";
pub use orchestra_store::AUTOMATIC_TAG;
/// Records deleted per transaction: a pass holds the store's write lock this long at most.
const DELETE_BATCH: u32 = 500;
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// How many automatic records a project keeps (`memory.autoRecords`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoRecordPolicy {
    pub max_count: u32,
    pub max_age_days: u32,
}

impl Default for AutoRecordPolicy {
    fn default() -> Self {
        AutoRecordPolicy {
            max_count: 2_000,
            max_age_days: 90,
        }
    }
}

/// What one age-out pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AgeOutReport {
    pub deleted: usize,
    /// The pass stopped at its bound with records still due (the next pass goes on).
    pub more: bool,
}

/// What one compaction pass did, over the project store and the global store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactReport {
    pub dropped: usize,
    /// The pass stopped at its bound with entries still droppable.
    pub more: bool,
}

impl MemoryService {
    /// Deletes up to `limit` of the project's automatic records that `policy` no longer keeps,
    /// oldest first (see the module header). `now_ms` is the clock the age is measured on.
    pub fn age_out_automatic(
        &self,
        policy: AutoRecordPolicy,
        now_ms: i64,
        limit: usize,
    ) -> Result<AgeOutReport, MemoryError> {
        let owner = self.owner(MemoryScope::Project);
        let bank = self.project_bank();
        let older_than_ms =
            now_ms.saturating_sub(i64::from(policy.max_age_days).saturating_mul(DAY_MS));
        let mut report = AgeOutReport::default();
        while report.deleted < limit {
            let room = u32::try_from(limit - report.deleted).unwrap_or(u32::MAX);
            let ids = bank.store().memory_aged_out(&AgedOutQuery {
                project_id: &owner.project,
                producer: AUTOMATIC_PRODUCER,
                keep_newest: policy.max_count,
                older_than_ms,
                limit: room.min(DELETE_BATCH),
            })?;
            if ids.is_empty() {
                return Ok(report);
            }
            report.deleted += bank.store().memory_write(|tx| {
                let mut deleted = 0;
                for id in &ids {
                    // Re-read inside the write: another process may have pinned or removed it.
                    let Some(row) = tx.get(id)? else { continue };
                    if !owner.owns(&row.record) || row.record.pinned {
                        continue;
                    }
                    delete_record(tx, &row.record)?;
                    deleted += 1;
                }
                Ok::<_, MemoryError>(deleted)
            })?;
        }
        report.more = true;
        Ok(report)
    }

    /// Drops up to `limit` change-log entries (per store) that every consumer has passed;
    /// `required` names cursors that count even before their consumer first runs (the Neo4j
    /// sync when it is configured).
    pub fn compact_change_logs(
        &self,
        required: &[&str],
        limit: u32,
    ) -> Result<CompactReport, MemoryError> {
        let mut report = CompactReport::default();
        let banks = std::iter::once(self.project_bank()).chain(self.global_bank());
        for bank in banks {
            let (dropped, more) = bank.compact_change_log(required, limit)?;
            report.dropped += dropped;
            report.more |= more;
        }
        Ok(report)
    }
}

impl MemoryBank {
    /// The change-log position every consumer of this store has passed.
    pub fn consumers_passed(&self, required: &[&str]) -> Result<i64, MemoryError> {
        let cursors = self.store().memory_cursors()?;
        let mut passed = self.index().committed_seq();
        for (_, seq) in &cursors {
            passed = passed.min(*seq);
        }
        for name in required {
            if !cursors.iter().any(|(known, _)| known == name) {
                return Ok(0);
            }
        }
        Ok(passed)
    }

    /// Drops up to `limit` entries every consumer has passed; returns how many, and whether
    /// more could go.
    pub fn compact_change_log(
        &self,
        required: &[&str],
        limit: u32,
    ) -> Result<(usize, bool), MemoryError> {
        let passed = self.consumers_passed(required)?;
        if passed <= 0 {
            return Ok((0, false));
        }
        let dropped = self.store().memory_compact_changes(passed, limit)?;
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        Ok((dropped, dropped >= limit))
    }
}
