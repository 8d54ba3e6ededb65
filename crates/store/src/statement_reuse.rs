//! Every cached statement stays compiled across calls. SQLite recompiles a statement whose plan
//! read a bound value as soon as that binding changes, and rusqlite clears the bindings each
//! time a cached statement goes back to its cache: such a statement is parsed and planned
//! again on every call. Plans read `LIMIT ?n` and `OFFSET ?n`, and a parameter compared with a
//! column that a partial index's condition names (`scope = ?1` against the automatic records'
//! index, `WHERE scope = 'project'`). Written `+?n`, a parameter is an expression the planner
//! does not read. In the hub's soaks this was 2 % of its CPU.
#![allow(clippy::unwrap_used)]

use std::ffi::CStr;

use orchestra_protocol::memory::{MemoryRecord, MemoryScope, MemoryStatus};
use orchestra_protocol::{DeliveryStatus, JobRecord, JobStatus, TaskKind};
use rusqlite::Connection;
use serde_json::json;

use crate::memory::MemoryListFilter;
use crate::memory_upkeep::AgedOutQuery;
use crate::{JobFilter, Store};

/// (times recompiled, SQL) of every statement the connection holds that was recompiled.
#[allow(unsafe_code)]
fn recompiled(conn: &Connection) -> Vec<(i32, String)> {
    let mut out = Vec::new();
    // SAFETY: the handle is only read while `conn` (locked by the caller) is alive and no
    // statement is finalized meanwhile; sqlite3_sql's text lives as long as its statement.
    unsafe {
        let db = conn.handle();
        let mut stmt = rusqlite::ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
        while !stmt.is_null() {
            let times = rusqlite::ffi::sqlite3_stmt_status(
                stmt,
                rusqlite::ffi::SQLITE_STMTSTATUS_REPREPARE,
                0,
            );
            if times > 0 {
                let sql = CStr::from_ptr(rusqlite::ffi::sqlite3_sql(stmt));
                out.push((times, sql.to_string_lossy().into_owned()));
            }
            stmt = rusqlite::ffi::sqlite3_next_stmt(db, stmt);
        }
    }
    out
}

fn record(id: &str, scope: MemoryScope, key: Option<&str>, pinned: bool) -> MemoryRecord {
    serde_json::from_value(json!({
        "id": id,
        "scope": scope.as_str(),
        "projectId": (scope == MemoryScope::Project).then_some("p"),
        "kind": "note",
        "key": key,
        "title": id,
        "body": format!("body of {id}"),
        "tags": ["auto"],
        "provenance": {"producer": "hub"},
        "pinned": pinned,
        "createdAt": 1,
        "updatedAt": 1,
    }))
    .unwrap()
}

#[test]
fn no_statement_of_the_memory_store_is_recompiled_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("orchestra.db")).unwrap();
    // Each lookup twice with other values: a plan that hangs on a value is thrown away.
    for n in 0..4 {
        let scope = if n % 2 == 0 {
            MemoryScope::Project
        } else {
            MemoryScope::Global
        };
        let key = format!("key-{n}");
        let mut fresh = record(&format!("mem_{n:016x}"), scope, Some(&key), n % 2 == 0);
        store
            .memory_write(|tx| -> Result<(), crate::StoreError> {
                let project = if scope == MemoryScope::Project {
                    "p"
                } else {
                    ""
                };
                tx.find_active_by_key(scope, project, &key)?;
                tx.find_latest_by_key(scope, project, &key)?;
                tx.insert(&fresh)?;
                fresh.status = MemoryStatus::Superseded;
                tx.update(&fresh)?;
                Ok(())
            })
            .unwrap();
        store
            .memory_read(|tx| tx.find_active_by_key(scope, "p", &key).map(drop))
            .unwrap();
        store
            .memory_list(&MemoryListFilter {
                project_id: Some("p".into()),
                scope: Some(scope),
                status: Some(MemoryStatus::Active),
                pinned_only: n % 2 == 0,
                before_doc: None,
                limit: 10,
            })
            .unwrap();
        store.memory_pinned(scope, "p", 10).unwrap();
        store
            .memory_aged_out(&AgedOutQuery {
                project_id: "p",
                producer: if n % 2 == 0 { "hub" } else { "cli" },
                keep_newest: 10,
                older_than_ms: 0,
                limit: 10,
            })
            .unwrap();
        store
            .memory_import(
                &[record(&format!("mem_1{n:015x}"), scope, Some(&key), false)],
                &[],
            )
            .unwrap();
    }
    assert_none_recompiled(&store);
}

#[test]
fn no_statement_on_a_tasks_path_is_recompiled_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("orchestra.db")).unwrap();
    for n in 0..4_u32 {
        let mut job = JobRecord::start(
            format!("job-{n}"),
            "coder".into(),
            "a task".into(),
            TaskKind::Worker,
            "hub",
        );
        store.insert_job(&job).unwrap();
        store.save_job(&job).unwrap();
        job.status = JobStatus::Succeeded;
        store.finish_job(&job).unwrap();
        store.get_job(&job.id).unwrap();
        store
            .list_jobs(&JobFilter {
                status: (n % 2 == 0).then_some(JobStatus::Succeeded),
                limit: 10 + n,
                ..JobFilter::default()
            })
            .unwrap();
        store.append_log(Some(&job.id), "info", "a line").unwrap();
        store.logs_after(i64::from(n), 10 + n).unwrap();
        store.events_after(u64::from(n), 10 + n).unwrap();
        store
            .job_events_after(&job.id, u64::from(n), 10 + n)
            .unwrap();
        let kind = if n % 2 == 0 {
            "orchestra.log"
        } else {
            "job.updated"
        };
        store
            .events_of_type_after(kind, u64::from(n), 10 + n)
            .unwrap();
        store
            .events_of_type_before(kind, Some(u64::from(n)), 10 + n)
            .unwrap();
        store
            .deliveries((n % 2 == 0).then_some(DeliveryStatus::Pending), 10 + n)
            .unwrap();
        store.memory_changes_after(i64::from(n), 10 + n).unwrap();
        store
            .memory_changed_ids_after(i64::from(n), 10 + n)
            .unwrap();
        store.memory_scan(i64::from(n), 10 + n).unwrap();
        store.memory_head_seq().unwrap();
    }
    assert_none_recompiled(&store);
}

fn assert_none_recompiled(store: &Store) {
    let recompiled = recompiled(&store.conn());
    assert!(recompiled.is_empty(), "{recompiled:#?}");
}
