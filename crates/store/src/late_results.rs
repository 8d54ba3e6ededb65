//! A result that arrives after another hub closed its job. A hub suspended past
//! [`crate::HUB_STALE_AFTER_MS`] (SIGSTOP, a laptop lid) has its running jobs marked
//! "interrupted by hub restart" by the next hub that starts; when it wakes, its workers may
//! still finish. That real result replaces the interruption — the interruption was a guess —
//! while a job closed for a real reason (a cancel, another hub's result) keeps its record.

use orchestra_protocol::{JobRecord, JobStatus};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::hubs::INTERRUPTED;
use crate::jobs::{decode, encode};
use crate::{Store, StoreError};

/// What became of a result that arrived after its job was closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LateResult {
    /// It replaced the "interrupted" record another hub wrote while this one seemed dead.
    Recorded,
    /// The job was closed for another reason, which stands: its stored status and error.
    Kept {
        status: JobStatus,
        error: Option<String>,
    },
    /// The job is no longer in the store (pruned).
    Gone,
}

impl Store {
    /// Stores `job`'s final record in place of an "interrupted" record of the same hub's job;
    /// any other stored record is left as it is and described.
    pub fn finish_interrupted_job(&self, job: &JobRecord) -> Result<LateResult, StoreError> {
        if !job.status.is_final() {
            return Err(StoreError::NotFinal { id: job.id.clone() });
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored: Option<String> = tx
            .query_row("SELECT record FROM jobs WHERE id = ?1", [&job.id], |row| {
                row.get(0)
            })
            .optional()?;
        let Some(stored) = stored else {
            return Ok(LateResult::Gone);
        };
        let stored = decode(&job.id, &stored)?;
        let interrupted = stored.status == JobStatus::Failed
            && stored.error.as_deref() == Some(INTERRUPTED)
            && stored.hub_id == job.hub_id;
        if !interrupted {
            return Ok(LateResult::Kept {
                status: stored.status,
                error: stored.error,
            });
        }
        tx.execute(
            "UPDATE jobs SET status = ?2, started_at = ?3, finished_at = ?4, record = ?5
             WHERE id = ?1",
            params![
                job.id,
                job.status.as_str(),
                job.started_at,
                job.finished_at,
                encode(job)?
            ],
        )?;
        tx.commit()?;
        Ok(LateResult::Recorded)
    }
}
