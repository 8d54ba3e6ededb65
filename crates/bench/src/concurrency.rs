//! 32 concurrent tasks on one profile, each with a 1 s scripted model delay, against one task.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::task::JoinSet;

use super::harness::{self, ms, succeeded};
use super::process_stats::{cpu_s, group_cpu_s};
use super::report::{Row, number};
use super::warm::Warm;
use super::{Outcome, Stats};

const TASKS: usize = 32;
const DELAY_MS: u64 = 1000;
const TARGET_RATIO: f64 = 1.5;
/// Issue 20 §2: the hub's 32 concurrent tasks against OpenCode's own 32 prompts.
const FLOOR_RATIO: f64 = 1.05;

pub async fn run(rounds: usize) -> anyhow::Result<Outcome> {
    let warm = Warm::start().await?;
    let mut single = Vec::with_capacity(rounds);
    let mut many = Vec::with_capacity(rounds);
    let mut overlap = Vec::with_capacity(rounds);
    let mut direct_single = Vec::with_capacity(rounds);
    let mut direct_many = Vec::with_capacity(rounds);
    let mut opencode_cpu = Vec::with_capacity(rounds);
    let mut direct_opencode_cpu = Vec::with_capacity(rounds);
    let mut hub_cpu = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let (one, all, cpu) = direct_round(&warm, round).await?;
        direct_single.push(one);
        direct_many.push(all);
        direct_opencode_cpu.push(cpu);

        let one = warm
            .through_hub_delayed(&format!("bench single {round}"))
            .await?;
        single.push(ms(one));

        let prefix = format!("bench many {round} task");
        // The hub process and the relay: everything of ours on the path.
        let ours_cpu =
            || -> anyhow::Result<f64> { Ok(cpu_s(warm.hub_pid)? + cpu_s(warm.hub.pid)?) };
        let cpu_before = (group_cpu_s(warm.server.pid()), ours_cpu()?);
        let began = Instant::now();
        let mut starts = JoinSet::new();
        for i in 0..TASKS {
            let peer = warm.hub.peer();
            let text = format!("DELAYMS:{DELAY_MS} {prefix} {i}.");
            starts.spawn(async move { harness::start(&peer, &text).await });
        }
        let mut ids = Vec::with_capacity(TASKS);
        while let Some(joined) = starts.join_next().await {
            ids.push(joined.context("a task_start call panicked")??);
        }
        await_all(&warm, &ids).await?;
        many.push(ms(began.elapsed()));
        opencode_cpu.push(group_cpu_s(warm.server.pid()) - cpu_before.0);
        hub_cpu.push(ours_cpu()? - cpu_before.1);
        overlap.push(max_overlap(&warm, &prefix) as f64);
    }
    warm.close().await;
    let one = Stats::of(&single).median;
    let all = Stats::of(&many).median;
    let ratio = all / one;
    let direct_one = Stats::of(&direct_single).median;
    let direct_all = Stats::of(&direct_many).median;
    Ok(Outcome {
        rows: vec![
            Row::versus(
                format!("concurrency: {TASKS} tasks × {DELAY_MS} ms model delay, wall (median)"),
                "ms",
                &many,
                &single,
            )
            .judged(
                format!("≤ {TARGET_RATIO}× one task"),
                ratio,
                TARGET_RATIO,
                number(ratio, "×"),
            ),
            Row::versus(
                format!("concurrency: {TASKS} direct prompts on the same server, wall (median)"),
                "ms",
                &direct_many,
                &direct_single,
            )
            .with_comparison(number(direct_all / direct_one, "×")),
            Row::versus(
                format!("concurrency: {TASKS} hub tasks vs {TASKS} direct prompts, wall (median)"),
                "ms",
                &many,
                &direct_many,
            )
            .judged(
                format!("≤ {FLOOR_RATIO}× OpenCode alone"),
                all / direct_all,
                FLOOR_RATIO,
                number(all / direct_all, "×"),
            ),
            Row::versus(
                format!(
                    "concurrency: CPU used by OpenCode for the {TASKS} hub tasks vs the {TASKS} direct prompts (median)"
                ),
                "s",
                &opencode_cpu,
                &direct_opencode_cpu,
            )
            .with_comparison(number(
                Stats::of(&opencode_cpu).median / Stats::of(&direct_opencode_cpu).median,
                "×",
            )),
            Row::info(
                format!(
                    "concurrency: CPU used by the hub and its relay during the {TASKS} hub tasks (median)"
                ),
                "s",
                Stats::of(&hub_cpu).median,
            )
            .with_samples(&hub_cpu),
            Row::info(
                "concurrency: hub's model requests in flight at once (min over rounds)",
                "",
                overlap.iter().copied().fold(f64::INFINITY, f64::min),
            ),
        ],
        notes: vec![format!(
            "{rounds} rounds on one profile (coder) of an attached warm server; baseline = one \
             `DELAYMS:{DELAY_MS}` task through the hub in the same round; wall = first task_start \
             sent → task_await(taskIds) returned all {TASKS} final; the direct row sends the same \
             prompts straight to the server (session + prompt_async each, all at once, then idle + \
             messages), which shows what OpenCode itself manages on this machine; the original \
             rejected every concurrent task but one"
        )],
    })
}

