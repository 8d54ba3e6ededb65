//! The main OpenCode's first prompt with Orchestra installed (`orchestra install`) vs without,
//! and, in an OpenCode that loads plugins (`OPENCODE_PURE` unset, as users run it), with
//! Orchestra's plugin vs `orchestra install --no-plugin`.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use orchestra_core::opencode::{CreateSessionRequest, PromptRequest};

use super::harness::{World, orchestra_bin};
use super::report::{Row, difference};
use super::{Outcome, Stats};

const TARGET_S: f64 = 0.5;

/// What one sample's OpenCode has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// No Orchestra; plugins not loaded (`OPENCODE_PURE`).
    Bare,
    /// `orchestra install --no-plugin`; plugins not loaded.
    Installed,
    /// `orchestra install --no-plugin`; plugins loaded (there are none).
    LoadingNoPlugin,
    /// `orchestra install`; plugins loaded: Orchestra's plugin runs.
    LoadingPlugin,
}

impl Setup {
    fn installed(self) -> bool {
        self != Setup::Bare
    }

    fn loads_plugins(self) -> bool {
        matches!(self, Setup::LoadingNoPlugin | Setup::LoadingPlugin)
    }
}

pub async fn run(samples: usize) -> anyhow::Result<Outcome> {
    let mut with = Vec::with_capacity(samples);
    let mut without = Vec::with_capacity(samples);
    let mut start_with = Vec::with_capacity(samples);
    let mut start_without = Vec::with_capacity(samples);
    let mut plugin = Vec::with_capacity(samples);
    let mut no_plugin = Vec::with_capacity(samples);
    for i in 0..samples {
        for setup in order(i) {
            let (start, prompt) = first_prompt(setup, i).await?;
            match setup {
                Setup::Installed => {
                    start_with.push(start);
                    with.push(prompt);
                }
                Setup::Bare => {
                    start_without.push(start);
                    without.push(prompt);
                }
                Setup::LoadingPlugin => plugin.push(prompt),
                Setup::LoadingNoPlugin => no_plugin.push(prompt),
            }
        }
    }
    let plugin_added = Stats::of(&plugin).median - Stats::of(&no_plugin).median;
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
            Row::versus(
                "main OpenCode first prompt, Orchestra's plugin vs --no-plugin (median)",
                "s",
                &plugin,
                &no_plugin,
            )
            .judged(
                format!("≤ +{TARGET_S} s over --no-plugin"),
                plugin_added,
                TARGET_S,
                difference(plugin_added, "s"),
            ),
        ],
        notes: vec![
            "each sample: two fresh isolated homes and projects, one after `orchestra install \
             --project` (this binary: MCP server, orchestrator agent, commands); `opencode serve` \
             started in each, then the first create_session + blocking prompt timed; order \
             alternates; with Orchestra the model's request must list the orchestra_task_* tools \
             or the sample fails; the original added 5–7 s"
                .into(),
            "plugin row: both sides after `orchestra install` in an OpenCode that loads plugins \
             (OPENCODE_PURE unset, npm offline), one without the plugin (`--no-plugin`); with it, \
             the hub must count the plugin as connected after the prompt or the sample fails"
                .into(),
        ],
    })
}

fn order(i: usize) -> [Setup; 4] {
    use Setup::{Bare, Installed, LoadingNoPlugin, LoadingPlugin};
    if i.is_multiple_of(2) {
        [Installed, Bare, LoadingPlugin, LoadingNoPlugin]
    } else {
        [Bare, Installed, LoadingNoPlugin, LoadingPlugin]
    }
}

/// (spawn → healthy, first prompt), in seconds.
async fn first_prompt(setup: Setup, i: usize) -> anyhow::Result<(f64, f64)> {
    let world = World::new().await?;
    if setup.installed() {
        install(&world, setup == Setup::LoadingPlugin).await?;
    }
    let env = if setup.loads_plugins() {
        world.env_loading_plugins()
    } else {
        world.env()
    };
    let began = Instant::now();
    let server = world.serve_with("bench-main", env).await?;
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
    if has_tools != setup.installed() {
        bail!(
            "with {setup:?}, the model saw tools {:?}",
            request.tool_names
        );
    }
    if setup == Setup::LoadingPlugin {
        plugin_connected(&world).await?;
    }
    let _ = server.stop(Duration::from_secs(5)).await;
    if setup.installed() {
        stop_hub(&world).await?;
    }
    Ok((ready, took))
}

/// The main OpenCode's `orchestra mcp` started the project's hub in the background, where it
/// outlives its client on purpose; the bench stops it, so no sample leaves a hub behind.
async fn stop_hub(world: &World) -> anyhow::Result<()> {
    orchestra(world, &["stop"]).await
}

/// The hub counts Orchestra's plugin as connected (so the sample measured a loaded plugin).
pub(super) async fn plugin_connected(world: &World) -> anyhow::Result<()> {
    let api = orchestra_client::HubClient::new(&world.hub_info().await?)?;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if api.health().await.is_ok_and(|h| h.plugins > 0) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("OpenCode did not load Orchestra's plugin: the hub counts no plugin after 15 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn install(world: &World, plugin: bool) -> anyhow::Result<()> {
    let args: &[&str] = if plugin {
        &["install"]
    } else {
        &["install", "--no-plugin"]
    };
    orchestra(world, args).await
}

/// Runs the orchestra binary under measurement with `args` on the world's project, in the world's environment.
pub(super) async fn orchestra(world: &World, args: &[&str]) -> anyhow::Result<()> {
    let output = tokio::process::Command::new(orchestra_bin()?)
        .args(args)
        .arg("--project")
        .arg(&world.project.dir)
        .envs(world.env())
        .output()
        .await
        .with_context(|| format!("running orchestra {}", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "orchestra {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
