//! Issue 24 §5: a hub that was presumed dead comes back honestly. A hub suspended (SIGSTOP)
//! past `HUB_STALE_AFTER_MS` has its running task marked interrupted by a second hub on the
//! same store; when it is resumed, the task's real result replaces that guess, and the task's
//! log says so. A hub whose liveness row vanished registers again.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::{Duration, Instant};

use common::World;
use nix::sys::signal::{Signal, kill};
use orchestra_protocol::JobStatus;
use orchestra_store::{HUB_STALE_AFTER_MS, Store};
use serde_json::json;

fn job_status(store: &Store, id: &str) -> (JobStatus, Option<String>) {
    let job = store.get_job(id).unwrap().unwrap();
    (job.status, job.error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_hub_records_its_real_result_after_another_hub_marked_it_interrupted() {
    tokio::time::timeout(Duration::from_secs(300), async {
        let shared = tempfile::tempdir().unwrap();
        let db = shared.path().join("orchestra.db");
        let config = json!({"tasks": {"storePath": db}});
        let first = World::new(config.clone()).await;
        let second = World::new(config).await;
        let client = first.connect().await;
        let started = client
            .call_json(
                "task_start",
                json!({"kind": "worker", "workerId": "coder", "task": "SLOWMS:200:5 outlives a nap"}),
            )
            .await;
        let id = started["taskId"].as_str().unwrap().to_owned();
        // The worker's model is answering: the task is in its turn.
        first
            .fake
            .wait_for_requests(1, Duration::from_secs(60))
            .await
            .unwrap();
        let hub = common::hub_info(&first.home, &first.project.dir).await;
        let pid = nix::unistd::Pid::from_raw(i32::try_from(hub.pid).unwrap());
        kill(pid, Signal::SIGSTOP).unwrap();
        let stopped_at = Instant::now();
        // Its last heartbeat was before the stop: once this much has passed, it is stale.
        let stale = Duration::from_millis(u64::try_from(HUB_STALE_AFTER_MS).unwrap() + 1000);
        tokio::time::sleep(stale.saturating_sub(stopped_at.elapsed())).await;

        // A second hub on the same store takes the first for dead and closes its task.
        let other = second.connect().await;
        // A call that needs the hub: the relay has started it by the time it answers.
        let (is_error, text) = other.call("task_list", json!({"view": "tasks"})).await;
        assert!(!is_error, "{text}");
        let store = Store::open(&db).unwrap();
        let (status, error) = job_status(&store, &id);
        assert_eq!(status, JobStatus::Failed, "{error:?}");
        assert_eq!(error.as_deref(), Some("interrupted by hub restart"));

        // The first wakes up and finishes the task: its real result is recorded.
        kill(pid, Signal::SIGCONT).unwrap();
        let deadline = Instant::now() + Duration::from_secs(90);
        let record = loop {
            let record = store.get_job(&id).unwrap().unwrap();
            if record.status != JobStatus::Failed {
                break record;
            }
            assert!(
                Instant::now() < deadline,
                "the resumed hub's result never replaced the interruption: {record:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert!(
            record.response_text.as_deref().unwrap_or_default().contains("chunk5"),
            "{record:?}"
        );
        let said = store
            .logs_after(0, 10_000)
            .unwrap()
            .into_iter()
            .filter(|line| line.job_id.as_deref() == Some(id.as_str()))
            .map(|line| line.message)
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            said.contains("another hub marked the task interrupted")
                && said.contains("replaces that"),
            "{said}"
        );
        other.close().await;
        client.close().await;
    })
    .await
    .expect("test took longer than 300 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_whose_liveness_row_vanished_registers_again() {
    common::bounded(async {
        let world = World::new(json!({})).await;
        let client = world.connect().await;
        let hub = common::hub_info(&world.home, &world.project.dir).await;
        let store = world.store();
        assert!(store.is_hub_registered(&hub.hub_id).unwrap());
        store.unregister_hub(&hub.hub_id).unwrap();
        // The next heartbeat (every 10 s) finds its row gone and registers again.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !store.is_hub_registered(&hub.hub_id).unwrap() {
            assert!(Instant::now() < deadline, "the hub never registered again");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        client.close().await;
    })
    .await;
}
