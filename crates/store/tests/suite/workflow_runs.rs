//! Workflow runs: saving, conditional claims, listing and recovery after a hub died.
#![allow(clippy::unwrap_used)]

use super::fixtures;

use fixtures::run;
use orchestra_protocol::{WorkflowRunStatus, WorkflowStepStatus, now_ms};
use orchestra_store::{RUN_INTERRUPTED, Store};

const LIVE_PID: u32 = 1001;

#[test]
fn a_saved_run_reads_back_whole_and_lists_newest_first() {
    let store = Store::open_in_memory().unwrap();
    let first = run("r1", "h", WorkflowRunStatus::Success, 1_000);
    let second = run("r2", "h", WorkflowRunStatus::Paused, 2_000);
    store.save_run(&first).unwrap();
    store.save_run(&second).unwrap();
    assert_eq!(store.get_run("r1").unwrap().unwrap(), first);
    assert!(store.get_run("nope").unwrap().is_none());
    let ids: Vec<String> = store
        .list_runs(None, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    assert_eq!(ids, ["r2", "r1"]);
    assert!(store.list_runs(Some("other"), 10).unwrap().is_empty());
    assert_eq!(store.list_runs(None, 1).unwrap().len(), 1);
}

#[test]
fn only_one_claim_of_a_paused_run_wins() {
    let store = Store::open_in_memory().unwrap();
    store
        .save_run(&run("r", "h1", WorkflowRunStatus::Paused, 1))
        .unwrap();
    let mut claim = run("r", "h2", WorkflowRunStatus::Running, 1);
    assert!(
        store
            .save_run_if(&claim, WorkflowRunStatus::Paused)
            .unwrap()
    );
    claim.hub_id = "h3".into();
    assert!(
        !store
            .save_run_if(&claim, WorkflowRunStatus::Paused)
            .unwrap()
    );
    assert_eq!(store.get_run("r").unwrap().unwrap().hub_id, "h2");
}

#[test]
fn runs_of_gone_hubs_are_paused_with_their_running_step_marked_for_rerun() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("orchestra.db")).unwrap();
    store.register_hub("live", LIVE_PID, "/p").unwrap();
    store.register_hub("dead", 2002, "/p").unwrap();
    let now = now_ms();
    store
        .save_run(&run("of-live", "live", WorkflowRunStatus::Running, now))
        .unwrap();
    store
        .save_run(&run("of-dead", "dead", WorkflowRunStatus::Running, now))
        .unwrap();
    store
        .save_run(&run("of-missing", "gone", WorkflowRunStatus::Running, now))
        .unwrap();
    store
        .save_run(&run("done", "gone", WorkflowRunStatus::Success, now))
        .unwrap();

    let mut recovered: Vec<String> = store
        .recover_interrupted_runs(&|pid| pid == LIVE_PID, 60_000)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    recovered.sort();
    assert_eq!(recovered, ["of-dead", "of-missing"]);

    let paused = store.get_run("of-dead").unwrap().unwrap();
    assert_eq!(paused.status, WorkflowRunStatus::Paused);
    assert!(paused.reason.unwrap().contains(RUN_INTERRUPTED));
    assert_eq!(paused.steps[0].status, WorkflowStepStatus::Success);
    assert_eq!(paused.steps[1].status, WorkflowStepStatus::Error);
    assert_eq!(
        store.get_run("of-live").unwrap().unwrap().status,
        WorkflowRunStatus::Running
    );
    assert_eq!(
        store.get_run("done").unwrap().unwrap().status,
        WorkflowRunStatus::Success
    );
    // A second pass finds nothing more to do.
    assert!(
        store
            .recover_interrupted_runs(&|pid| pid == LIVE_PID, 60_000)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn runs_are_pruned_like_jobs_but_live_ones_only_when_abandoned() {
    let store = Store::open_in_memory().unwrap();
    let now = now_ms();
    let hour = 3_600_000;
    let mut old_done = run("old-done", "h", WorkflowRunStatus::Success, now - 48 * hour);
    old_done.finished_at = Some(now - 47 * hour);
    let mut fresh_done = run("fresh-done", "h", WorkflowRunStatus::Error, now - 2 * hour);
    fresh_done.finished_at = Some(now - hour);
    let mut newer_done = run("newer-done", "h", WorkflowRunStatus::Success, now - hour);
    newer_done.finished_at = Some(now - 1000);
    let paused = run("paused", "h", WorkflowRunStatus::Paused, now - 2 * hour);
    let mut abandoned = run("abandoned", "h", WorkflowRunStatus::Paused, now - 72 * hour);
    abandoned.updated_at = now - 71 * hour;
    let running = run("running", "h", WorkflowRunStatus::Running, now - hour);
    for r in [
        &old_done,
        &fresh_done,
        &newer_done,
        &paused,
        &abandoned,
        &running,
    ] {
        store.save_run(r).unwrap();
    }
    // 24 h, keep one final run: the old one goes by age, the older fresh one by count; the
    // live runs stay (the paused one untouched for three days goes).
    assert_eq!(store.prune_runs(24 * hour, 1).unwrap(), 3);
    let mut left: Vec<String> = store
        .list_runs(None, 10)
        .unwrap()
        .into_iter()
        .map(|r| r.run_id)
        .collect();
    left.sort();
    assert_eq!(left, ["newer-done", "paused", "running"]);
}

#[test]
fn attachments_are_stored_once_and_dropped_when_the_run_is_final() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orchestra.db");
    let store = Store::open(&path).unwrap();
    let mut r = run("r", "h", WorkflowRunStatus::Running, now_ms());
    r.attachments = vec![orchestra_protocol::Attachment {
        kind: orchestra_protocol::AttachmentType::Image,
        path: None,
        base64: Some("A".repeat(100_000)),
        mime_type: Some("image/png".into()),
    }];
    store.save_run(&r).unwrap();
    r.current_step_index = 2;
    store.save_run(&r).unwrap();
    assert_eq!(store.get_run("r").unwrap().unwrap(), r, "read back whole");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let state_len: i64 = conn
        .query_row(
            "SELECT length(state) FROM workflow_runs WHERE id = 'r'",
            [],
            |row| row.get(0),
        )
        .unwrap();
    assert!(
        state_len < 10_000,
        "the state carries the attachment: {state_len} bytes"
    );
    r.status = WorkflowRunStatus::Success;
    store.save_run(&r).unwrap();
    let stored: i64 = conn
        .query_row("SELECT COUNT(*) FROM workflow_run_attachments", [], |row| {
            row.get(0)
        })
        .unwrap();
    assert_eq!(stored, 0);
    assert!(store.get_run("r").unwrap().unwrap().attachments.is_empty());
}
