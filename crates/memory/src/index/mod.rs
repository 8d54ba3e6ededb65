//! The tantivy search index of one store, derived from it and rebuilt from it.
//!
//! Every commit carries a payload `{format, seq}`: the index format and the change-log
//! sequence number it reflects. Before a search the index is brought up to the store's head:
//! if another process already indexed the new changes, a reader reload is enough; otherwise this
//! process takes the index lock (an `flock` on `<index dir>.lock`, so one writer at a time
//! across processes, as tantivy requires), indexes every record changed since the payload's
//! `seq` — its own writes and other processes' alike — commits once, and releases the lock.
//! So a put is durable when SQLite commits, and visible to the next search in any process,
//! without a tantivy commit per record.
//!
//! A missing folder, an unreadable index, another format, or an index ahead of its store is
//! rebuilt from the store (logged), in a side folder swapped in when complete.

mod directory;
mod fields;
mod query;

use std::fs::File;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use orchestra_state_dir::private;
use orchestra_store::Store;
use serde::{Deserialize, Serialize};
use tantivy::indexer::{LogMergePolicy, NoMergePolicy};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};

use crate::MemoryError;
use directory::UnsyncedDirectory;
pub(crate) use fields::owner_term;
use fields::{Fields, INDEX_FORMAT, document, register_tokenizers, schema};
pub(crate) use query::{IndexHit, IndexQuery};

/// Writer memory for catching up (a few records; tantivy's minimum, 15 MB, as the writer zeroes a
/// table sized from it) and for rebuilds (everything).
const SYNC_WRITER_BYTES: usize = 15_000_000;
const REBUILD_WRITER_BYTES: usize = 120_000_000;
/// Changes past which a catch-up indexes with the rebuild's writer.
const BIG_CATCH_UP: i64 = 20_000;
/// Records read from the store per step of a sync or rebuild.
const BATCH: u32 = 5_000;
/// Catch-up commits are merged by size class (tantivy's log merge policy): this many segments of
/// one class become one. Segments below `MERGE_FLOOR_DOCS` count as one class. Each record is
/// so rewritten O(log n) times over the index's life, where merging every small segment into
/// one (as before) rewrote the whole history every few commits.
const SEGMENTS_PER_MERGE: usize = 8;
const MERGE_FLOOR_DOCS: u32 = 64;

#[derive(Debug, Serialize, Deserialize)]
struct Payload {
    format: String,
    seq: i64,
}

/// Where an index lives.
#[derive(Debug, Clone)]
pub(crate) enum IndexHome {
    Dir(PathBuf),
    /// In memory, for a store opened in memory (tests).
    Ram,
}

struct State {
    index: Index,
    reader: IndexReader,
    fields: Fields,
    /// The change-log sequence number this process's reader reflects (a lower bound).
    synced_seq: i64,
}

pub(crate) struct MemoryIndex {
    home: IndexHome,
    state: Mutex<State>,
    /// One sync or rebuild at a time. A sync writes and commits without holding `state`, so a
    /// search (a task start's memory block) never waits for a batch's commit, only for the
    /// reader's reload at its end.
    syncing: Mutex<()>,
}

impl std::fmt::Debug for MemoryIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryIndex")
            .field("home", &self.home)
            .finish()
    }
}

fn read_payload(index: &Index) -> Option<Payload> {
    let metas = index.load_metas().ok()?;
    serde_json::from_str(metas.payload.as_deref()?).ok()
}

fn commit(writer: &mut IndexWriter<TantivyDocument>, seq: i64) -> tantivy::Result<()> {
    let payload = serde_json::to_string(&Payload {
        format: INDEX_FORMAT.to_owned(),
        seq,
    })
    .unwrap_or_default();
    let mut prepared = writer.prepare_commit()?;
    prepared.set_payload(&payload);
    prepared.commit()?;
    Ok(())
}

fn reader_of(index: &Index) -> tantivy::Result<IndexReader> {
    index
        .reader_builder()
        .reload_policy(ReloadPolicy::Manual)
        .try_into()
}

