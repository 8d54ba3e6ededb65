//! Workflows on real OpenCode and the fake LLM: the boomerang end to end, a paused run resumed
//! by a second hub, run budgets, and a parallel group that really overlaps.
#![allow(clippy::unwrap_used)]

use super::common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{World, bounded};
use orchestra_core::tasks::TaskEngine;
use orchestra_protocol::{
    JobStatus, ListFormat, ListView, TaskKind, TaskListParams, TaskStartParams, WorkflowRun,
    WorkflowRunStatus, WorkflowStepStatus,
};
use orchestra_testkit::fake_llm::Script;
use serde_json::json;

async fn start_workflow(engine: &TaskEngine, workflow: &str, task: &str) -> (String, String) {
    let started = engine
        .start(
            TaskStartParams {
                kind: TaskKind::Workflow,
                task: task.into(),
                workflow_id: Some(workflow.into()),
                ..TaskStartParams::default()
            },
            None,
        )
        .await
        .unwrap();
    (started.task_id, started.continue_run_id.unwrap())
}

async fn resume(
    engine: &TaskEngine,
    run_id: &str,
) -> Result<orchestra_protocol::TaskStartResult, orchestra_core::tasks::TaskError> {
    engine
        .start(
            TaskStartParams {
                kind: TaskKind::Workflow,
                task: "continue".into(),
                continue_run_id: Some(run_id.into()),
                ..TaskStartParams::default()
            },
            None,
        )
        .await
}

fn run_of(engine: &TaskEngine, run_id: &str) -> WorkflowRun {
    engine.workflows().get_run(run_id).unwrap().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boomerang_plans_implements_reviews_and_fixes_with_the_plan_carried() {
    bounded(async {
        // The test reads the coder's file in the project: the run works in the checkout.
        let world = World::start(json!({"profiles": [{"id": "coder", "workspace": "checkout"}]})).await;
        let target = world.project.dir.join("hello.txt");
        let path = target.display().to_string();
        world.fake.set_responder(move |req| {
            if req.last_tool_result.is_some() {
                return None;
            }
            let text = &req.last_user_text;
            if text.contains("You are planning work") {
                Some(Script::text(
                    "## Summary\n1. Write hello.txt (PLAN-MARK-7)\n## Risks\n- none\n## Next\nwrite the file",
                ))
            } else if text.contains("Carry out this plan") {
                Some(Script::tool_call(
                    "write",
                    json!({"filePath": path, "content": "hello from the coder\n"}),
                ))
            } else if text.contains("Review the change") {
                Some(Script::text(
                    "## Summary\nThe file is there.\n## Next\nNo changes needed",
                ))
            } else if text.contains("Apply the fixes") {
                Some(Script::text("## Summary\nNo changes needed"))
            } else {
                None
            }
        });
        let (task, run_id) =
            start_workflow(world.engine(), "roocode-boomerang", "greet in hello.txt").await;
        let record = common::finish_on(world.engine(), &task).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(record.worker_id, "workflow:roocode-boomerang");
        assert_eq!(record.response_text.as_deref(), Some("## Summary\nNo changes needed"));
        assert_eq!(
            std::fs::read_to_string(&target).unwrap(),
            "hello from the coder\n"
        );

        let implement = world
            .fake
            .requests()
            .into_iter()
            .find(|r| r.last_user_text.contains("Carry out this plan"))
            .unwrap();
        assert!(
            implement.last_user_text.contains("### Plan\n#### Summary\n1. Write hello.txt (PLAN-MARK-7)"),
            "{}",
            implement.last_user_text
        );

        let report = record.report.unwrap();
        assert_eq!(
            report.summary.as_deref(),
            Some("RooCode Boomerang (roocode-boomerang)")
        );
        let details = report.details.as_deref().unwrap();
        assert!(
            details.starts_with(&format!(
                "Run {run_id} of workflow roocode-boomerang: success."
            )),
            "{details}"
        );
        // The workflow job and every step's job name the run in a field.
        assert_eq!(record.run_id.as_deref(), Some(run_id.as_str()));
        let run = run_of(world.engine(), &run_id);
        assert_eq!(run.status, WorkflowRunStatus::Success);
        let ids: Vec<&str> = run.steps.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, ["plan", "implement", "review", "fix"]);
        for step in &run.steps {
            assert_eq!(step.status, WorkflowStepStatus::Success, "{step:?}");
            assert!(step.duration_ms.unwrap() > 0, "{step:?}");
            assert!(step.model.as_deref().unwrap().contains('/'), "{step:?}");
            assert!(step.usage.output > 0, "{step:?}");
            let task_id = step.task_id.as_deref().unwrap();
            let job = world.engine().store().get_job(task_id).unwrap().unwrap();
            assert_eq!(job.run_id.as_deref(), Some(run_id.as_str()), "{job:?}");
            assert_eq!(job.kind, TaskKind::Worker);
        }

        let view = world
            .engine()
            .list(&TaskListParams {
                view: ListView::Workflow,
                run_id: Some(run_id.clone()),
                format: Some(ListFormat::Markdown),
                ..TaskListParams::default()
            })
            .await
            .unwrap();
        assert!(view.text.contains("**success**, step 4/4"), "{}", view.text);
        let listing = world
            .engine()
            .list(&TaskListParams {
                view: ListView::Workflows,
                ..TaskListParams::default()
            })
            .await
            .unwrap();
        assert!(listing.text.contains("roocode-boomerang") && listing.text.contains(&run_id));
        world.shutdown().await;
    })
    .await;
}

