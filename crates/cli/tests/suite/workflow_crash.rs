//! A workflow step interrupted by a crash of the hub (SIGKILL of the project's hub process)
//! runs again from its start when the run is resumed through the next hub, and the run
//! completes.
#![allow(clippy::unwrap_used)]

use super::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{World, bounded, hub_info, kill, wait_gone};
use orchestra_testkit::fake_llm::{Script, Step};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_cut_by_a_hub_crash_reruns_on_resume() {
    bounded(async {
        let world = World::new(json!({})).await;
        let workflows = world.project.dir.join(".opencode/workflows");
        std::fs::create_dir_all(&workflows).unwrap();
        std::fs::write(
            workflows.join("crashy.json"),
            json!({"id": "crashy", "name": "Crashy", "steps": [
                {"id": "one", "title": "One", "workerId": "coder", "prompt": "STEP_ONE {task}"},
                {"id": "two", "title": "Two", "workerId": "coder", "prompt": "STEP_TWO {task}"}
            ]})
            .to_string(),
        )
        .unwrap();
        // The first attempt at step one is slow enough to be killed mid-way.
        let step_one_calls = Arc::new(AtomicUsize::new(0));
        let calls = step_one_calls.clone();
        world.fake.set_responder(move |request| {
            if request.last_user_text.starts_with("STEP_ONE")
                && request.last_tool_result.is_none()
                && calls.fetch_add(1, Ordering::SeqCst) == 0
            {
                return Some(Script {
                    steps: vec![Step::TextChunks {
                        chunks: vec!["slow ".to_owned(); 60],
                        gap: Duration::from_millis(500),
                    }],
                });
            }
            None
        });

        let first = world.connect().await;
        let started = first
            .call_json(
                "task_start",
                json!({"kind": "workflow", "workflowId": "crashy", "task": "go"}),
            )
            .await;
        let run_id = started["continueRunId"].as_str().unwrap().to_owned();
        world
            .fake
            .wait_for_requests(1, Duration::from_secs(30))
            .await
            .unwrap();
        let opencode_pid = first.worker_pid().await;
        let hub = hub_info(&world.home, &world.project.dir).await;
        kill(hub.pid).await;
        wait_gone(opencode_pid).await;
        first.close().await;

        // A new MCP client (OpenCode restarted) brings a new hub up.
        let second = world.connect().await;
        let resumed = second
            .call_json(
                "task_start",
                json!({"kind": "workflow", "continueRunId": run_id, "task": "continue"}),
            )
            .await;
        let record = second.finish(resumed["taskId"].as_str().unwrap()).await;
        assert_eq!(record["status"], "succeeded", "{record}");
        assert_eq!(record["responseText"], "ECHO: STEP_TWO go");
        // Step one ran again from its start; step two ran once.
        assert_eq!(step_one_calls.load(Ordering::SeqCst), 2);
        let texts: Vec<String> = world
            .fake
            .requests()
            .iter()
            .map(|r| r.last_user_text.clone())
            .collect();
        assert_eq!(
            texts.iter().filter(|t| t.starts_with("STEP_TWO")).count(),
            1,
            "{texts:?}"
        );
        let (_, view) = second
            .call("task_list", json!({"view": "workflow", "runId": run_id}))
            .await;
        assert!(view.contains("success"), "{view}");
        second.close().await;
    })
    .await;
}
