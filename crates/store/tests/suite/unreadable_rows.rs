//! One row that does not decode never breaks recovery or a listing: it is skipped and reported.
//! Rows are damaged with raw SQL, the way a bad build or a hand edit would leave them.
#![allow(clippy::unwrap_used)]

use super::fixtures;

use fixtures::{run, running_job};
use orchestra_protocol::WorkflowRunStatus;
use orchestra_store::{JobFilter, Store};

fn damage(path: &std::path::Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    assert_eq!(conn.execute(sql, []).unwrap(), 1, "{sql}");
}

#[test]
fn a_running_job_that_does_not_decode_does_not_stop_recovery() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orchestra.db");
    let store = Store::open(&path).unwrap();
    store
        .insert_job(&running_job("good", "coder", "dead-hub", 1_000))
        .unwrap();
    store
        .insert_job(&running_job("bad", "coder", "dead-hub", 2_000))
        .unwrap();
    damage(
        &path,
        r#"UPDATE jobs SET record = '{"id": "bad", "status": 7' WHERE id = 'bad'"#,
    );

    let recovered = store.recover_interrupted(&|_| false, 60_000).unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].id, "good");
    // The bad one is no longer running, so the next hub does not trip over it again.
    assert!(
        store
            .recover_interrupted(&|_| false, 60_000)
            .unwrap()
            .is_empty()
    );

    let listed = store.list_jobs_reporting(&JobFilter::default()).unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.skipped.len(), 1);
    let warning = listed.skipped[0].to_string();
    assert!(
        warning.contains("`bad`") && warning.contains("delete"),
        "{warning}"
    );
    assert_eq!(store.list_jobs(&JobFilter::default()).unwrap().len(), 1);
}

#[test]
fn a_run_that_does_not_decode_is_skipped_and_taken_out_of_running() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orchestra.db");
    let store = Store::open(&path).unwrap();
    store
        .save_run(&run("r-good", "dead", WorkflowRunStatus::Running, 1_000))
        .unwrap();
    store
        .save_run(&run("r-bad", "dead", WorkflowRunStatus::Running, 2_000))
        .unwrap();
    damage(
        &path,
        "UPDATE workflow_runs SET state = 'not json' WHERE id = 'r-bad'",
    );

    let recovered = store.recover_interrupted_runs(&|_| false, 60_000).unwrap();
    assert_eq!(recovered.len(), 1);
    let listed = store.list_runs_reporting(None, 10).unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].run_id, "r-good");
    assert_eq!(listed.skipped.len(), 1);
    assert!(
        listed.skipped[0]
            .to_string()
            .contains("workflow run `r-bad`")
    );
}