impl Warm {
    /// One `DELAYMS` task start to finish; returns the wall time.
    async fn through_hub_delayed(&self, text: &str) -> anyhow::Result<Duration> {
        let began = Instant::now();
        let id = self
            .hub
            .start(&format!("DELAYMS:{DELAY_MS} {text}"))
            .await?;
        let record = self.hub.finish(&id).await?;
        let took = began.elapsed();
        succeeded(&record)?;
        Ok(took)
    }
}

/// The same shapes sent straight to the server: (one prompt, {TASKS} at once), in ms.
/// One direct prompt's wall, all 32's wall, and the CPU OpenCode used for the 32.
async fn direct_round(warm: &Warm, round: usize) -> anyhow::Result<(f64, f64, f64)> {
    let began = Instant::now();
    warm.direct
        .prompt(&format!("DELAYMS:{DELAY_MS} direct single {round}"))
        .await?;
    let one = ms(began.elapsed());
    let cpu_before = group_cpu_s(warm.server.pid());
    let began = Instant::now();
    let prompts = (0..TASKS).map(|i| {
        let text = format!("DELAYMS:{DELAY_MS} direct many {round} task {i}.");
        async move { warm.direct.prompt(&text).await }
    });
    for result in futures_util::future::join_all(prompts).await {
        result?;
    }
    let all = ms(began.elapsed());
    Ok((one, all, group_cpu_s(warm.server.pid()) - cpu_before))
}

async fn await_all(warm: &Warm, ids: &[String]) -> anyhow::Result<()> {
    for _ in 0..20 {
        let answer = warm
            .hub
            .call("task_await", json!({"taskIds": ids, "timeoutMs": 45000}))
            .await?;
        let records: Vec<Value> = match answer {
            Value::Array(records) => records,
            other => other["tasks"]
                .as_array()
                .cloned()
                .with_context(|| format!("task_await(taskIds) answered {other}"))?,
        };
        if records.len() != ids.len() {
            bail!(
                "task_await returned {} records for {} ids",
                records.len(),
                ids.len()
            );
        }
        if records.iter().all(|r| r["status"] != "running") {
            return records.iter().try_for_each(succeeded);
        }
    }
    bail!(
        "{} concurrent tasks were still running after 20 awaits",
        ids.len()
    )
}

/// The most of this round's model requests the fake was serving at the same moment.
fn max_overlap(warm: &Warm, prefix: &str) -> usize {
    let mut edges: Vec<(Instant, i32)> = Vec::new();
    for request in warm.world.fake.requests() {
        if !request.last_user_text.contains(prefix) {
            continue;
        }
        edges.push((request.received_at, 1));
        if let Some(end) = request.completed_at.or(request.disconnected_at) {
            edges.push((end, -1));
        }
    }
    edges.sort();
    let mut now = 0;
    let mut most = 0;
    for (_, step) in edges {
        now += step;
        most = most.max(now);
    }
    usize::try_from(most).unwrap_or(0)
}
