//! A burst of tasks does not leave the hub with a thread per task: blocking work (the memory
//! block, memory writes, event batches) waits for one of a bounded set of threads, and every
//! thread a hub keeps holds a stack and an allocator cache for as long as it lives.
#![allow(clippy::unwrap_used)]

use super::common;

use common::{World, bounded, hub_info};
use orchestra_testkit::processes;
use serde_json::json;

const BURST: usize = 64;
/// The hub's own threads (main, two runtime workers, 16 for blocking work, the index's writer
/// and merge threads while a batch runs: about 26) with a little room; without the bound this
/// burst left 43 (and a 64-in-flight soak about 70).
const MOST_THREADS: u64 = 30;

fn threads(pid: u32) -> u64 {
    processes::status_number(pid, "Threads:").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_tasks_leaves_the_hub_with_a_bounded_number_of_threads() {
    bounded(async {
        let world = World::new(json!({})).await;
        let client = world.connect().await;
        // Memory to search, so each task start's block does real work.
        for i in 0..40 {
            client
                .call_json(
                    "task_start",
                    json!({"kind": "op", "op": "memory.put", "task": "remember",
                        "memory": {"key": format!("fact:note-{i}"),
                            "value": format!("note {i}: the parser module keeps its tests in parser_tests")}}),
                )
                .await;
        }
        let starts = (0..BURST).map(|i| {
            client.call_json(
                "task_start",
                json!({"kind": "worker", "workerId": "coder",
                    "task": format!("burst {i}: review the parser module and its tests")}),
            )
        });
        let started = futures_util::future::join_all(starts).await;
        let hub = hub_info(&world.home, &world.project.dir).await.pid;
        let mut most = threads(hub);
        for task in &started {
            let record = client.finish(task["taskId"].as_str().unwrap()).await;
            assert_eq!(record["status"], "succeeded", "{record}");
            most = most.max(threads(hub));
        }
        assert!(
            most <= MOST_THREADS,
            "the hub had {most} threads after a burst of {BURST} tasks"
        );
        client.close().await;
    })
    .await;
}
