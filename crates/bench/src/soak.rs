//! The long soak (issue 20 §1): thousands of tasks, 64 in flight, through one MCP client of a hub
//! on default config (memory on, automatic records on), attached to a warm OpenCode; the hub's
//! CPU per task and RSS every 500 tasks; then the same workload sent straight to that OpenCode
//! with the same concurrency, as the baseline. With `--flame DIR` the hub is recorded with
//! `perf` during its part and a flame graph is written (see `flame`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::task::JoinSet;

use super::flame::Recording;
use super::harness::{self, succeeded};
use super::process_stats::{cpu_s, group_cpu_s, group_rss_mb, rss_mb, status_kb};
use super::report::{Row, number};
use super::warm::Warm;
use super::{Outcome, Stats};

/// Tasks in flight at once, as a heavy MCP client keeps them.
pub const IN_FLIGHT: usize = 64;
/// The fake model's reply delay per prompt.
const DELAY_MS: u64 = 200;
/// Tasks per reported window.
const WINDOW: usize = 500;
const CPU_TARGET_MS: f64 = 1.5;
const DRIFT_TARGET: f64 = 0.2;
const THROUGHPUT_TARGET: f64 = 0.95;
const RSS_TARGET_MB: f64 = 40.0;
/// RSS counts as flat when it grows by at most this share over the last 2,000 tasks.
const RSS_FLAT_SHARE: f64 = 0.10;
const FLAT_SPAN: usize = 2_000;

/// What the hub had used when `done` tasks had finished.
#[derive(Clone, Copy)]
struct Mark {
    done: usize,
    at: Instant,
    cpu_s: f64,
    /// The relay's share of `cpu_s`.
    relay_cpu_s: f64,
    /// CPU the warm OpenCode (its process group) had used.
    opencode_cpu_s: f64,
    rss_mb: f64,
    /// The hub's RSS that is its own memory (heap, stacks), not mapped files (the binary, the
    /// search index).
    anon_mb: f64,
    /// The warm OpenCode's RSS: what the hub makes it keep (worktree instances) shows here.
    opencode_mb: f64,
}

pub struct SoakOptions {
    pub tasks: usize,
    /// `checkout` or `worktree`: where the coder tasks work.
    pub workspace: String,
    /// Where `perf` data and the flame graph go (`None`: no profile).
    pub flame: Option<PathBuf>,
}

/// The text of task `i`: a sentence with words the memory index knows from earlier records, so
/// the memory block's search does real work, and a unique tail.
fn task_text(i: usize) -> String {
    const AREAS: [&str; 7] = [
        "parser",
        "scheduler",
        "billing",
        "panel",
        "storage",
        "router",
        "auth",
    ];
    format!(
        "DELAYMS:{DELAY_MS} soak {i}: review the {} module, fix the failing test in {}_tests and \
         note what changed.",
        AREAS[i % AREAS.len()],
        AREAS[(i / 7) % AREAS.len()]
    )
}

