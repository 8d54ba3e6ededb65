//! Nothing a worker puts in the background outlives its hub, by construction: each OpenCode
//! server runs under `orchestra __supervise`, a child subreaper that every orphan below it is
//! re-parented to and that kills them all when the hub dies. No next hub is needed.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::{Duration, Instant};

use common::{World, bounded, hub_info, kill};
use orchestra_testkit::processes;
use serde_json::json;

/// The four ways a command leaves its shell, each with its own marker duration.
const KINDS: [(&str, &str); 4] = [
    ("background (cmd &)", "sleep 611"),
    ("nohup cmd &", "sleep 612"),
    ("setsid cmd", "sleep 613"),
    ("double fork ((cmd &) &)", "sleep 614"),
];

const COMMAND: &str = "sleep 611 >/dev/null 2>&1 </dev/null & \
     nohup sleep 612 >/dev/null 2>&1 </dev/null & \
     setsid sleep 613 >/dev/null 2>&1 </dev/null & \
     (sleep 614 >/dev/null 2>&1 </dev/null &) & \
     echo started";

/// The pids of this world's processes whose command line is `cmdline`.
fn find(world: &World, cmdline: &str) -> Vec<u32> {
    processes::with_marker(&world.marker)
        .into_iter()
        .filter(|&pid| processes::cmdline(pid) == cmdline)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_commands_die_with_a_sigkilled_hub_without_a_next_hub() {
    bounded(async {
        let world = World::new(json!({})).await;
        let client = world.connect().await;
        let task = json!({"command": COMMAND, "description": "background"});
        client
            .call_json(
                "task_start",
                json!({"kind": "worker", "workerId": "coder",
                       "task": format!("CALL_TOOL:bash {task}")}),
            )
            .await;
        let mut started: Vec<(&str, u32)> = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        for (kind, cmdline) in KINDS {
            let pid = loop {
                if let Some(&pid) = find(&world, cmdline).first() {
                    break pid;
                }
                assert!(Instant::now() < deadline, "`{cmdline}` ({kind}) never ran");
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            started.push((kind, pid));
        }
        let hub = hub_info(&world.home, &world.project.dir).await;
        // Every one of them left its shell, and none left the hub's tree: the supervisor
        // adopted those whose parent is gone (without it they would belong to init).
        let tree = processes::descendants(hub.pid);
        for &(kind, pid) in &started {
            assert!(
                tree.contains(&pid),
                "{kind}: pid {pid} is not below the hub {}",
                hub.pid
            );
        }

        kill(hub.pid).await;
        let killed_at = Instant::now();
        let pids: Vec<u32> = started.iter().map(|&(_, pid)| pid).collect();
        let left = processes::wait_all_gone(&pids, Duration::from_secs(5));
        let gone_after = killed_at.elapsed();
        // The rest of the tree (the supervisor, OpenCode and whatever else it ran) goes too.
        let rest =
            processes::wait_all_gone(&tree, Duration::from_secs(5).saturating_sub(gone_after));
        let rest: Vec<(u32, String)> = rest
            .into_iter()
            .map(|pid| (pid, processes::cmdline(pid)))
            .collect();
        let mut report = Vec::new();
        for &(kind, pid) in &started {
            report.push(format!("{kind}: {} left", usize::from(left.contains(&pid))));
        }
        eprintln!(
            "after SIGKILL of the hub: {} (the four gone {gone_after:?} after the hub was); \
             {} other processes of its tree left after 5 s",
            report.join("; "),
            rest.len()
        );
        assert!(
            rest.is_empty(),
            "left running 5 s after the hub died: {rest:?}"
        );
        assert!(
            left.is_empty(),
            "still running 5 s after the hub died: {report:?}"
        );
        // Nothing else of the old tree is left either: only the client's relay carries the
        // world's marker now.
        let strays: Vec<(u32, String)> = processes::with_marker(&world.marker)
            .into_iter()
            .filter(|&pid| pid != client.pid)
            .map(|pid| (pid, processes::cmdline(pid)))
            .collect();
        assert!(strays.is_empty(), "left running: {strays:?}");
        // And no next hub did it: the dead hub's records were never reaped.
        let dead = i32::try_from(hub.pid).unwrap();
        assert!(
            world
                .store()
                .process_groups()
                .unwrap()
                .iter()
                .any(|g| g.owner_pid == dead),
            "a next hub reaped the records; this test would prove nothing"
        );
        client.close().await;
    })
    .await;
}
