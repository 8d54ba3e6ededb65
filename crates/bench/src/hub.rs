//! The long-lived hub (issue 14 §5): how warm its first task is, what the stdio relay adds over
//! the hub's own API, and what two clients on one project cost against two hubs of their own.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::harness::{self, World, ms, succeeded};
use super::process_stats::{descendants, rss_mb};
use super::report::{Row, difference, number};
use super::{Outcome, Stats};

const WARM_TARGET_S: f64 = 0.3;
const RELAY_TARGET_MS: f64 = 2.0;
/// How long after the hub came up the first task is sent.
const AFTER_START: Duration = Duration::from_secs(5);

pub async fn run(quick: usize, slow: usize) -> anyhow::Result<Outcome> {
    let mut rows = Vec::new();
    let mut notes = Vec::new();
    let (mut warm_rows, warm_note) = first_task_when_warm(slow).await?;
    rows.append(&mut warm_rows);
    notes.push(warm_note);
    let (mut relay_rows, relay_note) = relay_vs_api(quick).await?;
    rows.append(&mut relay_rows);
    notes.push(relay_note);
    let (mut client_rows, client_note) = two_clients().await?;
    rows.append(&mut client_rows);
    notes.push(client_note);
    Ok(Outcome { rows, notes })
}

/// One task through MCP, start to final record, in seconds.
async fn task_s(hub: &harness::Hub, text: &str) -> anyhow::Result<f64> {
    let began = Instant::now();
    let id = hub.start(text).await?;
    succeeded(&hub.finish(&id).await?)?;
    Ok(began.elapsed().as_secs_f64())
}

async fn first_task_when_warm(samples: usize) -> anyhow::Result<(Vec<Row>, String)> {
    let mut first = Vec::with_capacity(samples);
    let mut warm = Vec::with_capacity(samples);
    for i in 0..samples {
        let world = World::new().await?;
        let hub = world.hub(&json!({}), &[]).await?;
        world.hub_info().await?;
        tokio::time::sleep(AFTER_START).await;
        first.push(task_s(&hub, &format!("bench hub first {i}")).await?);
        let mut later = Vec::new();
        for j in 0..3 {
            later.push(task_s(&hub, &format!("bench hub warm {i}.{j}")).await?);
        }
        warm.push(Stats::of(&later).median);
        hub.close().await;
    }
    let added = Stats::of(&first).median - Stats::of(&warm).median;
    let rows = vec![
        Row::versus(
            "hub: first task 5 s after the hub came up (median)",
            "s",
            &first,
            &warm,
        )
        .judged(
            format!("≤ +{WARM_TARGET_S} s over a warm task"),
            added,
            WARM_TARGET_S,
            difference(added, "s"),
        ),
    ];
    let note = format!(
        "hub first task: {samples} fresh worlds; the relay (`orchestra mcp`) starts the hub in \
         the background, which starts and bootstraps its worker server at once; 5 s later one \
         task_start + task_await is timed, then 3 more (the warm baseline, their median)"
    );
    Ok((rows, note))
}

async fn relay_vs_api(samples: usize) -> anyhow::Result<(Vec<Row>, String)> {
    let world = World::new().await?;
    let hub = world.hub(&json!({}), &[]).await?;
    let info = world.hub_info().await?;
    let api = orchestra_client::HubClient::new(&info)?;
    for i in 0..3 {
        task_s(&hub, &format!("bench relay warm-up {i}")).await?;
        api_task(&api, &format!("bench api warm-up {i}")).await?;
    }
    let mut relay = Vec::with_capacity(samples);
    let mut direct = Vec::with_capacity(samples);
    let mut paired = Vec::with_capacity(samples);
    for i in 0..samples {
        let (r, d) = if i.is_multiple_of(2) {
            let d = api_task(&api, &format!("bench api {i}")).await?;
            let r = task_s(&hub, &format!("bench relay {i}")).await? * 1000.0;
            (r, d)
        } else {
            let r = task_s(&hub, &format!("bench relay {i}")).await? * 1000.0;
            let d = api_task(&api, &format!("bench api {i}")).await?;
            (r, d)
        };
        relay.push(r);
        direct.push(d);
        paired.push(r - d);
    }
    hub.close().await;
    let added = Stats::of(&paired).median;
    let rows = vec![
        Row::versus(
            "hub: task via the stdio relay vs the hub's API (median)",
            "ms",
            &relay,
            &direct,
        )
        .judged(
            format!("≤ +{RELAY_TARGET_MS} ms over the API"),
            added,
            RELAY_TARGET_MS,
            difference(added, "ms"),
        ),
    ];
    let note = format!(
        "relay vs API: one hub; {samples} interleaved pairs of task_start + task_await, one \
         through `orchestra mcp` over stdio (which relays each call to POST /api/v1/tools/…), one \
         straight to that route over HTTP; the row's difference is the median of the pairs \
         (medians {} vs {})",
        number(Stats::of(&relay).median, "ms"),
        number(Stats::of(&direct).median, "ms")
    );
    Ok((rows, note))
}

