//! Memory records, links and their append-only change log.
//!
//! The store knows rows, not policy: what a put means (update by key, supersede, redact) is
//! decided in `orchestra-memory`, which composes the typed steps of a [`MemoryTx`] inside one
//! `BEGIN IMMEDIATE` transaction, so a put and its change-log entry commit together and two
//! processes cannot both create the active record for one key. The `record` column is the
//! source of truth; one unreadable row is skipped and reported, never fatal to a listing.

use orchestra_protocol::memory::{
    ChangeAction, MemoryChange, MemoryLink, MemoryRecord, MemoryScope, MemoryStatus, SkippedRecord,
};
use orchestra_protocol::now_ms;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::{Store, StoreError};

/// A record and its row number, the search index's handle on it.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryRow {
    pub doc: i64,
    pub record: MemoryRecord,
}

/// Rows read, plus the ones that could not be decoded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryRows {
    pub rows: Vec<MemoryRow>,
    pub skipped: Vec<SkippedRecord>,
}

/// Which records [`Store::memory_list`] returns, newest first (by `doc`, the insertion order).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemoryListFilter {
    /// `Some("")` selects global records; `None` any project.
    pub project_id: Option<String>,
    pub scope: Option<MemoryScope>,
    /// `None`: every status.
    pub status: Option<MemoryStatus>,
    pub pinned_only: bool,
    /// Rows with `doc` below this (paging newest → oldest).
    pub before_doc: Option<i64>,
    pub limit: u32,
}

/// The project column of a record: its project id, or `""` for global records.
pub fn memory_project_column(record: &MemoryRecord) -> &str {
    match record.scope {
        MemoryScope::Project => record.project_id.as_deref().unwrap_or(""),
        MemoryScope::Global => "",
    }
}

fn encode(record: &MemoryRecord) -> Result<String, StoreError> {
    serde_json::to_string(record).map_err(|source| StoreError::EncodeMemory {
        id: record.id.clone(),
        source,
    })
}

/// Decodes one `(doc, id, record)` row; a bad row becomes a [`SkippedRecord`].
fn decode_into(doc: i64, id: String, json: &str, out: &mut MemoryRows) {
    match serde_json::from_str::<MemoryRecord>(json) {
        Ok(record) => out.rows.push(MemoryRow { doc, record }),
        Err(error) => {
            tracing::warn!(%id, %error, "skipping an unreadable memory record");
            out.skipped.push(SkippedRecord {
                id,
                reason: format!("unreadable record: {error}"),
            });
        }
    }
}

/// Decodes `(doc, id, record)` rows, skipping unreadable ones; also returns the last `doc` read.
fn collect_rows(
    rows: impl Iterator<Item = rusqlite::Result<(i64, String, String)>>,
) -> Result<(MemoryRows, Option<i64>), StoreError> {
    let mut out = MemoryRows::default();
    let mut last = None;
    for row in rows {
        let (doc, id, json) = row?;
        last = Some(doc);
        decode_into(doc, id, &json, &mut out);
    }
    Ok((out, last))
}

fn row_triple(row: &Row<'_>) -> rusqlite::Result<(i64, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?))
}

fn decode_one(doc: i64, id: String, json: &str) -> Result<MemoryRow, StoreError> {
    serde_json::from_str::<MemoryRecord>(json)
        .map(|record| MemoryRow { doc, record })
        .map_err(|source| StoreError::CorruptMemory { id, source })
}

/// The steps of one memory write, all inside one immediate transaction.
pub struct MemoryTx<'a> {
    conn: &'a Connection,
}

