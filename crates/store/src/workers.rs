//! Worker snapshots each hub publishes, so any other process on the project
//! (the CLI, the hub of another OpenCode window) can show every live hub's
//! workers: worker state lives in the hub process that owns the servers.

use orchestra_protocol::{WorkerSnapshot, now_ms};
use rusqlite::{TransactionBehavior, params};

use crate::hubs::hub_states;
use crate::{Rows, Store, StoreError};

/// The workers one live hub published.
#[derive(Debug, Clone, PartialEq)]
pub struct HubWorkers {
    pub hub_id: String,
    pub pid: u32,
    pub workers: Vec<WorkerSnapshot>,
}

impl Store {
    /// Replaces the worker snapshots this hub published.
    pub fn publish_workers(
        &self,
        hub_id: &str,
        workers: &[WorkerSnapshot],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute("DELETE FROM worker_snapshots WHERE hub_id = ?1", [hub_id])?;
        // Rows of hubs that were unregistered or recovered away go too.
        tx.execute(
            "DELETE FROM worker_snapshots WHERE hub_id NOT IN (SELECT id FROM hubs)",
            [],
        )?;
        for worker in workers {
            let json =
                serde_json::to_string(worker).map_err(|source| StoreError::WorkerSnapshot {
                    worker: worker.id.clone(),
                    source,
                })?;
            tx.execute(
                "INSERT INTO worker_snapshots (hub_id, worker_id, snapshot, updated_at) VALUES (?1, ?2, ?3, ?4)",
                params![hub_id, worker.id, json, now],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The workers of every live hub (pid alive, heartbeat fresh) except
    /// `except_hub`, ordered by hub start and worker id. Snapshots that do not decode are
    /// skipped (and logged); [`Store::live_hub_workers_reporting`] also returns them.
    pub fn live_hub_workers(
        &self,
        is_alive: &dyn Fn(u32) -> bool,
        stale_after_ms: i64,
        except_hub: Option<&str>,
    ) -> Result<Vec<HubWorkers>, StoreError> {
        Ok(self
            .live_hub_workers_reporting(is_alive, stale_after_ms, except_hub)?
            .items)
    }

    /// [`Store::live_hub_workers`], with the snapshots that were skipped.
    pub fn live_hub_workers_reporting(
        &self,
        is_alive: &dyn Fn(u32) -> bool,
        stale_after_ms: i64,
        except_hub: Option<&str>,
    ) -> Result<Rows<HubWorkers>, StoreError> {
        let conn = self.conn();
        let states = hub_states(&conn, is_alive, stale_after_ms, now_ms())?;
        let mut hubs = conn.prepare("SELECT id, pid FROM hubs ORDER BY started_at, id")?;
        let live: Vec<(String, i64)> = hubs
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        let mut select = conn.prepare(
            "SELECT worker_id, snapshot FROM worker_snapshots WHERE hub_id = ?1 ORDER BY worker_id",
        )?;
        let mut out = Rows::new();
        for (hub_id, pid) in live {
            if Some(hub_id.as_str()) == except_hub || states.get(&hub_id).is_none_or(|s| s.gone) {
                continue;
            }
            let rows: Vec<(String, String)> = select
                .query_map([&hub_id], |row| Ok((row.get(0)?, row.get(1)?)))?
                .collect::<Result<_, _>>()?;
            let mut workers = Rows::new();
            for (worker, json) in rows {
                workers.push(
                    "worker_snapshots",
                    &format!("{hub_id}/{worker}"),
                    serde_json::from_str(&json),
                );
            }
            out.skipped.append(&mut workers.skipped);
            let workers = workers.items;
            out.items.push(HubWorkers {
                hub_id,
                pid: u32::try_from(pid).unwrap_or_default(),
                workers,
            });
        }
        Ok(out)
    }
}
