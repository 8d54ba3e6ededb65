//! Issue 3 §6: real OpenCode as the main agent, configured by `orchestra
//! install`, calls our MCP tools; the task runs on a worker and its answer
//! reaches the main session's reply. Issue 8: the provider is in the project's
//! `opencode.json`, as a user's would be, and `install` adds itself beside it;
//! the main agent and the workers both use it.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::Duration;

use orchestra_core::opencode::PromptRequest;
use orchestra_testkit::fake_llm::{ChatRequest, FakeLlm, Script};
use orchestra_testkit::opencode::{
    IsolatedHome, TestProject, fake_provider_config, require_opencode, write_project_config,
};
use serde_json::json;

/// The main agent's script: start a task, await it, then answer with its result.
fn main_agent(request: &ChatRequest) -> Option<Script> {
    if !request
        .tool_names
        .iter()
        .any(|t| t == "orchestra_task_start")
    {
        return None; // a worker: the default echo
    }
    let Some(result) = &request.last_tool_result else {
        return Some(Script::tool_call(
            "orchestra_task_start",
            json!({"kind": "worker", "workerId": "coder", "task": "WORKER_TASK: add two and two"}),
        ));
    };
    let value: serde_json::Value = serde_json::from_str(result).ok()?;
    if value["next"] == "task_await" {
        return Some(Script::tool_call(
            "orchestra_task_await",
            json!({"taskId": value["taskId"], "timeoutMs": 30000}),
        ));
    }
    if value["status"] == "running" {
        return Some(Script::tool_call(
            "orchestra_task_await",
            json!({"taskId": value["id"]}),
        ));
    }
    Some(Script::text(format!(
        "MAIN_REPLY: {}",
        value["responseText"].as_str().unwrap_or("no result")
    )))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_as_the_main_agent_delegates_through_orchestra() {
    tokio::time::timeout(Duration::from_secs(150), async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        fake.set_responder(main_agent);
        let home = IsolatedHome::new().unwrap();
        let project = TestProject::new().unwrap();
        let opencode = require_opencode();
        write_project_config(&project, &fake_provider_config(&fake.base_url())).unwrap();

        let report = common::install(&home, &project.dir);
        assert_eq!(report["outcome"], "updated", "{report}");
        assert_eq!(report["changes"][0]["entry"], "mcp.orchestra");
        let edited: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(project.dir.join("opencode.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            edited["model"], "fake/fake-model",
            "the user's provider stays"
        );

        let mut env = home.env();
        env.push((
            "ORCHESTRA_OPENCODE_BIN".into(),
            opencode.display().to_string(),
        ));
        let (main, client, session) =
            common::main_opencode(opencode, &project.dir, env, Duration::from_secs(60)).await;
        let mut prompt = PromptRequest::text("Please get the coder to add two and two.");
        prompt.agent = Some("orchestrator".into());
        let reply = client.prompt(&session, &prompt).await.unwrap();
        assert_eq!(
            reply.text(),
            "MAIN_REPLY: ECHO: WORKER_TASK: add two and two"
        );

        let requests = fake.requests();
        let worker_calls: Vec<_> = requests
            .iter()
            .filter(|r| !r.tool_names.iter().any(|t| t == "orchestra_task_start"))
            .collect();
        assert_eq!(worker_calls.len(), 1, "{requests:#?}");
        assert_eq!(
            worker_calls[0].last_user_text,
            "WORKER_TASK: add two and two"
        );
        // The main agent made three calls: start, await, answer.
        assert_eq!(requests.len() - worker_calls.len(), 3);
        main.stop(Duration::from_secs(5)).await.unwrap();
        // The relay OpenCode ran started the project's hub; it outlives the window by design.
        common::stop_hub(&home, &project.dir);
    })
    .await
    .expect("test took longer than 150 s");
}