pub async fn run(options: &SoakOptions) -> anyhow::Result<Outcome> {
    let tasks = options.tasks;
    let warm = Warm::start().await?;
    let hub_pid = warm.hub_pid;
    let relay_pid = warm.hub.pid;
    let opencode_group = warm.server.pid();
    let ours = move || -> anyhow::Result<Mark> {
        Ok(Mark {
            done: 0,
            at: Instant::now(),
            cpu_s: cpu_s(hub_pid)? + cpu_s(relay_pid)?,
            relay_cpu_s: cpu_s(relay_pid)?,
            opencode_cpu_s: group_cpu_s(opencode_group),
            rss_mb: rss_mb(hub_pid)?,
            anon_mb: status_kb(hub_pid, "RssAnon:")? / 1024.0,
            opencode_mb: group_rss_mb(opencode_group),
        })
    };
    let workspace = options.workspace.clone();
    let recording = match &options.flame {
        Some(dir) => Some(Recording::start(hub_pid, dir, "hub-soak")?),
        None => None,
    };
    let start = ours()?;
    let marks: Arc<Mutex<Vec<Mark>>> = Arc::new(Mutex::new(vec![start]));
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let mut runners = JoinSet::new();
    for _ in 0..IN_FLIGHT.min(tasks) {
        let peer = warm.hub.peer();
        let (next, done, marks) = (next.clone(), done.clone(), marks.clone());
        let workspace = workspace.clone();
        runners.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= tasks {
                    return anyhow::Ok(());
                }
                let arguments = serde_json::json!({"kind": "worker", "workerId": "coder",
                    "task": task_text(i), "workspace": workspace});
                let id = harness::start_with(&peer, arguments).await?;
                succeeded(&harness::finish(&peer, &id).await?)?;
                let finished = done.fetch_add(1, Ordering::SeqCst) + 1;
                if finished.is_multiple_of(WINDOW) || finished == tasks {
                    let mark = Mark {
                        done: finished,
                        ..ours()?
                    };
                    harness::progress(&format!(
                        "bench: soak {finished}/{tasks}: hub CPU {:.1} s, RSS {:.1} MB, OpenCode RSS {:.1} MB",
                        mark.cpu_s - start.cpu_s,
                        mark.rss_mb,
                        mark.opencode_mb
                    ));
                    marks
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .push(mark);
                }
            }
        });
    }
    while let Some(joined) = runners.join_next().await {
        joined.context("a soak runner panicked")??;
    }
    let hub_wall = start.at.elapsed();
    let flame_note = match recording {
        Some(recording) => Some(recording.finish().await?),
        None => None,
    };
    let mut marks = marks.lock().unwrap_or_else(PoisonError::into_inner).clone();
    marks.sort_by_key(|m| m.done);

    harness::progress("bench: soak: the same workload straight to OpenCode …");
    let direct_cpu_before = group_cpu_s(opencode_group);
    let direct_wall = direct(&warm, tasks, Sessions::Keep).await?;
    let direct_opencode_ms =
        (group_cpu_s(opencode_group) - direct_cpu_before) * 1000.0 / tasks.max(1) as f64;
    // The hub deletes each finished session (`runtime.keepSessions` 0), which costs OpenCode
    // CPU a plain prompt does not spend: the same prompts again, each session deleted after
    // its reply is read, show how much of the gap that is.
    harness::progress("bench: soak: straight to OpenCode again, deleting each session …");
    let deleting_wall = direct(&warm, tasks, Sessions::Delete).await?;
    warm.close().await;

    let mut outcome = table(&marks, tasks, hub_wall, direct_wall);
    outcome.rows.push(
        Row {
            baseline: Some(tasks as f64 / deleting_wall.as_secs_f64()),
            ..Row::info(
                "soak: throughput vs direct prompts that also delete their sessions",
                "tasks/s",
                tasks as f64 / hub_wall.as_secs_f64(),
            )
        }
        .with_comparison(number(
            deleting_wall.as_secs_f64() / hub_wall.as_secs_f64(),
            "×",
        )),
    );
    if let (Some(first), Some(last)) = (marks.first(), marks.last()) {
        let hub_opencode_ms = (last.opencode_cpu_s - first.opencode_cpu_s) * 1000.0
            / last.done.saturating_sub(first.done).max(1) as f64;
        outcome.rows.push(
            Row {
                baseline: Some(direct_opencode_ms),
                ..Row::info(
                    "soak: OpenCode CPU per task, hub tasks vs direct prompts",
                    "ms",
                    hub_opencode_ms,
                )
            }
            .with_comparison(number(hub_opencode_ms / direct_opencode_ms, "×")),
        );
    }
    outcome.notes.push(format!(
        "soak workspace: {workspace} (the direct baseline always prompts in the checkout; \
         `--soak-workspace worktree` adds a git worktree and an OpenCode instance per task)"
    ));
    if let Some(note) = flame_note {
        outcome.notes.push(note);
    }
    Ok(outcome)
}

/// What a direct prompt does with its session once the reply is read.
#[derive(Clone, Copy)]
enum Sessions {
    Keep,
    /// As the hub does by default.
    Delete,
}

/// The same prompts, `IN_FLIGHT` at a time, straight to the warm OpenCode; the wall time.
async fn direct(warm: &Warm, tasks: usize, sessions: Sessions) -> anyhow::Result<Duration> {
    let began = Instant::now();
    let next = AtomicUsize::new(0);
    let runner = || async {
        loop {
            let i = next.fetch_add(1, Ordering::SeqCst);
            if i >= tasks {
                return anyhow::Ok(());
            }
            let sample = warm.direct.prompt(&task_text(i)).await?;
            match sessions {
                Sessions::Keep => {}
                Sessions::Delete => warm.direct.client.delete_session(&sample.session).await?,
            }
        }
    };
    let runners = (0..IN_FLIGHT.min(tasks)).map(|_| runner());
    for result in futures_util::future::join_all(runners).await {
        result?;
    }
    Ok(began.elapsed())
}

