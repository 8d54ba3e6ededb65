//! Hubs, heartbeats and recovery of jobs whose hub is gone.
#![allow(clippy::unwrap_used)]

use super::fixtures;

use fixtures::running_job;
use orchestra_protocol::{JobStatus, now_ms};
use orchestra_store::{Store, StoreError, pid_is_alive};

const LIVE_PID: u32 = 1001;
const DEAD_PID: u32 = 2002;
const MINUTE: i64 = 60_000;

fn fake_is_alive(pid: u32) -> bool {
    pid == LIVE_PID
}

fn hub_ids(path: &std::path::Path) -> Vec<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut select = conn.prepare("SELECT id FROM hubs ORDER BY id").unwrap();
    select
        .query_map([], |row| row.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

#[test]
fn recover_touches_only_jobs_of_dead_stale_or_missing_hubs() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orchestra.db");
    let store = Store::open(&path).unwrap();
    store.register_hub("live", LIVE_PID, "/p").unwrap();
    store.register_hub("dead", DEAD_PID, "/p").unwrap();
    store.register_hub("stale", LIVE_PID, "/p").unwrap();
    {
        // A hub whose process exists (maybe a reused pid) but stopped beating.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE hubs SET heartbeat_at = ?1 WHERE id = 'stale'",
            [now_ms() - 10 * MINUTE],
        )
        .unwrap();
    }
    store.heartbeat("live").unwrap();

    let started = now_ms() - 5_000;
    for (id, hub) in [
        ("on-live", "live"),
        ("on-dead", "dead"),
        ("on-stale", "stale"),
        ("on-missing", "never-registered"),
    ] {
        store
            .insert_job(&running_job(id, "coder", hub, started))
            .unwrap();
    }
    let mut finished_on_dead = running_job("finished-on-dead", "coder", "dead", started);
    finished_on_dead.finish(JobStatus::Succeeded, started + 10);
    store.insert_job(&finished_on_dead).unwrap();

    let mut recovered = store.recover_interrupted(&fake_is_alive, MINUTE).unwrap();
    recovered.sort_by(|a, b| a.id.cmp(&b.id));
    let ids: Vec<&str> = recovered.iter().map(|job| job.id.as_str()).collect();
    assert_eq!(ids, ["on-dead", "on-missing", "on-stale"]);

    for job in &recovered {
        let stored = store.get_job(&job.id).unwrap().unwrap();
        assert_eq!(&stored, job);
        assert_eq!(stored.status, JobStatus::Failed);
        assert_eq!(stored.error.as_deref(), Some("interrupted by hub restart"));
        let finished_at = stored.finished_at.unwrap();
        assert!(finished_at >= started + 5_000);
        assert_eq!(stored.duration_ms, Some(finished_at - started));
    }
    assert_eq!(
        store.get_job("on-live").unwrap().unwrap().status,
        JobStatus::Running
    );
    assert_eq!(
        store.get_job("finished-on-dead").unwrap(),
        Some(finished_on_dead)
    );

    // The dead hub's row is gone; the stale one stays (its process exists).
    assert_eq!(hub_ids(&path), ["live", "stale"]);

    // Nothing left to recover.
    assert!(
        store
            .recover_interrupted(&fake_is_alive, MINUTE)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn unregistered_hub_jobs_are_recovered_and_its_heartbeat_fails() {
    let store = Store::open_in_memory().unwrap();
    let me = std::process::id();
    assert!(pid_is_alive(me));
    store.register_hub("h1", me, "/p").unwrap();
    store
        .insert_job(&running_job("j1", "coder", "h1", now_ms()))
        .unwrap();
    assert!(
        store
            .recover_interrupted(&pid_is_alive, MINUTE)
            .unwrap()
            .is_empty()
    );

    store.unregister_hub("h1").unwrap();
    let error = store.heartbeat("h1").unwrap_err();
    assert!(
        matches!(error, StoreError::HubNotRegistered { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("register_hub"));

    let recovered = store.recover_interrupted(&pid_is_alive, MINUTE).unwrap();
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].id, "j1");
}

#[test]
fn re_registering_a_hub_refreshes_it() {
    let store = Store::open_in_memory().unwrap();
    store.register_hub("h1", DEAD_PID, "/p").unwrap();
    store.register_hub("h1", LIVE_PID, "/p").unwrap();
    store
        .insert_job(&running_job("j1", "coder", "h1", now_ms()))
        .unwrap();
    assert!(
        store
            .recover_interrupted(&fake_is_alive, MINUTE)
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_late_result_replaces_a_presumed_interruption_and_nothing_else() {
    use orchestra_store::LateResult;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orchestra.db");
    let store = Store::open(&path).unwrap();
    store.register_hub("napping", LIVE_PID, "/p").unwrap();
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE hubs SET heartbeat_at = ?1 WHERE id = 'napping'",
            [now_ms() - 10 * MINUTE],
        )
        .unwrap();
    }
    let started = now_ms() - 5_000;
    let napping = running_job("napping-job", "coder", "napping", started);
    store.insert_job(&napping).unwrap();
    let mut canceled = running_job("canceled-job", "coder", "napping", started);
    store.insert_job(&canceled).unwrap();
    canceled.error = Some("not needed".into());
    canceled.finish(JobStatus::Canceled, started + 5);
    assert!(store.finish_job(&canceled).unwrap());
    // Another hub takes the napping hub for dead.
    let recovered = store.recover_interrupted(&fake_is_alive, MINUTE).unwrap();
    assert_eq!(recovered.len(), 1);

    // The napping hub wakes and finishes: the guess gives way to the real result.
    let mut done = napping.clone();
    done.finish(JobStatus::Succeeded, now_ms());
    assert!(!store.finish_job(&done).unwrap(), "the job was closed");
    assert_eq!(
        store.finish_interrupted_job(&done).unwrap(),
        LateResult::Recorded
    );
    let stored = store.get_job("napping-job").unwrap().unwrap();
    assert_eq!(stored.status, JobStatus::Succeeded);
    assert_eq!(stored.error, None);
    // Only once: a second late write finds a real result and keeps it.
    assert_eq!(
        store.finish_interrupted_job(&done).unwrap(),
        LateResult::Kept {
            status: JobStatus::Succeeded,
            error: None
        }
    );

    // A cancel is no guess: a late result does not replace it.
    let mut late = running_job("canceled-job", "coder", "napping", started);
    late.finish(JobStatus::Succeeded, now_ms());
    assert_eq!(
        store.finish_interrupted_job(&late).unwrap(),
        LateResult::Kept {
            status: JobStatus::Canceled,
            error: Some("not needed".into())
        }
    );
    let mut pruned = running_job("pruned", "coder", "napping", started);
    pruned.finish(JobStatus::Failed, now_ms());
    assert_eq!(
        store.finish_interrupted_job(&pruned).unwrap(),
        LateResult::Gone
    );
}
