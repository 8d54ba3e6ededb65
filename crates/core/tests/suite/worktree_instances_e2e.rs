//! OpenCode keeps an instance for every directory a request names, for as long as it runs.
//! A worktree task's instance must be disposed once its session is gone, or a long-lived hub
//! grows its worker servers by one instance (watchers, LSP and MCP clients) per task.
//! Observed from outside, on OpenCode's own `/global/event` stream of a server we started.
#![allow(clippy::unwrap_used)]

use super::common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{World, bounded};
use futures_util::StreamExt;
use orchestra_protocol::JobStatus;
use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::{IsolatedHome, TestProject};
use serde_json::{Value, json};

const PASSWORD: &str = "instances-secret";

fn git(dir: &std::path::Path, args: &[&str]) {
    let status = Command::new("git")
        .args(["-c", "user.name=user", "-c", "user.email=user@localhost"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

/// Every `/global/event` payload the server sends, with the directory it names.
async fn follow_global_events(url: &str) -> Arc<Mutex<Vec<Value>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let response = reqwest::Client::new()
        .get(format!("{url}/global/event"))
        .basic_auth("opencode", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    let mut body = response.bytes_stream();
    let sink = seen.clone();
    tokio::spawn(async move {
        let mut pending = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            pending.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = pending.find('\n') {
                let line: String = pending.drain(..=end).collect();
                if let Some(data) = line.trim().strip_prefix("data:")
                    && let Ok(event) = serde_json::from_str::<Value>(data.trim())
                {
                    sink.lock().unwrap().push(event);
                }
            }
        }
    });
    seen
}

fn position(seen: &[Value], kind: &str, matches: impl Fn(&Value) -> bool) -> Option<usize> {
    seen.iter()
        .position(|event| event["payload"]["type"] == kind && matches(event))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worktree_tasks_opencode_instance_is_disposed_after_its_session() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let home = IsolatedHome::new().unwrap();
        let theirs = TestProject::new().unwrap();
        let server = common::someone_elses_server(&home, &theirs, PASSWORD, "instances").await;
        let seen = follow_global_events(server.url()).await;
        let world = World::start_in(
            fake,
            home,
            json!({"runtime": {"isolation": "attach", "attachUrl": server.url(),
                "attachPasswordEnv": "ORCHESTRA_TEST_INSTANCES_PW"}}),
            vec![("ORCHESTRA_TEST_INSTANCES_PW".into(), PASSWORD.into())],
        )
        .await;
        let dir = world.project.dir.clone();
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-q", "-m", "project"]);

        for n in 0..2 {
            let write = format!(
                "CALL_TOOL:write {}",
                json!({"filePath": format!("file{n}.txt"), "content": "x\n"})
            );
            let record = world.run("coder", &write).await;
            assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
            let tree = record
                .worktree
                .clone()
                .expect("a coder works in a worktree");
            let session = record.session_id.clone().unwrap();
            let path = tree.path.clone();
            // Disposed in the background once the session is deleted: wait for it (bounded).
            let mut disposed = None;
            for _ in 0..100 {
                let events = seen.lock().unwrap().clone();
                disposed = position(&events, "server.instance.disposed", |e| {
                    e["payload"]["properties"]["directory"] == path.as_str()
                });
                if let Some(at) = disposed {
                    let deleted = position(&events, "session.deleted", |e| {
                        e["payload"]["properties"]["info"]["id"] == session.as_str()
                    });
                    assert!(
                        deleted.is_some_and(|deleted| deleted < at),
                        "the session must be deleted before its instance is disposed: {events:#?}"
                    );
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                disposed.is_some(),
                "task {n}'s worktree instance {path} was never disposed: {:#?}",
                seen.lock().unwrap()
            );
        }
        // The project's own instance serves every checkout task: it is never disposed.
        let project = dir.display().to_string();
        let events = seen.lock().unwrap().clone();
        assert!(
            position(&events, "server.instance.disposed", |e| {
                e["payload"]["properties"]["directory"] == project.as_str()
            })
            .is_none(),
            "the project's instance was disposed: {events:#?}"
        );
        world.hub.shutdown().await;
        server.stop(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}
