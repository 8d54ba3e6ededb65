//! Worker snapshots published by hubs and read by other processes.
#![allow(clippy::unwrap_used)]

use orchestra_protocol::{WorkerSnapshot, WorkerStatus};
use orchestra_store::Store;

const LIVE_PID: u32 = 1001;
const DEAD_PID: u32 = 2002;

fn is_alive(pid: u32) -> bool {
    pid == LIVE_PID
}

fn worker(id: &str, status: WorkerStatus) -> WorkerSnapshot {
    WorkerSnapshot {
        id: id.into(),
        name: id.into(),
        status,
        model_ref: "auto".into(),
        model: None,
        model_resolution: None,
        model_policy: None,
        agent: format!("orchestra-{id}"),
        isolation: "shared".into(),
        server_url: None,
        port: None,
        pid: None,
        active_jobs: 0,
        last_activity_at: None,
        restarts: 0,
        warning: None,
        purpose: "p".into(),
        read_only: false,
        hub_pid: None,
    }
}

#[test]
fn live_hubs_workers_are_visible_and_dead_or_unregistered_hubs_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    store.register_hub("live", LIVE_PID, "/p").unwrap();
    store.register_hub("dead", DEAD_PID, "/p").unwrap();
    store.register_hub("me", LIVE_PID, "/p").unwrap();
    store
        .publish_workers(
            "live",
            &[
                worker("coder", WorkerStatus::Busy),
                worker("architect", WorkerStatus::Ready),
            ],
        )
        .unwrap();
    store
        .publish_workers("dead", &[worker("coder", WorkerStatus::Ready)])
        .unwrap();
    store
        .publish_workers("me", &[worker("explorer", WorkerStatus::Ready)])
        .unwrap();

    let seen = store
        .live_hub_workers(&is_alive, 60_000, Some("me"))
        .unwrap();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].hub_id, "live");
    assert_eq!(seen[0].pid, LIVE_PID);
    let ids: Vec<&str> = seen[0].workers.iter().map(|w| w.id.as_str()).collect();
    assert_eq!(ids, ["architect", "coder"]);
    assert_eq!(seen[0].workers[1].status, WorkerStatus::Busy);

    // Publishing replaces; unregistering removes.
    store
        .publish_workers("live", &[worker("coder", WorkerStatus::Ready)])
        .unwrap();
    let seen = store
        .live_hub_workers(&is_alive, 60_000, Some("me"))
        .unwrap();
    assert_eq!(seen[0].workers.len(), 1);
    assert_eq!(seen[0].workers[0].status, WorkerStatus::Ready);
    store.unregister_hub("live").unwrap();
    assert!(
        store
            .live_hub_workers(&is_alive, 60_000, Some("me"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store
            .live_hub_workers(&is_alive, 60_000, None)
            .unwrap()
            .len(),
        1
    );
}