impl MemoryTx<'_> {
    /// The active record with this scope, project and key.
    pub fn find_active_by_key(
        &self,
        scope: MemoryScope,
        project_id: &str,
        key: &str,
    ) -> Result<Option<MemoryRow>, StoreError> {
        let mut select = self.conn.prepare_cached(
            "SELECT doc, id, record FROM memory_records
             WHERE scope = +?1 AND project_id = ?2 AND key = ?3 AND status = 'active'",
        )?;
        let found = select
            .query_row(params![scope.as_str(), project_id, key], row_triple)
            .optional()?;
        found
            .map(|(doc, id, json)| decode_one(doc, id, &json))
            .transpose()
    }

    /// The newest record (any status) with this scope, project and key.
    pub fn find_latest_by_key(
        &self,
        scope: MemoryScope,
        project_id: &str,
        key: &str,
    ) -> Result<Option<MemoryRow>, StoreError> {
        let mut select = self.conn.prepare_cached(
            "SELECT doc, id, record FROM memory_records
             WHERE scope = +?1 AND project_id = +?2 AND key = +?3 ORDER BY doc DESC LIMIT 1",
        )?;
        let found = select
            .query_row(params![scope.as_str(), project_id, key], row_triple)
            .optional()?;
        found
            .map(|(doc, id, json)| decode_one(doc, id, &json))
            .transpose()
    }

    pub fn get(&self, id: &str) -> Result<Option<MemoryRow>, StoreError> {
        get_row(self.conn, id)
    }

    /// Adds a record; returns its `doc`.
    pub fn insert(&self, record: &MemoryRecord) -> Result<i64, StoreError> {
        insert_record(self.conn, record)
    }

    /// Rewrites the record with `record.id`. Returns false if there is none.
    pub fn update(&self, record: &MemoryRecord) -> Result<bool, StoreError> {
        let json = encode(record)?;
        let changed = self
            .conn
            .prepare_cached(
                "UPDATE memory_records SET scope = ?2, project_id = ?3, kind = ?4, key = ?5,
                status = ?6, pinned = ?7, updated_at = ?8, record = ?9
             WHERE id = ?1",
            )?
            .execute(params![
                record.id,
                record.scope.as_str(),
                memory_project_column(record),
                record.kind,
                record.key,
                record.status.as_str(),
                record.pinned,
                record.updated_at,
                json
            ])?;
        Ok(changed == 1)
    }

    /// Removes a record and its links. Returns false if there was none.
    pub fn delete(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self
            .conn
            .execute("DELETE FROM memory_records WHERE id = ?1", [id])?;
        self.conn.execute(
            "DELETE FROM memory_links WHERE from_id = ?1 OR to_id = ?1",
            [id],
        )?;
        Ok(removed == 1)
    }

    /// Adds a link; false if the same link already existed.
    pub fn insert_link(&self, link: &MemoryLink) -> Result<bool, StoreError> {
        insert_link(self.conn, link)
    }

    /// Appends to the change log.
    pub fn log(
        &self,
        action: ChangeAction,
        record_id: &str,
        project_id: &str,
        payload: Option<&serde_json::Value>,
    ) -> Result<i64, StoreError> {
        let payload = payload.map(serde_json::Value::to_string);
        log_change(self.conn, action, record_id, project_id, payload.as_deref())
    }

    /// Whether any link starts or ends at `id`.
    pub fn has_links(&self, id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM memory_links WHERE from_id = ?1)
                     OR EXISTS (SELECT 1 FROM memory_links WHERE to_id = ?1)",
            )?
            .query_row([id], |row| row.get(0))?)
    }

    /// Sets `payload` to NULL in every change-log entry about `record_id` (as source or
    /// target of a link too): what a privacy delete leaves is that something was deleted.
    /// `linked` says whether the record has links (checked before they are deleted): only then
    /// can another record's link entry name it, and only then is the whole log scanned for
    /// such entries — the age-out deletes thousands of unlinked records in one pass.
    pub fn scrub_log(&self, record_id: &str, linked: bool) -> Result<usize, StoreError> {
        let mut scrubbed = self.conn.execute(
            "UPDATE memory_changes SET payload = NULL WHERE record_id = ?1",
            [record_id],
        )?;
        if linked {
            scrubbed += self.conn.execute(
                "UPDATE memory_changes SET payload = NULL
                 WHERE action = 'link' AND payload LIKE '%' || ?1 || '%'",
                [format!("\"{record_id}\"")],
            )?;
        }
        Ok(scrubbed)
    }
}

fn get_row(conn: &Connection, id: &str) -> Result<Option<MemoryRow>, StoreError> {
    let mut select =
        conn.prepare_cached("SELECT doc, id, record FROM memory_records WHERE id = ?1")?;
    let found = select.query_row([id], row_triple).optional()?;
    found
        .map(|(doc, id, json)| decode_one(doc, id, &json))
        .transpose()
}

fn insert_record(conn: &Connection, record: &MemoryRecord) -> Result<i64, StoreError> {
    insert_encoded(conn, record, &encode(record)?)
}

