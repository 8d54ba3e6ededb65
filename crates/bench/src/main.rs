//! `orchestra-bench`: the issue 3 §8 measurements of the `orchestra` binary, run side by side
//! against the fake LLM on 127.0.0.1, printed as one table (or JSON). Each group lives in its own
//! module; `harness` holds the shared pieces (an `orchestra mcp` child driven by a real MCP
//! client, a warm OpenCode driven directly, isolated homes).
//!
//! The bench is its own binary so that `orchestra` links no bench or test code; it runs the
//! `orchestra` it measures as a process, as a user would ([`harness::orchestra_bin`]).

mod budget;
mod cancel;
mod cold;
mod completion;
mod concurrency;
mod direct;
mod dispatch;
mod fail_open;
mod first_prompt;
mod flame;
mod harness;
mod hub;
mod memory_corpus;
mod memory_probe;
mod memory_scale;
mod memory_search;
mod panel;
mod process_stats;
mod report;
mod resilience;
mod rss;
mod soak;
mod warm;
mod worktrees;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::bail;
use clap::Parser;

pub use report::{Row, Stats};

/// The measurement groups, in the order they run.
const GROUPS: [&str; 17] = [
    "dispatch",
    "hub",
    "panel",
    "concurrency",
    "completion",
    "cancel",
    "rss",
    "memory",
    "cold",
    "first-prompt",
    "fail-open",
    "budget",
    "fallback",
    "notify",
    "soak",
    "memory-scale",
    "worktrees",
];

#[derive(Parser)]
#[command(
    name = "orchestra-bench",
    version,
    about = "Measure the orchestra hub against plain OpenCode on the fake model (127.0.0.1 only) and print a table",
    args_conflicts_with_subcommands = true
)]
struct BenchArgs {
    /// Samples per measurement for the quick groups (dispatch, completion, cancel); the slow
    /// groups (concurrency rounds, cold starts, first prompts) take a quarter of it, at least 3.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Run only these groups: dispatch, hub, panel, concurrency, completion, cancel, rss, memory,
    /// cold, first-prompt, budget, fallback, notify, soak, memory-scale.
    #[arg(long, num_args = 1..)]
    only: Vec<String>,
    /// Records in the memory group's large stores (its 100k rows use min(this, 100000)).
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Tasks in the soak group's run (64 in flight).
    #[arg(long, default_value_t = 3_000)]
    soak_tasks: usize,
    /// Where the soak's coder tasks work: `checkout` (the same work as the direct baseline) or
    /// `worktree` (each task in its own git worktree, as coders run by default in a repository).
    #[arg(long, default_value = "checkout", value_parser = ["checkout", "worktree"])]
    soak_workspace: String,
    /// Record the hub with `perf` during the soak and write a flame graph SVG into this folder.
    #[arg(long, value_name = "DIR")]
    flame: Option<PathBuf>,
    /// The `orchestra` binary to measure (default: `orchestra` next to this binary, i.e. the
    /// one the same `cargo build` made).
    #[arg(long, value_name = "PATH")]
    orchestra: Option<PathBuf>,
    #[command(subcommand)]
    internal: Option<Internal>,
}

/// Helpers: the memory probe is run by the bench itself; `flame` redraws a recording.
#[derive(clap::Subcommand)]
enum Internal {
    /// The memory group's RSS probe: a process of its own that opens the stores and searches.
    #[command(hide = true)]
    MemoryProbe(memory_probe::ProbeArgs),
    /// Draws a flame graph SVG from a `perf record -g` data file (`perf script` + inferno).
    Flame {
        /// The perf.data file.
        data: PathBuf,
        /// The SVG to write.
        svg: PathBuf,
    },
}

