//! Job records. The `record` column holds the full [`JobRecord`] as JSON and
//! is the source of truth; the other columns are copies for querying.

use orchestra_protocol::{JobRecord, JobStatus, now_ms};
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};

use crate::{Rows, Store, StoreError};

/// Which jobs [`Store::list_jobs`] returns. `None` fields match anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobFilter {
    pub worker_id: Option<String>,
    pub status: Option<JobStatus>,
    /// At most this many jobs (0 returns none).
    pub limit: u32,
    pub hub_id: Option<String>,
}

impl Default for JobFilter {
    fn default() -> Self {
        JobFilter {
            worker_id: None,
            status: None,
            limit: 20,
            hub_id: None,
        }
    }
}

pub(crate) fn encode(job: &JobRecord) -> Result<String, StoreError> {
    serde_json::to_string(job).map_err(|source| StoreError::Encode {
        id: job.id.clone(),
        source,
    })
}

/// The `worktree_state` column: a copy of `record.worktree.state`.
pub(crate) fn worktree_state(job: &JobRecord) -> Option<&'static str> {
    job.worktree.as_ref().map(|w| w.state.as_str())
}

pub(crate) fn decode(id: &str, json: &str) -> Result<JobRecord, StoreError> {
    serde_json::from_str(json).map_err(|source| StoreError::CorruptRecord {
        id: id.to_owned(),
        source,
    })
}

