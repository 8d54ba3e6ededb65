//! `orchestra models`: the models OpenCode offers, as the workers see them. The catalog lives in
//! OpenCode, so this starts a hub, warms up one worker server, reads it, and shuts down.

use std::path::Path;

use anyhow::Context;
use orchestra_core::config::LoadedConfig;
use orchestra_protocol::{ListFormat, ListView, ModelScope, TaskListParams};

use crate::{start_hub, write_stdout};

#[derive(clap::Args)]
pub struct ModelsArgs {
    /// Every provider OpenCode knows, not only the usable (configured, connected) ones.
    #[arg(long)]
    all: bool,
    /// Only this provider (repeatable).
    #[arg(long = "provider")]
    providers: Vec<String>,
    /// Only models whose `provider/model` or name contains this (case-insensitive).
    #[arg(long)]
    query: Option<String>,
    /// At most this many rows (default 100).
    #[arg(long)]
    limit: Option<u32>,
    /// Start the worker with the built-in fake model added (and tasks pinned to it).
    #[arg(long)]
    fake: bool,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(
    args: ModelsArgs,
    loaded: LoadedConfig,
    project_dir: &Path,
) -> anyhow::Result<std::process::ExitCode> {
    let warm = ["coder"]
        .into_iter()
        .map(str::to_owned)
        .find(|id| loaded.config.profiles.contains_key(id))
        .or_else(|| loaded.config.profiles.keys().next().cloned())
        .context("no worker profile is configured, so no OpenCode server can be started")?;
    let running = start_hub(loaded, project_dir, args.fake, |line| {
        eprintln!("orchestra: {line}");
    })
    .await?;
    let hub = &running.hub;
    let engine = hub.engine().clone();
    let listed = async {
        engine
            .pool()
            .warm_up(&warm)
            .await
            .with_context(|| format!("starting worker `{warm}` to read OpenCode's models"))?;
        let scope = if args.all {
            ModelScope::All
        } else {
            ModelScope::Configured
        };
        let format = if args.json {
            ListFormat::Json
        } else {
            ListFormat::Markdown
        };
        let params = TaskListParams {
            view: ListView::Models,
            scope: Some(scope),
            providers: args.providers,
            query: args.query,
            limit: args.limit,
            format: Some(format),
            ..TaskListParams::default()
        };
        let listing = engine.list(&params).await?;
        anyhow::Ok(listing.text)
    }
    .await;
    hub.shutdown().await;
    write_stdout(&format!("{}\n", listed?))?;
    Ok(std::process::ExitCode::SUCCESS)
}