fn main() -> std::process::ExitCode {
    let args = BenchArgs::parse();
    init_logging();
    let outcome = match args.internal {
        Some(Internal::MemoryProbe(probe)) => memory_probe::run(&probe),
        Some(Internal::Flame { data, svg }) => {
            flame::draw(&data, &svg, "orchestra hub").map(|()| std::process::ExitCode::SUCCESS)
        }
        None => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|runtime| runtime.block_on(run(args))),
    };
    match outcome {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Warnings from the library crates the bench drives in-process (OpenCode servers, the direct
/// event stream) go to stderr, as `orchestra` logs them; `ORCHESTRA_LOG` overrides the level.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORCHESTRA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
}

async fn run(args: BenchArgs) -> anyhow::Result<std::process::ExitCode> {
    for name in &args.only {
        if !GROUPS.contains(&name.as_str()) {
            bail!("unknown benchmark `{name}`; known: {}", GROUPS.join(", "));
        }
    }
    if args.soak_tasks < 500 {
        bail!("--soak-tasks must be at least 500 (the soak reports every 500 tasks)");
    }
    if args.samples < 3 {
        bail!("--samples must be at least 3 (a median of fewer says little)");
    }
    harness::set_orchestra_bin(args.orchestra.clone())?;
    let selected: Vec<&str> = GROUPS
        .into_iter()
        .filter(|g| args.only.is_empty() || args.only.iter().any(|o| o == g))
        .collect();
    let quick = args.samples;
    let slow = (args.samples / 4).max(3);
    let began = Instant::now();
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    for group in selected {
        harness::progress(&format!("bench: {group} …"));
        let started = Instant::now();
        // On Ctrl-C the group's future is dropped, and with it every hub it started (each
        // stops on drop) and the OpenCode servers it owns; without this a bench stopped by hand
        // left its hubs (and `perf`, which ends with the hub) running.
        let mut outcome = tokio::select! {
            outcome = run_group(group, &args, quick, slow) => outcome?,
            _ = tokio::signal::ctrl_c() => bail!("interrupted during `{group}`; its hubs and servers were stopped"),
        };
        harness::progress(&format!(
            "bench: {group} done in {:.1} s",
            started.elapsed().as_secs_f64()
        ));
        rows.append(&mut outcome.rows);
        notes.extend(outcome.notes.into_iter().map(|n| format!("{group}: {n}")));
    }
    let report = report::Report {
        machine: report::machine(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        total_seconds: began.elapsed().as_secs_f64(),
        rows,
        notes,
    };
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&report)?)
    } else {
        report.render()
    };
    write_stdout(&text)?;
    let all_pass = report.rows.iter().all(|r| r.pass != Some(false));
    Ok(if all_pass {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::from(2)
    })
}

/// What one group hands back.
#[derive(Default)]
pub struct Outcome {
    pub rows: Vec<Row>,
    /// Method notes printed under the table.
    pub notes: Vec<String>,
}

/// The one place the bench writes to stdout (the table or the JSON; progress goes to stderr).
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// One group's rows and notes.
async fn run_group(
    group: &str,
    args: &BenchArgs,
    quick: usize,
    slow: usize,
) -> anyhow::Result<Outcome> {
    Ok(match group {
        "dispatch" => dispatch::run(quick).await?,
        "hub" => hub::run(quick, slow).await?,
        "panel" => panel::run(slow).await?,
        "concurrency" => concurrency::run(slow).await?,
        "completion" => completion::run(quick).await?,
        "cancel" => cancel::run(quick.min(10)).await?,
        "rss" => rss::run().await?,
        "memory" => memory_search::run(args.records).await?,
        "cold" => cold::run(slow).await?,
        "first-prompt" => first_prompt::run(slow).await?,
        "fail-open" => fail_open::run(slow).await?,
        "budget" => budget::run(slow).await?,
        "fallback" => resilience::fallback(slow).await?,
        "notify" => resilience::notify(quick).await?,
        "soak" => {
            soak::run(&soak::SoakOptions {
                tasks: args.soak_tasks,
                workspace: args.soak_workspace.clone(),
                flame: args.flame.clone(),
            })
            .await?
        }
        "memory-scale" => memory_scale::run().await?,
        "worktrees" => worktrees::run(quick).await?,
        other => bail!("benchmark `{other}` has no runner"),
    })
}
