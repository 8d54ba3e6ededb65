//! Workflow runs. The `state` column holds the full [`WorkflowRun`] as JSON
//! and is the source of truth; the other columns are copies for querying.
//!
//! A run is saved at every step boundary. A `running` run belongs to the hub
//! named in its `hub_id`; once that hub is gone (no row, dead pid, stale
//! heartbeat) [`Store::recover_interrupted_runs`] pauses it so that
//! `continueRunId` can run the interrupted step again.

use orchestra_protocol::{WorkflowRun, WorkflowRunStatus, WorkflowStepStatus, now_ms};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::hubs::orphaned_rows;
use crate::unreadable::retire_unreadable;
use crate::{Rows, Store, StoreError};

/// The reason recorded on runs whose hub disappeared while they ran.
pub const RUN_INTERRUPTED: &str = "interrupted: the hub running it stopped";

/// The run's state without its attachments, which live in `workflow_run_attachments`.
fn encode(run: &WorkflowRun) -> Result<String, StoreError> {
    let error = |source| StoreError::EncodeRun {
        id: run.run_id.clone(),
        source,
    };
    let mut state = serde_json::to_value(run).map_err(error)?;
    if let Some(object) = state.as_object_mut() {
        object.remove("attachments");
    }
    serde_json::to_string(&state).map_err(error)
}

fn decode(id: &str, json: &str) -> Result<WorkflowRun, StoreError> {
    decode_with(id, json, None)
}

/// A run from its state and, if it has any, its attachments (`[]` JSON).
fn decode_with(id: &str, json: &str, attachments: Option<&str>) -> Result<WorkflowRun, StoreError> {
    let corrupt = |source| StoreError::CorruptRun {
        id: id.to_owned(),
        source,
    };
    let mut run: WorkflowRun = serde_json::from_str(json).map_err(corrupt)?;
    if let Some(attachments) = attachments {
        run.attachments = serde_json::from_str(attachments).map_err(corrupt)?;
    }
    Ok(run)
}

/// Stores the run's attachments the first time they are seen; a final run's are dropped,
/// because nothing resumes it. Returns nothing: the state write that follows is what counts.
fn write_attachments(conn: &Connection, run: &WorkflowRun) -> Result<(), StoreError> {
    if run.status.is_final() {
        conn.execute(
            "DELETE FROM workflow_run_attachments WHERE run_id = ?1",
            [&run.run_id],
        )?;
        return Ok(());
    }
    if run.attachments.is_empty() {
        return Ok(());
    }
    let stored: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM workflow_run_attachments WHERE run_id = ?1",
            [&run.run_id],
            |row| row.get(0),
        )
        .optional()?;
    if stored.is_none() {
        let json =
            serde_json::to_string(&run.attachments).map_err(|source| StoreError::EncodeRun {
                id: run.run_id.clone(),
                source,
            })?;
        conn.execute(
            "INSERT OR IGNORE INTO workflow_run_attachments (run_id, attachments) VALUES (?1, ?2)",
            params![run.run_id, json],
        )?;
    }
    Ok(())
}

/// Inserts or replaces the run's row; with `only_if`, replaces it only while
/// the stored status is that one. Returns how many rows changed (0 or 1).
fn write(
    conn: &Connection,
    run: &WorkflowRun,
    only_if: Option<WorkflowRunStatus>,
) -> Result<usize, StoreError> {
    let state = encode(run)?;
    let values = params![
        run.run_id,
        run.workflow_id,
        run.hub_id,
        run.job_id,
        run.status.as_str(),
        run.started_at,
        run.updated_at,
        run.finished_at,
        state,
        only_if.map(WorkflowRunStatus::as_str),
    ];
    // One upsert whose update is conditional: atomic against other writers.
    let changed = conn.execute(
        "INSERT INTO workflow_runs
            (id, workflow_id, hub_id, job_id, status, started_at, updated_at, finished_at, state)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
         ON CONFLICT(id) DO UPDATE SET
            workflow_id = excluded.workflow_id, hub_id = excluded.hub_id,
            job_id = excluded.job_id, status = excluded.status,
            started_at = excluded.started_at, updated_at = excluded.updated_at,
            finished_at = excluded.finished_at, state = excluded.state
         WHERE ?10 IS NULL OR workflow_runs.status = ?10",
        values,
    )?;
    if changed == 1 {
        write_attachments(conn, run)?;
    }
    Ok(changed)
}

impl Store {
    /// Writes the run, inserting or replacing it.
    pub fn save_run(&self, run: &WorkflowRun) -> Result<(), StoreError> {
        write(&self.conn(), run, None)?;
        Ok(())
    }

    /// Writes `run` only if the stored run has status `expected` (or is not
    /// stored yet), in one
    /// atomic statement, so two hubs cannot both resume one paused run.
    /// Returns true if this call wrote it.
    pub fn save_run_if(
        &self,
        run: &WorkflowRun,
        expected: WorkflowRunStatus,
    ) -> Result<bool, StoreError> {
        Ok(write(&self.conn(), run, Some(expected))? == 1)
    }

    /// Writes a running run's progress or its end, only while the stored run is still running
    /// and owned by `run.hub_id`: a driver whose hub was presumed dead (and whose run was
    /// paused, maybe resumed by another hub) cannot overwrite it. Returns true if it wrote.
    pub fn save_run_owned(&self, run: &WorkflowRun) -> Result<bool, StoreError> {
        let state = encode(run)?;
        let changed = self.conn().execute(
            "UPDATE workflow_runs SET status = ?3, updated_at = ?4, finished_at = ?5, state = ?6
             WHERE id = ?1 AND hub_id = ?2 AND status = 'running'",
            params![
                run.run_id,
                run.hub_id,
                run.status.as_str(),
                run.updated_at,
                run.finished_at,
                state
            ],
        )?;
        Ok(changed == 1)
    }

