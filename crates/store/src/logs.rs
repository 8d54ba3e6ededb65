//! The hub's output log: what the original kept in an in-memory buffer,
//! now shared by every hub on the store and kept across restarts.

use orchestra_protocol::now_ms;
use rusqlite::params;

use crate::{Store, StoreError};

/// One line of the output log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Unix ms; strictly increasing across the store (see [`Store::append_log`]).
    pub at: i64,
    pub job_id: Option<String>,
    pub level: String,
    pub message: String,
}

impl Store {
    /// Appends a line stamped now. Stamps are strictly increasing across the
    /// whole store (a line in the same millisecond as the last one gets the
    /// next millisecond), so polling `logs_after(last.at)` never skips or
    /// repeats a line. Under bursts of more than one line per ms, stamps run
    /// ahead of the wall clock by at most the burst length in ms.
    pub fn append_log(
        &self,
        job_id: Option<&str>,
        level: &str,
        message: &str,
    ) -> Result<(), StoreError> {
        insert_log(&self.conn(), job_id, level, message)
    }

    /// Up to `limit` lines stamped after `after_ms`, oldest first.
    pub fn logs_after(&self, after_ms: i64, limit: u32) -> Result<Vec<LogEntry>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT at, job_id, level, message FROM job_events
             WHERE at > ?1 ORDER BY at ASC, id ASC LIMIT +?2",
        )?;
        let rows = select.query_map(params![after_ms, limit], |row| {
            Ok(LogEntry {
                at: row.get(0)?,
                job_id: row.get(1)?,
                level: row.get(2)?,
                message: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps the newest `max_rows` lines and deletes the rest. Returns how
    /// many were deleted.
    pub fn prune_logs(&self, max_rows: u64) -> Result<u64, StoreError> {
        let keep = i64::try_from(max_rows).unwrap_or(i64::MAX);
        // Ids only grow (AUTOINCREMENT), so everything at or below the id of
        // the first line past the newest `keep` is older.
        let deleted = self.conn().execute(
            "DELETE FROM job_events WHERE id <=
               (SELECT id FROM job_events ORDER BY id DESC LIMIT 1 OFFSET +?1)",
            [keep],
        )?;
        Ok(u64::try_from(deleted).unwrap_or(u64::MAX))
    }
}

/// Appends a log line on `conn` (inside the caller's transaction, if any).
pub(crate) fn insert_log(
    conn: &rusqlite::Connection,
    job_id: Option<&str>,
    level: &str,
    message: &str,
) -> Result<(), StoreError> {
    // One statement, so the MAX read and the insert happen under the same write lock even
    // with another hub appending.
    conn.prepare_cached(
        "INSERT INTO job_events (job_id, at, level, message)
         VALUES (?1, MAX(?2, COALESCE((SELECT MAX(at) FROM job_events), 0) + 1), ?3, ?4)",
    )?
    .execute(params![job_id, now_ms(), level, message])?;
    Ok(())
}
