//! Task budgets on the real pinned OpenCode: a model that never stops calling tools is stopped
//! by each of the four dimensions, at most one model step past the cap, with its partial
//! output kept, a warning at 80 %, and the task can be continued in its session with a raised
//! budget.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use orchestra_protocol::{
    BudgetDimension, EventBody, JobRecord, JobStatus, TaskBudget, TaskKind, TaskStartParams,
};
use orchestra_testkit::fake_llm::{ChatRequest, FakeLlm, Script, Step};
use orchestra_testkit::opencode::fake_provider_config;
use serde_json::json;

use super::common::{World, bounded};

/// Tokens the fake reports per model step (input + output).
const PROMPT_TOKENS: u64 = 1000;
const COMPLETION_TOKENS: u64 = 100;

/// A prompt starting with `LOOP` gets, at every step, a line of text and one more tool call:
/// the model never finishes on its own. (A responder is enough for an endless loop: the fake
/// needs no new directive.)
fn tool_loop(project: std::path::PathBuf) -> impl Fn(&ChatRequest) -> Option<Script> {
    move |request| {
        // Title requests carry no tools; only the worker's own steps loop.
        if !request.last_user_text.starts_with("LOOP") || request.tool_names.is_empty() {
            return None;
        }
        // A real model takes seconds a step; 150 ms still leaves the hub a whole step to see
        // the usage and abort before the next one ends.
        let delay = if request.last_user_text.contains("SLOW") {
            300
        } else {
            150
        };
        Some(Script {
            steps: vec![
                Step::Delay(Duration::from_millis(delay)),
                Step::Text("still working on it".into()),
                Step::ToolCall {
                    name: "read".into(),
                    arguments: json!({"filePath": project.join("notes.txt")}),
                },
                Step::Usage {
                    prompt_tokens: PROMPT_TOKENS,
                    completion_tokens: COMPLETION_TOKENS,
                },
            ],
        })
    }
}

/// The fake provider with a price on `fake-model`: $10 per million tokens each way, so one
/// step costs $0.011.
fn priced_config(base_url: &str) -> serde_json::Value {
    let mut config = fake_provider_config(base_url);
    let models = config
        .pointer_mut("/provider/fake/models")
        .and_then(|m| m.as_object_mut())
        .unwrap();
    for model in models.values_mut() {
        model["cost"] = json!({"input": 10.0, "output": 10.0});
    }
    config
}

async fn start_with_budget(world: &World, task: &str, budget: TaskBudget) -> String {
    world
        .engine()
        .start(
            TaskStartParams {
                kind: TaskKind::Worker,
                worker_id: Some("coder".into()),
                task: task.into(),
                budget: Some(budget),
                ..TaskStartParams::default()
            },
            None,
        )
        .await
        .unwrap()
        .task_id
}

fn steps_of(world: &World, tag: &str) -> usize {
    world
        .fake
        .requests()
        .iter()
        .filter(|r| r.last_user_text.starts_with(tag) && !r.tool_names.is_empty())
        .count()
}

