//! The control panel in a real headless Chromium (issue 10): first paint, the page's total
//! weight, and how long a hub event takes to reach the DOM while 100 tasks update at once.
//! Reported, not asserted in CI (the story test in `crates/cli/tests/panel.rs` checks behaviour).

use std::time::Duration;

use anyhow::{Context, bail};
use orchestra_browser::{Browser, Page};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::harness::{self, World, succeeded};
use super::report::{Row, number};
use super::{Outcome, Stats};

const FIRST_PAINT_TARGET_MS: f64 = 300.0;
const WEIGHT_TARGET_KB: f64 = 200.0;
const EVENT_TO_DOM_TARGET_MS: f64 = 100.0;
const TASKS: usize = 100;
/// Each task streams this many chunks, this far apart: a steady flow of deltas and updates.
const CHUNKS: usize = 10;
const CHUNK_MS: u64 = 200;
const WAIT: Duration = Duration::from_secs(30);

pub async fn run(samples: usize) -> anyhow::Result<Outcome> {
    let world = World::new().await?;
    let hub = world.hub(&json!({}), &[]).await?;
    let info = world.hub_info().await?;
    let client = orchestra_client::HubClient::new(&info)?;
    // One task first, so the worker server is up and the list has a row.
    succeeded(&hub.finish(&hub.start("bench panel warm-up").await?).await?)?;

    let browser = Browser::launch(1280, 800).await?;
    let mut paints = Vec::with_capacity(samples);
    let mut weight_kb = 0.0;
    for i in 0..samples {
        let page = browser.new_page().await?;
        page.goto(&client.login_link().await?.url).await?;
        page.wait_for(
            "document.querySelector('.view-tasks tr[data-task]') !== null",
            WAIT,
        )
        .await
        .context("the panel showed no task list")?;
        paints.push(first_paint_ms(&page).await?);
        if i == 0 {
            weight_kb = every_view_kb(&page).await?;
        }
    }

    let page = browser.new_page().await?;
    page.goto(&client.login_link().await?.url).await?;
    page.wait_for("document.querySelector('#conn.live') !== null", WAIT)
        .await
        .context("the panel did not connect to the event stream")?;
    page.eval("window.__orchestraPerf = []; window.__orchestraRecv = []")
        .await?;
    let mut starts = JoinSet::new();
    for i in 0..TASKS {
        let peer = hub.peer();
        let text = format!("SLOWMS:{CHUNK_MS}:{CHUNKS} bench panel task {i}");
        starts.spawn(async move { harness::start(&peer, &text).await });
    }
    let mut ids = Vec::with_capacity(TASKS);
    while let Some(joined) = starts.join_next().await {
        ids.push(joined.context("a task_start call panicked")??);
    }
    for id in &ids {
        succeeded(&hub.finish(id).await?)?;
    }
    let latencies: Vec<f64> = serde_json::from_value(page.eval("window.__orchestraPerf").await?)
        .context("the page's measurements are not numbers")?;
    let received: Vec<f64> = serde_json::from_value(page.eval("window.__orchestraRecv").await?)
        .context("the page's measurements are not numbers")?;
    if latencies.is_empty() {
        bail!("the page applied no events while {TASKS} tasks ran");
    }
    drop(browser);
    hub.close().await;

    let paint = Stats::of(&paints).median;
    let p95 = p95_of(&latencies);
    let rows = vec![
        Row::observed("panel: first paint (median)", "ms", &paints).judged(
            format!("≤ {FIRST_PAINT_TARGET_MS} ms"),
            paint,
            FIRST_PAINT_TARGET_MS,
            number(paint, "ms"),
        ),
        Row::info("panel: total page weight (every view)", "KB", weight_kb).judged(
            format!("≤ {WEIGHT_TARGET_KB} KB"),
            weight_kb,
            WEIGHT_TARGET_KB,
            number(weight_kb, "KB"),
        ),
        Row::info(
            format!("panel: hub event → DOM, {TASKS} tasks updating (p95)"),
            "ms",
            p95,
        )
        .judged(
            format!("≤ {EVENT_TO_DOM_TARGET_MS} ms"),
            p95,
            EVENT_TO_DOM_TARGET_MS,
            number(p95, "ms"),
        ),
        Row::info(
            "panel: of which hub event → page has it (p95)",
            "ms",
            p95_of(&received),
        ),
    ];
    let note = format!(
        "headless Chromium at 1280×800 on a hub with the fake model; first paint is the \
         browser's first-contentful-paint after the login redirect, {samples} fresh tabs; weight is \
         every byte the page loads once each view was shown (HTML, CSS, JS); event → DOM is the \
         hub's event timestamp to the end of the frame that rendered it, over {} events while \
         {TASKS} tasks streamed {CHUNKS} chunks each (the split: event → the page's event handler, \
         so the rest is the page's own work)",
        latencies.len()
    );
    Ok(Outcome {
        rows,
        notes: vec![note],
    })
}

/// The 95th percentile (nearest rank) of a non-empty set.
fn p95_of(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = (sorted.len() * 95).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

async fn first_paint_ms(page: &Page) -> anyhow::Result<f64> {
    let value = page
        .eval(
            "performance.getEntriesByType('paint').find(e => e.name === 'first-contentful-paint')?.startTime ?? null",
        )
        .await?;
    value
        .as_f64()
        .context("the browser reported no first-contentful-paint")
}

/// Shows every view (each loads its module once), then sums what the page loaded, in KB.
async fn every_view_kb(page: &Page) -> anyhow::Result<f64> {
    for view in [
        "inbox", "workers", "runs", "memory", "logs", "config", "tasks",
    ] {
        page.eval(&format!("location.hash = '#/{view}'")).await?;
        page.wait_for(
            &format!("document.querySelector('.view-{view}') !== null"),
            WAIT,
        )
        .await
        .with_context(|| format!("the {view} view did not show"))?;
    }
    let bytes: Value = page
        .eval(
            "[...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')] \
             .filter(e => !e.name.includes('/api/')) \
             .reduce((sum, e) => sum + (e.encodedBodySize || e.transferSize || 0), 0)",
        )
        .await?;
    Ok(bytes.as_f64().unwrap_or(0.0) / 1024.0)
}
