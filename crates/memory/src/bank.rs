//! One store and its search index: the writes (put, link, forget, import) and lookups.
//!
//! Every write is one SQLite transaction that also appends to the change log; the index learns
//! of it at the next search (see `index`). A record is addressed by its owner — the scope and
//! the project column (`""` for global) — and a write or lookup never touches a record of
//! another owner, even when two projects share one store file.

use std::path::PathBuf;
use std::sync::Arc;

use orchestra_protocol::memory::{
    ChangeAction, ForgetMode, MemoryLink, MemoryPut, MemoryPutResult, MemoryRecord, MemoryScope,
    MemoryStatus, PutOutcome,
};
use orchestra_protocol::now_ms;
use orchestra_store::{MemoryRow, MemoryTx, Store, StoreError, memory_project_column};
use serde::{Deserialize, Serialize};

use crate::MemoryError;
use crate::index::{IndexHome, MemoryIndex};

/// Whose records: the scope and the project column (`""` for global).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owner {
    pub scope: MemoryScope,
    pub project: String,
}

impl Owner {
    pub(crate) fn owns(&self, record: &MemoryRecord) -> bool {
        record.scope == self.scope && memory_project_column(record) == self.project
    }

    pub(crate) fn label(&self) -> String {
        match self.scope {
            MemoryScope::Global => "global".to_owned(),
            MemoryScope::Project => format!("project `{}`", self.project),
        }
    }
}

/// What `forget` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForgetResult {
    pub id: String,
    pub mode: ForgetMode,
    /// False when the record was already retracted.
    pub changed: bool,
}

/// A store plus its search index.
pub struct MemoryBank {
    store: Arc<Store>,
    index: MemoryIndex,
}

impl std::fmt::Debug for MemoryBank {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBank")
            .field("store", &self.store.path())
            .field("index", &self.index)
            .finish()
    }
}

/// The index folder of a store: `memory-index/` beside the store file.
pub fn index_dir_of(store: &Store) -> Option<PathBuf> {
    let path = store.path();
    if path.as_os_str() == ":memory:" {
        return None;
    }
    Some(
        path.parent()
            .map_or_else(|| PathBuf::from("."), std::path::Path::to_path_buf)
            .join("memory-index"),
    )
}

pub(crate) fn new_id() -> String {
    let uuid = uuid::Uuid::new_v4().simple().to_string();
    format!("mem_{}", &uuid[..16])
}

fn payload(record: &MemoryRecord) -> Result<serde_json::Value, MemoryError> {
    serde_json::to_value(record).map_err(|source| {
        MemoryError::Store(StoreError::EncodeMemory {
            id: record.id.clone(),
            source,
        })
    })
}

fn log_record(
    tx: &MemoryTx<'_>,
    action: ChangeAction,
    record: &MemoryRecord,
) -> Result<(), MemoryError> {
    tx.log(
        action,
        &record.id,
        memory_project_column(record),
        Some(&payload(record)?),
    )?;
    Ok(())
}

/// Adds a link and its change-log entry (nothing when the link already exists).
fn add_link(tx: &MemoryTx<'_>, owner: &Owner, link: MemoryLink) -> Result<MemoryLink, MemoryError> {
    if tx.insert_link(&link)? {
        let payload = serde_json::to_value(&link).map_err(|source| {
            MemoryError::Store(StoreError::EncodeMemory {
                id: link.from.clone(),
                source,
            })
        })?;
        tx.log(
            ChangeAction::Link,
            &link.from,
            &owner.project,
            Some(&payload),
        )?;
    }
    Ok(link)
}

/// Deletes a record and its links, scrubs its content from the change log and logs the
/// delete: the one delete path (`forget`, and the age-out of automatic records).
pub(crate) fn delete_record(tx: &MemoryTx<'_>, record: &MemoryRecord) -> Result<(), MemoryError> {
    let linked = tx.has_links(&record.id)?;
    tx.delete(&record.id)?;
    tx.scrub_log(&record.id, linked)?;
    tx.log(
        ChangeAction::Delete,
        &record.id,
        memory_project_column(record),
        None,
    )?;
    Ok(())
}

