//! Budget overrun: a model that never stops calling tools, stopped by `maxTurns`, `maxTokens`
//! and `maxMs`. Per dimension: model steps run past the one that reached the cap, and the time
//! from the end of that step to the end of the task's last model stream (the next step's
//! stream cut by the abort, or the crossing step itself when none had begun). Then a workflow
//! run's `maxMs` while its step waits on a slow model: how long after the cap, by the run's
//! own clock, its step was stopped.

use std::time::Duration;

use orchestra_testkit::fake_llm::{RecordedRequest, Script, Step};
use serde_json::{Value, json};

use super::Outcome;
use super::harness::{World, finish, ms};
use super::report::Row;

/// How long one fake model step takes: far below a real model's seconds, so the figures are
/// an upper bound on what a real task sees.
const STEP_MS: u64 = 300;
const TOKENS_PER_STEP: u64 = 1100;
const TARGET_STREAM_CLOSE_MS: f64 = 500.0;
/// The run's cap on working time, and how long its step's model would wait: far past it.
const RUN_MAX_MS: u64 = 1500;
const SLOW_MODEL: Duration = Duration::from_secs(60);

pub async fn run(samples: usize) -> anyhow::Result<Outcome> {
    let world = World::new().await?;
    let notes_file = world.project.dir.join("notes.txt");
    std::fs::write(&notes_file, "notes\n")?;
    world.fake.set_responder(move |request| {
        if request.tool_names.is_empty() {
            return None;
        }
        if request.last_user_text.starts_with("BENCH-PONDER") {
            return Some(Script {
                steps: vec![
                    Step::Text("a first thought".into()),
                    Step::Delay(SLOW_MODEL),
                    Step::Text("the rest".into()),
                ],
            });
        }
        if !request.last_user_text.starts_with("BENCH-LOOP") {
            return None;
        }
        Some(Script {
            steps: vec![
                Step::Delay(Duration::from_millis(STEP_MS)),
                Step::Text("working".into()),
                Step::ToolCall {
                    name: "read".into(),
                    arguments: json!({"filePath": notes_file}),
                },
                Step::Usage {
                    prompt_tokens: TOKENS_PER_STEP - 100,
                    completion_tokens: 100,
                },
            ],
        })
    });
    let hub = world
        .hub(
            &json!({"workflows": {"definitions": [{"id": "bench-ponder", "name": "Ponder", "steps": [
                {"id": "think", "title": "Think", "workerId": "coder", "prompt": "BENCH-PONDER {task}"}
            ]}]}}),
            &[],
        )
        .await?;
    let dimensions: [(&str, Value, usize); 3] = [
        ("maxTurns", json!({"maxTurns": 3}), 3),
        (
            "maxTokens",
            json!({"maxTokens": 3 * TOKENS_PER_STEP - 100}),
            3,
        ),
        ("maxMs", json!({"maxMs": 3 * STEP_MS + STEP_MS / 2}), 0),
    ];
    let mut rows = Vec::new();
    for (name, budget, cap_steps) in dimensions {
        let mut past = Vec::with_capacity(samples);
        let mut close = Vec::with_capacity(samples);
        for i in 0..samples {
            let marker = format!("BENCH-LOOP-{name}-{i} ");
            let started = hub
                .call(
                    "task_start",
                    json!({"kind": "worker", "workerId": "coder", "task": format!("{marker}go"), "budget": budget}),
                )
                .await?;
            let id = started["taskId"].as_str().unwrap_or_default().to_owned();
            let record = finish(&hub.peer(), &id).await?;
            if record["budgetStop"]["dimension"] != name {
                anyhow::bail!("the {name} task was not stopped by its budget: {record}");
            }
            let steps = steps_of(&world, &marker);
            // Time has no step count: the step running at the cap is the one that crossed it.
            let crossing = if cap_steps == 0 {
                steps.len().saturating_sub(1).max(1)
            } else {
                cap_steps
            };
            past.push(steps.len().saturating_sub(crossing) as f64);
            if let Some(end) = crossing
                .checked_sub(1)
                .and_then(|index| steps.get(index))
                .and_then(|r| r.completed_at)
            {
                let last = steps
                    .last()
                    .and_then(|r| r.disconnected_at.or(r.completed_at))
                    .unwrap_or(end);
                close.push(ms(last.saturating_duration_since(end)));
            }
        }
        rows.push(Row::observed(
            format!("budget {name}: model steps past the cap (median)"),
            "",
            &past,
        ));
        if !close.is_empty() {
            rows.push(
                Row::observed(
                    format!("budget {name}: cap reached → last model stream closed (median)"),
                    "ms",
                    &close,
                )
                .at_most(TARGET_STREAM_CLOSE_MS, "—"),
            );
        }
    }
    rows.push(run_max_ms(&hub, samples).await?);
    hub.close().await;
    Ok(Outcome {
        rows,
        notes: vec![format!(
            "a fake model that calls a tool at every step ({STEP_MS} ms and {TOKENS_PER_STEP} \
             tokens a step), stopped by maxTurns 3, maxTokens {} and maxMs {}; maxCostUsd works \
             as maxTokens (the fake has no prices here); a run of maxMs {RUN_MAX_MS} whose step's \
             model waits {} s",
            3 * TOKENS_PER_STEP - 100,
            3 * STEP_MS + STEP_MS / 2,
            SLOW_MODEL.as_secs()
        )],
    })
}

/// A run whose only step waits on a slow model, stopped by its `maxMs`: the run's clock when
/// the step came back, minus the cap.
async fn run_max_ms(hub: &super::harness::Hub, samples: usize) -> anyhow::Result<Row> {
    let mut late = Vec::with_capacity(samples);
    for i in 0..samples {
        let started = hub
            .call(
                "task_start",
                json!({"kind": "workflow", "workflowId": "bench-ponder", "task": format!("{i}"),
                       "budget": {"maxMs": RUN_MAX_MS}}),
            )
            .await?;
        let id = started["taskId"].as_str().unwrap_or_default().to_owned();
        let run_id = started["continueRunId"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        finish(&hub.peer(), &id).await?;
        let listed = hub
            .call(
                "task_list",
                json!({"view": "workflow", "runId": run_id, "format": "json"}),
            )
            .await?;
        let run = listed.get("json").unwrap_or(&listed);
        let run = run.get("run").unwrap_or(run);
        if run["budgetStop"]["dimension"] != "maxMs" {
            anyhow::bail!("the run was not stopped by its maxMs: {run}");
        }
        let clock = run["spent"]["ms"].as_u64().unwrap_or(0);
        late.push(clock.saturating_sub(RUN_MAX_MS) as f64);
    }
    Ok(Row::observed(
        "budget run maxMs: cap reached → its step stopped, model still waiting (run clock, median)"
            .to_owned(),
        "ms",
        &late,
    )
    .at_most(TARGET_STREAM_CLOSE_MS, "—"))
}

/// The task's model steps (title requests carry no tools), oldest first.
fn steps_of(world: &World, marker: &str) -> Vec<RecordedRequest> {
    let mut steps: Vec<RecordedRequest> = world
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.last_user_text.starts_with(marker) && !r.tool_names.is_empty())
        .collect();
    steps.sort_by_key(|r| r.index);
    steps
}
