//! Cold first task: `task_start` on a hub with no OpenCode server running, to the result;
//! against OpenCode alone started cold and prompted once.

use std::time::{Duration, Instant};

use serde_json::json;

use super::direct::Direct;
use super::harness::{World, succeeded};
use super::report::Row;
use super::{Outcome, Stats};

const TARGET_S: f64 = 3.0;

pub async fn run(samples: usize) -> anyhow::Result<Outcome> {
    let mut ours = Vec::with_capacity(samples);
    let mut direct = Vec::with_capacity(samples);
    let mut startup = Vec::with_capacity(samples);
    for i in 0..samples {
        if i.is_multiple_of(2) {
            ours.push(through_hub(i).await?);
            let (total, ready) = direct_cold(i).await?;
            direct.push(total);
            startup.push(ready);
        } else {
            let (total, ready) = direct_cold(i).await?;
            direct.push(total);
            startup.push(ready);
            ours.push(through_hub(i).await?);
        }
    }
    let ready = Stats::of(&startup).median;
    Ok(Outcome {
        rows: vec![
            Row::versus(
                "cold first task: task_start → result (median)",
                "s",
                &ours,
                &direct,
            )
            .at_most(TARGET_S, "cold OpenCode"),
            Row::info("cold: OpenCode spawn → healthy (its own share)", "s", ready)
                .with_samples(&startup),
        ],
        notes: vec![
            "each sample: a fresh isolated home, project and fake LLM; `orchestra mcp` started and \
             its MCP handshake done (not timed), then task_start + task_await on `coder` (the hub \
             spawns the shared worker inside the task); baseline = `opencode serve` spawned cold \
             in the same kind of world until healthy, then one prompt (session + prompt_async + \
             idle + messages); the original took 5.5–6.0 s"
                .into(),
        ],
    })
}

async fn through_hub(i: usize) -> anyhow::Result<f64> {
    let world = World::new().await?;
    let hub = world.hub(&json!({}), &[]).await?;
    let began = Instant::now();
    let id = hub.start(&format!("bench cold {i}")).await?;
    let record = hub.finish(&id).await?;
    let took = began.elapsed().as_secs_f64();
    succeeded(&record)?;
    hub.close().await;
    Ok(took)
}

/// (spawn → first prompt answered, spawn → healthy), in seconds.
async fn direct_cold(i: usize) -> anyhow::Result<(f64, f64)> {
    let world = World::new().await?;
    let began = Instant::now();
    let server = world.serve("bench-cold").await?;
    let ready = began.elapsed().as_secs_f64();
    let direct = Direct::connect(&server, &world.project.dir).await?;
    direct.prompt(&format!("bench cold direct {i}")).await?;
    let took = began.elapsed().as_secs_f64();
    drop(direct);
    let _ = server.stop(Duration::from_secs(5)).await;
    Ok((took, ready))
}
