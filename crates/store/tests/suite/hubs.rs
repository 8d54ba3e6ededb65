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