fn table(marks: &[Mark], tasks: usize, hub_wall: Duration, direct_wall: Duration) -> Outcome {
    let mut rows = Vec::new();
    let per_task_ms = |a: &Mark, b: &Mark| {
        let n = b.done.saturating_sub(a.done).max(1) as f64;
        (b.cpu_s - a.cpu_s) * 1000.0 / n
    };
    let mut windows = Vec::new();
    for pair in marks.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let cpu = per_task_ms(a, b);
        windows.push(cpu);
        let rate = (b.done - a.done) as f64 / (b.at - a.at).as_secs_f64().max(1e-9);
        rows.push(
            Row::info(
                format!(
                    "soak: tasks {}–{}: hub+relay CPU per task",
                    a.done + 1,
                    b.done
                ),
                "ms",
                cpu,
            )
            .with_comparison(format!(
                "relay {} · RSS {} ({} anonymous) · {} · OpenCode RSS {}",
                number(
                    (b.relay_cpu_s - a.relay_cpu_s) * 1000.0
                        / b.done.saturating_sub(a.done).max(1) as f64,
                    "ms"
                ),
                number(b.rss_mb, "MB"),
                number(b.anon_mb, "MB"),
                number(rate, "tasks/s"),
                number(b.opencode_mb, "MB")
            )),
        );
    }
    let (first, last) = (marks[0], marks[marks.len() - 1]);
    let whole = per_task_ms(&first, &last);
    rows.push(
        Row::info(
            format!("soak: hub+relay CPU per task over all {tasks}"),
            "ms",
            whole,
        )
        .judged(
            format!("≤ {CPU_TARGET_MS} ms"),
            whole,
            CPU_TARGET_MS,
            "—".into(),
        ),
    );
    if let (Some(&head), Some(&tail)) = (windows.first(), windows.last()) {
        let drift = tail / head;
        rows.push(
            Row {
                baseline: Some(head),
                ..Row::info("soak: CPU per task, last window vs first", "ms", tail)
            }
            .judged(
                format!("within ±{:.0} %", DRIFT_TARGET * 100.0),
                (drift - 1.0).abs(),
                DRIFT_TARGET,
                number(drift, "×"),
            ),
        );
    }
    let ours_rate = tasks as f64 / hub_wall.as_secs_f64();
    let direct_rate = tasks as f64 / direct_wall.as_secs_f64();
    let ratio = ours_rate / direct_rate;
    rows.push(
        Row {
            baseline: Some(direct_rate),
            ..Row::info(
                format!("soak: throughput, {IN_FLIGHT} in flight × {DELAY_MS} ms model"),
                "tasks/s",
                ours_rate,
            )
        }
        .judged_at_least(
            format!("≥ {THROUGHPUT_TARGET}× direct OpenCode"),
            ratio,
            THROUGHPUT_TARGET,
            number(ratio, "×"),
        ),
    );
    rows.push(
        Row::info("soak: hub RSS at the end", "MB", last.rss_mb).judged(
            format!("≤ {RSS_TARGET_MB:.0} MB"),
            last.rss_mb,
            RSS_TARGET_MB,
            "—".into(),
        ),
    );
    let from = marks
        .iter()
        .rev()
        .find(|m| m.done + FLAT_SPAN <= last.done)
        .copied()
        .unwrap_or(first);
    let growth = last.rss_mb / from.rss_mb.max(1e-9) - 1.0;
    rows.push(
        Row {
            baseline: Some(from.rss_mb),
            ..Row::info(
                format!(
                    "soak: hub RSS growth over the last {} tasks",
                    last.done - from.done
                ),
                "MB",
                last.rss_mb,
            )
        }
        .judged(
            format!("≤ +{:.0} %", RSS_FLAT_SHARE * 100.0),
            growth,
            RSS_FLAT_SHARE,
            format!("{:+.1} %", growth * 100.0),
        ),
    );
    let cpu = Stats::of(&windows);
    Outcome {
        rows,
        notes: vec![format!(
            "{tasks} worker tasks (`DELAYMS:{DELAY_MS}` each), {IN_FLIGHT} in flight, through one \
             `orchestra mcp` relay (task_start + task_await) to a hub on default config (memory \
             on, automatic records on) attached to one warm `opencode serve`; hub+relay CPU is \
             utime+stime of the hub and relay processes from /proc/<pid>/stat (OpenCode not \
             counted), sampled every {WINDOW} finished tasks (per-window median {}); RSS is the \
             hub's VmRSS; baseline = the same {tasks} prompts straight to the same server, \
             {IN_FLIGHT} at a time ({:.1} s vs {:.1} s through the hub)",
            number(cpu.median, "ms"),
            direct_wall.as_secs_f64(),
            hub_wall.as_secs_f64()
        )],
    }
}
