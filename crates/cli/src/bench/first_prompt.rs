//! The main OpenCode's first prompt with Orchestra installed (`orchestra install`) vs without.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use orchestra_core::opencode::{CreateSessionRequest, PromptRequest};

use super::harness::World;
use super::report::{Row, difference};
use super::{Outcome, Stats};

const TARGET_S: f64 = 0.5;

pub async fn run(samples: usize) -> anyhow::Result<Outcome> {
    let mut with = Vec::with_capacity(samples);
    let mut without = Vec::with_capacity(samples);
    let mut start_with = Vec::with_capacity(samples);
    let mut start_without = Vec::with_capacity(samples);
    for i in 0..samples {
        for installed in order(i) {
            let (start, prompt) = first_prompt(installed, i).await?;
            if installed {
                start_with.push(start);
                with.push(prompt);
            } else {
                start_without.push(start);
                without.push(prompt);
            }
        }
    }
    let ours = Stats::of(&with).median;
    let base = Stats::of(&without).median;
    let added = ours - base;
    let start_added = Stats::of(&start_with).median - Stats::of(&start_without).median;
    Ok(Outcome {
        rows: vec![
            Row::versus(
                "main OpenCode first prompt, Orchestra installed (median)",
                "s",
                &with,
                &without,
            )
            .judged(
                format!("≤ +{TARGET_S} s over without"),
                added,
                TARGET_S,
                difference(added, "s"),
            ),
            Row::versus(
                "main OpenCode spawn → healthy, Orchestra installed (median)",
                "s",
                &start_with,
                &start_without,
            )
            .with_comparison(difference(start_added, "s")),
        ],
        notes: vec![
            "each sample: two fresh isolated homes and projects, one after `orchestra install \
             --project` (this binary: MCP server, orchestrator agent, commands); `opencode serve` \
             started in each, then the first create_session + blocking prompt timed; order \
             alternates; with Orchestra the model's request must list the orchestra_task_* tools \
             or the sample fails; the original added 5–7 s"
                .into(),
        ],
    })
}

fn order(i: usize) -> [bool; 2] {
    if i.is_multiple_of(2) {
        [true, false]
    } else {
        [false, true]
    }
}

/// (spawn → healthy, first prompt), in seconds.
async fn first_prompt(installed: bool, i: usize) -> anyhow::Result<(f64, f64)> {
    let world = World::new().await?;
    if installed {
        install(&world).await?;
    }
    let began = Instant::now();
    let server = world.serve("bench-main").await?;
    let ready = began.elapsed().as_secs_f64();
    let client = server.client(Some(world.project.dir.clone()))?;
    let text = format!("bench first prompt {i}");
    let began = Instant::now();
    let session = client
        .create_session(&CreateSessionRequest {
            title: Some("bench main".into()),
            ..CreateSessionRequest::default()
        })
        .await?;
    let reply = client
        .prompt(&session.id, &PromptRequest::text(&text))
        .await?;
    let took = began.elapsed().as_secs_f64();
    if !reply.text().contains(&text) {
        bail!("the first prompt got `{}` back", reply.text());
    }
    let request = world
        .request(&text)
        .context("the fake LLM never saw the first prompt")?;
    let has_tools = request
        .tool_names
        .iter()
        .any(|t| t == "orchestra_task_start");
    if has_tools != installed {
        bail!(
            "with Orchestra installed = {installed}, the model saw tools {:?}",
            request.tool_names
        );
    }
    let _ = server.stop(Duration::from_secs(5)).await;
    Ok((ready, took))
}

async fn install(world: &World) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("cannot find this orchestra binary")?;
    let output = tokio::process::Command::new(exe)
        .arg("install")
        .arg("--project")
        .arg(&world.project.dir)
        .envs(world.env())
        .output()
        .await
        .context("running orchestra install")?;
    if !output.status.success() {
        bail!(
            "orchestra install failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
