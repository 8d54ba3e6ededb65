//! The main OpenCode's prompts with Orchestra's plugin while the hub cannot answer: frozen
//! (SIGSTOP: it accepts connections and never answers) and then stopped, against healthy
//! prompts in the same session. The plugin gives up on a hook after its own limit (150 ms), so
//! this is what a person waits for then. The plugin test (`crates/cli/tests/suite/plugin.rs`)
//! asserts only the behaviour — such prompts complete without the hub — and no speed.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use orchestra_core::opencode::{CreateSessionRequest, OpenCodeClient, PromptRequest};

use super::first_prompt::{orchestra, plugin_connected};
use super::harness::World;
use super::report::{Row, difference};
use super::{Outcome, Stats};

/// What the plugin may add to a prompt when the hub cannot answer.
const TARGET_S: f64 = 0.3;
/// In the memory block of every system prompt the hub's hooks build: seen, the plugin reaches
/// the hub again.
const PINNED: &str = "bench fail-open marker (pinned-bench-4k)";

pub async fn run(samples: usize) -> anyhow::Result<Outcome> {
    let world = World::new().await?;
    orchestra(&world, &["install"]).await?;
    let server = world
        .serve_with("bench-fail-open", world.env_loading_plugins())
        .await?;
    let measured = measure(
        &world,
        &server.client(Some(world.project.dir.clone()))?,
        samples,
    )
    .await;
    let _ = server.stop(Duration::from_secs(5)).await;
    // Stopped on the way unless a sample failed first; `stop` with no hub is fine.
    orchestra(&world, &["stop"]).await?;
    let (healthy, frozen, stopped) = measured?;
    let frozen_added = Stats::of(&frozen).median - Stats::of(&healthy).median;
    let stopped_added = Stats::of(&stopped).median - Stats::of(&healthy).median;
    Ok(Outcome {
        rows: vec![
            Row::versus(
                "main OpenCode prompt, hub frozen (SIGSTOP) vs healthy (median)",
                "s",
                &frozen,
                &healthy,
            )
            .judged(
                format!("≤ +{TARGET_S} s over healthy"),
                frozen_added,
                TARGET_S,
                difference(frozen_added, "s"),
            ),
            Row::versus(
                "main OpenCode prompt, hub stopped vs healthy (median)",
                "s",
                &stopped,
                &healthy,
            )
            .judged(
                format!("≤ +{TARGET_S} s over healthy"),
                stopped_added,
                TARGET_S,
                difference(stopped_added, "s"),
            ),
        ],
        notes: vec![
            "one OpenCode that loads plugins, after `orchestra install`, one session; healthy and \
             frozen prompts alternate (each frozen sample thaws the hub and waits until the \
             plugin's hooks reach it again, seen as a pinned memory record in the model's system \
             prompt), then the hub is stopped for the stopped samples; a frozen or stopped \
             prompt must not carry that record, or the sample fails"
                .into(),
        ],
    })
}

/// (healthy, frozen, stopped) prompt times in seconds.
async fn measure(
    world: &World,
    client: &OpenCodeClient,
    samples: usize,
) -> anyhow::Result<(Vec<f64>, Vec<f64>, Vec<f64>)> {
    let session = client
        .create_session(&CreateSessionRequest {
            title: Some("bench fail-open".into()),
            ..CreateSessionRequest::default()
        })
        .await?;
    // OpenCode loads the plugin, which starts the hub, with the first request in the project.
    client
        .prompt(&session.id, &PromptRequest::text("first"))
        .await?;
    plugin_connected(world).await?;
    orchestra(
        world,
        &[
            "memory",
            "put",
            "--pin",
            "--kind",
            "convention",
            "--key",
            "bench",
            "--title",
            "Bench",
            PINNED,
        ],
    )
    .await?;
    let hub = world.hub_info().await?.pid.to_string();
    reaches_hub(world, client, &session.id, "warm-up").await?;
    let (mut healthy, mut frozen, mut stopped) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..samples {
        healthy.push(prompt(world, client, &session.id, &format!("healthy {i}"), true).await?);
        signal("-STOP", &hub).await?;
        let took = prompt(world, client, &session.id, &format!("frozen {i}"), false).await;
        signal("-CONT", &hub).await?;
        frozen.push(took?);
        reaches_hub(world, client, &session.id, &format!("thawed {i}")).await?;
    }
    orchestra(world, &["stop"]).await?;
    for i in 0..samples {
        stopped.push(prompt(world, client, &session.id, &format!("stopped {i}"), false).await?);
    }
    Ok((healthy, frozen, stopped))
}

/// One blocking prompt, in seconds; `with_hub` says whether the hub's memory block must be in
/// the model's system prompt (healthy) or must not be (the hub could not answer).
async fn prompt(
    world: &World,
    client: &OpenCodeClient,
    session: &str,
    text: &str,
    with_hub: bool,
) -> anyhow::Result<f64> {
    let began = Instant::now();
    let reply = client.prompt(session, &PromptRequest::text(text)).await?;
    let took = began.elapsed().as_secs_f64();
    if !reply.text().contains(text) {
        bail!("prompt `{text}` got `{}` back", reply.text());
    }
    let request = world
        .request(text)
        .with_context(|| format!("the fake LLM never saw prompt `{text}`"))?;
    if request.system_prompt.contains(PINNED) != with_hub {
        bail!(
            "prompt `{text}`: the hub's memory block was {} the system prompt",
            if with_hub { "missing from" } else { "in" }
        );
    }
    Ok(took)
}

/// Prompts (untimed) until the hub's memory block is back: the plugin found the hub again.
async fn reaches_hub(
    world: &World,
    client: &OpenCodeClient,
    session: &str,
    label: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let text = format!("{label} {attempt}");
        if prompt(world, client, session, &text, true).await.is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the plugin's hooks did not reach the hub again within 60 s ({label})");
        }
    }
}

/// `kill -STOP|-CONT pid`.
async fn signal(which: &str, pid: &str) -> anyhow::Result<()> {
    let status = tokio::process::Command::new("kill")
        .args([which, pid])
        .status()
        .await
        .with_context(|| format!("running kill {which} {pid}"))?;
    if !status.success() {
        bail!("kill {which} {pid} failed");
    }
    Ok(())
}