/// Holds the cross-process index lock until dropped.
struct IndexLock(Option<File>);

impl Drop for IndexLock {
    fn drop(&mut self) {
        if let Some(file) = &self.0 {
            let _ = file.unlock();
        }
    }
}

impl MemoryIndex {
    /// Opens the index at `home`, rebuilding it from `store` if it is missing, unreadable or
    /// of another format, then brings it up to the store's head.
    pub(crate) fn open(home: IndexHome, store: &Store) -> Result<MemoryIndex, MemoryError> {
        let state = match &home {
            IndexHome::Ram => build_ram(store)?,
            IndexHome::Dir(dir) => {
                let _lock = lock(dir)?;
                narrow_index(dir)?;
                match open_dir(dir) {
                    Ok(state) => state,
                    Err(reason) => {
                        if dir.exists() {
                            tracing::warn!(path = %dir.display(), %reason, "rebuilding the memory index from the store");
                        } else {
                            tracing::info!(path = %dir.display(), "building the memory index from the store");
                        }
                        rebuild_dir(dir, store)?
                    }
                }
            }
        };
        let index = MemoryIndex {
            home,
            state: Mutex::new(state),
            syncing: Mutex::new(()),
        };
        index.sync(store)?;
        Ok(index)
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn error(&self, source: tantivy::TantivyError) -> MemoryError {
        MemoryError::Index {
            path: match &self.home {
                IndexHome::Dir(dir) => dir.clone(),
                IndexHome::Ram => PathBuf::from("(in memory)"),
            },
            source,
        }
    }

    /// Brings the index up to the store's change-log head (see the module header).
    pub(crate) fn sync(&self, store: &Store) -> Result<(), MemoryError> {
        let _syncing = self.syncing.lock().unwrap_or_else(PoisonError::into_inner);
        let head = store.memory_head_seq()?;
        let (index, fields) = {
            let mut state = self.state();
            if head == state.synced_seq {
                return Ok(());
            }
            if head < state.synced_seq {
                return self.rebuild_locked(
                    &mut state,
                    store,
                    "the store's change log is behind the index (the store was replaced)",
                );
            }
            if let Some(done) = self.indexed_elsewhere(&mut state, head)? {
                state.synced_seq = done;
                return Ok(());
            }
            // Handles to the same index: a rebuild cannot replace it meanwhile (`syncing`).
            (state.index.clone(), state.fields)
        };
        let _lock = match &self.home {
            IndexHome::Dir(dir) => lock(dir)?,
            IndexHome::Ram => IndexLock(None),
        };
        // Another process may have indexed the changes while we waited for the lock.
        {
            let mut state = self.state();
            if let Some(done) = self.indexed_elsewhere(&mut state, head)? {
                state.synced_seq = done;
                return Ok(());
            }
        }
        let from = match read_payload(&index) {
            Some(payload) if payload.format == INDEX_FORMAT && payload.seq <= head => payload.seq,
            Some(_) | None => {
                return self.rebuild_locked_held(
                    &mut self.state(),
                    store,
                    "the index's commit record is missing or of another format",
                );
            }
        };
        let done = apply_changes(&index, &fields, store, from).map_err(|e| self.tantivy_or(e))?;
        let mut state = self.state();
        state.reader.reload().map_err(|e| self.error(e))?;
        state.synced_seq = done;
        Ok(())
    }

    fn tantivy_or(&self, error: SyncError) -> MemoryError {
        match error {
            SyncError::Tantivy(source) => self.error(source),
            SyncError::Memory(error) => error,
        }
    }

    /// `Some(seq)` when the committed index already reflects `head` (reader reloaded).
    fn indexed_elsewhere(&self, state: &mut State, head: i64) -> Result<Option<i64>, MemoryError> {
        match read_payload(&state.index) {
            Some(payload) if payload.format == INDEX_FORMAT && payload.seq >= head => {
                state.reader.reload().map_err(|e| self.error(e))?;
                Ok(Some(payload.seq))
            }
            _ => Ok(None),
        }
    }

    fn rebuild_locked(
        &self,
        state: &mut State,
        store: &Store,
        reason: &str,
    ) -> Result<(), MemoryError> {
        let _lock = match &self.home {
            IndexHome::Dir(dir) => lock(dir)?,
            IndexHome::Ram => IndexLock(None),
        };
        self.rebuild_locked_held(state, store, reason)
    }

    fn rebuild_locked_held(
        &self,
        state: &mut State,
        store: &Store,
        reason: &str,
    ) -> Result<(), MemoryError> {
        *state = match &self.home {
            IndexHome::Dir(dir) => {
                tracing::warn!(path = %dir.display(), reason, "rebuilding the memory index from the store");
                rebuild_dir(dir, store)?
            }
            IndexHome::Ram => build_ram(store)?,
        };
        Ok(())
    }

    /// Rebuilds the index from the store now (the CLI's `memory reindex`, and recovery from a
    /// search that failed on a damaged index).
    pub(crate) fn rebuild(&self, store: &Store, reason: &str) -> Result<(), MemoryError> {
        let _syncing = self.syncing.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = self.state();
        self.rebuild_locked(&mut state, store, reason)
    }

    /// Brings the index up to the store and runs `query`. A failure of the index (a segment
    /// torn by a crash: the index skips fsyncs) rebuilds it from the store and tries once more.
    pub(crate) fn sync_and_search(
        &self,
        store: &Store,
        query: &IndexQuery,
    ) -> Result<Vec<IndexHit>, MemoryError> {
        let first = self.sync(store).and_then(|()| self.search(query));
        match first {
            Err(MemoryError::Index { source, .. }) => {
                let reason = format!("the index failed: {source}");
                self.rebuild(store, &reason)?;
                self.sync(store)?;
                self.search(query)
            }
            other => other,
        }
    }

    /// Runs `query` against the current reader (call [`MemoryIndex::sync`] first).
    pub(crate) fn search(&self, query: &IndexQuery) -> Result<Vec<IndexHit>, MemoryError> {
        // The searcher is a snapshot; searches run without holding the state lock.
        let (searcher, fields) = {
            let state = self.state();
            (state.reader.searcher(), state.fields)
        };
        query::run(&searcher, &fields, query).map_err(|e| self.error(e))
    }

    /// The change-log sequence number this process's reader reflects: the generation of what
    /// [`MemoryIndex::search`] sees.
    pub(crate) fn synced_seq(&self) -> i64 {
        self.state().synced_seq
    }

    /// The change-log sequence number the committed index reflects, whichever process
    /// committed it (0 when its commit record is missing or of another format): the index's
    /// position as a consumer of the change log.
    pub(crate) fn committed_seq(&self) -> i64 {
        match read_payload(&self.state().index) {
            Some(payload) if payload.format == INDEX_FORMAT => payload.seq,
            Some(_) | None => 0,
        }
    }

    /// Documents in the index (for stats and tests).
    pub(crate) fn num_docs(&self) -> u64 {
        self.state().reader.searcher().num_docs()
    }
}

enum SyncError {
    Tantivy(tantivy::TantivyError),
    Memory(MemoryError),
}

impl From<tantivy::TantivyError> for SyncError {
    fn from(error: tantivy::TantivyError) -> Self {
        SyncError::Tantivy(error)
    }
}

impl From<orchestra_store::StoreError> for SyncError {
    fn from(error: orchestra_store::StoreError) -> Self {
        SyncError::Memory(error.into())
    }
}

/// Indexes every record changed after `from`; returns the sequence number now reflected.
fn apply_changes(
    index: &Index,
    fields: &Fields,
    store: &Store,
    from: i64,
) -> Result<i64, SyncError> {
    // A big catch-up (an import, another process's burst) gets the rebuild's writer. Both
    // merge by size class (see `SEGMENTS_PER_MERGE`), waited for below.
    let big = store.memory_head_seq()?.saturating_sub(from) > BIG_CATCH_UP;
    let mut writer: IndexWriter<TantivyDocument> = if big {
        index.writer_with_num_threads(writer_threads(), REBUILD_WRITER_BYTES)?
    } else {
        index.writer_with_num_threads(1, SYNC_WRITER_BYTES)?
    };
    let mut policy = LogMergePolicy::default();
    policy.set_min_num_segments(SEGMENTS_PER_MERGE);
    policy.set_min_layer_size(MERGE_FLOOR_DOCS);
    writer.set_merge_policy(Box::new(policy));
    let mut seq = from;
    let mut removed = false;
    loop {
        let (ids, last) = store.memory_changed_ids_after(seq, BATCH)?;
        if ids.is_empty() {
            break;
        }
        let (ids, created): (Vec<String>, Vec<bool>) = ids.into_iter().unzip();
        let rows = store.memory_by_ids(&ids)?;
        for (id, created) in ids.iter().zip(created) {
            // A record created after `from` is not in the index (rebuilds snapshot the records
            // with the log's head, see `fill`), so there is nothing to delete.
            if !created {
                writer.delete_term(Term::from_field_text(fields.id, id));
            }
        }
        removed |= rows.rows.len() + rows.skipped.len() < ids.len();
        for row in &rows.rows {
            writer.add_document(document(fields, row))?;
        }
        seq = last;
    }
    if removed {
        // The purge below picks its segments itself; no merge may hold them meanwhile.
        writer.set_merge_policy(Box::new(NoMergePolicy));
    }
    commit(&mut writer, seq)?;
    if removed {
        purge_deleted(index, &mut writer)?;
    }
    writer.wait_merging_threads()?;
    Ok(seq)
}

/// After a record was deleted, rewrites the segments that still hold deleted documents, so a
/// privacy delete leaves no terms behind.
fn purge_deleted(index: &Index, writer: &mut IndexWriter<TantivyDocument>) -> tantivy::Result<()> {
    let metas = index.searchable_segment_metas()?;
    for meta in metas.iter().filter(|m| m.num_deleted_docs() > 0) {
        writer.merge(&[meta.id()]).wait()?;
    }
    Ok(())
}

fn writer_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

fn lock(dir: &Path) -> Result<IndexLock, MemoryError> {
    let path = lock_path(dir);
    if let Some(parent) = path.parent() {
        private::create_private_dir(parent).map_err(|source| MemoryError::IndexDir {
            action: "create",
            path: parent.to_owned(),
            source,
        })?;
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(private::FILE_MODE)
        .open(&path)
        .map_err(|source| MemoryError::IndexDir {
            action: "open the lock of",
            path: path.clone(),
            source,
        })?;
    file.lock().map_err(|source| MemoryError::IndexDir {
        action: "lock",
        path,
        source,
    })?;
    Ok(IndexLock(Some(file)))
}

/// Takes group and other permissions off an index an older version left wider: the folder, the
/// lock and every file in it (new files are 0600 already, see `directory`).
fn narrow_index(dir: &Path) -> Result<(), MemoryError> {
    let narrow = |path: &Path| private::narrow(path).map_err(io("make private", path));
    narrow(&lock_path(dir))?;
    narrow(dir)?;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        narrow(&entry.path())?;
    }
    Ok(())
}

fn lock_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    dir.with_file_name(name)
}