fn assert_stopped_by(record: &JobRecord, dimension: BudgetDimension) {
    assert_eq!(record.status, JobStatus::Failed, "{record:?}");
    let stop = record.budget_stop.unwrap_or_else(|| panic!("{record:?}"));
    assert_eq!(stop.dimension, dimension, "{record:?}");
    let error = record.error.clone().unwrap();
    assert!(
        error.contains(&format!("budget.{}", dimension.as_str())),
        "{error}"
    );
    assert!(
        record
            .response_text
            .as_deref()
            .unwrap_or_default()
            .contains("still working"),
        "the partial output is kept: {record:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_that_keeps_calling_tools_is_stopped_by_each_budget_dimension() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let config = priced_config(&fake.base_url());
        let world = World::start_with_opencode_config(fake, config, json!({})).await;
        std::fs::write(world.project.dir.join("notes.txt"), "notes\n").unwrap();
        world
            .fake
            .set_responder(tool_loop(world.project.dir.clone()));
        let mut events = world.hub.bus().subscribe(None);

        // Turns: three steps allowed; the third is the cap.
        let turns = TaskBudget {
            max_turns: Some(3),
            ..TaskBudget::default()
        };
        let id = start_with_budget(&world, "LOOP-turns", turns).await;
        let record = world.finish(&id).await;
        assert_stopped_by(&record, BudgetDimension::MaxTurns);
        let steps = steps_of(&world, "LOOP-turns");
        assert!(
            (3..=4).contains(&steps),
            "{steps} model steps for a cap of 3"
        );
        let warned = loop {
            let event = events.next().await.unwrap();
            if let EventBody::BudgetWarning(warning) = &event.body
                && warning.job_id == id
            {
                break warning.clone();
            }
        };
        assert_eq!(warned.dimension, BudgetDimension::MaxTurns);

        // Tokens: 1100 a step, so the cap of 2500 is crossed by the third step.
        let tokens = TaskBudget {
            max_tokens: Some(2500),
            ..TaskBudget::default()
        };
        let id = start_with_budget(&world, "LOOP-tokens", tokens).await;
        let record = world.finish(&id).await;
        assert_stopped_by(&record, BudgetDimension::MaxTokens);
        let steps = steps_of(&world, "LOOP-tokens");
        assert!(
            (3..=4).contains(&steps),
            "{steps} model steps for 2500 tokens: {:?}",
            record.spent
        );
        assert!(record.spent.unwrap().tokens >= 2500, "{record:?}");

        // Cost: $0.011 a step, so $0.03 is crossed by the third step.
        let cost = TaskBudget {
            max_cost_usd: Some(0.03),
            ..TaskBudget::default()
        };
        let id = start_with_budget(&world, "LOOP-cost", cost).await;
        let record = world.finish(&id).await;
        assert_stopped_by(&record, BudgetDimension::MaxCostUsd);
        let steps = steps_of(&world, "LOOP-cost");
        assert!(
            (3..=4).contains(&steps),
            "{steps} model steps for $0.03: {:?}",
            record.spent
        );

        // Time: slow steps, stopped by the clock between or inside them. The cap leaves a
        // loaded machine time for the first step's text (kept as the partial output).
        let time = TaskBudget {
            max_ms: Some(5000),
            ..TaskBudget::default()
        };
        let id = start_with_budget(&world, "LOOP-SLOW-time", time).await;
        let record = world.finish(&id).await;
        assert_stopped_by(&record, BudgetDimension::MaxMs);
        assert!(record.duration_ms.unwrap() < 30_000, "{record:?}");

        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_its_budget_stopped_continues_in_its_session_with_a_raised_budget() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let config = priced_config(&fake.base_url());
        let world = World::start_with_opencode_config(
            fake,
            config,
            // The tool loop reads the project's files by path: the coder works in the checkout.
            json!({"runtime": {"keepSessions": 5}, "profiles": [{"id": "coder", "workspace": "checkout"}]}),
        )
        .await;
        std::fs::write(world.project.dir.join("notes.txt"), "notes\n").unwrap();
        world
            .fake
            .set_responder(tool_loop(world.project.dir.clone()));
        let first = start_with_budget(
            &world,
            "LOOP-first",
            TaskBudget {
                max_turns: Some(2),
                ..TaskBudget::default()
            },
        )
        .await;
        let first = world.finish(&first).await;
        assert_stopped_by(&first, BudgetDimension::MaxTurns);

        let continue_with = |turns: u32| TaskStartParams {
            kind: TaskKind::Worker,
            task: "LOOP-again".into(),
            continue_task_id: Some(first.id.clone()),
            budget: Some(TaskBudget {
                max_turns: Some(turns),
                ..TaskBudget::default()
            }),
            ..TaskStartParams::default()
        };
        // The same cap is spent already: a clear refusal naming what to raise.
        let refused = world
            .engine()
            .start(continue_with(2), None)
            .await
            .unwrap_err();
        assert_eq!(
            refused.kind(),
            orchestra_protocol::ErrorKind::BudgetExceeded
        );
        assert!(refused.to_string().contains("maxTurns"), "{refused}");

        let next = world
            .engine()
            .start(continue_with(4), None)
            .await
            .unwrap()
            .task_id;
        let next = world.finish(&next).await;
        assert_eq!(next.session_id, first.session_id, "same session");
        assert_eq!(next.continues_task_id.as_deref(), Some(first.id.as_str()));
        assert_stopped_by(&next, BudgetDimension::MaxTurns);
        // The first task's two steps count: two more reach the raised cap of four.
        let spent = next.spent.unwrap();
        assert!((4..=5).contains(&spent.turns), "{spent:?}");
        let again = steps_of(&world, "LOOP-again");
        assert!((2..=3).contains(&again), "{again} steps after continuing");
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_budget_of_zero_is_refused_naming_the_dimension() {
    bounded(async {
        let world = World::start(json!({})).await;
        let refused = world
            .engine()
            .start(
                TaskStartParams {
                    kind: TaskKind::Worker,
                    worker_id: Some("coder".into()),
                    task: "hello".into(),
                    budget: Some(TaskBudget {
                        max_tokens: Some(0),
                        ..TaskBudget::default()
                    }),
                    ..TaskStartParams::default()
                },
                None,
            )
            .await
            .unwrap_err();
        assert!(
            refused.to_string().contains("budget.maxTokens"),
            "{refused}"
        );
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_budget_is_one_pool_for_its_parallel_steps_and_pauses_the_run() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let config = priced_config(&fake.base_url());
        let world = World::start_with_opencode_config(
            fake,
            config,
            json!({"workflows": {"definitions": [{
            "id": "both-loop", "name": "Both loop", "steps": [
                {"id": "pair", "title": "Pair", "parallel": [
                    {"id": "a", "title": "A", "workerId": "coder", "prompt": "LOOP-a {task}"},
                    {"id": "b", "title": "B", "workerId": "coder", "prompt": "LOOP-b {task}"}
                ]},
                {"id": "after", "title": "After", "workerId": "coder", "prompt": "never {task}"}
            ]}]}}),
        )
        .await;
        std::fs::write(world.project.dir.join("notes.txt"), "notes\n").unwrap();
        world
            .fake
            .set_responder(tool_loop(world.project.dir.clone()));
        let start = |budget: TaskBudget, continue_run_id: Option<String>| TaskStartParams {
            kind: TaskKind::Workflow,
            workflow_id: continue_run_id.is_none().then(|| "both-loop".into()),
            continue_run_id,
            task: "go".into(),
            budget: Some(budget),
            ..TaskStartParams::default()
        };
        let turns = |n: u32| TaskBudget {
            max_turns: Some(n),
            ..TaskBudget::default()
        };
        let started = world
            .engine()
            .start(start(turns(4), None), None)
            .await
            .unwrap();
        let run_id = started.continue_run_id.clone().unwrap();
        let record = world.finish(&started.task_id).await;
        assert_eq!(record.status, JobStatus::Failed, "{record:?}");
        let run = world
            .engine()
            .workflows()
            .get_run(&run_id)
            .unwrap()
            .unwrap();
        assert_eq!(
            run.status,
            orchestra_protocol::WorkflowRunStatus::Paused,
            "{:?}",
            run.reason
        );
        assert!(
            run.reason.as_deref().unwrap().contains("budget.maxTurns"),
            "{:?}",
            run.reason
        );
        // Both members drew from one pool of four steps, and both were stopped.
        let spent = run.spent.unwrap();
        assert!((4..=6).contains(&spent.turns), "{spent:?}");
        for member in &run.steps[..2] {
            let job = world
                .engine()
                .runtime()
                .peek(member.task_id.as_deref().unwrap())
                .unwrap()
                .unwrap();
            assert_stopped_by(&job, BudgetDimension::MaxTurns);
        }
        assert_eq!(steps_of(&world, "never"), 0, "nothing new started");

        let refused = world
            .engine()
            .start(start(turns(4), Some(run_id.clone())), None)
            .await
            .unwrap_err();
        assert_eq!(
            refused.kind(),
            orchestra_protocol::ErrorKind::BudgetExceeded
        );

        let resumed = world
            .engine()
            .start(start(turns(spent.turns + 4), Some(run_id.clone())), None)
            .await
            .unwrap();
        world.finish(&resumed.task_id).await;
        let again = world
            .engine()
            .workflows()
            .get_run(&run_id)
            .unwrap()
            .unwrap();
        assert_eq!(again.status, orchestra_protocol::WorkflowRunStatus::Paused);
        let total = again.spent.unwrap().turns;
        assert!(
            total >= spent.turns + 4 && total <= spent.turns + 6,
            "{total}"
        );
        world.shutdown().await;
    })
    .await;
}

/// The last task start of the day is refused, naming the per-day dimension that is spent.
async fn refused_for_the_day(world: &World, dimension: &str) {
    let refused = world
        .engine()
        .start(
            TaskStartParams {
                kind: TaskKind::Worker,
                worker_id: Some("coder".into()),
                task: "anything".into(),
                ..TaskStartParams::default()
            },
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(
        refused.kind(),
        orchestra_protocol::ErrorKind::BudgetExceeded
    );
    assert!(
        refused
            .to_string()
            .contains(&format!("budgets.perDay.{dimension}")),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_projects_daily_budget_caps_a_task_and_then_refuses_new_ones() {
    bounded(async {
        // Each dimension of `budgets.perDay`: 2500 tokens are crossed by a third step.
        for (daily, dimension, cap) in [
            (
                json!({"maxTokens": 2500}),
                BudgetDimension::MaxTokens,
                2500.0,
            ),
            (json!({"maxTurns": 3}), BudgetDimension::MaxTurns, 3.0),
            (json!({"maxMs": 1500}), BudgetDimension::MaxMs, 1500.0),
        ] {
            let fake = FakeLlm::start_scripted().await.unwrap();
            let config = fake_provider_config(&fake.base_url());
            let world = World::start_with_opencode_config(
                fake,
                config,
                json!({"budgets": {"perDay": daily}}),
            )
            .await;
            std::fs::write(world.project.dir.join("notes.txt"), "notes\n").unwrap();
            world
                .fake
                .set_responder(tool_loop(world.project.dir.clone()));
            // No budget of its own: what the day has left stops it.
            let id = world.start_task("coder", "LOOP-SLOW-day").await;
            let record = world.finish(&id).await;
            assert_eq!(record.status, JobStatus::Failed, "{record:?}");
            assert_eq!(
                record.budget.and_then(|b| b.cap(dimension)),
                Some(cap),
                "the task's budget is what the day has left: {record:?}"
            );
            assert_eq!(
                record.budget_stop.map(|s| s.dimension),
                Some(dimension),
                "{record:?}"
            );
            refused_for_the_day(&world, dimension.as_str()).await;
            world.shutdown().await;
        }
    })
    .await;
}
