//! `orchestra mcp` as a real child process, driven by a real MCP client (rmcp), with real
//! OpenCode workers and the fake LLM. The relay starts the project's hub in the background;
//! these tests also cover what that hub does when clients come and go, or when it is killed.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::{Duration, Instant};

use common::{World, alive, bounded, children_of, hub_info, kill, wait_gone, worker_servers};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_five_tools_work_over_stdio_and_bad_input_gets_tool_errors() {
    bounded(async {
        let world = World::new(json!({"tasks": {"awaitCapMs": 1500, "maxTaskChars": 2000}})).await;
        let client = world.connect().await;
        let tools = client.service.list_all_tools().await.unwrap();
        let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
        names.sort();
        assert_eq!(
            names,
            [
                "task_await",
                "task_cancel",
                "task_list",
                "task_peek",
                "task_start"
            ]
        );
        let start = tools.iter().find(|t| t.name == "task_start").unwrap();
        let schema = serde_json::to_value(start.input_schema.as_ref()).unwrap();
        assert!(schema["properties"]["workerId"].is_object(), "{schema}");
        assert!(
            schema.to_string().contains("\"workflow\""),
            "kind enum in the schema: {schema}"
        );

        // A task on a worker returns the model's text.
        let started = client
            .call_json(
                "task_start",
                json!({"kind": "worker", "workerId": "coder", "task": "hello over mcp"}),
            )
            .await;
        assert_eq!(started["status"], "running");
        assert_eq!(started["next"], "task_await");
        let record = client.finish(started["taskId"].as_str().unwrap()).await;
        assert_eq!(record["status"], "succeeded", "{record}");
        assert_eq!(record["responseText"], "ECHO: hello over mcp");
        // The MCP client's name is recorded as who asked.
        assert!(
            record["requestedBy"]
                .as_str()
                .is_some_and(|s| !s.is_empty()),
            "{record}"
        );
        assert!(record["usage"]["output"].as_u64().unwrap() > 0);

        // Auto routing records its choice.
        let started = client
            .call_json("task_start", json!({"task": "find where the parser lives"}))
            .await;
        assert_eq!(started["workerId"], "explorer");
        let record = client.finish(started["taskId"].as_str().unwrap()).await;
        assert_eq!(record["route"]["profile"], "explorer");
        assert!(record["route"]["reason"].as_str().unwrap().contains("find"));

        // Bad input: each is a tool error that names the problem; the server keeps running.
        let cases = [
            (
                json!({"kind": "worker", "workerId": "codr", "task": "x"}),
                "coder",
            ),
            (json!({"kind": "wrker", "task": "x"}), "kind"),
            (json!({"kind": "worker"}), "task"),
            (
                json!({"kind": "worker", "workerId": "coder", "task": "x".repeat(2001)}),
                "maxTaskChars",
            ),
            (json!({"kind": "worker", "task": "x"}), "workerId"),
            (
                json!({"kind": "worker", "workerId": "coder", "task": "x",
                       "attachments": [{"type": "file", "path": "missing.txt"}]}),
                "does not exist",
            ),
        ];
        for (args, needle) in cases {
            let (is_error, text) = client.call("task_start", args.clone()).await;
            assert!(is_error, "{args} was accepted: {text}");
            assert!(
                text.contains(needle),
                "error for {args} does not mention `{needle}`: {text}"
            );
        }
        let (is_error, text) = client.call("task_await", json!({})).await;
        assert!(is_error && text.contains("taskId"), "{text}");
        let unknown = client
            .call_json("task_peek", json!({"taskId": "nope"}))
            .await;
        assert_eq!(unknown["status"], "unknown");

        // task_await is bounded: a long task comes back still running.
        let slow = client
            .call_json(
                "task_start",
                json!({"kind": "worker", "workerId": "coder", "task": "SLOW:30 long"}),
            )
            .await;
        let slow_id = slow["taskId"].as_str().unwrap().to_owned();
        world
            .fake
            .wait_for_requests(3, Duration::from_secs(20))
            .await
            .unwrap();
        let asked = Instant::now();
        let record = client
            .call_json(
                "task_await",
                json!({"taskId": slow_id, "timeoutMs": 600000}),
            )
            .await;
        assert!(
            asked.elapsed() < Duration::from_secs(5),
            "await was not capped"
        );
        assert_eq!(record["status"], "running");
        assert!(
            record["progress"]["lastOutput"]
                .as_str()
                .unwrap_or("")
                .contains("chunk"),
            "{record}"
        );

        // Cancel stops the model.
        let canceled = client
            .call_json(
                "task_cancel",
                json!({"taskId": slow_id, "reason": "enough"}),
            )
            .await;
        assert_eq!(canceled["status"], "canceled");
        world
            .fake
            .wait_for_disconnect(Duration::from_secs(5))
            .await
            .unwrap();

        // Lists, in markdown and JSON.
        let (_, tasks) = client.call("task_list", json!({})).await;
        assert!(
            tasks.contains("| Task |") && tasks.contains("canceled"),
            "{tasks}"
        );
        let workers = client
            .call_json("task_list", json!({"view": "workers", "format": "json"}))
            .await;
        let coder = workers
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == "coder")
            .unwrap();
        assert_eq!(coder["status"], "ready", "{coder}");
        let (_, profiles) = client.call("task_list", json!({"view": "profiles"})).await;
        assert!(
            profiles.contains("architect") && profiles.contains("read-only"),
            "{profiles}"
        );
        let (_, output) = client.call("task_list", json!({"view": "output"})).await;
        assert!(output.contains("succeeded on coder"), "{output}");

        // The MCP client leaves; the hub (a separate process) stays for the next client,
        // until `orchestra stop` takes it and its workers down.
        let opencode_pid = coder["pid"].as_u64().unwrap() as u32;
        let hub = hub_info(&world.home, &world.project.dir).await;
        client.close().await;
        assert!(alive(hub.pid) && alive(opencode_pid));
        common::stop_hub(&world.home, &world.project.dir);
        wait_gone(hub.pid).await;
        wait_gone(opencode_pid).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_hub_is_replaced_on_the_next_call_and_nothing_of_it_survives() {
    bounded(async {
        let world = World::new(json!({})).await;
        let client = world.connect().await;
        let started = client
            .call_json(
                "task_start",
                json!({"kind": "worker", "workerId": "coder", "task": "SLOW:30 interrupted"}),
            )
            .await;
        let id = started["taskId"].as_str().unwrap().to_owned();
        world
            .fake
            .wait_for_requests(1, Duration::from_secs(60))
            .await
            .unwrap();
        let old = hub_info(&world.home, &world.project.dir).await;
        let opencode_pid = client.worker_pid().await;
        let old_children = orchestra_testkit::processes::descendants(old.pid);
        assert!(old_children.contains(&opencode_pid), "{old_children:?}");
        kill(old.pid).await;
        // The worker server dies with the hub (its supervisor gets the parent-death signal).
        wait_gone(opencode_pid).await;

        // The same MCP client's next call brings a new hub up, which marks the old job.
        let killed_at = Instant::now();
        let record = client.call_json("task_peek", json!({"taskId": id})).await;
        assert_eq!(record["status"], "failed", "{record}");
        assert_eq!(record["error"], "interrupted by hub restart");
        let new = hub_info(&world.home, &world.project.dir).await;
        assert_ne!(new.pid, old.pid);
        assert_ne!(new.hub_id, old.hub_id);
        for pid in old_children {
            while alive(pid) {
                assert!(
                    killed_at.elapsed() < Duration::from_secs(5),
                    "process {pid} of the killed hub is still alive"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        let next = client.run("coder", "after the crash").await;
        assert_eq!(next["status"], "succeeded", "{next}");
        client.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_config_is_reported_through_the_tools() {
    bounded(async {
        let world = World::new(json!({"autoSpwn": true})).await;
        let client = world.connect().await;
        assert_eq!(client.service.list_all_tools().await.unwrap().len(), 5);
        let (is_error, text) = client
            .call(
                "task_start",
                json!({"kind": "worker", "workerId": "coder", "task": "x"}),
            )
            .await;
        assert!(is_error, "{text}");
        assert!(
            text.contains("autoSpwn")
                && text.contains("autoSpawn")
                && text.contains("orchestrator.json"),
            "the error should name the file, the key and the fix: {text}"
        );
        let (is_error, _) = client.call("task_list", json!({})).await;
        assert!(is_error);
        // Once the file is fixed, the same MCP session works: the next call starts the hub.
        std::fs::write(&world.config, json!({"autoSpawn": true}).to_string()).unwrap();
        let (is_error, text) = client.call("task_list", json!({"view": "profiles"})).await;
        assert!(!is_error, "{text}");
        client.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_share_one_hub_and_one_worker_server() {
    bounded(async {
        let world = World::new(json!({})).await;
        let first = world.connect().await;
        let second = world.connect().await;
        let (one, two) = tokio::join!(
            first.run("coder", "from the first window"),
            second.run("architect", "from the second window")
        );
        assert_eq!(one["status"], "succeeded", "{one}");
        assert_eq!(two["status"], "succeeded", "{two}");
        // Each sees the other's task.
        let seen_by_first = first
            .call_json("task_list", json!({"view": "tasks", "format": "json"}))
            .await;
        let ids: Vec<&str> = seen_by_first
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert!(ids.contains(&two["id"].as_str().unwrap()), "{ids:?}");
        let seen_by_second = second
            .call_json("task_peek", json!({"taskId": one["id"]}))
            .await;
        assert_eq!(seen_by_second["status"], "succeeded");
        // One hub, one OpenCode worker server in all.
        let hub = hub_info(&world.home, &world.project.dir).await;
        let servers = worker_servers(hub.pid);
        assert_eq!(servers.len(), 1, "worker servers: {servers:?}");
        // The relays run no OpenCode of their own (the first one is the hub's parent).
        for relay in [first.pid, second.pid] {
            assert!(
                children_of(relay).iter().all(|pid| *pid == hub.pid),
                "relay {relay} has children {:?}",
                children_of(relay)
            );
        }
        // The CLI in another terminal sees the same workers.
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
            .args(["workers", "--json", "--project"])
            .arg(&world.project.dir)
            .envs(world.home.env())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let workers: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let coder = workers
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["id"] == "coder")
            .unwrap();
        assert_eq!(coder["pid"].as_u64(), Some(u64::from(servers[0])));
        first.close().await;
        second.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_stops_by_itself_once_idle_and_leaves_nothing_running() {
    bounded(async {
        let world = World::new(json!({"hub": {"idleStopMs": 1500}})).await;
        let client = world.connect().await;
        let record = client.run("coder", "one task").await;
        assert_eq!(record["status"], "succeeded", "{record}");
        let hub = hub_info(&world.home, &world.project.dir).await;
        let servers = worker_servers(hub.pid);
        assert!(!servers.is_empty());
        // While a client is connected the hub stays, however long. The proof: a hub without
        // clients, idle only since after this one's last request and allowed one idle check
        // (1 s) more, stops while this one stays.
        let clock = World::new(json!({"hub": {"idleStopMs": 2500}})).await;
        let passer_by = clock.connect().await;
        let clock_hub = hub_info(&clock.home, &clock.project.dir).await;
        passer_by.close().await;
        let gone_by = Instant::now() + Duration::from_secs(15);
        while alive(clock_hub.pid) {
            assert!(
                Instant::now() < gone_by,
                "the hub without clients did not stop"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(alive(hub.pid), "the hub stopped under a connected client");
        client.close().await;
        let gone_by = Instant::now() + Duration::from_secs(15);
        while alive(hub.pid) {
            assert!(Instant::now() < gone_by, "the idle hub did not stop");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for pid in servers {
            wait_gone(pid).await;
        }
        let files = common::hub_files(&world.home, &world.project.dir);
        assert!(files.read_info().is_none(), "hub.json outlived the hub");
        assert!(!files.is_locked().unwrap());
    })
    .await;
}