fn side_path(dir: &Path, what: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{what}-{}", std::process::id()));
    dir.with_file_name(name)
}

/// Opens an existing index; `Err` says why it must be rebuilt.
fn open_dir(dir: &Path) -> Result<State, String> {
    if !dir.join("meta.json").exists() {
        return Err("no index there".to_owned());
    }
    let directory = UnsyncedDirectory::open(dir).map_err(|e| e.to_string())?;
    let index = Index::open(directory).map_err(|e| e.to_string())?;
    let (expected, fields) = schema();
    if index.schema() != expected {
        return Err("the index has another schema".to_owned());
    }
    match read_payload(&index) {
        Some(payload) if payload.format == INDEX_FORMAT => {}
        Some(payload) => return Err(format!("index format {} is not ours", payload.format)),
        None => return Err("the index has no commit record".to_owned()),
    }
    register_tokenizers(&index);
    let reader = reader_of(&index).map_err(|e| e.to_string())?;
    // A damaged segment shows up when its files are opened.
    reader.reload().map_err(|e| e.to_string())?;
    Ok(State {
        index,
        reader,
        fields,
        synced_seq: 0,
    })
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> MemoryError {
    let path = path.to_owned();
    move |source| MemoryError::IndexDir {
        action,
        path,
        source,
    }
}

/// Builds a fresh index from the store in a side folder and swaps it in. The caller holds the
/// index lock.
fn rebuild_dir(dir: &Path, store: &Store) -> Result<State, MemoryError> {
    let fresh = side_path(dir, "rebuild");
    if fresh.exists() {
        std::fs::remove_dir_all(&fresh).map_err(io("clear", &fresh))?;
    }
    private::create_private_dir(&fresh).map_err(io("create", &fresh))?;
    let tantivy_error = |source| MemoryError::Index {
        path: dir.to_owned(),
        source,
    };
    let (schema, fields) = schema();
    {
        let directory = UnsyncedDirectory::open(&fresh).map_err(tantivy_error)?;
        let index = Index::create(directory, schema, tantivy::IndexSettings::default())
            .map_err(tantivy_error)?;
        register_tokenizers(&index);
        fill(&index, &fields, store).map_err(|e| match e {
            SyncError::Tantivy(source) => tantivy_error(source),
            SyncError::Memory(error) => error,
        })?;
    }
    let old = side_path(dir, "old");
    if dir.exists() {
        std::fs::rename(dir, &old).map_err(io("move aside", dir))?;
    }
    std::fs::rename(&fresh, dir).map_err(io("move into place", &fresh))?;
    if old.exists() {
        let _ = std::fs::remove_dir_all(&old);
    }
    let mut state = open_dir(dir).map_err(|reason| MemoryError::Index {
        path: dir.to_owned(),
        source: tantivy::TantivyError::SystemError(reason),
    })?;
    state.synced_seq = read_payload(&state.index).map_or(0, |p| p.seq);
    Ok(state)
}

fn build_ram(store: &Store) -> Result<State, MemoryError> {
    let (schema, fields) = schema();
    let tantivy_error = |source| MemoryError::Index {
        path: PathBuf::from("(in memory)"),
        source,
    };
    let index = Index::create_in_ram(schema);
    register_tokenizers(&index);
    fill(&index, &fields, store).map_err(|e| match e {
        SyncError::Tantivy(source) => tantivy_error(source),
        SyncError::Memory(error) => error,
    })?;
    let reader = reader_of(&index).map_err(tantivy_error)?;
    let synced_seq = read_payload(&index).map_or(0, |p| p.seq);
    Ok(State {
        index,
        reader,
        fields,
        synced_seq,
    })
}

/// Indexes every record of the store and commits with the change log's head read with the
/// largest `doc` (a change to an indexed record made during the scan is applied again by the
/// next sync, which is harmless).
fn fill(index: &Index, fields: &Fields, store: &Store) -> Result<(), SyncError> {
    // Only records that existed at `head`: one created later is added by the next sync, which
    // does not look for an old document of a record it sees created.
    let (head, last_doc) = store.memory_snapshot_heads()?;
    let mut writer: IndexWriter<TantivyDocument> =
        index.writer_with_num_threads(writer_threads(), REBUILD_WRITER_BYTES)?;
    let mut after = 0;
    loop {
        let (rows, last) = store.memory_scan(after, BATCH)?;
        let Some(last) = last else {
            break;
        };
        for row in rows.rows.iter().filter(|row| row.doc <= last_doc) {
            writer.add_document(document(fields, row))?;
        }
        if last >= last_doc {
            break;
        }
        after = last;
    }
    commit(&mut writer, head)?;
    writer.wait_merging_threads()?;
    Ok(())
}
