//! Deliveries of events to the user's `notify` targets. One row per (target, event); the
//! envelope is kept so a pending webhook delivery can be sent again by the next hub.

use orchestra_protocol::{DeliveryStatus, NotifyDelivery};
use rusqlite::{OptionalExtension, Row, params};

use crate::{Store, StoreError};

const COLUMNS: &str = "id, target, event_id, event_type, status, attempts, last_error, \
                       created_at, next_attempt_at, delivered_at";

fn delivery(row: &Row<'_>) -> rusqlite::Result<NotifyDelivery> {
    let status: String = row.get(4)?;
    Ok(NotifyDelivery {
        id: row.get(0)?,
        target: row.get(1)?,
        event_id: u64::try_from(row.get::<_, i64>(2)?).unwrap_or(0),
        event_type: row.get(3)?,
        // Written only by this module; an unknown word is shown as failed rather than lost.
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Failed),
        attempts: u32::try_from(row.get::<_, i64>(5)?).unwrap_or(u32::MAX),
        last_error: row.get(6)?,
        created_at: row.get(7)?,
        next_attempt_at: row.get(8)?,
        delivered_at: row.get(9)?,
    })
}

/// What one attempt did to a delivery.
#[derive(Debug, Clone, PartialEq)]
pub struct DeliveryAttempt {
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<i64>,
    pub delivered_at: Option<i64>,
}

impl Store {
    /// Records a new pending delivery; `None` when this target already has this event (a
    /// replay after a restart), so an event is never queued twice for one target.
    pub fn add_delivery(
        &self,
        target: &str,
        event_id: u64,
        event_type: &str,
        envelope: &str,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let conn = self.conn();
        let changed = conn.execute(
            "INSERT OR IGNORE INTO notify_deliveries
                 (target, event_id, event_type, envelope, status, attempts, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
            params![
                target,
                i64::try_from(event_id).unwrap_or(i64::MAX),
                event_type,
                envelope,
                now
            ],
        )?;
        Ok((changed == 1).then(|| conn.last_insert_rowid()))
    }

    pub fn update_delivery(&self, id: i64, attempt: &DeliveryAttempt) -> Result<(), StoreError> {
        self.conn().execute(
            "UPDATE notify_deliveries SET status = ?2, attempts = ?3, last_error = ?4,
                 next_attempt_at = ?5, delivered_at = ?6 WHERE id = ?1",
            params![
                id,
                attempt.status.as_str(),
                attempt.attempts,
                attempt.last_error,
                attempt.next_attempt_at,
                attempt.delivered_at
            ],
        )?;
        Ok(())
    }

    /// Every pending delivery with its envelope, oldest first: what a starting hub resumes.
    pub fn pending_deliveries(&self) -> Result<Vec<(NotifyDelivery, String)>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare(&format!(
            "SELECT {COLUMNS}, envelope FROM notify_deliveries WHERE status = 'pending' ORDER BY id"
        ))?;
        let rows = statement
            .query_map([], |row| Ok((delivery(row)?, row.get::<_, String>(10)?)))?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The newest deliveries, optionally of one status.
    pub fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        limit: u32,
    ) -> Result<Vec<NotifyDelivery>, StoreError> {
        let conn = self.conn();
        let mut statement = conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM notify_deliveries WHERE ?1 IS NULL OR status = +?1
             ORDER BY id DESC LIMIT +?2"
        ))?;
        let rows = statement
            .query_map(params![status.map(DeliveryStatus::as_str), limit], delivery)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    pub fn delivery(&self, id: i64) -> Result<Option<NotifyDelivery>, StoreError> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM notify_deliveries WHERE id = ?1"),
                [id],
                delivery,
            )
            .optional()?)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_event_is_queued_once_per_target_and_updates_stick() {
        let store = Store::open_in_memory().unwrap();
        let id = store
            .add_delivery("webhook http://x", 7, "orchestra.job.finished", "{}", 100)
            .unwrap()
            .unwrap();
        assert_eq!(
            store
                .add_delivery("webhook http://x", 7, "orchestra.job.finished", "{}", 101)
                .unwrap(),
            None
        );
        assert!(
            store
                .add_delivery("desktop", 7, "orchestra.job.finished", "{}", 101)
                .unwrap()
                .is_some()
        );
        assert_eq!(store.pending_deliveries().unwrap().len(), 2);
        store
            .update_delivery(
                id,
                &DeliveryAttempt {
                    status: DeliveryStatus::Failed,
                    attempts: 3,
                    last_error: Some("HTTP 500".into()),
                    next_attempt_at: None,
                    delivered_at: None,
                },
            )
            .unwrap();
        let failed = store.deliveries(Some(DeliveryStatus::Failed), 10).unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].attempts, 3);
        assert_eq!(failed[0].last_error.as_deref(), Some("HTTP 500"));
        assert_eq!(store.pending_deliveries().unwrap().len(), 1);
        assert_eq!(store.deliveries(None, 10).unwrap().len(), 2);
    }
}
