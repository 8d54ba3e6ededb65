//! A workflow run's `budget.maxMs` is a clock, not only a check when a step reports usage: on
//! the real pinned OpenCode, a step whose model streams a little and then waits far past the
//! deadline is stopped on time (the model's connection closed, its partial output kept), the
//! run pauses, and `orchestra.budget.warning` and `orchestra.budget.exceeded` (scope `run`)
//! are published.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use orchestra_protocol::{
    BudgetDimension, BudgetScope, EventBody, JobStatus, TaskBudget, TaskKind, TaskStartParams,
    WorkflowRunStatus, now_ms,
};
use orchestra_testkit::fake_llm::{FakeLlm, Script, Step};
use orchestra_testkit::opencode::fake_provider_config;
use serde_json::json;

use super::common::{World, bounded};

/// The run's cap on working time.
const MAX_MS: u64 = 2000;
/// How long the model would keep the step waiting: far past the cap.
const MODEL_WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_max_ms_stops_a_step_waiting_on_a_slow_model_and_pauses_the_run() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let config = fake_provider_config(&fake.base_url());
        let world = World::start_with_opencode_config(
            fake,
            config,
            json!({"workflows": {"definitions": [{
            "id": "slow", "name": "Slow", "steps": [
                {"id": "think", "title": "Think", "workerId": "coder", "prompt": "PONDER {task}"},
                {"id": "after", "title": "After", "workerId": "coder", "prompt": "never {task}"}
            ]}]}}),
        )
        .await;
        world.fake.set_responder(|request| {
            (request.last_user_text.starts_with("PONDER") && !request.tool_names.is_empty()).then(
                || Script {
                    steps: vec![
                        Step::Text("a first thought".into()),
                        Step::Delay(MODEL_WAIT),
                        Step::Text("and the rest".into()),
                    ],
                },
            )
        });
        // The worker's server is up before the run's clock starts: the step's time is the model's.
        let warm = world.run("coder", "warm up").await;
        assert_eq!(warm.status, JobStatus::Succeeded, "{warm:?}");
        let mut events = world.hub.bus().subscribe(None);
        let started = world
            .engine()
            .start(
                TaskStartParams {
                    kind: TaskKind::Workflow,
                    workflow_id: Some("slow".into()),
                    task: "go".into(),
                    budget: Some(TaskBudget {
                        max_ms: Some(MAX_MS),
                        ..TaskBudget::default()
                    }),
                    ..TaskStartParams::default()
                },
                None,
            )
            .await
            .unwrap();
        let run_id = started.continue_run_id.clone().unwrap();
        let began = Instant::now();
        let record = world.finish(&started.task_id).await;
        let took = began.elapsed();
        assert_eq!(record.status, JobStatus::Failed, "{record:?}");
        assert!(
            took < MODEL_WAIT / 2,
            "the run waited for the model ({took:?}) instead of its clock"
        );

        let run = world
            .engine()
            .workflows()
            .get_run(&run_id)
            .unwrap()
            .unwrap();
        assert_eq!(run.status, WorkflowRunStatus::Paused, "{:?}", run.reason);
        assert!(
            run.reason.as_deref().unwrap().contains("budget.maxMs"),
            "{:?}",
            run.reason
        );
        assert_eq!(run.current_step_index, 0, "the stopped step runs again");
        let step = world
            .engine()
            .runtime()
            .peek(run.steps[0].task_id.as_deref().unwrap())
            .unwrap()
            .unwrap();
        assert_eq!(step.status, JobStatus::Failed, "{step:?}");
        let stop = step.budget_stop.unwrap();
        assert_eq!(stop.dimension, BudgetDimension::MaxMs, "{step:?}");
        assert!(
            step.response_text
                .as_deref()
                .unwrap_or_default()
                .contains("a first thought"),
            "the partial output is kept: {step:?}"
        );

        // The model's connection was closed; how long after the deadline is printed (the
        // bound is a benchmark's business), and it is long before the model would have ended.
        let request = world
            .fake
            .requests()
            .into_iter()
            .find(|r| r.last_user_text.starts_with("PONDER") && !r.tool_names.is_empty())
            .unwrap();
        let closed = request
            .disconnected_at
            .expect("the slow model's stream was never closed");
        let closed_unix = now_ms() - i64::try_from(closed.elapsed().as_millis()).unwrap();
        let deadline_unix = step.started_at + i64::try_from(MAX_MS).unwrap();
        let spent_ms = run.spent.unwrap().ms;
        eprintln!(
            "run maxMs {MAX_MS}: stream closed {} ms after the deadline (from the step's start); \
             the run's clock read {spent_ms} ms when the step returned",
            closed_unix - deadline_unix
        );
        assert!(spent_ms >= MAX_MS, "{spent_ms}");
        assert!(
            request.received_at.elapsed() > Duration::from_millis(MAX_MS / 2)
                && closed.duration_since(request.received_at) < MODEL_WAIT / 2,
            "{request:?}"
        );

        // The 80 % warning, then the run's cap, on the event stream.
        let (mut warned, mut exceeded) = (None, None);
        while exceeded.is_none() {
            let event = events.next().await.unwrap();
            if let EventBody::BudgetWarning(w) = &event.body
                && w.run_id.as_deref() == Some(run_id.as_str())
            {
                warned = Some(w.clone());
            }
            if let EventBody::BudgetExceeded(e) = &event.body
                && e.run_id.as_deref() == Some(run_id.as_str())
            {
                exceeded = Some(e.clone());
            }
        }
        let warned = warned.expect("no 80 % warning before the cap");
        assert_eq!(warned.dimension, BudgetDimension::MaxMs);
        let exceeded = exceeded.unwrap();
        assert_eq!(exceeded.scope, BudgetScope::Run);
        assert_eq!(exceeded.task_id, started.task_id);
        assert_eq!(exceeded.workflow_id.as_deref(), Some("slow"));
        assert_eq!(exceeded.dimension, BudgetDimension::MaxMs);
        assert_eq!(exceeded.cap, MAX_MS as f64);
        world.shutdown().await;
    })
    .await;
}
