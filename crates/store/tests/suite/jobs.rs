//! Job records: insert, save, finish, list, prune.
#![allow(clippy::unwrap_used)]

use super::fixtures;

use fixtures::running_job;
use orchestra_protocol::{JobStatus, now_ms};
use orchestra_store::{JobFilter, Store, StoreError};

#[test]
fn insert_get_and_duplicate() {
    let store = Store::open_in_memory().unwrap();
    let mut job = running_job("j1", "coder", "h1", 1_000);
    job.progress.tool_calls = 3;
    job.usage.input = 42;
    store.insert_job(&job).unwrap();
    assert_eq!(store.get_job("j1").unwrap(), Some(job.clone()));
    assert_eq!(store.get_job("nope").unwrap(), None);

    let error = store.insert_job(&job).unwrap_err();
    assert!(
        matches!(error, StoreError::DuplicateJob { ref id } if id == "j1"),
        "{error}"
    );
    assert_eq!(store.count_jobs().unwrap(), 1);
}

#[test]
fn save_job_writes_progress_only_for_the_owning_hub_of_a_running_job() {
    let store = Store::open_in_memory().unwrap();
    let mut job = running_job("j1", "coder", "h1", 1_000);
    // Nothing to update before the job was inserted.
    assert!(!store.save_job(&job).unwrap());
    store.insert_job(&job).unwrap();
    job.progress.last_output = Some("halfway".into());
    job.session_id = Some("ses_1".into());
    assert!(store.save_job(&job).unwrap());
    assert_eq!(store.get_job("j1").unwrap(), Some(job.clone()));
    // Another hub cannot write it.
    let mut foreign = job.clone();
    foreign.hub_id = "h2".into();
    foreign.progress.last_output = Some("not mine".into());
    assert!(!store.save_job(&foreign).unwrap());
    // Once final (a cancel, a recovery), a late progress write cannot make it running again.
    let mut done = job.clone();
    done.finish(JobStatus::Canceled, 2_000);
    assert!(store.finish_job(&done).unwrap());
    assert!(!store.save_job(&job).unwrap());
    assert_eq!(
        store.get_job("j1").unwrap().unwrap().status,
        JobStatus::Canceled
    );
    assert_eq!(store.count_jobs().unwrap(), 1);
}

#[test]
fn get_jobs_keeps_the_order_of_ids() {
    let store = Store::open_in_memory().unwrap();
    for id in ["a", "b", "c"] {
        store
            .insert_job(&running_job(id, "coder", "h1", 1))
            .unwrap();
    }
    let ids: Vec<String> = ["c", "missing", "a", "c"].map(String::from).to_vec();
    let got: Vec<Option<String>> = store
        .get_jobs(&ids)
        .unwrap()
        .into_iter()
        .map(|job| job.map(|job| job.id))
        .collect();
    assert_eq!(
        got,
        vec![Some("c".into()), None, Some("a".into()), Some("c".into())]
    );
    assert!(store.get_jobs(&[]).unwrap().is_empty());
}

#[test]
fn list_jobs_newest_first_with_filters() {
    let store = Store::open_in_memory().unwrap();
    store
        .insert_job(&running_job("old", "coder", "h1", 100))
        .unwrap();
    store
        .insert_job(&running_job("mid", "docs", "h2", 200))
        .unwrap();
    store
        .insert_job(&running_job("new", "coder", "h1", 300))
        .unwrap();
    // Same start time as `new`: insertion order breaks the tie.
    store
        .insert_job(&running_job("tie", "coder", "h2", 300))
        .unwrap();
    let mut done = running_job("done", "coder", "h1", 250);
    done.finish(JobStatus::Succeeded, 260);
    store.insert_job(&done).unwrap();

    let ids = |filter: JobFilter| -> Vec<String> {
        store
            .list_jobs(&filter)
            .unwrap()
            .into_iter()
            .map(|job| job.id)
            .collect()
    };
    assert_eq!(
        ids(JobFilter::default()),
        ["tie", "new", "done", "mid", "old"]
    );
    assert_eq!(
        ids(JobFilter {
            worker_id: Some("coder".into()),
            ..JobFilter::default()
        }),
        ["tie", "new", "done", "old"]
    );
    assert_eq!(
        ids(JobFilter {
            status: Some(JobStatus::Succeeded),
            ..JobFilter::default()
        }),
        ["done"]
    );
    assert_eq!(
        ids(JobFilter {
            worker_id: Some("coder".into()),
            status: Some(JobStatus::Running),
            hub_id: Some("h1".into()),
            limit: 20,
        }),
        ["new", "old"]
    );
    assert_eq!(
        ids(JobFilter {
            limit: 2,
            ..JobFilter::default()
        }),
        ["tie", "new"]
    );
    assert_eq!(JobFilter::default().limit, 20);
}