    pub fn get_run(&self, id: &str) -> Result<Option<WorkflowRun>, StoreError> {
        let row: Option<(String, Option<String>)> = self
            .conn()
            .query_row(
                "SELECT r.state, a.attachments FROM workflow_runs r
                 LEFT JOIN workflow_run_attachments a ON a.run_id = r.id
                 WHERE r.id = ?1",
                [id],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        row.map(|(json, attachments)| decode_with(id, &json, attachments.as_deref()))
            .transpose()
    }

    /// Runs newest first, optionally of one workflow only. Rows that do not decode are skipped
    /// (and logged); [`Store::list_runs_reporting`] also returns them.
    pub fn list_runs(
        &self,
        workflow_id: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WorkflowRun>, StoreError> {
        Ok(self.list_runs_reporting(workflow_id, limit)?.items)
    }

    /// [`Store::list_runs`], with the rows that were skipped because they do not decode.
    pub fn list_runs_reporting(
        &self,
        workflow_id: Option<&str>,
        limit: u32,
    ) -> Result<Rows<WorkflowRun>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT r.id, r.state, a.attachments FROM workflow_runs r
             LEFT JOIN workflow_run_attachments a ON a.run_id = r.id
             WHERE (?1 IS NULL OR r.workflow_id = ?1)
             ORDER BY r.started_at DESC, r.rowid DESC
             LIMIT +?2",
        )?;
        let rows = select.query_map(params![workflow_id, limit], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, Option<String>>(2)?,
            ))
        })?;
        let mut runs = Rows::new();
        for row in rows {
            let (id, json, attachments) = row?;
            let decoded = serde_json::from_str::<WorkflowRun>(&json).and_then(|mut run| {
                if let Some(attachments) = &attachments {
                    run.attachments = serde_json::from_str(attachments)?;
                }
                Ok(run)
            });
            runs.push("workflow_runs", &id, decoded);
        }
        Ok(runs)
    }

    /// Pauses `running` runs whose hub is gone (see [`Store::recover_interrupted`]
    /// for what "gone" means), marking their running steps as errors so that
    /// resuming runs them again from the start, and returns them.
    pub fn recover_interrupted_runs(
        &self,
        is_alive: &dyn Fn(u32) -> bool,
        stale_after_ms: i64,
    ) -> Result<Vec<WorkflowRun>, StoreError> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let (_, orphans) = orphaned_rows(
            &tx,
            "SELECT id, hub_id, state FROM workflow_runs WHERE status = 'running'",
            is_alive,
            stale_after_ms,
            now,
        )?;
        let mut recovered = Vec::new();
        for (id, hub_id, json) in orphans {
            let mut run = match decode(&id, &json) {
                Ok(run) => run,
                Err(error) => {
                    retire_unreadable(&tx, "workflow_runs", &id, now, &error)?;
                    continue;
                }
            };
            run.status = WorkflowRunStatus::Paused;
            run.reason = Some(format!(
                "{RUN_INTERRUPTED} (hub {hub_id}); resume it with continueRunId and the interrupted step runs again"
            ));
            run.updated_at = now;
            for step in &mut run.steps {
                if step.status == WorkflowStepStatus::Running {
                    step.status = WorkflowStepStatus::Error;
                    step.error = Some(RUN_INTERRUPTED.to_owned());
                }
            }
            if write(&tx, &run, Some(WorkflowRunStatus::Running))? == 1 {
                tracing::warn!(run_id = %id, hub_id, "workflow run interrupted: its hub is gone");
                recovered.push(run);
            }
        }
        tx.commit()?;
        Ok(recovered)
    }

    /// Deletes runs like [`Store::prune_jobs`] deletes jobs: final runs that ended more than
    /// `max_age_ms` ago, then the oldest final runs beyond `max_count`; a running or paused run
    /// is deleted only once it has not moved for `max_age_ms` (its hub is long gone, or nobody
    /// resumed it), and never counts toward `max_count`. Returns how many were deleted.
    pub fn prune_runs(&self, max_age_ms: i64, max_count: u64) -> Result<u64, StoreError> {
        let cutoff = now_ms().saturating_sub(max_age_ms);
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let by_age = tx.execute(
            "DELETE FROM workflow_runs
             WHERE COALESCE(finished_at, updated_at, started_at) < ?1",
            [cutoff],
        )?;
        let by_count = tx.execute(
            "DELETE FROM workflow_runs WHERE rowid IN
               (SELECT rowid FROM workflow_runs WHERE status NOT IN ('running', 'paused')
                ORDER BY COALESCE(finished_at, updated_at) DESC, rowid DESC
                LIMIT -1 OFFSET +?1)",
            [i64::try_from(max_count).unwrap_or(i64::MAX)],
        )?;
        tx.execute(
            "DELETE FROM workflow_run_attachments
             WHERE run_id NOT IN (SELECT id FROM workflow_runs)",
            [],
        )?;
        tx.commit()?;
        let deleted = u64::try_from(by_age + by_count).unwrap_or(u64::MAX);
        if deleted > 0 {
            tracing::debug!(by_age, by_count, "pruned workflow runs");
        }
        Ok(deleted)
    }
}
