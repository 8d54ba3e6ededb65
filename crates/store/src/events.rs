//! The hub's event stream, kept so that a client that reconnects (`Last-Event-ID`) or starts
//! late gets every event it missed. Ids are assigned by the hub's event bus, not by SQLite:
//! the bus hands events to live subscribers before they reach the disk, and the ids must
//! already be final then.

use orchestra_protocol::HubEvent;
use rusqlite::{TransactionBehavior, params};

use crate::{Store, StoreError};

impl Store {
    /// Appends events in one transaction. An id that is already stored is left as it is
    /// (a retried batch must not fail on the part that made it).
    pub fn append_events(&self, events: &[HubEvent]) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (id, type, at, job_id, body) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?;
            for event in events {
                let body =
                    serde_json::to_string(event).map_err(|source| StoreError::EncodeEvent {
                        id: event.id,
                        source,
                    })?;
                insert.execute(params![
                    to_i64(event.id),
                    event.body.type_name(),
                    event.timestamp,
                    event.job_id(),
                    body
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Up to `limit` events with an id above `after`, oldest first. A row that no longer
    /// decodes (written by a newer version, or damaged) is skipped with a warning: a client
    /// replaying the stream must not be cut off by one bad row.
    pub fn events_after(&self, after: u64, limit: u32) -> Result<Vec<HubEvent>, StoreError> {
        let conn = self.conn();
        let mut select =
            conn.prepare_cached("SELECT id, body FROM events WHERE id > ?1 ORDER BY id LIMIT +?2")?;
        let rows = select.query_map(params![to_i64(after), limit], id_and_body)?;
        decode_rows(rows)
    }

    /// Up to `limit` events of one type (`orchestra.log`), newest first, with an id below
    /// `before` (all when `None`).
    pub fn events_of_type_before(
        &self,
        kind: &str,
        before: Option<u64>,
        limit: u32,
    ) -> Result<Vec<HubEvent>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT id, body FROM events WHERE type = +?1 AND id < ?2 ORDER BY id DESC LIMIT +?3",
        )?;
        let before = before.map_or(i64::MAX, to_i64);
        let rows = select.query_map(params![kind, before, limit], id_and_body)?;
        decode_rows(rows)
    }

    /// Up to `limit` events of one type with an id above `after`, oldest first.
    pub fn events_of_type_after(
        &self,
        kind: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<HubEvent>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT id, body FROM events WHERE type = +?1 AND id > ?2 ORDER BY id LIMIT +?3",
        )?;
        let rows = select.query_map(params![kind, to_i64(after), limit], id_and_body)?;
        decode_rows(rows)
    }

    /// Up to `limit` events about one job with an id above `after`, oldest first (the job's
    /// live peek: deltas, tool calls, questions, updates).
    pub fn job_events_after(
        &self,
        job_id: &str,
        after: u64,
        limit: u32,
    ) -> Result<Vec<HubEvent>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT id, body FROM events WHERE job_id = +?1 AND id > ?2 ORDER BY id LIMIT +?3",
        )?;
        let rows = select.query_map(params![job_id, to_i64(after), limit], id_and_body)?;
        decode_rows(rows)
    }

    /// The newest stored event id (0 when there is none): where a new hub's bus continues,
    /// so ids never repeat across hub restarts.
    pub fn last_event_id(&self) -> Result<u64, StoreError> {
        let id: Option<i64> = self
            .conn()
            .query_row("SELECT MAX(id) FROM events", [], |row| row.get(0))?;
        Ok(id.and_then(|id| u64::try_from(id).ok()).unwrap_or(0))
    }

    /// Keeps the newest `max_rows` events. Returns how many were removed.
    pub fn prune_events(&self, max_rows: u64) -> Result<u64, StoreError> {
        let removed = self.conn().execute(
            "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?1",
            [to_i64(max_rows)],
        )?;
        Ok(u64::try_from(removed).unwrap_or(0))
    }
}

/// Decodes `(id, body)` rows. A row that no longer decodes (written by a newer version, or
/// damaged) is skipped with a warning: a client replaying the stream must not be cut off by
/// one bad row.
fn decode_rows(
    rows: impl Iterator<Item = rusqlite::Result<(i64, String)>>,
) -> Result<Vec<HubEvent>, StoreError> {
    let mut out = Vec::new();
    for row in rows {
        let (id, body) = row?;
        match serde_json::from_str::<HubEvent>(&body) {
            Ok(event) => out.push(event),
            Err(err) => {
                tracing::warn!(id, error = %err, "skipping an event row that does not decode")
            }
        }
    }
    Ok(out)
}

fn id_and_body(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, String)> {
    Ok((row.get(0)?, row.get(1)?))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
