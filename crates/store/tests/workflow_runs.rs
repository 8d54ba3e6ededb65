//! Workflow runs: saving, conditional claims, listing and recovery after a hub died.
#![allow(clippy::unwrap_used)]

mod fixtures;

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
