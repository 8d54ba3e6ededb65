//! Passthrough mode per OpenCode chat session (the original's `PassthroughState`): while a
//! session has a row, every user message in it goes to `worker_id` and only the worker's
//! answer comes back. Kept here so a restarted hub keeps the mode.

use orchestra_protocol::now_ms;
use rusqlite::{OptionalExtension, params};

use crate::{Store, StoreError};

/// One session in passthrough mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PassthroughState {
    pub session_id: String,
    pub worker_id: String,
    /// Unix ms when the session entered passthrough (kept when the worker changes).
    pub enabled_at: i64,
    pub updated_at: i64,
}

impl Store {
    /// Puts a session in passthrough to `worker_id` (or moves it to that worker).
    pub fn set_passthrough(
        &self,
        session_id: &str,
        worker_id: &str,
    ) -> Result<PassthroughState, StoreError> {
        let now = now_ms();
        let conn = self.conn();
        conn.execute(
            "INSERT INTO passthrough (session_id, worker_id, enabled_at, updated_at)
             VALUES (?1, ?2, ?3, ?3)
             ON CONFLICT(session_id) DO UPDATE SET worker_id = ?2, updated_at = ?3",
            params![session_id, worker_id, now],
        )?;
        let state = conn.query_row(
            "SELECT session_id, worker_id, enabled_at, updated_at FROM passthrough
             WHERE session_id = ?1",
            [session_id],
            state_of_row,
        )?;
        Ok(state)
    }

    /// The session's passthrough, if it is in that mode.
    pub fn passthrough(&self, session_id: &str) -> Result<Option<PassthroughState>, StoreError> {
        let state = self
            .conn()
            .query_row(
                "SELECT session_id, worker_id, enabled_at, updated_at FROM passthrough
                 WHERE session_id = ?1",
                [session_id],
                state_of_row,
            )
            .optional()?;
        Ok(state)
    }

    /// Ends the session's passthrough; false when it was not in that mode.
    pub fn clear_passthrough(&self, session_id: &str) -> Result<bool, StoreError> {
        let removed = self.conn().execute(
            "DELETE FROM passthrough WHERE session_id = ?1",
            [session_id],
        )?;
        Ok(removed > 0)
    }
}

fn state_of_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<PassthroughState> {
    Ok(PassthroughState {
        session_id: row.get(0)?,
        worker_id: row.get(1)?,
        enabled_at: row.get(2)?,
        updated_at: row.get(3)?,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_session_enters_moves_and_leaves_passthrough_across_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orchestra.db");
        let store = Store::open(&path).unwrap();
        assert_eq!(store.passthrough("ses_a").unwrap(), None);
        let first = store.set_passthrough("ses_a", "docs").unwrap();
        let moved = store.set_passthrough("ses_a", "coder").unwrap();
        assert_eq!(moved.worker_id, "coder");
        assert_eq!(moved.enabled_at, first.enabled_at);
        drop(store);
        let store = Store::open(&path).unwrap();
        assert_eq!(store.passthrough("ses_a").unwrap(), Some(moved));
        assert!(store.clear_passthrough("ses_a").unwrap());
        assert!(!store.clear_passthrough("ses_a").unwrap());
        assert_eq!(store.passthrough("ses_a").unwrap(), None);
    }
}
