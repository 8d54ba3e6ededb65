//! Issue 23 §5: passthrough with the real pinned OpenCode as the main agent and the plugin
//! installed by `orchestra install`. The main agent enters passthrough to `docs`
//! (`passthrough.set`); two messages go to the worker and its answers come back; the hub is
//! stopped and started again and the session is still in passthrough; `back` leaves it and the
//! next message is the main agent's again.
#![allow(clippy::unwrap_used)]

use super::common;

use std::path::Path;
use std::time::Duration;

use orchestra_core::opencode::{OpenCodeClient, PromptRequest};
use orchestra_protocol::JobRecord;
use orchestra_testkit::fake_llm::{ChatRequest, FakeLlm, Script};
use orchestra_testkit::opencode::{
    IsolatedHome, TestProject, fake_provider_config, require_opencode, write_project_config,
};
use serde_json::{Value, json};

/// The main agent (it has the orchestra tools) does what its prompt says; the worker answers
/// `WORKER_ANSWER <the task's tag>`.
fn responder(request: &ChatRequest) -> Option<Script> {
    let main = request
        .tool_names
        .iter()
        .any(|t| t == "orchestra_task_start");
    let text = &request.last_user_text;
    if !main {
        let tag = text.split_whitespace().find(|w| w.starts_with("PT-"))?;
        return Some(Script::text(format!("WORKER_ANSWER {tag}")));
    }
    if let Some(result) = &request.last_tool_result {
        let value: Value = serde_json::from_str(result).ok()?;
        return Some(Script::text(format!("PASSTHROUGH_ON {}", value["status"])));
    }
    if text.contains("TALK_TO_DOCS") {
        return Some(Script::tool_call(
            "orchestra_task_start",
            json!({"kind": "op", "op": "passthrough.set", "worker": {"workerId": "docs"}}),
        ));
    }
    if request.system_prompt.contains("PASSTHROUGH mode")
        && let Some(answer) = common::fenced(text)
    {
        return Some(Script::text(answer));
    }
    Some(Script::text(format!(
        "MAIN_SAYS {}",
        text.chars().take(120).collect::<String>()
    )))
}

async fn say(client: &OpenCodeClient, session: &str, text: &str) -> String {
    client
        .prompt(session, &PromptRequest::text(text))
        .await
        .unwrap()
        .text()
}

fn passthrough_jobs(home: &IsolatedHome, project: &Path) -> Vec<JobRecord> {
    let dir = common::hub_files(home, project).dir;
    let store = orchestra_store::Store::open(&dir.join("orchestra.db")).unwrap();
    let filter = orchestra_store::JobFilter {
        limit: 100,
        ..orchestra_store::JobFilter::default()
    };
    store
        .list_jobs(&filter)
        .unwrap()
        .into_iter()
        .filter(|j| j.requested_by.as_deref() == Some("opencode-plugin (passthrough)"))
        .collect()
}

fn mode_of(home: &IsolatedHome, project: &Path, session: &str) -> Option<String> {
    let dir = common::hub_files(home, project).dir;
    let store = orchestra_store::Store::open(&dir.join("orchestra.db")).unwrap();
    store.passthrough(session).unwrap().map(|s| s.worker_id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passthrough_sends_every_message_to_one_worker_until_back() {
    assert!(
        std::env::var_os("OPENCODE_PURE").is_none(),
        "OpenCode loads no plugins with OPENCODE_PURE set; unset it to run this test"
    );
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let _stop = common::StopHubOnDrop(&home, &project.dir);
    tokio::time::timeout(Duration::from_secs(300), story(&home, &project))
        .await
        .expect("the passthrough story took longer than 300 s");
}

async fn story(home: &IsolatedHome, project: &TestProject) {
    let fake = FakeLlm::start_scripted().await.unwrap();
    fake.set_responder(responder);
    let opencode = require_opencode();
    write_project_config(project, &fake_provider_config(&fake.base_url())).unwrap();
    common::install(home, &project.dir);
    let mut env = home.env_with_plugins();
    env.push((
        "ORCHESTRA_OPENCODE_BIN".into(),
        opencode.display().to_string(),
    ));
    let (main, client, session) =
        common::main_opencode(opencode.clone(), &project.dir, env, Duration::from_secs(90)).await;
    common::plugin_connected(home, &project.dir).await;

    // The main agent enters passthrough with the op; the mode is the store's.
    let reply = say(&client, &session, "TALK_TO_DOCS please").await;
    assert!(reply.contains("PASSTHROUGH_ON"), "{reply}");
    assert_eq!(
        mode_of(home, &project.dir, &session).as_deref(),
        Some("docs")
    );

    // Two messages: each goes to the worker, and its answer is the reply.
    for tag in ["PT-ONE", "PT-TWO"] {
        let reply = say(&client, &session, &format!("{tag} a question for docs")).await;
        assert_eq!(reply.trim(), format!("WORKER_ANSWER {tag}"));
    }
    let jobs = passthrough_jobs(home, &project.dir);
    assert_eq!(jobs.len(), 2, "{jobs:#?}");
    assert!(jobs.iter().all(|j| j.worker_id == "docs"));

    // The hub restarts (stopped, then started by a client, as a person would); the plugin
    // finds the new one and the session is still in passthrough.
    let before = common::hub_info(home, &project.dir).await.pid;
    common::stop_hub(home, &project.dir);
    common::wait_gone(before).await;
    let started = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["endpoint", "--project"])
        .arg(&project.dir)
        .envs(home.env())
        .env("ORCHESTRA_OPENCODE_BIN", &opencode)
        .output()
        .unwrap();
    assert!(
        started.status.success(),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    assert_ne!(common::hub_info(home, &project.dir).await.pid, before);
    common::plugin_connected(home, &project.dir).await;
    let reply = say(&client, &session, "PT-THREE after the restart").await;
    assert_eq!(
        reply.trim(),
        "WORKER_ANSWER PT-THREE",
        "hub log:\n{}",
        std::fs::read_to_string(common::hub_files(home, &project.dir).log).unwrap_or_default()
    );

    // `back` leaves; the next message is the main agent's own.
    let reply = say(&client, &session, "back").await;
    assert!(
        reply.starts_with("MAIN_SAYS") && reply.contains("left passthrough"),
        "{reply}"
    );
    assert_eq!(mode_of(home, &project.dir, &session), None);
    let reply = say(&client, &session, "PT-FOUR for the orchestrator").await;
    assert!(reply.starts_with("MAIN_SAYS PT-FOUR"), "{reply}");
    let jobs = passthrough_jobs(home, &project.dir);
    let tasks: Vec<&str> = jobs.iter().map(|j| j.message.as_str()).collect();
    assert_eq!(jobs.len(), 3, "{tasks:?}");
    assert!(!tasks.iter().any(|t| t.contains("PT-FOUR")), "{tasks:?}");
    // One plugin instance in the main OpenCode: 1.18 calls the 2.x `setup` too, which must then
    // do nothing (a second instance's stream raced the first one to the restarted hub).
    assert_eq!(common::plugin_streams(home, &project.dir).await, 1);
    drop(main);
}