/// A record id or a key, resolved within one owner: the record with that id, else the active
/// record with that key, else the newest record with that key.
pub(crate) fn resolve(
    tx: &MemoryTx<'_>,
    owner: &Owner,
    reference: &str,
) -> Result<Option<MemoryRow>, MemoryError> {
    if let Some(row) = tx.get(reference)?
        && owner.owns(&row.record)
    {
        return Ok(Some(row));
    }
    if let Some(row) = tx.find_active_by_key(owner.scope, &owner.project, reference)? {
        return Ok(Some(row));
    }
    Ok(tx.find_latest_by_key(owner.scope, &owner.project, reference)?)
}

/// The content of a record as a put would set it, for "unchanged" detection.
fn same_content(a: &MemoryRecord, b: &MemoryRecord) -> bool {
    a.kind == b.kind
        && a.title == b.title
        && a.body == b.body
        && a.tags == b.tags
        && a.entities == b.entities
        && a.pinned == b.pinned
        && a.provenance == b.provenance
}

impl MemoryBank {
    /// Opens the bank of `store`, its index beside the store file (in memory for an in-memory
    /// store), building or repairing the index as needed.
    pub fn open(store: Arc<Store>) -> Result<MemoryBank, MemoryError> {
        let home = match index_dir_of(&store) {
            Some(dir) => IndexHome::Dir(dir),
            None => IndexHome::Ram,
        };
        let index = MemoryIndex::open(home, &store)?;
        Ok(MemoryBank { store, index })
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub(crate) fn index(&self) -> &MemoryIndex {
        &self.index
    }

    /// Brings the index up to the store (done before every search anyway).
    pub fn sync(&self) -> Result<(), MemoryError> {
        self.index.sync(&self.store)
    }

    /// Rebuilds the index from the store.
    pub fn reindex(&self) -> Result<(), MemoryError> {
        self.index.rebuild(&self.store, "asked to rebuild")
    }

    /// Documents in the search index.
    pub fn indexed_docs(&self) -> Result<u64, MemoryError> {
        self.sync()?;
        Ok(self.index.num_docs())
    }

    /// Writes a checked, redacted put for `owner` (see `MemoryService::put` for the rules).
    pub(crate) fn put(
        &self,
        owner: &Owner,
        put: MemoryPut,
        kind: String,
        redactions: u32,
    ) -> Result<MemoryPutResult, MemoryError> {
        self.store.memory_write(|tx| {
            let now = now_ms();
            let existing = match &put.key {
                Some(key) => tx.find_active_by_key(owner.scope, &owner.project, key)?,
                None => None,
            };
            let target = match (&put.supersedes, &existing) {
                (Some(reference), _) => {
                    Some(
                        resolve(tx, owner, reference)?.ok_or_else(|| MemoryError::NotFound {
                            reference: reference.clone(),
                            scope: owner.label(),
                        })?,
                    )
                }
                (None, _) => None,
            };
            if let (Some(existing), None) = (&existing, &target) {
                // Same scope and key, no supersession asked: update the active record.
                let mut updated = existing.record.clone();
                updated.kind = kind;
                if let Some(title) = put.title {
                    updated.title = title;
                }
                updated.body = put.body;
                if !put.tags.is_empty() {
                    updated.tags = put.tags;
                }
                if !put.entities.is_empty() {
                    updated.entities = put.entities;
                }
                if !put.provenance.is_empty() {
                    updated.provenance = put.provenance;
                }
                if let Some(pinned) = put.pinned {
                    updated.pinned = pinned;
                }
                if same_content(&updated, &existing.record) {
                    return Ok(MemoryPutResult {
                        record: existing.record.clone(),
                        outcome: PutOutcome::Unchanged,
                        superseded: Vec::new(),
                    });
                }
                updated.redactions = redactions;
                updated.updated_at = now;
                tx.update(&updated)?;
                log_record(tx, ChangeAction::Update, &updated)?;
                return Ok(MemoryPutResult {
                    record: updated,
                    outcome: PutOutcome::Updated,
                    superseded: Vec::new(),
                });
            }
            let mut superseded = Vec::new();
            let mut replaced: Vec<MemoryRecord> = Vec::new();
            let new_id = new_id();
            // The replaced records leave `active` first: the active key must stay unique.
            for old in target.iter().map(|r| &r.record).chain(
                existing
                    .iter()
                    .map(|r| &r.record)
                    .filter(|e| target.as_ref().is_none_or(|t| t.record.id != e.id)),
            ) {
                let mut old = old.clone();
                if old.status == MemoryStatus::Active {
                    old.status = MemoryStatus::Superseded;
                }
                old.superseded_by = Some(new_id.clone());
                old.updated_at = now;
                tx.update(&old)?;
                log_record(tx, ChangeAction::Supersede, &old)?;
                superseded.push(old.id.clone());
                replaced.push(old);
            }
            let record = MemoryRecord {
                id: new_id,
                scope: owner.scope,
                project_id: (owner.scope == MemoryScope::Project).then(|| owner.project.clone()),
                kind,
                key: put
                    .key
                    .or_else(|| replaced.first().and_then(|r| r.key.clone())),
                title: put.title.unwrap_or_default(),
                body: put.body,
                tags: put.tags,
                entities: put.entities,
                provenance: put.provenance,
                status: MemoryStatus::Active,
                supersedes: replaced.first().map(|r| r.id.clone()),
                superseded_by: None,
                pinned: put.pinned.unwrap_or(false),
                redactions,
                created_at: now,
                updated_at: now,
            };
            tx.insert(&record)?;
            log_record(tx, ChangeAction::Put, &record)?;
            for old in &replaced {
                add_link(
                    tx,
                    owner,
                    MemoryLink {
                        from: record.id.clone(),
                        to: old.id.clone(),
                        relation: "supersedes".to_owned(),
                        created_at: now,
                    },
                )?;
            }
            Ok(MemoryPutResult {
                record,
                outcome: PutOutcome::Created,
                superseded,
            })
        })
    }

    /// Links record `from` of `owner` (an id or key) to the record with id `to_id` (resolved by
    /// the caller, possibly in another bank). Linking twice is harmless.
    pub(crate) fn link(
        &self,
        owner: &Owner,
        from: &str,
        to_id: &str,
        relation: &str,
    ) -> Result<MemoryLink, MemoryError> {
        self.store.memory_write(|tx| {
            let from_row = resolve(tx, owner, from)?.ok_or_else(|| MemoryError::NotFound {
                reference: from.to_owned(),
                scope: owner.label(),
            })?;
            add_link(
                tx,
                owner,
                MemoryLink {
                    from: from_row.record.id.clone(),
                    to: to_id.to_owned(),
                    relation: relation.to_owned(),
                    created_at: now_ms(),
                },
            )
        })
    }

    /// Retracts or deletes a record of `owner`.
    pub(crate) fn forget(
        &self,
        owner: &Owner,
        reference: &str,
        mode: ForgetMode,
    ) -> Result<ForgetResult, MemoryError> {
        self.store.memory_write(|tx| {
            let row = resolve(tx, owner, reference)?.ok_or_else(|| MemoryError::NotFound {
                reference: reference.to_owned(),
                scope: owner.label(),
            })?;
            let mut record = row.record;
            match mode {
                ForgetMode::Retract => {
                    if record.status == MemoryStatus::Retracted {
                        return Ok(ForgetResult {
                            id: record.id,
                            mode,
                            changed: false,
                        });
                    }
                    record.status = MemoryStatus::Retracted;
                    record.updated_at = now_ms();
                    tx.update(&record)?;
                    log_record(tx, ChangeAction::Retract, &record)?;
                }
                ForgetMode::Delete => delete_record(tx, &record)?,
            }
            Ok(ForgetResult {
                id: record.id,
                mode,
                changed: true,
            })
        })
    }

    /// The record `reference` names within `owner`.
    pub(crate) fn get(
        &self,
        owner: &Owner,
        reference: &str,
    ) -> Result<Option<MemoryRecord>, MemoryError> {
        self.store
            .memory_read(|tx| resolve(tx, owner, reference))
            .map(|row| row.map(|r| r.record))
    }

    pub(crate) fn links_of(&self, id: &str) -> Result<Vec<MemoryLink>, MemoryError> {
        Ok(self.store.memory_links_of(id)?)
    }
}
