//! Memory in the hub on the real pinned OpenCode and the fake LLM: the block in a worker's
//! `system` prompt (read back from the fake's request log), byte-identical while memory is
//! unchanged; and the records finished tasks and workflow runs leave, with the files they
//! touched. One OpenCode start per test.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::Duration;

use common::{World, bounded};
use orchestra_core::memory::HubMemory;
use orchestra_protocol::memory::{MemoryPut, MemoryRecord};
use orchestra_protocol::{EventBody, JobStatus, TaskKind, TaskStartParams};
use orchestra_testkit::fake_llm::RecordedRequest;
use serde_json::json;

const HEADER: &str = "## Project memory (orchestra)\n";

fn memory(world: &World) -> HubMemory {
    world.engine().memory().unwrap().clone()
}

async fn put(world: &World, put: MemoryPut) -> MemoryRecord {
    memory(world).put(put, None).await.unwrap().record
}

/// The model requests of the task whose text starts with `task` (not OpenCode's title calls).
fn requests_for(world: &World, task: &str) -> Vec<RecordedRequest> {
    world
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.last_user_text.starts_with(task))
        .filter(|r| !r.system_prompt.contains("You are a title generator"))
        .collect()
}

/// The memory block inside a request's system prompt, as long as `expected`.
fn block_in(request: &RecordedRequest, expected: &str) -> String {
    let at = request
        .system_prompt
        .find(HEADER)
        .unwrap_or_else(|| panic!("no memory block in: {}", request.system_prompt));
    request.system_prompt[at..]
        .chars()
        .take(expected.chars().count())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workers_prompt_carries_the_memory_block_byte_identical_until_memory_changes() {
    bounded(async {
        // No automatic records here: the first task's own record would (rightly) change the
        // block of a second task with the same text.
        let world = World::start(json!({"memory": {"autoRecord": false}})).await;
        put(
            &world,
            MemoryPut {
                kind: Some("convention".into()),
                body: "Errors name the problem and the fix".into(),
                pinned: Some(true),
                ..MemoryPut::default()
            },
        )
        .await;
        put(
            &world,
            MemoryPut {
                kind: Some("fact".into()),
                key: Some("fact:pool".into()),
                body: "The connection pool in src/db/pool.rs keeps 4 spare connections".into(),
                ..MemoryPut::default()
            },
        )
        .await;
        let task = "How many spare connections does src/db/pool.rs keep?";
        let expected = memory(&world).context(task.into(), None).await.unwrap();
        assert!(expected.text.starts_with(HEADER), "{}", expected.text);
        assert!(
            expected.text.contains("4 spare connections"),
            "{}",
            expected.text
        );
        let pinned = expected.text.find("Errors name the problem").unwrap();
        assert!(
            pinned < expected.text.find("4 spare").unwrap(),
            "pinned first"
        );

        for _ in 0..2 {
            let record = world.run("docs", task).await;
            assert_eq!(record.status, JobStatus::Succeeded, "{:?}", record.error);
        }
        let sent = requests_for(&world, task);
        assert_eq!(sent.len(), 2, "one model request per task");
        let first = block_in(&sent[0], &expected.text);
        assert_eq!(
            first, expected.text,
            "the worker got the block the hub renders"
        );
        assert_eq!(
            block_in(&sent[1], &expected.text),
            first,
            "byte-identical while memory did not change"
        );
        // The profile's own prompt (the agent's) still leads; the block follows it.
        assert!(
            sent[0]
                .system_prompt
                .find("You are the documentation worker")
                .unwrap()
                < sent[0].system_prompt.find(HEADER).unwrap()
        );

        // A relevant write changes the block; the next task gets the new one.
        put(
            &world,
            MemoryPut {
                kind: Some("decision".into()),
                body: "src/db/pool.rs now keeps 8 spare connections after the load test".into(),
                ..MemoryPut::default()
            },
        )
        .await;
        let changed = memory(&world).context(task.into(), None).await.unwrap();
        assert_ne!(changed.hash, expected.hash);
        assert!(
            changed.text.contains("8 spare connections"),
            "{}",
            changed.text
        );
        world.fake.clear_requests();
        let record = world.run("docs", task).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{:?}", record.error);
        let sent = requests_for(&world, task);
        assert_eq!(block_in(&sent[0], &changed.text), changed.text);
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_tasks_and_workflow_runs_leave_records_with_the_files_they_touched() {
    bounded(async {
        let steps = json!([
            {"id": "write", "title": "Write", "workerId": "coder", "prompt": "{task}"},
            {"id": "check", "title": "Check", "workerId": "docs", "prompt": "Say that the note is there."}
        ]);
        // The coder writes into the checkout here, where the test looks for its files.
        let world = World::start(json!({"workflows": {"definitions": [
            {"id": "note", "name": "Note", "steps": steps}
        ]}, "profiles": [{"id": "coder", "workspace": "checkout"}]}))
        .await;
        let mut events = world.hub.bus().subscribe(None);
        let file = world.project.dir.join("notes/memo.txt");
        let write = |name: &str| {
            format!(
                "CALL_TOOL:write {}",
                json!({"filePath": world.project.dir.join(name), "content": "remember me\n"})
            )
        };

        let task = world.run("coder", &write("notes/memo.txt")).await;
        assert_eq!(task.status, JobStatus::Succeeded, "{:?}", task.error);
        assert!(file.exists());
        assert_eq!(task.progress.files_touched, ["notes/memo.txt"]);

        let started = world
            .engine()
            .start(
                TaskStartParams {
                    kind: TaskKind::Workflow,
                    workflow_id: Some("note".into()),
                    task: write("notes/run.txt"),
                    ..TaskStartParams::default()
                },
                None,
            )
            .await
            .unwrap();
        let run_job = world.finish(&started.task_id).await;
        assert_eq!(run_job.status, JobStatus::Succeeded, "{:?}", run_job.error);
        let run_id = started.continue_run_id.unwrap();

        // Records are written from the event stream, just after the jobs finish.
        let memory = memory(&world);
        let mut written = Vec::new();
        while written.len() < 2 {
            let event = tokio::time::timeout(Duration::from_secs(20), events.next())
                .await
                .expect("no memory.written event for the task and the run")
                .unwrap();
            if let EventBody::MemoryWritten(event) = &event.body {
                written.push(event.key.clone().unwrap_or_default());
            }
        }
        written.sort();
        assert_eq!(
            written,
            [format!("run:{run_id}"), format!("task:{}", task.id)]
        );

        let record = memory
            .get(format!("task:{}", task.id), None, None)
            .await
            .unwrap()
            .record
            .unwrap();
        assert_eq!(record.kind, "task");
        assert_eq!(record.entities.files, ["notes/memo.txt"]);
        assert_eq!(record.provenance.task_id.as_deref(), Some(task.id.as_str()));
        assert_eq!(record.provenance.producer.as_deref(), Some("hub"));
        assert!(record.body.starts_with("Asked: CALL_TOOL:write"), "{}", record.body);
        assert!(record.body.contains("Outcome: succeeded"), "{}", record.body);
        assert!(record.body.contains("Files: notes/memo.txt"), "{}", record.body);
        assert!(
            record.body.contains(&format!("Model: {}", task.model.clone().unwrap())),
            "{}",
            record.body
        );
        assert!(record.body.chars().count() <= 2000);

        let run = memory
            .get(format!("run:{run_id}"), None, None)
            .await
            .unwrap()
            .record
            .unwrap();
        assert_eq!(run.kind, "workflow");
        assert_eq!(run.entities.files, ["notes/run.txt"]);
        assert_eq!(run.provenance.run_id.as_deref(), Some(run_id.as_str()));
        assert!(
            run.body.contains("Steps: write (coder) ok; check (docs) ok"),
            "{}",
            run.body
        );
        // The run's steps are in its record, not in records of their own.
        let steps = world.engine().workflows().get_run(&run_id).unwrap().unwrap();
        for step in steps.steps {
            let step_task = step.task_id.unwrap();
            let found = memory.get(format!("task:{step_task}"), None, None).await;
            assert!(found.is_err(), "step {step_task} has a record of its own");
        }
        world.shutdown().await;
    })
    .await;
}
