//! `orchestra mcp` as a real child process, driven by a real MCP client
//! (rmcp), with real OpenCode workers and the fake LLM.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{World, bounded, wait_gone};
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

        let opencode_pid = coder["pid"].as_u64().unwrap() as u32;
        client.service.cancel().await.unwrap();
        wait_gone(client.pid).await;
        wait_gone(opencode_pid).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_hub_takes_its_workers_down_and_the_next_hub_marks_its_jobs_interrupted() {
    bounded(async {
        let world = World::new(json!({})).await;
        let first = world.connect().await;
        let started = first
            .call_json(
                "task_start",
                json!({"kind": "worker", "workerId": "coder", "task": "SLOW:30 interrupted"}),
            )
            .await;
        let id = started["taskId"].as_str().unwrap().to_owned();
        world
            .fake
            .wait_for_requests(1, Duration::from_secs(30))
            .await
            .unwrap();
        let opencode_pid = first.worker_pid().await;
        first.kill().await;
        // PR_SET_PDEATHSIG: the worker dies with the hub.
        wait_gone(opencode_pid).await;

        let second = world.connect().await;
        let record = second.call_json("task_peek", json!({"taskId": id})).await;
        assert_eq!(record["status"], "failed", "{record}");
        assert_eq!(record["error"], "interrupted by hub restart");
        second.service.cancel().await.unwrap();
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
        client.service.cancel().await.unwrap();
        wait_gone(client.pid).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_process_sees_the_workers_of_a_running_hub() {
    bounded(async {
        let world = World::new(json!({})).await;
        let client = world.connect().await;
        let started = client
            .call_json(
                "task_start",
                json!({"kind": "worker", "workerId": "coder", "task": "warm up"}),
            )
            .await;
        client.finish(started["taskId"].as_str().unwrap()).await;
        let opencode_pid = client.worker_pid().await;
        // The hub publishes its workers within a second or so.
        let mut seen = serde_json::Value::Null;
        for _ in 0..50 {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
                .args(["workers", "--json", "--project"])
                .arg(&world.project.dir)
                .arg("--config")
                .arg(&world.config)
                .envs(world.home.env())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            seen = serde_json::from_slice(&out.stdout).unwrap();
            let coder = seen
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["id"] == "coder" && w["status"] == "ready");
            if let Some(coder) = coder {
                assert_eq!(coder["hubPid"], client.pid);
                assert_eq!(coder["pid"], opencode_pid);
                client.service.cancel().await.unwrap();
                wait_gone(client.pid).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the running hub's workers never showed up: {seen}");
    })
    .await;
}
