//! The memory group's RSS probe: the bench runs itself (`orchestra-bench memory-probe`, hidden)
//! on a built store, so the figure is the memory of a process holding that store and nothing
//! else the bench has allocated.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use orchestra_core::config::{self, LoadOptions};
use orchestra_memory::MemoryService;
use orchestra_protocol::memory::MemorySearchParams;
use orchestra_store::Store;
use orchestra_testkit::processes::status_number;

#[derive(clap::Args)]
pub struct ProbeArgs {
    #[arg(long)]
    store: PathBuf,
    #[arg(long)]
    global_store: PathBuf,
    #[arg(long)]
    project_id: String,
    /// The searches to run, one a line.
    #[arg(long)]
    queries: PathBuf,
}

/// The bench's side: runs the probe on `dir/<name>`'s stores with `queries`; returns the
/// probe's (RSS, peak RSS) in MB after the searches.
pub fn measure(dir: &Path, name: &str, queries: &[String]) -> anyhow::Result<(f64, f64)> {
    let file = dir.join("probe-queries.txt");
    std::fs::write(&file, queries.join("\n"))?;
    let exe = std::env::current_exe().context("finding this orchestra-bench binary")?;
    let output = std::process::Command::new(exe)
        .current_dir(dir)
        .env("XDG_STATE_HOME", dir.join("probe-state"))
        .env("XDG_CONFIG_HOME", dir.join("probe-config"))
        .args(["memory-probe", "--store"])
        .arg(dir.join(name).join("orchestra.db"))
        .arg("--global-store")
        .arg(dir.join(name).join("global.db"))
        .args(["--project-id", "p0", "--queries"])
        .arg(&file)
        .output()
        .context("running the memory probe")?;
    anyhow::ensure!(
        output.status.success(),
        "memory probe failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let mb = |field: &str| report[field].as_f64().unwrap_or(f64::NAN) / 1024.0;
    Ok((mb("rssKb"), mb("hwmKb")))
}

/// The probe's side: opens the stores with the memory settings of the project in the current
/// directory (the bench's isolated one), runs the searches, and prints this process's RSS.
pub fn run(args: &ProbeArgs) -> anyhow::Result<std::process::ExitCode> {
    let project_dir = std::env::current_dir().context("reading the current directory")?;
    let loaded = config::load(&LoadOptions {
        project_dir,
        global_dir: None,
        extra_file: None,
    })?;
    let memory = MemoryService::open(
        Arc::new(Store::open(&args.store)?),
        &args.project_id,
        Some(Arc::new(Store::open(&args.global_store)?)),
        orchestra_core::memory::settings_of(&loaded.config),
    )?;
    let rss_kb = |field: &str| status_number(std::process::id(), field).unwrap_or(0);
    let opened_kb = rss_kb("VmRSS:");
    let text = std::fs::read_to_string(&args.queries)
        .with_context(|| format!("cannot read {}", args.queries.display()))?;
    let mut searches = 0;
    for query in text.lines() {
        memory.search(&MemorySearchParams {
            query: query.to_owned(),
            ..Default::default()
        })?;
        searches += 1;
    }
    let report = serde_json::json!({
        "searches": searches,
        "openedRssKb": opened_kb,
        "rssKb": rss_kb("VmRSS:"),
        "hwmKb": rss_kb("VmHWM:"),
    });
    crate::write_stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    Ok(std::process::ExitCode::SUCCESS)
}