fn insert_encoded(conn: &Connection, record: &MemoryRecord, json: &str) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO memory_records
            (id, scope, project_id, kind, key, status, pinned, updated_at, record)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        record.id,
        record.scope.as_str(),
        memory_project_column(record),
        record.kind,
        record.key,
        record.status.as_str(),
        record.pinned,
        record.updated_at,
        json
    ])
    .map_err(|error| match error.sqlite_error_code() {
        Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::DuplicateMemory {
            id: record.id.clone(),
        },
        _ => error.into(),
    })?;
    Ok(conn.last_insert_rowid())
}

fn insert_link(conn: &Connection, link: &MemoryLink) -> Result<bool, StoreError> {
    let added = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO memory_links (from_id, to_id, relation, created_at)
             VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![link.from, link.to, link.relation, link.created_at])?;
    Ok(added == 1)
}

fn log_change(
    conn: &Connection,
    action: ChangeAction,
    record_id: &str,
    project_id: &str,
    payload: Option<&str>,
) -> Result<i64, StoreError> {
    conn.prepare_cached(
        "INSERT INTO memory_changes (at, action, record_id, project_id, payload)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        now_ms(),
        action.as_str(),
        record_id,
        project_id,
        payload
    ])?;
    Ok(conn.last_insert_rowid())
}

/// What [`Store::memory_import`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MemoryImportCounts {
    pub records: u64,
    /// Records whose id was already in the store (left as they were).
    pub existing: u64,
    pub links: u64,
}

impl Store {
    /// Runs `write` in one immediate transaction: everything it did commits together
    /// (durably, per SQLite's WAL) or not at all.
    pub fn memory_write<T, E>(
        &self,
        write: impl FnOnce(&MemoryTx<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.memory_transaction(TransactionBehavior::Immediate, write)
    }

    /// Runs `read` in one deferred (read) transaction, so its lookups see one snapshot without
    /// taking the write lock. Only the lookups of [`MemoryTx`] belong in it.
    pub fn memory_read<T, E>(
        &self,
        read: impl FnOnce(&MemoryTx<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        self.memory_transaction(TransactionBehavior::Deferred, read)
    }

    fn memory_transaction<T, E>(
        &self,
        behavior: TransactionBehavior,
        run: impl FnOnce(&MemoryTx<'_>) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<StoreError>,
    {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(StoreError::from)?;
        let value = run(&MemoryTx { conn: &tx })?;
        tx.commit().map_err(StoreError::from)?;
        Ok(value)
    }

    /// Adds many records and links in one transaction, each with its change-log entry.
    /// Records whose id exists are left alone and counted in `existing`; an active record
    /// whose key is taken is imported as `superseded`.
    pub fn memory_import(
        &self,
        records: &[MemoryRecord],
        links: &[MemoryLink],
    ) -> Result<MemoryImportCounts, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut counts = MemoryImportCounts::default();
        for record in records {
            let exists: Option<i64> = tx
                .prepare_cached("SELECT doc FROM memory_records WHERE id = ?1")?
                .query_row([&record.id], |row| row.get(0))
                .optional()?;
            if exists.is_some() {
                counts.existing += 1;
                continue;
            }
            let mut record = record.clone();
            if let (MemoryStatus::Active, Some(key)) = (record.status, &record.key) {
                let taken: Option<i64> = tx
                    .prepare_cached(
                        "SELECT doc FROM memory_records
                         WHERE scope = +?1 AND project_id = ?2 AND key = ?3 AND status = 'active'",
                    )?
                    .query_row(
                        params![record.scope.as_str(), memory_project_column(&record), key],
                        |row| row.get(0),
                    )
                    .optional()?;
                if taken.is_some() {
                    record.status = MemoryStatus::Superseded;
                }
            }
            // One encoding serves the row and its change-log entry.
            let json = encode(&record)?;
            insert_encoded(&tx, &record, &json)?;
            log_change(
                &tx,
                ChangeAction::Put,
                &record.id,
                memory_project_column(&record),
                Some(&json),
            )?;
            counts.records += 1;
        }
        for link in links {
            if insert_link(&tx, link)? {
                let payload =
                    serde_json::to_string(link).map_err(|source| StoreError::EncodeMemory {
                        id: link.from.clone(),
                        source,
                    })?;
                let project = project_of(&tx, &link.from)?;
                log_change(
                    &tx,
                    ChangeAction::Link,
                    &link.from,
                    &project,
                    Some(&payload),
                )?;
                counts.links += 1;
            }
        }
        tx.commit()?;
        Ok(counts)
    }

    pub fn memory_get(&self, id: &str) -> Result<Option<MemoryRow>, StoreError> {
        get_row(&self.conn(), id)
    }

    /// The rows with these `doc`s, in the order given; missing ones are left out.
    pub fn memory_by_docs(&self, docs: &[i64]) -> Result<MemoryRows, StoreError> {
        self.memory_rows_by("doc", docs)
    }

    /// The rows with these ids, in the order given; missing ones are left out.
    pub fn memory_by_ids(&self, ids: &[String]) -> Result<MemoryRows, StoreError> {
        self.memory_rows_by("id", ids)
    }

    /// One lookup per key on a unique column (`doc` or `id`), in the order given.
    fn memory_rows_by<K: rusqlite::ToSql>(
        &self,
        column: &'static str,
        keys: &[K],
    ) -> Result<MemoryRows, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(&format!(
            "SELECT doc, id, record FROM memory_records WHERE {column} = ?1"
        ))?;
        let mut out = MemoryRows::default();
        for key in keys {
            if let Some((doc, id, json)) = select.query_row([key], row_triple).optional()? {
                decode_into(doc, id, &json, &mut out);
            }
        }
        Ok(out)
    }

    /// Records matching `filter`, newest first.
    pub fn memory_list(&self, filter: &MemoryListFilter) -> Result<MemoryRows, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT doc, id, record FROM memory_records
             WHERE (?1 IS NULL OR project_id = ?1)
               AND (?2 IS NULL OR scope = +?2)
               AND (?3 IS NULL OR status = ?3)
               AND (?4 = 0 OR pinned = 1)
               AND (?5 IS NULL OR doc < ?5)
             ORDER BY doc DESC
             LIMIT +?6",
        )?;
        let rows = select.query_map(
            params![
                filter.project_id,
                filter.scope.map(MemoryScope::as_str),
                filter.status.map(MemoryStatus::as_str),
                filter.pinned_only,
                filter.before_doc,
                filter.limit
            ],
            row_triple,
        )?;
        Ok(collect_rows(rows)?.0)
    }

