//! What a project's worker jobs spent since a time: the source of the per-day budget, read
//! from the stored records so a hub restart neither resets nor double-counts it.

use orchestra_protocol::{BudgetSpend, TaskKind};

use crate::jobs::decode;
use crate::{Store, StoreError};

impl Store {
    /// Tokens, cost, model steps and time of every worker job started at or after `since`
    /// (unix ms). Workflow and op jobs are left out: a workflow's steps are worker jobs
    /// already counted. Model steps are known for tasks that had a budget (`spent`); time for
    /// tasks that ended. A record that does not decode is skipped.
    pub fn worker_spend_since(&self, since: i64) -> Result<BudgetSpend, StoreError> {
        let conn = self.conn();
        let mut statement = conn
            .prepare("SELECT id, record FROM jobs WHERE started_at >= ?1 AND kind IN (?2, ?3)")?;
        let rows = statement.query_map(
            rusqlite::params![since, TaskKind::Worker.as_str(), TaskKind::Auto.as_str()],
            |row| Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?)),
        )?;
        let mut records = Vec::new();
        for row in rows {
            let (id, json) = row?;
            if let Ok(record) = decode(&id, &json) {
                records.push(record);
            }
        }
        drop(statement);
        drop(conn);
        // A continued task's `spent` includes its predecessors': its own model steps are what
        // it adds to the task it continues.
        let steps_of = |id: &str| -> Result<u32, StoreError> {
            if let Some(earlier) = records.iter().find(|r| r.id == id) {
                return Ok(earlier.spent.map_or(0, |s| s.turns));
            }
            Ok(self
                .get_job(id)?
                .and_then(|r| r.spent)
                .map_or(0, |s| s.turns))
        };
        let mut total = BudgetSpend::default();
        for record in &records {
            let ms = record
                .duration_ms
                .and_then(|ms| u64::try_from(ms).ok())
                .unwrap_or(0);
            let mut turns = record.spent.map_or(0, |s| s.turns);
            if let Some(earlier) = &record.continues_task_id {
                turns = turns.saturating_sub(steps_of(earlier)?);
            }
            total = total.plus(BudgetSpend::of(
                record.usage.total(),
                record.usage.cost,
                turns,
                ms,
            ));
        }
        Ok(total)
    }
}
