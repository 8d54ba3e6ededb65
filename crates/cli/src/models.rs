//! `orchestra models`: the models OpenCode offers, as the workers see them. The catalog lives in
//! OpenCode, so the hub reads it from its worker server (starting one if none runs).

use anyhow::Context;
use orchestra_protocol::{ListFormat, ListScope, ListView, TaskListParams};

use crate::hub_link::HubTarget;
use crate::write_stdout;

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
    /// If no hub runs, start one on the built-in fake model.
    #[arg(long)]
    pub fake: bool,
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
}

pub async fn run(args: ModelsArgs, target: &HubTarget) -> anyhow::Result<std::process::ExitCode> {
    let hub = target.connect_any().await?;
    let scope = if args.all {
        ListScope::All
    } else {
        ListScope::Configured
    };
    let format = if args.json {
        ListFormat::Json
    } else {
        ListFormat::Markdown
    };
    let listing = hub
        .client
        .list(&TaskListParams {
            view: ListView::Models,
            scope: Some(scope),
            providers: args.providers,
            query: args.query,
            limit: args.limit,
            format: Some(format),
            ..TaskListParams::default()
        })
        .await
        .context("reading the models from the hub")?;
    write_stdout(&format!("{}\n", listing.text))?;
    Ok(std::process::ExitCode::SUCCESS)
}
