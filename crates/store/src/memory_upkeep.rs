//! Keeping memory bounded: finding automatic records past their policy, and dropping
//! change-log entries every consumer has passed. The store finds rows; what counts as
//! automatic and how much to keep is decided in `orchestra-memory`.

use rusqlite::params;

use crate::{Store, StoreError};

/// The tag that marks a record as automatic (with its producer). Fixed here, not a parameter:
/// the index the age-out reads (schema step 14) has it written into its expression.
pub const AUTOMATIC_TAG: &str = "auto";

/// Which automatic records have aged out of one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgedOutQuery<'a> {
    pub project_id: &'a str,
    /// Records count as automatic when their provenance names this producer and they carry
    /// [`AUTOMATIC_TAG`], and they are not pinned.
    pub producer: &'a str,
    /// The newest this many automatic records (by insertion) are kept...
    pub keep_newest: u32,
    /// ...unless last written before this time (Unix ms).
    pub older_than_ms: i64,
    /// At most this many ids per call, oldest first.
    pub limit: u32,
}

/// The automatic records beyond the newest `?3` or older than `?4`. Every expression and
/// column here is in `memory_records_automatic` (schema step 14), so the query reads that index
/// alone: the project's automatic records, however long its history, and no record's JSON.
pub(crate) const AGED_OUT: &str = r#"WITH automatic AS (
                 SELECT id, doc, updated_at,
                        ROW_NUMBER() OVER (ORDER BY doc DESC) AS newest
                 FROM memory_records
                 WHERE project_id = +?1 AND scope = 'project' AND pinned = 0
                   AND (CASE WHEN json_valid(record)
                        THEN json_extract(record, '$.provenance.producer') END) = +?2
                   AND (CASE WHEN json_valid(record)
                        THEN instr(json_extract(record, '$.tags'), '"auto"') > 0 END) = 1
             )
             SELECT id FROM automatic WHERE newest > ?3 OR updated_at < ?4
             ORDER BY doc LIMIT +?5"#;

impl Store {
    /// The ids of the project's automatic records beyond the newest `keep_newest`, or older
    /// than `older_than_ms`, oldest first.
    pub fn memory_aged_out(&self, query: &AgedOutQuery<'_>) -> Result<Vec<String>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(AGED_OUT)?;
        let ids = select.query_map(
            params![
                query.project_id,
                query.producer,
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
                 ORDER BY seq LIMIT +?2)",
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::AGED_OUT;
    use crate::schema::migrate;

    /// The age-out must not parse every record of a project, nor every automatic one: the
    /// planner has to answer it from the automatic-records index alone.
    #[test]
    fn aged_out_reads_only_the_automatic_records_index() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrate(&mut conn, std::path::Path::new(":memory:")).unwrap();
        let mut plan = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {AGED_OUT}"))
            .unwrap();
        let steps: Vec<String> = plan
            .query_map(rusqlite::params!["p", "hub", 10, 0, 10], |row| row.get(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let plan = steps.join("\n");
        assert!(
            plan.contains("USING COVERING INDEX memory_records_automatic"),
            "{plan}"
        );
        assert!(!plan.contains("SCAN memory_records"), "{plan}");
    }

    /// The tag written into the query (and the index) is the one the constant names.
    #[test]
    fn the_query_tests_the_automatic_tag() {
        assert!(AGED_OUT.contains(&format!("'\"{}\"'", super::AUTOMATIC_TAG)));
    }

    /// Only a tag equal to `auto` counts: not one that contains it, nor another case.
    #[test]
    fn only_the_exact_tag_counts_as_automatic() {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        migrate(&mut conn, std::path::Path::new(":memory:")).unwrap();
        let tags = [
            (r#"["auto"]"#, true),
            (r#"["x","auto","y"]"#, true),
            (r#"["automatic"]"#, false),
            (r#"["AUTO"]"#, false),
            (r#"["a\"auto\"b"]"#, false),
            (r#"[]"#, false),
        ];
        for (n, (tags, _)) in tags.iter().enumerate() {
            let record = format!(r#"{{"provenance":{{"producer":"hub"}},"tags":{tags}}}"#);
            conn.execute(
                "INSERT INTO memory_records (id, scope, project_id, kind, key, status, pinned, updated_at, record)
                 VALUES (?1, 'project', 'p', 'task', NULL, 'active', 0, 1, ?2)",
                rusqlite::params![format!("r{n}"), record],
            )
            .unwrap();
        }
        let mut select = conn.prepare(AGED_OUT).unwrap();
        let found: Vec<String> = select
            .query_map(rusqlite::params!["p", "hub", 0, 0, 100], |row| row.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<String> = tags
            .iter()
            .enumerate()
            .filter(|(_, (_, auto))| *auto)
            .map(|(n, _)| format!("r{n}"))
            .collect();
        assert_eq!(found, expected);
    }
}
