//! The "needs you" events reach the user's `notify` targets: a real `orchestra` hub on the
//! pinned OpenCode and the fake LLM, with a `command` hook from the user's own config, gets
//! `orchestra.budget.exceeded` when a task's model keeps calling tools past `budget.maxTurns`,
//! and `orchestra.merge.conflict` when a `worktree.merge` is refused with conflicts.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use orchestra_testkit::fake_llm::{ChatRequest, Script, Step};
use serde_json::{Value, json};

use super::common::{self, World, bounded};
use super::panel::panel_steps::worker_task;
use super::worktrees::write_call;

/// A prompt starting with `LOOP` gets, at every step, a line of text and one more tool call:
/// the model never finishes on its own.
pub(super) fn tool_loop(request: &ChatRequest) -> Option<Script> {
    if !request.last_user_text.starts_with("LOOP") || request.tool_names.is_empty() {
        return None;
    }
    Some(Script {
        steps: vec![
            Step::Delay(Duration::from_millis(150)),
            Step::Text("still working on it".into()),
            Step::ToolCall {
                name: "glob".into(),
                arguments: json!({"pattern": "*.md"}),
            },
        ],
    })
}

/// The envelopes the hook wrote so far (one file per event), of one type.
fn received(dir: &Path, type_name: &str) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .filter_map(|text| serde_json::from_str::<Value>(&text).ok())
        .filter(|envelope| envelope["type"] == type_name)
        .collect()
}

async fn eventually_received(dir: &Path, type_name: &str, task_id: &str) -> Value {
    common::eventually(
        &format!("the command hook to get {type_name} for {task_id}"),
        async || {
            received(dir, type_name)
                .into_iter()
                .find(|e| e["data"]["taskId"] == task_id)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_hook_gets_budget_exceeded_and_merge_conflict() {
    bounded(async {
        let out = tempfile::tempdir().unwrap();
        let inbox = out.path().join("events");
        std::fs::create_dir(&inbox).unwrap();
        // Shell syntax, so it runs under sh -c: one file per event, named by its id.
        let hook = format!(
            "cat > '{}'/\"$ORCHESTRA_EVENT_ID\".json",
            inbox.display()
        );
        let world = World::new(json!({"notify": [
            {"type": "command", "command": hook,
             "events": ["orchestra.budget.exceeded", "orchestra.merge.conflict"]},
        ]}))
        .await;
        world.fake.set_responder(tool_loop);
        let client = world.connect().await;

        // A model that never stops calling tools, stopped by budget.maxTurns.
        let started = client
            .call_json(
                "task_start",
                json!({"kind": "worker", "workerId": "coder", "task": "LOOP forever",
                       "budget": {"maxTurns": 2}}),
            )
            .await;
        let looped = started["taskId"].as_str().unwrap().to_owned();
        let record = client.finish(&looped).await;
        assert_eq!(record["status"], "failed", "{record}");
        assert_eq!(record["budgetStop"]["dimension"], "maxTurns", "{record}");
        let exceeded = eventually_received(&inbox, "orchestra.budget.exceeded", &looped).await;
        let data = &exceeded["data"];
        assert_eq!(data["scope"], "task", "{exceeded}");
        assert_eq!(data["dimension"], "maxTurns", "{exceeded}");
        assert_eq!(data["cap"], 2.0, "{exceeded}");
        assert!(data["used"].as_f64().unwrap() >= 2.0, "{exceeded}");
        assert_eq!(data["workerId"], "coder", "{exceeded}");

        // Two tasks write the same file from the same base; the first merges, the second's
        // merge is refused with a conflict.
        let landed = worker_task(&client, &write_call("both.txt", "landed\n")).await;
        let thrown = worker_task(&client, &write_call("both.txt", "not wanted\n")).await;
        for id in [&landed, &thrown] {
            let record = client.finish(id).await;
            assert_eq!(record["status"], "succeeded", "{record}");
        }
        let merge = |task: &str| {
            json!({"kind": "op", "op": "worktree.merge", "worktree": {"taskId": task}})
        };
        let op = client.call_json("task_start", merge(&landed)).await;
        let done = client.finish(op["taskId"].as_str().unwrap()).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        let op = client.call_json("task_start", merge(&thrown)).await;
        let op_id = op["taskId"].as_str().unwrap().to_owned();
        client.finish(&op_id).await;
        let conflict = eventually_received(&inbox, "orchestra.merge.conflict", &thrown).await;
        let data = &conflict["data"];
        assert_eq!(data["files"], json!(["both.txt"]), "{conflict}");
        assert_eq!(data["opTaskId"], op_id.as_str(), "{conflict}");
        assert_eq!(data["baseRef"], "main", "{conflict}");
        // The clean merge sent nothing.
        assert_eq!(
            received(&inbox, "orchestra.merge.conflict").len(),
            1,
            "{:?}",
            received(&inbox, "orchestra.merge.conflict")
        );
        client.close().await;
    })
    .await;
}