    /// The active pinned records of one owner (project column `""` for global), newest first.
    pub fn memory_pinned(
        &self,
        scope: MemoryScope,
        project_id: &str,
        limit: u32,
    ) -> Result<MemoryRows, StoreError> {
        let conn = self.conn();
        // Spelled to match the partial index `memory_records_pinned`.
        let mut select = conn.prepare_cached(
            "SELECT doc, id, record FROM memory_records
             WHERE project_id = +?1 AND scope = +?2 AND pinned = 1 AND status = 'active'
             ORDER BY doc DESC LIMIT +?3",
        )?;
        let rows = select.query_map(params![project_id, scope.as_str(), limit], row_triple)?;
        Ok(collect_rows(rows)?.0)
    }

    /// Records in `doc` order after `after_doc` (for rebuilding the index and exporting), and
    /// the last `doc` read — past any unreadable rows, so a caller paging on it never stalls.
    pub fn memory_scan(
        &self,
        after_doc: i64,
        limit: u32,
    ) -> Result<(MemoryRows, Option<i64>), StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT doc, id, record FROM memory_records WHERE doc > ?1 ORDER BY doc LIMIT +?2",
        )?;
        let rows = select.query_map(params![after_doc, limit], row_triple)?;
        collect_rows(rows)
    }

    pub fn memory_count(&self) -> Result<u64, StoreError> {
        let count: i64 =
            self.conn()
                .query_row("SELECT COUNT(*) FROM memory_records", [], |row| row.get(0))?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Links from or to `id`.
    pub fn memory_links_of(&self, id: &str) -> Result<Vec<MemoryLink>, StoreError> {
        self.memory_links_where("from_id = ?1 OR to_id = ?1", Some(id))
    }

    /// Every link, in a stable order (for export).
    pub fn memory_all_links(&self) -> Result<Vec<MemoryLink>, StoreError> {
        self.memory_links_where("?1 IS NULL", None)
    }

    fn memory_links_where(
        &self,
        condition: &'static str,
        id: Option<&str>,
    ) -> Result<Vec<MemoryLink>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(&format!(
            "SELECT from_id, to_id, relation, created_at FROM memory_links
             WHERE {condition} ORDER BY created_at, from_id, to_id, relation"
        ))?;
        let rows = select.query_map([id], |row| {
            Ok(MemoryLink {
                from: row.get(0)?,
                to: row.get(1)?,
                relation: row.get(2)?,
                created_at: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest change-log sequence number (0 for an empty log).
    pub fn memory_head_seq(&self) -> Result<i64, StoreError> {
        Ok(self.conn().query_row(
            "SELECT COALESCE(MAX(seq), 0) FROM memory_changes",
            [],
            |row| row.get(0),
        )?)
    }

    /// Up to `limit` change-log entries after `seq`, oldest first. An entry whose action or
    /// payload cannot be read comes back with `payload: None` and a warning.
    pub fn memory_changes_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> Result<Vec<MemoryChange>, StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT seq, at, action, record_id, project_id, payload FROM memory_changes
             WHERE seq > ?1 ORDER BY seq LIMIT +?2",
        )?;
        let rows = select.query_map(params![seq, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
                row.get::<_, Option<String>>(5)?,
            ))
        })?;
        let mut changes = Vec::new();
        for row in rows {
            let (seq, at, action, record_id, project_id, payload) = row?;
            let Some(action) = ChangeAction::parse(&action) else {
                tracing::warn!(
                    seq,
                    action,
                    "skipping a change-log entry with an unknown action"
                );
                continue;
            };
            let payload = payload.and_then(|text| match serde_json::from_str(&text) {
                Ok(value) => Some(value),
                Err(error) => {
                    tracing::warn!(seq, %error, "change-log payload unreadable; passing it on empty");
                    None
                }
            });
            changes.push(MemoryChange {
                seq,
                at,
                action,
                record_id,
                project_id: (!project_id.is_empty()).then_some(project_id),
                payload,
            });
        }
        Ok(changes)
    }

    /// Distinct record ids changed after `seq` (at most `limit` entries read), each with
    /// whether its first change there is its creation (`put`), and the last sequence number
    /// read. For keeping a search index in step: a record created after the index's snapshot
    /// has no document to replace.
    pub fn memory_changed_ids_after(
        &self,
        seq: i64,
        limit: u32,
    ) -> Result<(Vec<(String, bool)>, i64), StoreError> {
        let conn = self.conn();
        let mut select = conn.prepare_cached(
            "SELECT seq, record_id, action FROM memory_changes WHERE seq > ?1 ORDER BY seq LIMIT +?2",
        )?;
        let rows = select.query_map(params![seq, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut last = seq;
        let mut ids: Vec<(String, bool)> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for row in rows {
            let (seq, id, action) = row?;
            last = seq;
            if seen.insert(id.clone()) {
                let created = action == ChangeAction::Put.as_str();
                ids.push((id, created));
            }
        }
        Ok((ids, last))
    }

    /// The change log's head and the largest `doc`, read together: an index built from the
    /// records up to that `doc` reflects the log up to that head.
    pub fn memory_snapshot_heads(&self) -> Result<(i64, i64), StoreError> {
        Ok(self.conn().query_row(
            "SELECT (SELECT COALESCE(MAX(seq), 0) FROM memory_changes),
                    (SELECT COALESCE(MAX(doc), 0) FROM memory_records)",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?)
    }

    /// Where the change-log consumer `name` stopped (0 if it never ran).
    pub fn memory_cursor(&self, name: &str) -> Result<i64, StoreError> {
        Ok(self
            .conn()
            .query_row(
                "SELECT seq FROM memory_cursors WHERE name = ?1",
                [name],
                |row| row.get(0),
            )
            .optional()?
            .unwrap_or(0))
    }

    pub fn set_memory_cursor(&self, name: &str, seq: i64) -> Result<(), StoreError> {
        self.conn().execute(
            "INSERT INTO memory_cursors (name, seq, updated_at) VALUES (?1, ?2, ?3)
             ON CONFLICT(name) DO UPDATE SET seq = excluded.seq, updated_at = excluded.updated_at",
            params![name, seq, now_ms()],
        )?;
        Ok(())
    }
}

fn project_of(conn: &Connection, id: &str) -> Result<String, StoreError> {
    Ok(conn
        .prepare_cached("SELECT project_id FROM memory_records WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?
        .unwrap_or_default())
}
