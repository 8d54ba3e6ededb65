//! Memory through the product's own path: `orchestra mcp` relays to a hub (`orchestra serve`),
//! whose worker servers are real OpenCode on the fake LLM. With `memoryOnTurnEnd` on, a
//! finished task is distilled by the memory worker, whose model (scripted here) calls the
//! hub's memory tools — `memory.put`, `memory.link`, `memory.done` — over the worker MCP
//! endpoint; the records land in the store and the memory task is completed. Only the memory
//! worker sees those tools. Then `orchestra memory …` reads and writes the same memory
//! through the hub.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::Duration;

use common::{World, bounded};
use orchestra_testkit::fake_llm::{ChatRequest, Script};
use orchestra_testkit::opencode::require_opencode;
use serde_json::{Value, json};

const MEMORY_PROMPT_START: &str = "You are the memory worker of Open Orchestra";
const TOOL: &str = "orchestra_task_start";

/// The memory worker's model: two puts, a link, `memory.done` for the memory task its prompt
/// names, then a short answer. Every other request gets the default echo.
fn memory_worker(request: &ChatRequest) -> Option<Script> {
    if !request.system_prompt.contains(MEMORY_PROMPT_START) {
        return None;
    }
    let results = request
        .messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .count();
    let task_id = request
        .last_user_text
        .split("memory task: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("missing")
        .to_owned();
    let op = |op: &str, memory: Value| {
        Script::tool_call(
            TOOL,
            json!({"kind": "op", "op": op, "task": "remember the turn", "memory": memory}),
        )
    };
    Some(match results {
        0 => op(
            "memory.put",
            json!({"key": "decision:jobs-store", "kind": "decision", "title": "Where jobs live",
                   "value": "Jobs live in SQLite (WAL), in the project's state folder",
                   "entities": {"files": ["crates/store/src/jobs.rs"]}}),
        ),
        1 => op(
            "memory.put",
            json!({"key": "fact:wal", "value": "WAL lets readers run while one writer commits"}),
        ),
        2 => op(
            "memory.link",
            json!({"fromKey": "decision:jobs-store", "toKey": "fact:wal", "relation": "relies_on"}),
        ),
        3 => op(
            "memory.done",
            json!({"taskId": task_id, "summary": "stored where jobs live and why WAL",
                   "storedKeys": ["decision:jobs-store", "fact:wal"],
                   "linkedKeys": [{"from": "decision:jobs-store", "to": "fact:wal", "relation": "relies_on"}]}),
        ),
        _ => Script::text("Recorded two records and one link."),
    })
}

/// `orchestra <args>` on the world's project, config and home: (success, stdout, stderr).
fn orchestra(world: &World, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(args)
        .arg("--project")
        .arg(&world.project.dir)
        .arg("--config")
        .arg(&world.config)
        .envs(world.home.env())
        .env("ORCHESTRA_OPENCODE_BIN", require_opencode())
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn orchestra_json(world: &World, args: &[&str]) -> Value {
    let (ok, out, err) = orchestra(world, args);
    assert!(ok, "orchestra {args:?} failed: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_worker_records_a_turn_through_its_tools_and_the_cli_reads_it_through_the_hub() {
    bounded(async {
        let world = World::new(json!({"workflows": {"triggers": {
            "memoryOnTurnEnd": {"enabled": true, "maxTokens": 500000}}}}))
        .await;
        world.fake.set_responder(memory_worker);
        let client = world.connect().await;
        let turn = client
            .run("docs", "Where do jobs live? Answer in one line.")
            .await;
        assert_eq!(turn["status"], "succeeded", "{turn}");

        // The trigger opened a memory task; the memory worker completes it with memory.done.
        let mut memory_task = Value::Null;
        for _ in 0..600 {
            let tasks = client
                .call_json(
                    "task_list",
                    json!({"view": "tasks", "format": "json", "limit": 50}),
                )
                .await;
            if let Some(task) = tasks
                .as_array()
                .unwrap()
                .iter()
                .find(|t| t["workerId"] == "memory.task")
            {
                memory_task = client.finish(task["id"].as_str().unwrap()).await;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(memory_task["status"], "succeeded", "{memory_task}");
        assert_eq!(
            memory_task["responseText"], "stored where jobs live and why WAL",
            "{memory_task}"
        );
        assert!(
            memory_task["report"]["details"]
                .as_str()
                .unwrap()
                .contains("fact:wal"),
            "{memory_task}"
        );

        // Only the memory worker was offered the hub's tools.
        let requests = world.fake.requests();
        let memory_requests: Vec<_> = requests
            .iter()
            .filter(|r| r.system_prompt.contains(MEMORY_PROMPT_START))
            .collect();
        // put, put, link, done (the answer after done may still be on its way).
        assert!(memory_requests.len() >= 4, "{}", memory_requests.len());
        assert!(
            memory_requests[0].tool_names.iter().any(|t| t == TOOL),
            "{:?}",
            memory_requests[0].tool_names
        );
        let docs = requests
            .iter()
            .find(|r| r.last_user_text.starts_with("Where do jobs live?"))
            .unwrap();
        assert!(
            !docs.tool_names.iter().any(|t| t.starts_with("orchestra")),
            "a docs worker must not see the memory tools: {:?}",
            docs.tool_names
        );

        // What the worker wrote is in the store, linked, and readable through the hub.
        let shown = orchestra_json(&world, &["memory", "show", "decision:jobs-store"]);
        assert_eq!(shown["record"]["kind"], "decision", "{shown}");
        assert_eq!(
            shown["record"]["provenance"]["producer"], "worker",
            "{shown}"
        );
        assert_eq!(shown["links"][0]["relation"], "relies_on", "{shown}");
        let found = orchestra_json(&world, &["memory", "search", "WAL", "readers", "--json"]);
        let keys: Vec<&str> = found["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["key"].as_str())
            .collect();
        assert!(keys.contains(&"fact:wal"), "{found}");
        // The finished docs task left its automatic record.
        let auto = orchestra_json(
            &world,
            &[
                "memory", "search", "jobs", "live", "--kind", "task", "--json",
            ],
        );
        let task_id = turn["id"].as_str().unwrap();
        assert!(
            auto["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h["key"] == format!("task:{task_id}").as_str()),
            "{auto}"
        );

        // put, supersede, forget, context, export and import through the hub.
        let (ok, out, err) = orchestra(
            &world,
            &[
                "memory",
                "put",
                "--kind",
                "convention",
                "--key",
                "convention:errors",
                "--pin",
                "Errors",
                "name",
                "the",
                "problem",
                "and",
                "the",
                "fix",
            ],
        );
        assert!(ok && out.ends_with(" created\n"), "{out}{err}");
        let (ok, out, err) = orchestra(
            &world,
            &[
                "memory",
                "put",
                "--key",
                "decision:jobs-store-2",
                "--supersedes",
                "decision:jobs-store",
                "Jobs",
                "and",
                "runs",
                "live",
                "in",
                "SQLite",
            ],
        );
        assert!(ok, "{out}{err}");
        let found = orchestra_json(&world, &["memory", "search", "jobs", "SQLite", "--json"]);
        let keys: Vec<&str> = found["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|h| h["key"].as_str())
            .collect();
        assert!(
            keys.contains(&"decision:jobs-store-2") && !keys.contains(&"decision:jobs-store"),
            "the new record, not the old: {found}"
        );
        let (ok, block, err) = orchestra(
            &world,
            &["memory", "context", "where", "do", "runs", "live"],
        );
        assert!(ok, "{err}");
        assert!(
            block.contains("Errors name the problem and the fix"),
            "{block}"
        );
        assert!(block.contains("Jobs and runs live in SQLite"), "{block}");
        let (ok, out, err) = orchestra(&world, &["memory", "forget", "fact:wal"]);
        assert!(ok && out.ends_with(" retracted\n"), "{out}{err}");
        let export = world.home.root.join("memory.jsonl");
        let (ok, _, err) = orchestra(
            &world,
            &["memory", "export", "-o", export.to_str().unwrap()],
        );
        assert!(ok && err.contains("exported"), "{err}");
        let lines = std::fs::read_to_string(&export).unwrap().lines().count();
        assert!(lines >= 5, "{lines}");
        let imported = orchestra_json(
            &world,
            &["memory", "import", export.to_str().unwrap(), "--json"],
        );
        assert_eq!(
            imported["records"], 0,
            "every record is there already: {imported}"
        );
        assert!(imported["existing"].as_u64().unwrap() >= 4, "{imported}");
        client.close().await;
    })
    .await;
}