/// Rewrites a job's row, but only while the stored job is still running.
/// Returns how many rows changed (0 or 1).
pub(crate) fn update_if_running(conn: &Connection, job: &JobRecord) -> Result<usize, StoreError> {
    let json = encode(job)?;
    // Cached: every running job's progress and end come through here.
    Ok(conn
        .prepare_cached(
            "UPDATE jobs SET hub_id = ?2, worker_id = ?3, kind = ?4, status = ?5,
                started_at = ?6, finished_at = ?7, record = ?8, run_id = ?9, worktree_state = ?10
         WHERE id = ?1 AND hub_id = ?2 AND status = 'running'",
        )?
        .execute(params![
            job.id,
            job.hub_id,
            job.worker_id,
            job.kind.as_str(),
            job.status.as_str(),
            job.started_at,
            job.finished_at,
            json,
            job.run_id,
            worktree_state(job)
        ])?)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Final jobs ordered by when they ended, newest first.
const FINAL_NEWEST_FIRST: &str =
    "status != 'running' ORDER BY COALESCE(finished_at, started_at) DESC, rowid DESC";

impl Store {
    /// Adds a new job. Fails with [`StoreError::DuplicateJob`] if the id exists.
    pub fn insert_job(&self, job: &JobRecord) -> Result<(), StoreError> {
        let json = encode(job)?;
        let conn = self.conn();
        // Cached: every task starts here.
        let inserted = conn
            .prepare_cached(
                "INSERT INTO jobs
                (id, hub_id, worker_id, kind, status, started_at, finished_at, record, run_id,
                 worktree_state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            )?
            .execute(params![
                job.id,
                job.hub_id,
                job.worker_id,
                job.kind.as_str(),
                job.status.as_str(),
                job.started_at,
                job.finished_at,
                json,
                job.run_id,
                worktree_state(job)
            ]);
        match inserted {
            Ok(_) => Ok(()),
            Err(error) if error.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                Err(StoreError::DuplicateJob { id: job.id.clone() })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Writes a running job's progress. Only the hub that owns the job (its `hub_id`) may,
    /// and only while the stored job is still running: a hub that was presumed dead and
    /// recovered cannot flip the record back to `running`. Returns false when the write was
    /// refused for that reason.
    pub fn save_job(&self, job: &JobRecord) -> Result<bool, StoreError> {
        Ok(update_if_running(&self.conn(), job)? == 1)
    }

    /// Stores `job` (which must have a final status) only if the stored job
    /// is still running and owned by the job's hub, so a late completion cannot overwrite a
    /// cancel and two hubs cannot both finish one job. Returns true if this call
    /// finalized it; false if it was already final or is not in the store.
    pub fn finish_job(&self, job: &JobRecord) -> Result<bool, StoreError> {
        if !job.status.is_final() {
            return Err(StoreError::NotFinal { id: job.id.clone() });
        }
        // One conditional UPDATE is atomic against other writers, so the
        // check and the write cannot be split by another hub.
        let changed = update_if_running(&self.conn(), job)?;
        if changed == 0 {
            tracing::debug!(job_id = %job.id, status = job.status.as_str(), "job already final; finish ignored");
        }
        Ok(changed == 1)
    }

    /// [`Store::finish_job`] and, when the job was finished by it, its log line, in one
    /// transaction (one commit per finished job instead of two).
    pub fn finish_job_logged(
        &self,
        job: &JobRecord,
        level: &str,
        message: &str,
    ) -> Result<bool, StoreError> {
        if !job.status.is_final() {
            return Err(StoreError::NotFinal { id: job.id.clone() });
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = update_if_running(&tx, job)?;
        if changed == 1 {
            crate::logs::insert_log(&tx, Some(&job.id), level, message)?;
        } else {
            tracing::debug!(job_id = %job.id, status = job.status.as_str(), "job already final; finish ignored");
        }
        tx.commit()?;
        Ok(changed == 1)
    }

    pub fn get_job(&self, id: &str) -> Result<Option<JobRecord>, StoreError> {
        let conn = self.conn();
        let json: Option<String> = conn
            .query_row("SELECT record FROM jobs WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .optional()?;
        json.map(|json| decode(id, &json)).transpose()
    }

    /// One entry per id, in the order given; `None` where no job has that id.
    pub fn get_jobs(&self, ids: &[String]) -> Result<Vec<Option<JobRecord>>, StoreError> {
        let mut conn = self.conn();
        // One read transaction so all records come from the same snapshot.
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let mut jobs = Vec::with_capacity(ids.len());
        {
            let mut select = tx.prepare_cached("SELECT record FROM jobs WHERE id = ?1")?;
            for id in ids {
                let json: Option<String> = select.query_row([id], |row| row.get(0)).optional()?;
                jobs.push(json.map(|json| decode(id, &json)).transpose()?);
            }
        }
        tx.commit()?;
        Ok(jobs)
    }

    /// Jobs matching `filter`, newest first (by start time, then insertion). Rows that do
    /// not decode are skipped (and logged); [`Store::list_jobs_reporting`] also returns them.
    pub fn list_jobs(&self, filter: &JobFilter) -> Result<Vec<JobRecord>, StoreError> {
        Ok(self.list_jobs_reporting(filter)?.items)
    }

    /// [`Store::list_jobs`], with the rows that were skipped because they do not decode.
    pub fn list_jobs_reporting(&self, filter: &JobFilter) -> Result<Rows<JobRecord>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT id, record FROM jobs
             WHERE (?1 IS NULL OR worker_id = ?1)
               AND (?2 IS NULL OR status = ?2)
               AND (?3 IS NULL OR hub_id = ?3)
             ORDER BY started_at DESC, rowid DESC
             LIMIT +?4",
        )?;
        let rows = select.query_map(
            params![
                filter.worker_id,
                filter.status.map(JobStatus::as_str),
                filter.hub_id,
                filter.limit
            ],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
        )?;
        let mut jobs = Rows::new();
        for row in rows {
            let (id, json) = row?;
            jobs.push("jobs", &id, serde_json::from_str(&json));
        }
        Ok(jobs)
    }

    pub fn count_jobs(&self) -> Result<u64, StoreError> {
        let count: i64 = self
            .conn()
            .query_row("SELECT COUNT(*) FROM jobs", [], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Deletes final jobs that ended more than `max_age_ms` ago, then the
    /// oldest final jobs beyond `max_count`. Running jobs are never deleted
    /// and do not count toward `max_count`. Workflow runs are pruned by the same
    /// limits ([`Store::prune_runs`]), so every caller that prunes jobs bounds
    /// them too. Returns how many jobs and runs were deleted.
    pub fn prune_jobs(&self, max_age_ms: i64, max_count: u64) -> Result<u64, StoreError> {
        let jobs = self.prune_job_records(max_age_ms, max_count)?;
        let runs = self.prune_runs(max_age_ms, max_count)?;
        Ok(jobs.saturating_add(runs))
    }

    fn prune_job_records(&self, max_age_ms: i64, max_count: u64) -> Result<u64, StoreError> {
        let cutoff = now_ms().saturating_sub(max_age_ms);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let by_age = tx.execute(
            "DELETE FROM jobs
             WHERE status != 'running' AND COALESCE(finished_at, started_at) < ?1
               AND COALESCE(worktree_state, '') NOT IN ('open', 'conflict')",
            [cutoff],
        )?;
        let by_count = tx.execute(
            &format!(
                "DELETE FROM jobs WHERE rowid IN
                   (SELECT rowid FROM jobs WHERE {FINAL_NEWEST_FIRST} LIMIT -1 OFFSET +?1)
                   AND COALESCE(worktree_state, '') NOT IN ('open', 'conflict')"
            ),
            [to_i64(max_count)],
        )?;
        tx.commit()?;
        let deleted = u64::try_from(by_age + by_count).unwrap_or(u64::MAX);
        if deleted > 0 {
            tracing::debug!(by_age, by_count, "pruned finished jobs");
        }
        Ok(deleted)
    }
}
