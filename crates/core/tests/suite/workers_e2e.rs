//! Issue 2 §7: workers on real OpenCode, driven by the fake LLM.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::{Duration, Instant};

use common::{World, bounded};
use orchestra_protocol::{JobStatus, TaskCancelParams, WorkerStatus};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_returns_the_models_text_tokens_and_model() {
    bounded(async {
        let world = World::start(json!({})).await;
        let record = world.run("coder", "hello from the first test").await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(
            record.response_text.as_deref(),
            Some("ECHO: hello from the first test")
        );
        assert_eq!(record.model.as_deref(), Some("fake/fake-model"));
        assert!(record.usage.output > 0, "{:?}", record.usage);
        assert!(record.session_id.is_some());
        // One model call: the session got a title, so no title-generation call.
        let requests = world.fake.requests();
        assert_eq!(requests.len(), 1, "{requests:?}");
        // The coder's own prompt reached the model as the agent's system prompt, and not some
        // other profile's: its first line is in the system prompt, the architect's is not.
        let config = world.engine().config();
        let first_line = |id: &str| {
            let prompt = &config.profile(id).unwrap().prompt;
            prompt
                .lines()
                .find(|l| !l.trim().is_empty())
                .unwrap()
                .to_owned()
        };
        let (coder, architect) = (first_line("coder"), first_line("architect"));
        assert_ne!(coder, architect, "the check needs prompts that differ");
        assert!(
            requests[0].system_prompt.contains(&coder),
            "`{coder}` is not in the system prompt: {}",
            requests[0].system_prompt
        );
        assert!(!requests[0].system_prompt.contains(&architect));
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coder_can_write_a_file_and_the_architect_cannot() {
    bounded(async {
        // `auditor` is read-only through OpenCode permissions alone (no `tools`
        // map), which shows the permissions are what enforce it.
        // The coder writes into the checkout here, where the test looks for its file.
        let world = World::start(json!({"profiles": [{
            "id": "auditor", "name": "Auditor", "model": "auto", "purpose": "reviews code",
            "whenToUse": "audits", "permission": {"edit": "deny", "bash": "deny"}
        }, {"id": "coder", "workspace": "checkout"}]}))
        .await;
        let allowed = world.project.dir.join("from-coder.txt");
        let call = |path: &std::path::Path| {
            format!(
                "CALL_TOOL:write {}",
                json!({"filePath": path.display().to_string(), "content": "written by a worker"})
            )
        };
        let record = world.run("coder", &call(&allowed)).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(
            std::fs::read_to_string(&allowed).unwrap(),
            "written by a worker"
        );
        assert_eq!(record.progress.tool_calls, 1);

        let refused = world.project.dir.join("from-architect.txt");
        let record = world.run("architect", &call(&refused)).await;
        assert!(!refused.exists(), "the read-only architect wrote a file");
        // OpenCode refused the tool; the model saw the refusal as the tool result.
        let requests = world.fake.requests();
        let last = requests.last().unwrap();
        let tool_result = last
            .messages
            .iter()
            .rev()
            .find(|m| m["role"] == "tool")
            .map(|m| m["content"].to_string())
            .unwrap_or_default();
        // OpenCode leaves a denied tool out of the model's tool list, so the
        // call is refused as unavailable.
        assert!(
            tool_result.contains("unavailable tool 'write'"),
            "tool result: {tool_result}; record: {record:?}"
        );
        assert!(!last.tool_names.contains(&"write".to_owned()));
        assert!(!last.tool_names.contains(&"bash".to_owned()));

        let by_permission = world.project.dir.join("from-auditor.txt");
        let record = world.run("auditor", &call(&by_permission)).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert!(
            !by_permission.exists(),
            "a profile with edit: deny wrote a file"
        );
        let requests = world.fake.requests();
        assert!(
            !requests
                .last()
                .unwrap()
                .tool_names
                .contains(&"write".to_owned())
        );
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_fails_its_task_and_the_worker_comes_back() {
    bounded(async {
        let world = World::start(json!({"runtime": {"restartBackoffMs": 100}})).await;
        let warm = world.run("coder", "warm up").await;
        assert_eq!(warm.status, JobStatus::Succeeded);
        let old_pids = world.pids().await;
        assert_eq!(old_pids.len(), 1, "shared isolation runs one server");
        let id = world.start_task("coder", "SLOW:30 never finishes").await;
        world
            .fake
            .wait_for_requests(2, Duration::from_secs(20))
            .await
            .unwrap();
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(old_pids[0]).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        let record = world.finish(&id).await;
        assert_eq!(record.status, JobStatus::Failed);
        let error = record.error.unwrap();
        assert!(
            error.contains("signal 9") && error.contains("start the task again"),
            "{error}"
        );
        common::assert_gone(old_pids[0]).await;

        // The pool restarts the server by itself.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let coder = world.worker("coder").await;
            if coder.status == WorkerStatus::Ready && coder.pid.is_some() {
                assert_ne!(coder.pid, Some(old_pids[0]));
                assert!(coder.restarts >= 1);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "worker never came back: {coder:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let next = world.run("coder", "after the crash").await;
        assert_eq!(next.status, JobStatus::Succeeded, "{next:?}");
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_the_model_and_the_worker_takes_the_next_task() {
    bounded(async {
        let world = World::start(json!({})).await;
        let id = world.start_task("coder", "SLOW:30 cancel me").await;
        world
            .fake
            .wait_for_requests(1, Duration::from_secs(20))
            .await
            .unwrap();
        let asked = Instant::now();
        let answer = world
            .engine()
            .cancel(&TaskCancelParams {
                task_id: Some(id.clone()),
                reason: Some("changed my mind".into()),
                ..TaskCancelParams::default()
            })
            .await
            .unwrap();
        let record = common::one(answer);
        assert_eq!(record.status, JobStatus::Canceled);
        assert_eq!(record.error.as_deref(), Some("changed my mind"));
        let cut = world
            .fake
            .wait_for_disconnect(Duration::from_secs(5))
            .await
            .unwrap();
        assert!(cut.disconnected_at.unwrap() >= asked);
        let next = world.run("coder", "next task").await;
        assert_eq!(next.status, JobStatus::Succeeded);
        // The canceled record stays canceled.
        let again = world.engine().store().get_job(&id).unwrap().unwrap();
        assert_eq!(again.status, JobStatus::Canceled);
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_run_at_once_on_one_profile() {
    bounded(async {
        let world = World::start(json!({})).await;
        let _ = world.run("explorer", "warm up").await;
        world.fake.clear_requests();
        let mut ids = Vec::new();
        for i in 0..6 {
            ids.push(
                world
                    .start_task("explorer", &format!("DELAYMS:3000 task {i}"))
                    .await,
            );
        }
        for (i, id) in ids.iter().enumerate() {
            let record = world.finish(id).await;
            assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
            assert_eq!(
                record.response_text.as_deref(),
                Some(format!("ECHO: task {i}").as_str())
            );
        }
        // Every request reached the model before the first one was answered:
        // the six tasks really ran at the same time on one profile.
        let requests = world.fake.requests();
        assert_eq!(requests.len(), 6);
        let last_arrival = requests.iter().map(|r| r.received_at).max().unwrap();
        let first_done = requests
            .iter()
            .filter_map(|r| r.completed_at)
            .min()
            .unwrap();
        assert!(last_arrival < first_done, "tasks were serialized");
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_keeps_failing_fails_the_task_with_its_message() {
    bounded(async {
        let world = World::start(json!({"tasks": {"providerRetryLimit": 1}})).await;
        let record = world.run("coder", "FAIL:500 always").await;
        assert_eq!(record.status, JobStatus::Failed);
        let error = record.error.unwrap();
        assert!(
            error.contains("fake failure 500") && error.contains("providerRetryLimit"),
            "{error}"
        );
        assert!(record.progress.retries >= 1);
        let record = world.run("coder", "FAIL:400 bad request").await;
        assert_eq!(record.status, JobStatus::Failed);
        assert!(record.error.unwrap().contains("fake failure 400"));
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_questions_are_answered_by_policy_and_recorded() {
    bounded(async {
        let world = World::start(json!({})).await;
        let record = world
            .run("coder", r#"CALL_TOOL:read {"filePath":"/etc/hostname"}"#)
            .await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        let answers = &record.progress.permissions;
        assert_eq!(answers.len(), 1, "{record:?}");
        assert_eq!(answers[0].permission, "external_directory");
        assert_eq!(answers[0].reply, "reject");
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_isolation_gives_a_profile_its_own_server() {
    bounded(async {
        let world = World::start(json!({"runtime": {"isolation": "process"}})).await;
        let (a, b) = tokio::join!(world.run("coder", "one"), world.run("architect", "two"));
        assert_eq!(a.status, JobStatus::Succeeded, "{a:?}");
        assert_eq!(b.status, JobStatus::Succeeded, "{b:?}");
        assert_eq!(world.pids().await.len(), 2);
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_spawn_list_starts_workers_with_the_hub() {
    bounded(async {
        let world = World::start(json!({"workers": ["explorer"]})).await;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let snapshots = world.engine().pool().snapshots();
            let explorer = snapshots.iter().find(|w| w.id == "explorer").unwrap();
            if explorer.status == WorkerStatus::Ready {
                assert!(explorer.pid.is_some());
                break;
            }
            assert!(
                Instant::now() < deadline,
                "explorer never started: {explorer:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // No task has run: the server was started by the hub itself.
        assert!(world.fake.requests().is_empty());
        world.shutdown().await;
    })
    .await;
}

/// `runtime.keepSessions`: the runner retires a job's session once its record is final; it
/// stays in OpenCode while it is among the last N, and is deleted when it falls out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retired_sessions_beyond_keep_sessions_are_deleted() {
    bounded(async {
        let world = World::start(json!({"runtime": {"keepSessions": 1}})).await;
        let first = world.run("coder", "first").await;
        let pool = world.engine().pool();
        let conn = pool.running_conn("coder").await.unwrap();
        let first_session = first.session_id.unwrap();
        assert!(
            conn.client.messages(&first_session).await.is_ok(),
            "kept: the last 1"
        );
        let second = world.run("coder", "second").await;
        let second_session = second.session_id.unwrap();
        // The older session goes as soon as the second job is retired (just after its record).
        let deadline = Instant::now() + Duration::from_secs(5);
        while conn.client.messages(&first_session).await.is_ok() {
            assert!(
                Instant::now() < deadline,
                "the older session was not deleted"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(conn.client.messages(&second_session).await.is_ok());
        world.shutdown().await;
    })
    .await;
}

/// OpenCode 2.x converts the `opencode.db` in OpenCode's data folder to a schema that 1.x
/// refuses to open ("Database is not empty and has no session table"), and the workers run 1.x.
/// They keep their sessions in a database of their own, so a 2.x user's tasks still run, and the
/// user's database is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_run_beside_a_shared_database_that_opencode_2_converted() {
    bounded(async {
        let home = orchestra_testkit::opencode::IsolatedHome::new().unwrap();
        let data = home.opencode_data_dir();
        std::fs::create_dir_all(&data).unwrap();
        let shared = data.join("opencode.db");
        {
            // What 1.x checks: tables, and none called `session`.
            let db = rusqlite::Connection::open(&shared).unwrap();
            db.execute_batch("CREATE TABLE event (id TEXT PRIMARY KEY, data TEXT);")
                .unwrap();
        }
        let before = std::fs::read(&shared).unwrap();
        let fake = orchestra_testkit::fake_llm::FakeLlm::start_scripted()
            .await
            .unwrap();
        let world = World::start_in(fake, home, json!({}), Vec::new()).await;
        let record = world.run("coder", "beside a converted database").await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(
            record.response_text.as_deref(),
            Some("ECHO: beside a converted database")
        );
        assert!(
            data.join(orchestra_core::workers::WORKER_DB).is_file(),
            "the workers' own database is in OpenCode's data folder"
        );
        assert_eq!(
            std::fs::read(&shared).unwrap(),
            before,
            "the user's is untouched"
        );
        world.shutdown().await;
    })
    .await;
}
