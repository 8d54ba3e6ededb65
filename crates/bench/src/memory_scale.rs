//! Memory does not make tasks slower (issue 20 §5): the same tasks through a hub whose project
//! holds 100,000 memory records (the memory bench's generator) and through one whose project
//! holds none, side by side — the hub's CPU per task — and the memory block a task start
//! builds (`render_context_as_indexed`, as the hub calls it) timed on the big store.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use orchestra_memory::{MemoryService, MemorySettings};
use orchestra_store::Store;
use serde_json::json;

use super::direct::Direct;
use super::harness::{World, succeeded};
use super::memory_corpus as corpus;
use super::process_stats::cpu_s;
use super::report::{Row, number};
use super::warm::Warm;
use super::{Outcome, Stats};

const RECORDS: usize = 100_000;
/// Tasks per hub, one at a time (the CPU of each is what is compared).
const TASKS: usize = 40;
const BLOCKS: usize = 200;
const CPU_DRIFT: f64 = 0.2;
const BLOCK_P95_MS: f64 = 5.0;

pub async fn run() -> anyhow::Result<Outcome> {
    let queries = corpus::scale_queries(TASKS.max(BLOCKS), 11);
    let (empty, _, _) = measure(0, &queries, false).await?;
    let (full, blocks, settled) = measure(RECORDS, &queries, true).await?;
    let ratio = full / empty;
    let block = Stats::of(&blocks);
    Ok(Outcome {
        rows: vec![
            Row {
                baseline: Some(empty),
                ..Row::info(
                    format!("memory scale: hub+relay CPU per task, {RECORDS} records vs none"),
                    "ms",
                    full,
                )
            }
            .judged(
                format!("within ±{:.0} % of none", CPU_DRIFT * 100.0),
                (ratio - 1.0).abs(),
                CPU_DRIFT,
                number(ratio, "×"),
            ),
            Row::info(
                format!("memory scale: task-start memory block p95, {RECORDS} records"),
                "ms",
                p95(&blocks),
            )
            .with_samples(&blocks)
            .judged(
                format!("≤ {BLOCK_P95_MS} ms"),
                p95(&blocks),
                BLOCK_P95_MS,
                format!("median {}", number(block.median, "ms")),
            ),
            Row::info(
                format!(
                    "memory scale: hub CPU after opening {RECORDS} imported records, until idle (once)"
                ),
                "s",
                settled.cpu_s,
            )
            .with_comparison(format!("over {}", number(settled.wall_s, "s"))),
        ],
        notes: vec![format!(
            "memory scale: two hubs on default config (memory on, automatic records on), each \
             attached to its own warm OpenCode; one project imported {RECORDS} generated records \
             before its hub started, the other none; {TASKS} tasks one at a time whose text is a \
             3-term memory query, after 3 warm-up tasks and once the hub is idle (under 20 ms CPU in a \
             second); CPU = utime+stime of hub and relay over those tasks; the block \
             is `render_context_as_indexed` on the big store in this process, {BLOCKS} queries"
        )],
    })
}

