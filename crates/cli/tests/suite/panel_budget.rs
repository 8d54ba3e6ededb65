//! A workflow run its budget paused, in the real headless Chromium: the run's page shows spend
//! against the cap, the inbox shows the run with *Raise* (a higher cap, then resume) and
//! *Stop* (asked twice, ends it for good), and a notification that failed to reach the user's
//! `command` hook is listed. The hub is a real one with the pinned OpenCode on the fake LLM;
//! every effect is checked through the HTTP API.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use orchestra_browser::Browser;
use serde_json::{Value, json};

use super::common::{self, World, hub_info};
use super::notify_events::tool_loop;
use super::panel::panel_steps::{go, log_in, login_link, wait};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_raises_and_stops_a_run_its_budget_paused_and_shows_failed_notifications() {
    tokio::time::timeout(Duration::from_secs(300), scenario())
        .await
        .expect("the budget panel scenario took longer than 300 s");
}

/// `GET /api/v1/runs/{id}` as the hub answers it.
async fn run_now(world: &World, run_id: &str) -> Value {
    let info = hub_info(&world.home, &world.project.dir).await;
    reqwest::Client::new()
        .get(format!("{}/api/v1/runs/{run_id}", info.url))
        .bearer_auth(&info.token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Waits until the run is paused again by its budget (a resumed run runs first).
async fn paused_by_budget(world: &World, run_id: &str, job_ids: usize) -> Value {
    common::eventually(
        &format!("run {run_id} to pause on its budget"),
        async || {
            let run = run_now(world, run_id).await;
            (run["status"] == "paused"
                && run["budgetStop"].is_object()
                && run["jobIds"].as_array().map(Vec::len) == Some(job_ids))
            .then_some(run)
        },
    )
    .await
}

async fn scenario() {
    let world = World::new(json!({
        // A hook that always fails: its delivery is listed as failed.
        "notify": [{"type": "command", "command": "false", "events": ["orchestra.budget.exceeded"]}],
        "workflows": {"definitions": [{"id": "looping", "name": "Looping", "steps": [
            {"id": "work", "title": "Work", "workerId": "coder", "prompt": "LOOP {task}"}
        ]}]}
    }))
    .await;
    world.fake.set_responder(tool_loop);
    let client = world.connect().await;
    let started = client
        .call_json(
            "task_start",
            json!({"kind": "workflow", "workflowId": "looping", "task": "go",
                   "budget": {"maxTurns": 2}}),
        )
        .await;
    let run_id = started["continueRunId"].as_str().unwrap().to_owned();
    let record = client.finish(started["taskId"].as_str().unwrap()).await;
    assert_eq!(record["status"], "failed", "{record}");
    let run = paused_by_budget(&world, &run_id, 1).await;
    assert_eq!(run["budgetStop"]["dimension"], "maxTurns", "{run}");
    let used = run["spent"]["turns"].as_u64().unwrap();
    assert!(used >= 2, "{run}");

    let browser = Browser::launch(1280, 800).await.unwrap();
    let page = browser.new_page().await.unwrap();
    log_in(&page, &login_link(&world)).await;

    // The run's page: spend against the cap, and what stopped it.
    go(&page, &format!("#/runs/{run_id}")).await;
    let line = wait(
        &page,
        "document.querySelector('dl.facts dd.budget')?.textContent",
    )
    .await;
    let line = line.as_str().unwrap();
    assert!(line.contains(&format!("model steps {used} / 2")), "{line}");
    assert!(line.contains("stopped at budget.maxTurns"), "{line}");

    // The inbox: the run, with its budget line, and the failed notification.
    go(&page, "#/inbox").await;
    let card = format!("document.querySelector('.budget-run[data-run=\"{run_id}\"]')");
    let text = wait(&page, &format!("{card}?.innerText")).await;
    let text = text.as_str().unwrap();
    assert!(text.contains("budget.maxTurns"), "{text}");
    assert!(text.contains(&format!("model steps {used} / 2")), "{text}");
    let badge = wait(&page, "document.getElementById('count-inbox').textContent").await;
    assert_eq!(badge, "1");
    let failed = wait(
        &page,
        "[...document.querySelectorAll('.failed-deliveries tr[data-delivery]')]\
           .map(r => r.innerText).find(t => t.includes('orchestra.budget.exceeded'))",
    )
    .await;
    let failed = failed.as_str().unwrap();
    assert!(failed.contains("command false"), "{failed}");
    assert!(failed.contains("exit"), "{failed}");

    // Raise: two more model steps, then the run resumes and its budget stops it again.
    let raised = used + 2;
    page.eval(&format!(
        "{card}.querySelector('input.raise-cap').value = '{raised}'"
    ))
    .await
    .unwrap();
    page.click(&format!(".budget-run[data-run=\"{run_id}\"] button.raise"))
        .await
        .unwrap();
    let again = paused_by_budget(&world, &run_id, 2).await;
    assert_eq!(again["budget"]["maxTurns"], raised, "{again}");
    assert!(
        again["spent"]["turns"].as_u64().unwrap() >= raised,
        "{again}"
    );

    // The run is back in the inbox; Stop (asked twice) ends it for good.
    wait(&page, &format!("{card}?.innerText.includes('/ {raised}')")).await;
    let stop = format!(".budget-run[data-run=\"{run_id}\"] button.stop");
    page.click(&stop).await.unwrap();
    wait(
        &page,
        &format!(
            "document.querySelector('{}')?.textContent === 'Really stop the run?'",
            stop.replace('\'', "\\'")
        ),
    )
    .await;
    page.click(&stop).await.unwrap();
    wait(&page, &format!("{card} === null")).await;
    let ended = run_now(&world, &run_id).await;
    assert_eq!(ended["status"], "error", "{ended}");
    let badge = page
        .eval("document.getElementById('count-inbox').textContent")
        .await
        .unwrap();
    assert_eq!(badge, "");

    drop(browser);
    client.close().await;
}
