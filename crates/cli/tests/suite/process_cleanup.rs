//! Nothing a worker started outlives its hub: not OpenCode, and not the commands OpenCode's bash
//! tool started in sessions of their own, even when the hub (`orchestra serve`, started in the
//! background by the `orchestra mcp` relay) is SIGKILLed.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::{Duration, Instant};

use common::{World, bounded, hub_info, kill, wait_gone};
use orchestra_testkit::processes;
use serde_json::json;

/// The process groups the hub recorded for a worker server (the server's own and those of its
/// descendants), once one of them holds the `sleep 600` the worker's bash tool runs. OpenCode
/// starts other short-lived commands too (git, ripgrep), so the first recorded group need not
/// be the sleep's.
async fn recorded_groups(world: &World, server_pid: u32) -> Vec<u32> {
    let store = world.store();
    // OpenCode runs under the hub's supervisor, in the supervisor's group: that is the group
    // the hub recorded as the server's.
    let server_group = processes::stat(server_pid).unwrap().1;
    for _ in 0..300 {
        let groups: Vec<u32> = store
            .process_groups()
            .unwrap()
            .iter()
            .filter(|g| g.server_pgid == i32::try_from(server_group).unwrap())
            .map(|g| u32::try_from(g.pgid).unwrap())
            .collect();
        let sleeping = groups
            .iter()
            .flat_map(|&g| processes::group_members(g))
            .any(|pid| processes::cmdline(pid) == "sleep 600");
        if sleeping {
            return groups;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the hub never recorded the group of the worker's bash command");
}

/// Has the coder run `sleep 600` through its bash tool; returns the worker server's pid, the
/// groups the hub recorded for it, and every process in them (the sleep among them).
async fn sleeping_worker(world: &World, client: &common::Client) -> (u32, Vec<u32>, Vec<u32>) {
    client
        .call_json(
            "task_start",
            json!({"kind": "worker", "workerId": "coder",
                   "task": r#"CALL_TOOL:bash {"command":"sleep 600","description":"sleep"}"#}),
        )
        .await;
    let opencode = client.worker_pid().await;
    let groups = recorded_groups(world, opencode).await;
    let tree: Vec<u32> = groups
        .iter()
        .flat_map(|&g| processes::group_members(g))
        .collect();
    assert!(
        tree.iter()
            .any(|&pid| processes::cmdline(pid) == "sleep 600"),
        "no `sleep 600` among {tree:?}"
    );
    (opencode, groups, tree)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_hub_leaves_nothing_running_once_the_next_hub_starts() {
    bounded(async {
        let world = World::new(json!({})).await;
        let first = world.connect().await;
        let (opencode, groups, tree) = sleeping_worker(&world, &first).await;
        let sleep = tree
            .iter()
            .copied()
            .find(|&pid| processes::cmdline(pid) == "sleep 600")
            .unwrap();
        // OpenCode ran the command in a group of its own: the group kill alone would miss it.
        assert_ne!(processes::stat(sleep).unwrap().1, opencode);

        let old = hub_info(&world.home, &world.project.dir).await;
        kill(old.pid).await;
        // The supervisor takes OpenCode and its command down with the hub already (see
        // `background_commands.rs`); the next hub's reap of the records is the backstop.
        wait_gone(opencode).await;

        // The client's next call brings the next hub up, which reaps what the first one left.
        let started = Instant::now();
        first
            .call_json("task_list", json!({"view": "tasks", "format": "json"}))
            .await;
        let new = hub_info(&world.home, &world.project.dir).await;
        assert_ne!(new.pid, old.pid);
        let left = processes::wait_all_gone(&tree, Duration::from_secs(5));
        let took = started.elapsed();
        assert!(
            left.is_empty(),
            "still running {took:?} after the next hub started: {left:?}"
        );
        // Nothing else the first hub's tree started is left either: every process carrying this
        // world's marker is the client (the relay) or belongs to the new hub.
        let mut second_tree = processes::descendants(new.pid);
        second_tree.push(new.pid);
        second_tree.push(first.pid);
        let strays: Vec<u32> = processes::with_marker(&world.marker)
            .into_iter()
            .filter(|pid| !second_tree.contains(pid))
            .collect();
        assert!(strays.is_empty(), "left running: {strays:?}");
        eprintln!(
            "old tree: {} processes in {} groups; {} left {took:?} after the next hub started",
            tree.len(),
            groups.len(),
            left.len() + strays.len()
        );
        // The reaped groups are forgotten.
        let old_pid = i32::try_from(old.pid).unwrap();
        assert!(
            world
                .store()
                .process_groups()
                .unwrap()
                .iter()
                .all(|g| g.owner_pid != old_pid)
        );
        first.close().await;
    })
    .await;
}

/// On a normal stop OpenCode gets SIGTERM and ends its commands itself; the recorded groups
/// are killed after it as a backstop, and forgotten either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_that_stops_normally_takes_the_commands_of_its_workers_along() {
    bounded(async {
        let world = World::new(json!({})).await;
        let client = world.connect().await;
        let (_, _, tree) = sleeping_worker(&world, &client).await;
        // The client leaves, then the hub is stopped the normal way: shutdown, then exit.
        client.close().await;
        common::stop_hub(&world.home, &world.project.dir);
        let left = processes::wait_all_gone(&tree, Duration::from_secs(5));
        assert!(
            left.is_empty(),
            "left running after a normal stop: {left:?}"
        );
        // The hub lets go of the project (what `orchestra stop` waits for) a moment before its
        // process has exited.
        let marked = processes::with_marker(&world.marker);
        let left = processes::wait_all_gone(&marked, Duration::from_secs(5));
        assert!(left.is_empty(), "left running: {left:?}");
        assert!(
            world.store().process_groups().unwrap().is_empty(),
            "a normal stop forgets its records"
        );
    })
    .await;
}
