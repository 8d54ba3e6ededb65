//! The store's error type. Every message says what went wrong and what to do.

use std::path::PathBuf;

use rusqlite::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "cannot create the directory for the store at {path}: {source}; check its permissions or point `tasks.storePath` elsewhere"
    )]
    CreateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "cannot make the store at {path} private to you (mode 0600): {source}; check who owns it"
    )]
    MakePrivate {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error(
        "cannot open the store at {path}: {source}; check that it is a writable SQLite file or point `tasks.storePath` elsewhere"
    )]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "store at {path} was written by a newer orchestra (schema {found} > {known}); upgrade orchestra or point `tasks.storePath` elsewhere"
    )]
    NewerSchema {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    #[error(
        "cannot upgrade the store at {path} to schema {version}: {source}; move the file aside to start a fresh store, or point `tasks.storePath` elsewhere"
    )]
    Migration {
        path: PathBuf,
        version: usize,
        #[source]
        source: rusqlite::Error,
    },

    #[error(
        "the store stayed locked by another orchestra process for more than 5 s ({0}); retry, or stop the process that holds it"
    )]
    Busy(#[source] rusqlite::Error),

    #[error(
        "store query failed: {0}; if this keeps happening, move the store file aside and restart orchestra"
    )]
    Sqlite(#[source] rusqlite::Error),

    #[error("job `{id}` already exists in the store; use save_job to update an existing job")]
    DuplicateJob { id: String },

    #[error(
        "finish_job was given job `{id}` with status running; give it a final status first (JobRecord::finish)"
    )]
    NotFinal { id: String },

    #[error(
        "job `{id}` in the store has an unreadable record: {source}; it was written by an incompatible orchestra, delete the job or move the store aside"
    )]
    CorruptRecord {
        id: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot encode job `{id}` as JSON: {source}")]
    Encode {
        id: String,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "workflow run `{id}` in the store has an unreadable state: {source}; it was written by an incompatible orchestra, start the workflow again"
    )]
    CorruptRun {
        id: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot encode workflow run `{id}` as JSON: {source}")]
    EncodeRun {
        id: String,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot encode event {id} as JSON: {source}")]
    EncodeEvent {
        id: u64,
        #[source]
        source: serde_json::Error,
    },

    #[error("cannot encode memory record `{id}` as JSON: {source}")]
    EncodeMemory {
        id: String,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "memory record `{id}` in the store is unreadable: {source}; forget it with `orchestra memory forget {id} --mode delete`, or restore it from an export"
    )]
    CorruptMemory {
        id: String,
        #[source]
        source: serde_json::Error,
    },

    #[error(
        "memory record `{id}` (or an active record with its scope and key) already exists; put with the same key to update it"
    )]
    DuplicateMemory { id: String },

    #[error(
        "hub `{hub_id}` is not registered in the store; call register_hub first (a hub whose process looked dead may have been removed by another hub)"
    )]
    HubNotRegistered { hub_id: String },
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        match error.sqlite_error_code() {
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Busy(error),
            _ => StoreError::Sqlite(error),
        }
    }
}