/// task_start + task_await straight to the hub's API, in ms.
async fn api_task(api: &orchestra_client::HubClient, text: &str) -> anyhow::Result<f64> {
    let began = Instant::now();
    let started = api
        .tool(
            "task_start",
            &json!({"kind": "worker", "workerId": "coder", "task": text}),
            Some("bench"),
        )
        .await?;
    let started: Value = serde_json::from_str(&started.text).context("task_start reply")?;
    let id = started["taskId"].as_str().context("no taskId")?.to_owned();
    for _ in 0..20 {
        let reply = api
            .tool("task_await", &json!({"taskId": id}), Some("bench"))
            .await?;
        let record: Value = serde_json::from_str(&reply.text).context("task_await reply")?;
        if record["status"] != "running" {
            succeeded(&record)?;
            return Ok(ms(began.elapsed()));
        }
    }
    bail!("task {id} was still running after 20 task_await calls")
}

/// Two MCP clients on one project (one hub, one worker server) against two hubs of their own
/// (today's per-client hubs: each `orchestra serve` with its own worker server).
async fn two_clients() -> anyhow::Result<(Vec<Row>, String)> {
    let world = World::new().await?;
    let first = world.hub(&json!({}), &[]).await?;
    let second = world.hub(&json!({}), &[]).await?;
    task_s(&first, "bench two clients one").await?;
    task_s(&second, "bench two clients two").await?;
    let hub = world.hub_info().await?;
    let ours = Tree::of(&[first.pid, second.pid, hub.pid]);

    let a = World::new().await?;
    let b = World::new().await?;
    let one = a.hub(&json!({}), &[]).await?;
    let two = b.hub(&json!({}), &[]).await?;
    task_s(&one, "bench own hub one").await?;
    task_s(&two, "bench own hub two").await?;
    let (hub_a, hub_b) = (a.hub_info().await?, b.hub_info().await?);
    let theirs = Tree::of(&[one.pid, two.pid, hub_a.pid, hub_b.pid]);
    first.close().await;
    second.close().await;
    one.close().await;
    two.close().await;

    let rows = vec![
        Row {
            baseline: Some(theirs.opencode as f64),
            ..Row::info(
                "hub: two clients, one project: OpenCode processes",
                "",
                ours.opencode as f64,
            )
        }
        .with_comparison(format!("{} vs {}", ours.opencode, theirs.opencode)),
        Row {
            baseline: Some(theirs.rss_mb),
            ..Row::info(
                "hub: two clients, one project: total RSS",
                "MB",
                ours.rss_mb,
            )
        }
        .with_comparison(format!(
            "{:.0} % of two hubs",
            ours.rss_mb / theirs.rss_mb * 100.0
        )),
    ];
    let note = format!(
        "two clients: ours = two `orchestra mcp` relays on one project sharing one hub and its \
         worker server ({} processes); baseline = two hubs with a worker server each (two \
         projects, as two per-client hubs were before); one task each, then the RSS of every \
         process in both trees (relays, hubs, OpenCode and its children) summed",
        ours.processes
    );
    Ok((rows, note))
}

/// The processes under some roots: how many, how many are OpenCode, their summed RSS.
struct Tree {
    processes: usize,
    opencode: usize,
    rss_mb: f64,
}

impl Tree {
    fn of(roots: &[u32]) -> Tree {
        let mut pids: Vec<u32> = roots.to_vec();
        for root in roots {
            pids.extend(descendants(*root));
        }
        pids.sort_unstable();
        pids.dedup();
        let opencode = pids
            .iter()
            .filter(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|comm| comm.trim().starts_with("opencode"))
            })
            .count();
        Tree {
            processes: pids.len(),
            opencode,
            rss_mb: pids.iter().map(|pid| rss_mb(*pid).unwrap_or(0.0)).sum(),
        }
    }
}
