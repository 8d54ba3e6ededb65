//! Hub RSS: the hub process (`orchestra serve`, started by an `orchestra mcp` relay) idle, and
//! with 1,000 job records made by real tasks; the relay's and the OpenCode worker's RSS as
//! context.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::Outcome;
use super::harness::{self, World, succeeded};
use super::process_stats::{group_rss_mb, rss_mb, status_kb};
use super::report::{Row, number};

const JOBS: usize = 1000;
/// Real tasks through MCP; the rest of the `JOBS` records are copies of the last one written
/// into the hub's store (on 2 cores OpenCode runs about 4 echo tasks/s, so 1,000 real tasks
/// take 4 minutes).
const REAL: usize = 100;
const PARALLEL: usize = 16;
const IDLE_TARGET_MB: f64 = 30.0;
const LOADED_TARGET_MB: f64 = 60.0;

pub async fn run() -> anyhow::Result<Outcome> {
    let world = World::new().await?;
    let store_path = world.home.root.join("bench-store.db");
    let config = json!({"tasks": {"storePath": store_path.display().to_string()}});
    let hub = world.hub(&config, &[]).await?;
    let hub_pid = world.hub_info().await?.pid;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle = rss_mb(hub_pid)?;
    let relay = rss_mb(hub.pid)?;

    let began = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let mut runners = JoinSet::new();
    for _ in 0..PARALLEL {
        let peer = hub.peer();
        let next = next.clone();
        runners.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= REAL {
                    return anyhow::Ok(());
                }
                let id = harness::start(&peer, &format!("bench memory job {i}")).await?;
                succeeded(&harness::finish(&peer, &id).await?)?;
            }
        });
    }
    while let Some(joined) = runners.join_next().await {
        joined.context("a bench runner panicked")??;
    }
    let took = began.elapsed();
    let copies = copy_records(&store_path, JOBS - REAL)?;
    let listing = hub
        .call(
            "task_list",
            json!({"view": "tasks", "format": "json", "limit": JOBS}),
        )
        .await?;
    let listed = count_listed(&listing);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let loaded = rss_mb(hub_pid)?;
    let peak = status_kb(hub_pid, "VmHWM:")? / 1024.0;
    let workers = hub
        .call("task_list", json!({"view": "workers", "format": "json"}))
        .await?;
    let worker_pid = workers
        .as_array()
        .and_then(|all| all.iter().find_map(|w| w["pid"].as_u64()))
        .and_then(|pid| u32::try_from(pid).ok());
    let worker = worker_pid.map(group_rss_mb);
    hub.close().await;

    let mut rows = vec![
        Row::info("rss: hub (orchestra serve) RSS, idle", "MB", idle).judged(
            format!("≤ {IDLE_TARGET_MB:.0} MB"),
            idle,
            IDLE_TARGET_MB,
            "—".into(),
        ),
        Row::info(
            format!("rss: hub (orchestra serve) RSS, {JOBS} job records"),
            "MB",
            loaded,
        )
        .judged(
            format!("≤ {LOADED_TARGET_MB:.0} MB"),
            loaded,
            LOADED_TARGET_MB,
            format!("peak {}", number(peak, "MB")),
        ),
        Row::info(
            "rss: orchestra mcp relay RSS (one per MCP client)",
            "MB",
            relay,
        ),
        Row::info(
            format!("rss: {REAL} real tasks, {PARALLEL} at a time (throughput)"),
            "tasks/s",
            REAL as f64 / took.as_secs_f64(),
        ),
    ];
    if let Some(worker) = worker {
        rows.push(Row::info(
            "rss: OpenCode worker RSS after them (not ours; process group)",
            "MB",
            worker,
        ));
    }
    Ok(Outcome {
        rows,
        notes: vec![format!(
            "hub in the default shared mode on a fresh isolated home, started in the background \
             by the relay; idle = 1 s after the MCP handshake, before any task (the worker server is \
             warming up already); then {REAL} real echo tasks through MCP ({PARALLEL} \
             concurrent, {:.1} s), then {copies} copies of the last finished record inserted into \
             the hub's SQLite store, then the hub lists all {JOBS} (task_list tasks json limit \
             {JOBS}: it listed {listed}); RSS from /proc/<pid>/status VmRSS",
            took.as_secs_f64()
        )],
    })
}

/// Writes `count` finished records, copies of the newest real one, into the hub's store.
fn copy_records(path: &std::path::Path, count: usize) -> anyhow::Result<usize> {
    let store = orchestra_store::Store::open(path)?;
    let Some(template) = store
        .list_jobs(&orchestra_store::JobFilter::default())?
        .into_iter()
        .next()
    else {
        bail!("the hub's store at {} has no job to copy", path.display());
    };
    for i in 0..count {
        let mut record = template.clone();
        record.id = format!("bench-copy-{i:04}-{}", template.id);
        record.message = format!("bench memory copy {i}");
        store.insert_job(&record)?;
    }
    Ok(count)
}

fn count_listed(listing: &Value) -> usize {
    match listing {
        Value::Array(items) => items.len(),
        other => other["tasks"].as_array().map_or(0, Vec::len),
    }
}
