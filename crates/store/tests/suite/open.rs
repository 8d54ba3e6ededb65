//! Opening stores: migrations, schema versions, error messages.
#![allow(clippy::unwrap_used)]

use super::fixtures;

use orchestra_protocol::now_ms;
use orchestra_store::{Store, StoreError};

fn user_version(path: &std::path::Path) -> i64 {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
        .unwrap()
}

#[test]
fn reopening_keeps_data_and_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dirs/orchestra.db");
    {
        let store = Store::open(&path).unwrap();
        store
            .insert_job(&fixtures::running_job("j1", "coder", "h1", now_ms()))
            .unwrap();
    }
    let version = user_version(&path);
    assert!(version >= 1);
    for _ in 0..3 {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.count_jobs().unwrap(), 1);
        assert!(store.get_job("j1").unwrap().is_some());
    }
    assert_eq!(user_version(&path), version);
}

#[test]
fn newer_schema_is_refused_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orchestra.db");
    drop(Store::open(&path).unwrap());
    let newer = user_version(&path) + 5;
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", newer).unwrap();
    }
    let error = Store::open(&path).unwrap_err();
    assert!(matches!(error, StoreError::NewerSchema { found, .. } if found == newer));
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(
        message.contains("written by a newer orchestra"),
        "{message}"
    );
    assert!(message.contains("tasks.storePath"), "{message}");
}

#[test]
fn open_failure_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-db");
    std::fs::write(&path, b"this is not a sqlite database, not at all, no").unwrap();
    let error = Store::open(&path).unwrap_err();
    let message = error.to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
}

#[test]
fn parent_that_is_a_file_gives_create_dir_error() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("blocker");
    std::fs::write(&blocker, b"x").unwrap();
    let error = Store::open(&blocker.join("sub").join("orchestra.db")).unwrap_err();
    assert!(matches!(error, StoreError::CreateDir { .. }), "{error}");
}
