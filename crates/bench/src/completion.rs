//! Completion detection: from the worker finishing (the fake LLM's stream end) to the job
//! record turning `succeeded` (its `finishedAt`).

use anyhow::{Context, anyhow};

use super::Outcome;
use super::harness::{Anchor, ms};
use super::report::Row;
use super::warm::Warm;

const TARGET_MS: f64 = 100.0;

pub async fn run(samples: usize) -> anyhow::Result<Outcome> {
    let warm = Warm::start().await?;
    let anchor = Anchor::now();
    let mut hub = Vec::with_capacity(samples);
    let mut direct = Vec::with_capacity(samples);
    let mut after_idle = Vec::with_capacity(samples);
    for i in 0..samples {
        let text = format!("bench completion hub {i}");
        let sample = warm.through_hub(&text).await?;
        let finished_at = sample.record["finishedAt"]
            .as_f64()
            .ok_or_else(|| anyhow!("the record has no finishedAt: {}", sample.record))?;
        let ended = stream_end(&warm, &text)?;
        hub.push(finished_at - anchor.unix_ms(ended));
        let session = sample.record["sessionId"].as_str().unwrap_or_default();
        let idle = warm.direct.idle_seen(session).with_context(|| {
            format!("session.idle of the hub's session `{session}` was not seen")
        })?;
        after_idle.push(finished_at - anchor.unix_ms(idle));

        let text = format!("bench completion direct {i}");
        let sample = warm.direct(&text).await?;
        let ended = stream_end(&warm, &text)?;
        direct.push(ms(sample.done_at.duration_since(ended)));
    }
    warm.close().await;
    Ok(Outcome {
        rows: vec![
            Row::versus(
                "completion: stream end → record succeeded (median)",
                "ms",
                &hub,
                &direct,
            )
            .at_most(TARGET_MS, "direct"),
            Row::observed(
                "completion: session.idle (seen by another client) → record succeeded",
                "ms",
                &after_idle,
            ),
        ],
        notes: vec![format!(
            "stream end = the fake's completed_at (Instant, mapped to unix ms through one \
             Instant/SystemTime anchor); record = the job's finishedAt (unix ms, so ±1 ms). Baseline: a \
             direct client on the same server, stream end → session.idle seen on /event + messages \
             read; this part is OpenCode's own. The second row is the hub's share: from the \
             moment a separate /event subscriber on the same server saw the hub's session go idle to \
             finishedAt"
        )],
    })
}

fn stream_end(warm: &Warm, marker: &str) -> anyhow::Result<std::time::Instant> {
    warm.world
        .request(marker)
        .with_context(|| format!("the fake LLM never saw `{marker}`"))?
        .completed_at
        .with_context(|| format!("the fake's stream for `{marker}` did not complete"))
}
