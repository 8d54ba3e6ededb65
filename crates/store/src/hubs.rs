//! Hub registration and recovery of jobs whose hub went away.
//!
//! Every hub process registers a row and refreshes its heartbeat. A running
//! job belongs to the hub named in its `hub_id`; another hub only touches it
//! once that hub is gone (no row, dead pid, or stale heartbeat).

use std::collections::HashMap;

use orchestra_protocol::{JobRecord, JobStatus, now_ms};
use rusqlite::{Connection, TransactionBehavior, params};

use crate::jobs::{decode, update_if_running};
use crate::unreadable::retire_unreadable;
use crate::{Store, StoreError};

/// The error recorded on jobs whose hub disappeared while they ran.
pub(crate) const INTERRUPTED: &str = "interrupted by hub restart";

impl Store {
    /// Registers (or re-registers) a hub, stamping its start and heartbeat now.
    pub fn register_hub(
        &self,
        hub_id: &str,
        pid: u32,
        project_dir: &str,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        self.conn().execute(
            "INSERT INTO hubs (id, pid, started_at, heartbeat_at, project_dir)
             VALUES (?1, ?2, ?3, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET
                pid = excluded.pid, started_at = excluded.started_at,
                heartbeat_at = excluded.heartbeat_at, project_dir = excluded.project_dir",
            params![hub_id, pid, now, project_dir],
        )?;
        tracing::debug!(hub_id, pid, project_dir, "hub registered");
        Ok(())
    }

    /// Refreshes the hub's heartbeat. Fails with
    /// [`StoreError::HubNotRegistered`] if its row is missing, because other
    /// hubs then treat its running jobs as orphaned.
    pub fn heartbeat(&self, hub_id: &str) -> Result<(), StoreError> {
        let changed = self.conn().execute(
            "UPDATE hubs SET heartbeat_at = ?2 WHERE id = ?1",
            params![hub_id, now_ms()],
        )?;
        if changed == 0 {
            return Err(StoreError::HubNotRegistered {
                hub_id: hub_id.to_owned(),
            });
        }
        Ok(())
    }

    /// True while the hub has a liveness row.
    pub fn is_hub_registered(&self, hub_id: &str) -> Result<bool, StoreError> {
        let count: i64 =
            self.conn()
                .query_row("SELECT COUNT(*) FROM hubs WHERE id = ?1", [hub_id], |row| {
                    row.get(0)
                })?;
        Ok(count > 0)
    }

    /// Removes the hub's row (on clean shutdown). Its jobs still running
    /// afterwards count as interrupted for the next [`Store::recover_interrupted`].
    pub fn unregister_hub(&self, hub_id: &str) -> Result<(), StoreError> {
        let conn = self.conn();
        conn.execute("DELETE FROM hubs WHERE id = ?1", [hub_id])?;
        tracing::debug!(hub_id, "hub unregistered");
        Ok(())
    }

    /// Marks `running` jobs whose owning hub is gone as failed with error
    /// "interrupted by hub restart" (finished_at = now, duration computed)
    /// and returns them. A hub is gone when it has no row, `is_alive(pid)`
    /// says false, or its heartbeat is older than `stale_after_ms`. Rows of
    /// hubs whose pid is dead are removed too.
    ///
    /// The caller must have registered its own hub first, or its own jobs
    /// count as orphaned. `is_alive` runs while the store is locked; keep it
    /// quick (like [`crate::pid_is_alive`]).
    pub fn recover_interrupted(
        &self,
        is_alive: &dyn Fn(u32) -> bool,
        stale_after_ms: i64,
    ) -> Result<Vec<JobRecord>, StoreError> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;

        let (hubs, orphans) = orphaned_rows(
            &tx,
            "SELECT id, hub_id, record FROM jobs WHERE status = 'running'",
            is_alive,
            stale_after_ms,
            now,
        )?;

        let mut recovered = Vec::new();
        for (id, hub_id, json) in orphans {
            let mut job = match decode(&id, &json) {
                Ok(job) => job,
                Err(error) => {
                    retire_unreadable(&tx, "jobs", &id, now, &error)?;
                    continue;
                }
            };
            job.error = Some(INTERRUPTED.to_owned());
            job.finish(JobStatus::Failed, now);
            if update_if_running(&tx, &job)? == 1 {
                tracing::warn!(job_id = %id, hub_id, "job interrupted: its hub is gone");
                recovered.push(job);
            }
        }

        for (hub_id, state) in &hubs {
            if !state.alive {
                tx.execute("DELETE FROM hubs WHERE id = ?1", [hub_id])?;
                tracing::debug!(hub_id, "removed row of dead hub");
            }
        }
        tx.commit()?;
        if !recovered.is_empty() {
            tracing::info!(count = recovered.len(), "recovered interrupted jobs");
        }
        Ok(recovered)
    }
}

/// What [`hub_states`] knows about one registered hub.
pub(crate) struct HubState {
    /// Its pid is a live process.
    pub alive: bool,
    /// Dead pid or stale heartbeat: its running work is orphaned. A hub with no row is gone too.
    pub gone: bool,
}

/// Every registered hub by id, judged alive or gone.
pub(crate) fn hub_states(
    conn: &Connection,
    is_alive: &dyn Fn(u32) -> bool,
    stale_after_ms: i64,
    now: i64,
) -> Result<HashMap<String, HubState>, StoreError> {
    let mut hubs = HashMap::new();
    let mut select = conn.prepare("SELECT id, pid, heartbeat_at FROM hubs")?;
    let rows = select.query_map([], |row| {
        Ok((
            row.get::<_, String>(0)?,
            row.get::<_, i64>(1)?,
            row.get::<_, i64>(2)?,
        ))
    })?;
    for row in rows {
        let (id, pid, heartbeat_at) = row?;
        // A pid that does not fit a u32 cannot be a live process.
        let alive = u32::try_from(pid).is_ok_and(is_alive);
        let stale = now.saturating_sub(heartbeat_at) > stale_after_ms;
        hubs.insert(
            id,
            HubState {
                alive,
                gone: !alive || stale,
            },
        );
    }
    Ok(hubs)
}

/// The hubs (as [`hub_states`]) and the `(id, hub_id, json)` rows of `select`
/// whose hub is gone or has no row.
pub(crate) type OrphanRows = (HashMap<String, HubState>, Vec<(String, String, String)>);

pub(crate) fn orphaned_rows(
    conn: &Connection,
    select: &str,
    is_alive: &dyn Fn(u32) -> bool,
    stale_after_ms: i64,
    now: i64,
) -> Result<OrphanRows, StoreError> {
    let hubs = hub_states(conn, is_alive, stale_after_ms, now)?;
    let mut statement = conn.prepare(select)?;
    let rows = statement.query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let mut orphans = Vec::new();
    for row in rows {
        let (id, hub_id, json): (String, String, String) = row?;
        if hubs.get(&hub_id).is_none_or(|state| state.gone) {
            orphans.push((id, hub_id, json));
        }
    }
    Ok((hubs, orphans))
}