fn p95(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((0.95 * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len().max(1));
    sorted.get(rank - 1).copied().unwrap_or(f64::NAN)
}

/// The hub CPU per task (ms) in a project holding `records` memory records, and (with
/// `time_blocks`) the block build times on its store.
/// The one-off work a hub does after it opens a store (indexing an import, compacting its
/// change log), until it is idle: the wall it took and the hub CPU it used.
#[derive(Clone, Copy)]
struct Settled {
    wall_s: f64,
    cpu_s: f64,
}

/// Waits until the hub uses under `IDLE_CPU_S` of CPU in a second (at most `SETTLE_MAX`), so
/// the per-task figure is the steady state, not an import's indexing and compaction.
async fn settle(hub_pid: u32) -> anyhow::Result<Settled> {
    const IDLE_CPU_S: f64 = 0.02;
    const SETTLE_MAX: Duration = Duration::from_secs(180);
    let began = Instant::now();
    let start = cpu_s(hub_pid)?;
    loop {
        let before = cpu_s(hub_pid)?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = cpu_s(hub_pid)?;
        if after - before < IDLE_CPU_S || began.elapsed() > SETTLE_MAX {
            return Ok(Settled {
                wall_s: began.elapsed().as_secs_f64(),
                cpu_s: after - start,
            });
        }
    }
}

async fn measure(
    records: usize,
    queries: &[String],
    time_blocks: bool,
) -> anyhow::Result<(f64, Vec<f64>, Settled)> {
    let world = World::new().await?;
    let store_path = world.home.root.join("scale-store.db");
    let project_id = orchestra_state_dir::project_id(&world.project.dir);
    if records > 0 {
        super::harness::progress(&format!(
            "bench: memory scale: importing {records} records …"
        ));
        let (path, id) = (store_path.clone(), project_id.clone());
        tokio::task::spawn_blocking(move || import(&path, &id, records))
            .await
            .context("the import panicked")??;
    }
    let server = world.serve("bench-scale").await?;
    let direct = Direct::connect(&server, &world.project.dir).await?;
    let config = json!({
        "tasks": {"storePath": store_path.display().to_string()},
        "runtime": {
            "isolation": "attach",
            "attachUrl": server.url(),
            "attachPasswordEnv": "BENCH_OC_PASSWORD",
        },
    });
    let hub = world
        .hub(
            &config,
            &[("BENCH_OC_PASSWORD".into(), server.password().into())],
        )
        .await?;
    let hub_pid = world.hub_info().await?.pid;
    let warm = Warm {
        world,
        server,
        direct,
        hub,
        hub_pid,
    };
    for i in 0..3 {
        warm.through_hub(&format!("scale warm-up {i}")).await?;
    }
    let relay = warm.hub.pid;
    let settled = settle(hub_pid).await?;
    let before = cpu_s(hub_pid)? + cpu_s(relay)?;
    for query in queries.iter().take(TASKS) {
        let id = warm.hub.start(query).await?;
        succeeded(&warm.hub.finish(&id).await?)?;
    }
    let used = cpu_s(hub_pid)? + cpu_s(relay)? - before;
    warm.close().await;
    let blocks = if time_blocks {
        let queries = queries.to_vec();
        tokio::task::spawn_blocking(move || time_blocks_on(&store_path, &project_id, &queries))
            .await
            .context("the block timing panicked")??
    } else {
        Vec::new()
    };
    Ok((used * 1000.0 / TASKS as f64, blocks, settled))
}

fn service(path: &std::path::Path, project_id: &str) -> anyhow::Result<MemoryService> {
    let store = Arc::new(Store::open(path)?);
    let global = Arc::new(Store::open(&path.with_file_name("scale-global.db"))?);
    Ok(MemoryService::open(
        store,
        project_id,
        Some(global),
        MemorySettings::default(),
    )?)
}

fn import(path: &std::path::Path, project_id: &str, records: usize) -> anyhow::Result<()> {
    let memory = service(path, project_id)?;
    let jsonl = corpus::scale_jsonl(records, 1, 7);
    let report = memory.import_jsonl(&mut jsonl.as_slice())?;
    anyhow::ensure!(
        report.records as usize == records,
        "imported {} of {records}",
        report.records
    );
    Ok(())
}

fn time_blocks_on(
    path: &std::path::Path,
    project_id: &str,
    queries: &[String],
) -> anyhow::Result<Vec<f64>> {
    let memory = service(path, project_id)?;
    let mut took = Vec::with_capacity(BLOCKS);
    for query in queries.iter().take(BLOCKS) {
        let began = Instant::now();
        memory.render_context_as_indexed(query, None)?;
        took.push(began.elapsed().as_secs_f64() * 1000.0);
    }
    Ok(took)
}
