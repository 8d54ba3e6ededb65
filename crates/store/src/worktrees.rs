//! The git worktree a job owns (`record.worktree`): its state changes after the job is final
//! (merged, discarded, conflict), so it has its own write, which any hub may make; the
//! `worktree_state` column is a copy for finding the jobs that own worktrees.

use orchestra_protocol::{JobRecord, WorktreeInfo};
use rusqlite::{OptionalExtension, TransactionBehavior, params};

use crate::jobs::decode;
use crate::{Store, StoreError};

impl Store {
    /// Replaces the worktree of job `id` (running or final). Returns the updated record, or
    /// `None` when no job has that id.
    pub fn set_job_worktree(
        &self,
        id: &str,
        worktree: &WorktreeInfo,
    ) -> Result<Option<JobRecord>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let json: Option<String> = tx
            .query_row("SELECT record FROM jobs WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()?;
        let Some(json) = json else {
            return Ok(None);
        };
        let mut job = decode(id, &json)?;
        job.worktree = Some(worktree.clone());
        let encoded = serde_json::to_string(&job).map_err(|source| StoreError::Encode {
            id: id.to_owned(),
            source,
        })?;
        tx.execute(
            "UPDATE jobs SET record = ?2, worktree_state = ?3 WHERE id = ?1",
            params![id, encoded, worktree.state.as_str()],
        )?;
        tx.commit()?;
        Ok(Some(job))
    }

    /// Every job that owns a worktree record (any state), oldest first.
    pub fn worktree_jobs(&self) -> Result<Vec<JobRecord>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT id, record FROM jobs WHERE worktree_state IS NOT NULL
             ORDER BY started_at, rowid",
        )?;
        let rows = select.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut jobs = Vec::new();
        for row in rows {
            let (id, json) = row?;
            match decode(&id, &json) {
                Ok(job) => jobs.push(job),
                Err(err) => {
                    tracing::warn!(job = %id, error = %err, "skipping a job record that does not decode")
                }
            }
        }
        Ok(jobs)
    }
}