#[test]
fn finish_job_finalizes_once_and_never_overwrites_a_cancel() {
    let store = Store::open_in_memory().unwrap();
    let job = running_job("j1", "coder", "h1", 1_000);
    store.insert_job(&job).unwrap();

    let mut canceled = job.clone();
    canceled.finish(JobStatus::Canceled, 2_000);
    assert!(store.finish_job(&canceled).unwrap());

    // The worker's late completion must not replace the cancel.
    let mut late = job.clone();
    late.response_text = Some("done anyway".into());
    late.finish(JobStatus::Succeeded, 3_000);
    assert!(!store.finish_job(&late).unwrap());
    assert_eq!(store.get_job("j1").unwrap(), Some(canceled.clone()));

    // A second finalize with the same status is refused too.
    assert!(!store.finish_job(&canceled).unwrap());

    // Unknown jobs are not finalized; running records are a caller bug.
    let mut ghost = running_job("ghost", "coder", "h1", 1);
    let error = store.finish_job(&ghost).unwrap_err();
    assert!(matches!(error, StoreError::NotFinal { .. }), "{error}");
    ghost.finish(JobStatus::Failed, 2);
    assert!(!store.finish_job(&ghost).unwrap());
    assert_eq!(store.get_job("ghost").unwrap(), None);
}

#[test]
fn finished_job_keeps_duration_and_status_column() {
    let store = Store::open_in_memory().unwrap();
    let mut job = running_job("j1", "coder", "h1", 1_000);
    store.insert_job(&job).unwrap();
    job.finish(JobStatus::Succeeded, 1_500);
    assert!(store.finish_job(&job).unwrap());
    let stored = store.get_job("j1").unwrap().unwrap();
    assert_eq!(stored.duration_ms, Some(500));
    let running = store
        .list_jobs(&JobFilter {
            status: Some(JobStatus::Running),
            ..JobFilter::default()
        })
        .unwrap();
    assert!(running.is_empty());
}

#[test]
fn prune_by_age_keeps_running_and_recent_jobs() {
    let store = Store::open_in_memory().unwrap();
    let now = now_ms();
    let hour = 3_600_000;
    let mut old_done = running_job("old-done", "coder", "h1", now - 3 * hour);
    old_done.finish(JobStatus::Succeeded, now - 2 * hour);
    let mut old_failed = running_job("old-failed", "coder", "h1", now - 3 * hour);
    old_failed.finish(JobStatus::Failed, now - 2 * hour);
    let old_running = running_job("old-running", "coder", "h1", now - 5 * hour);
    let mut recent = running_job("recent", "coder", "h1", now - 3 * hour);
    recent.finish(JobStatus::Succeeded, now - 1_000);
    for job in [&old_done, &old_failed, &old_running, &recent] {
        store.insert_job(job).unwrap();
    }
    assert_eq!(store.prune_jobs(hour, 100).unwrap(), 2);
    let mut left: Vec<String> = store
        .list_jobs(&JobFilter::default())
        .unwrap()
        .into_iter()
        .map(|job| job.id)
        .collect();
    left.sort();
    assert_eq!(left, ["old-running", "recent"]);
    assert_eq!(store.prune_jobs(i64::MAX, 100).unwrap(), 0);
}

#[test]
fn prune_by_count_drops_oldest_final_jobs_only() {
    let store = Store::open_in_memory().unwrap();
    let now = now_ms();
    for n in 0..6 {
        let mut job = running_job(&format!("done{n}"), "coder", "h1", now - 100 + n);
        job.finish(JobStatus::Succeeded, now - 50 + n);
        store.insert_job(&job).unwrap();
    }
    for n in 0..3 {
        store
            .insert_job(&running_job(&format!("run{n}"), "coder", "h1", now - 1_000))
            .unwrap();
    }
    assert_eq!(store.prune_jobs(i64::MAX, 2).unwrap(), 4);
    let mut left: Vec<String> = store
        .list_jobs(&JobFilter::default())
        .unwrap()
        .into_iter()
        .map(|job| job.id)
        .collect();
    left.sort();
    assert_eq!(left, ["done4", "done5", "run0", "run1", "run2"]);
    assert_eq!(store.prune_jobs(i64::MAX, 0).unwrap(), 2);
    assert_eq!(store.count_jobs().unwrap(), 3);
}

#[test]
fn a_finish_and_its_log_line_are_written_together_and_a_second_finish_writes_neither() {
    let store = Store::open_in_memory().unwrap();
    let job = running_job("j1", "coder", "h1", 1_000);
    store.insert_job(&job).unwrap();
    let mut done = job.clone();
    done.finish(JobStatus::Succeeded, 2_000);
    assert!(
        store
            .finish_job_logged(&done, "info", "j1 succeeded")
            .unwrap()
    );
    let mut late = job.clone();
    late.finish(JobStatus::Failed, 3_000);
    assert!(
        !store
            .finish_job_logged(&late, "error", "j1 failed")
            .unwrap()
    );
    assert_eq!(
        store.get_job("j1").unwrap().unwrap().status,
        JobStatus::Succeeded
    );
    let lines: Vec<(Option<String>, String)> = store
        .logs_after(0, 100)
        .unwrap()
        .into_iter()
        .map(|line| (line.job_id, line.message))
        .collect();
    assert_eq!(lines, vec![(Some("j1".into()), "j1 succeeded".into())]);
    // Only a final record can finish a job.
    assert!(store.finish_job_logged(&job, "info", "running").is_err());
}
