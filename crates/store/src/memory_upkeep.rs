//! Keeping memory bounded: finding automatic records past their policy, and dropping
//! change-log entries every consumer has passed. The store finds rows; what counts as
//! automatic and how much to keep is decided in `orchestra-memory`.

use rusqlite::params;

use crate::{Store, StoreError};

/// Which automatic records have aged out of one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgedOutQuery<'a> {
    pub project_id: &'a str,
    /// Records count as automatic when their provenance names this producer and they carry
    /// this tag, and they are not pinned.
    pub producer: &'a str,
    pub tag: &'a str,
    /// The newest this many automatic records (by insertion) are kept...
    pub keep_newest: u32,
    /// ...unless last written before this time (Unix ms).
    pub older_than_ms: i64,
    /// At most this many ids per call, oldest first.
    pub limit: u32,
}

impl Store {
    /// The ids of the project's automatic records beyond the newest `keep_newest`, or older
    /// than `older_than_ms`, oldest first.
    pub fn memory_aged_out(&self, query: &AgedOutQuery<'_>) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "WITH automatic AS (
                 SELECT id, doc, updated_at,
                        ROW_NUMBER() OVER (ORDER BY doc DESC) AS newest
                 FROM memory_records
                 WHERE project_id = ?1 AND scope = 'project' AND pinned = 0
                   AND json_valid(record)
                   AND json_extract(record, '$.provenance.producer') = ?2
                   AND EXISTS (SELECT 1 FROM json_each(record, '$.tags') WHERE value = ?3)
             )
             SELECT id FROM automatic WHERE newest > ?4 OR updated_at < ?5
             ORDER BY doc LIMIT ?6",
        )?;
        let ids = select.query_map(
            params![
                query.project_id,
                query.producer,
                query.tag,
                query.keep_newest,
                query.older_than_ms,
                query.limit
            ],
            |row| row.get::<_, String>(0),
        )?;
        Ok(ids.collect::<Result<_, _>>()?)
    }

    /// Every change-log consumer's position (`memory_cursors`), by name.
    pub fn memory_cursors(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let conn = self.conn();
        let mut select =
            conn.prepare_cached("SELECT name, seq FROM memory_cursors ORDER BY name")?;
        let rows = select.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes up to `limit` change-log entries with `seq <= passed`, oldest first, and
    /// returns how many went. The newest entry always stays: the log's head is what an index
    /// compares itself with (a head below the index's means "the store was replaced").
    pub fn memory_compact_changes(&self, passed: i64, limit: u32) -> Result<usize, StoreError> {
        Ok(self.conn().execute(
            "DELETE FROM memory_changes WHERE seq IN (
                 SELECT seq FROM memory_changes
                 WHERE seq <= ?1 AND seq < (SELECT MAX(seq) FROM memory_changes)
                 ORDER BY seq LIMIT ?2)",
            params![passed, limit],
        )?)
    }

    /// Change-log entries kept (for stats and tests).
    pub fn memory_change_count(&self) -> Result<u64, StoreError> {
        let count: i64 =
            self.conn()
                .query_row("SELECT COUNT(*) FROM memory_changes", [], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }
}