/// "Killing" the hub inside one test process: the first hub is shut down while the run is
/// paused on a failed step (its record stays in the store), and a second hub — new id, new
/// servers — opens the same store and resumes it. A run left `running` by a hub that died
/// without shutting down is paused by `recover_interrupted_runs` (see the store's tests),
/// because its hub row is gone or stale; this test covers the resume path after that point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_step_pauses_the_run_and_a_new_hub_resumes_it() {
    bounded(async {
        let config = json!({"workflows": {"definitions": [{
            "id": "two-steps", "name": "Two steps", "steps": [
                {"id": "first", "title": "First", "workerId": "coder", "prompt": "FIRST-STEP {task}", "carry": true},
                {"id": "second", "title": "Second", "workerId": "docs", "prompt": "SECOND-STEP after:\n{carry}"}
            ]}]}});
        let world = World::start(config).await;
        let failing = Arc::new(AtomicBool::new(true));
        let flag = failing.clone();
        world.fake.set_responder(move |req| {
            let text = &req.last_user_text;
            if text.contains("FIRST-STEP") {
                Some(Script::text("## Summary\nfirst done\n## Next\ngo on"))
            } else if text.contains("SECOND-STEP") && flag.load(Ordering::SeqCst) {
                Some(Script::http_error(400, "scripted failure"))
            } else if text.contains("SECOND-STEP") {
                Some(Script::text("second done"))
            } else {
                None
            }
        });
        let (task, run_id) = start_workflow(world.engine(), "two-steps", "the job").await;
        let record = common::finish_on(world.engine(), &task).await;
        assert_eq!(record.status, JobStatus::Failed, "{record:?}");
        let error = record.error.unwrap();
        assert!(error.contains("step `second` failed") && error.contains(&run_id), "{error}");
        let run = run_of(world.engine(), &run_id);
        assert_eq!(run.status, WorkflowRunStatus::Paused);
        assert_eq!(run.current_step_index, 1);

        world.hub.shutdown().await;
        failing.store(false, Ordering::SeqCst);

        let second = world.another_hub().await;
        let resumed = resume(second.engine(), &run_id).await.unwrap();
        let record = common::finish_on(second.engine(), &resumed.task_id).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert!(record.response_text.unwrap().contains("second done"));
        let run = run_of(second.engine(), &run_id);
        assert_eq!(run.status, WorkflowRunStatus::Success);
        assert_eq!(run.hub_id, second.id());
        assert_eq!(run.job_ids, [task.clone(), resumed.task_id.clone()]);
        assert_eq!(run.steps[0].attempts, 1, "the first step must not run again");
        assert_eq!(run.steps[1].attempts, 2);
        let firsts = world
            .fake
            .requests()
            .iter()
            .filter(|r| r.last_user_text.contains("FIRST-STEP"))
            .count();
        assert_eq!(firsts, 1);
        // A finished run cannot be resumed again.
        let again = resume(second.engine(), &run_id).await;
        assert!(again.unwrap_err().to_string().contains("already finished"));
        second.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_budgets_stop_a_run_with_a_clear_reason() {
    bounded(async {
        let steps = json!([
            {"id": "a", "title": "A", "workerId": "docs", "prompt": "{task}"},
            {"id": "b", "title": "B", "workerId": "docs", "prompt": "never reached {task}"}
        ]);
        let world = World::start(json!({"workflows": {"definitions": [
            {"id": "few-tokens", "name": "Few tokens", "steps": steps, "limits": {"maxRunTokens": 1}},
            {"id": "short", "name": "Short", "steps": steps, "limits": {"maxRunMs": 1500}}
        ]}}))
        .await;
        let (task, run_id) = start_workflow(world.engine(), "few-tokens", "hello").await;
        let record = common::finish_on(world.engine(), &task).await;
        assert_eq!(record.status, JobStatus::Failed);
        let error = record.error.unwrap();
        assert!(error.contains("maxRunTokens budget of 1"), "{error}");
        let run = run_of(world.engine(), &run_id);
        assert_eq!(run.status, WorkflowRunStatus::Error);
        // The budget stops a step as soon as a model step spends past it, not after it.
        let stopped = run.steps[0].error.clone().unwrap_or_default();
        assert!(stopped.contains("the run's maxRunTokens"), "{stopped}");
        assert_eq!(run.steps[1].status, WorkflowStepStatus::Pending);

        let (task, run_id) = start_workflow(world.engine(), "short", "DELAYMS:5000 slow").await;
        let record = common::finish_on(world.engine(), &task).await;
        let error = record.error.unwrap();
        assert!(error.contains("maxRunMs budget of 1500 ms"), "{error}");
        let run = run_of(world.engine(), &run_id);
        assert_eq!(run.status, WorkflowRunStatus::Error);
        assert!(run.active_ms < 5000, "{}", run.active_ms);
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_parallel_group_runs_its_steps_at_the_same_time() {
    bounded(async {
        let world = World::start(json!({"workflows": {"definitions": [{
            "id": "look-around", "name": "Look around", "steps": [
                {"id": "both", "title": "Both", "parallel": [
                    {"id": "review", "title": "Review", "workerId": "architect", "prompt": "DELAYMS:2000 REVIEW-OUT {task}"},
                    {"id": "search", "title": "Search", "workerId": "explorer", "prompt": "DELAYMS:2000 SEARCH-OUT {task}"}
                ]},
                {"id": "sum", "title": "Sum", "workerId": "docs", "prompt": "JOIN {steps.review} AND {steps.search}"}
            ]}]}}))
        .await;
        let (task, run_id) = start_workflow(world.engine(), "look-around", "the code").await;
        let record = common::finish_on(world.engine(), &task).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        let run = run_of(world.engine(), &run_id);
        let (review, search) = (&run.steps[0], &run.steps[1]);
        assert_eq!(review.group.as_deref(), Some("both"));
        let overlap = review.started_at.unwrap() < search.finished_at.unwrap()
            && search.started_at.unwrap() < review.finished_at.unwrap();
        assert!(overlap, "{review:?} {search:?}");

        let requests = world.fake.requests();
        let delayed: Vec<_> = requests
            .iter()
            .filter(|r| r.last_user_text.starts_with("DELAYMS:2000"))
            .collect();
        assert_eq!(delayed.len(), 2);
        let (a, b) = (delayed[0], delayed[1]);
        assert!(
            a.received_at < b.completed_at.unwrap() && b.received_at < a.completed_at.unwrap(),
            "the two model calls did not overlap"
        );
        let join = requests
            .iter()
            .find(|r| r.last_user_text.starts_with("JOIN"))
            .unwrap();
        assert!(
            join.last_user_text.contains("REVIEW-OUT") && join.last_user_text.contains("SEARCH-OUT"),
            "{}",
            join.last_user_text
        );
        world.shutdown().await;
    })
    .await;
}
