//! Process groups the hubs' worker servers run in, so that a hub that was killed outright
//! (SIGKILL, OOM) leaves a record the next hub uses to kill what is left of its workers.
//!
//! The store only keeps the rows; what a row means for the processes on this machine
//! (start times, liveness, signalling) is the supervisor's business in `orchestra-core`.

use orchestra_protocol::now_ms;
use rusqlite::params;

use crate::{Store, StoreError};

/// One process group a hub process is responsible for.
///
/// Times are clock ticks since boot (`/proc/<pid>/stat` field 22), which only mean something
/// within one boot: `boot_id` says which.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessGroupRecord {
    /// The hub process that started the server (pid and start time, so a reused pid is not
    /// mistaken for it).
    pub owner_pid: i32,
    pub owner_start: u64,
    pub pgid: i32,
    /// The group's leader when it was recorded and its start time: no process of the group
    /// can have started before it.
    pub leader_pid: i32,
    pub leader_start: u64,
    pub boot_id: String,
    /// The hub that recorded it (informational: ownership is by process).
    pub hub_id: String,
    /// The worker server's own group; equal to `pgid` for the server itself, else the server
    /// whose descendant moved into this group.
    pub server_pgid: i32,
    /// Worker label, for logs.
    pub label: String,
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A row as a record; `None` when a number does not fit its type.
fn record_of_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Option<ProcessGroupRecord>> {
    let pid = |i: usize| row.get::<_, i64>(i).map(|n| i32::try_from(n).ok());
    let ticks = |i: usize| row.get::<_, i64>(i).map(|n| u64::try_from(n).ok());
    let record = (|| {
        Some(ProcessGroupRecord {
            owner_pid: pid(0).ok()??,
            owner_start: ticks(1).ok()??,
            pgid: pid(2).ok()??,
            leader_pid: pid(3).ok()??,
            leader_start: ticks(4).ok()??,
            boot_id: row.get(5).ok()?,
            hub_id: row.get(6).ok()?,
            server_pgid: pid(7).ok()??,
            label: row.get(8).ok()?,
        })
    })();
    Ok(record)
}

impl Store {
    /// Records a group; recording one that is already there changes nothing.
    pub fn record_process_group(&self, record: &ProcessGroupRecord) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT OR IGNORE INTO process_groups
                (owner_pid, owner_start, pgid, leader_pid, leader_start, boot_id, hub_id,
                 server_pgid, label, recorded_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                record.owner_pid,
                to_i64(record.owner_start),
                record.pgid,
                record.leader_pid,
                to_i64(record.leader_start),
                record.boot_id,
                record.hub_id,
                record.server_pgid,
                record.label,
                now_ms()
            ],
        )?;
        Ok(())
    }

    /// Every recorded group, oldest first. Rows that do not fit the types are skipped
    /// (they cannot name a real process).
    pub fn process_groups(&self) -> Result<Vec<ProcessGroupRecord>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT owner_pid, owner_start, pgid, leader_pid, leader_start, boot_id, hub_id,
                    server_pgid, label
             FROM process_groups ORDER BY recorded_at, rowid",
        )?;
        let rows = select.query_map([], record_of_row)?;
        let mut out = Vec::new();
        for row in rows {
            match row? {
                Some(record) => out.push(record),
                None => tracing::warn!("skipping a process-group row with out-of-range numbers"),
            }
        }
        Ok(out)
    }

    /// Records processes seen in a recorded group, as `(pid, start)`; recording one that is
    /// already there changes nothing.
    pub fn record_process_group_members(
        &self,
        owner_pid: i32,
        owner_start: u64,
        pgid: i32,
        members: &[(i32, u64)],
    ) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO process_group_members
                    (owner_pid, owner_start, pgid, pid, start) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for &(pid, start) in members {
                insert.execute(params![
                    owner_pid,
                    to_i64(owner_start),
                    pgid,
                    pid,
                    to_i64(start)
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The processes seen in one recorded group, as `(pid, start)`.
    pub fn process_group_members(
        &self,
        owner_pid: i32,
        owner_start: u64,
        pgid: i32,
    ) -> Result<Vec<(i32, u64)>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT pid, start FROM process_group_members
             WHERE owner_pid = ?1 AND owner_start = ?2 AND pgid = ?3 ORDER BY rowid",
        )?;
        let rows = select.query_map(params![owner_pid, to_i64(owner_start), pgid], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (pid, start) = row?;
            if let (Ok(pid), Ok(start)) = (i32::try_from(pid), u64::try_from(start)) {
                out.push((pid, start));
            }
        }
        Ok(out)
    }

    /// Forgets one group of one owner process.
    pub fn forget_process_group(
        &self,
        owner_pid: i32,
        owner_start: u64,
        pgid: i32,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM process_groups WHERE owner_pid = ?1 AND owner_start = ?2 AND pgid = ?3",
            params![owner_pid, to_i64(owner_start), pgid],
        )?;
        self.conn().execute(
            "DELETE FROM process_group_members
             WHERE owner_pid = ?1 AND owner_start = ?2 AND pgid = ?3",
            params![owner_pid, to_i64(owner_start), pgid],
        )?;
        Ok(())
    }

    /// Forgets a worker server's group and every group recorded under it.
    pub fn forget_server_groups(
        &self,
        owner_pid: i32,
        owner_start: u64,
        server_pgid: i32,
    ) -> Result<(), StoreError> {
        self.conn().execute(
            "DELETE FROM process_group_members
             WHERE owner_pid = ?1 AND owner_start = ?2 AND pgid IN (
                 SELECT pgid FROM process_groups
                 WHERE owner_pid = ?1 AND owner_start = ?2 AND server_pgid = ?3)",
            params![owner_pid, to_i64(owner_start), server_pgid],
        )?;
        self.conn().execute(
            "DELETE FROM process_groups
             WHERE owner_pid = ?1 AND owner_start = ?2 AND server_pgid = ?3",
            params![owner_pid, to_i64(owner_start), server_pgid],
        )?;
        Ok(())
    }
}
