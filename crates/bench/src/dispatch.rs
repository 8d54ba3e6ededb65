//! Dispatch overhead: a task through `orchestra mcp` vs the same prompt sent straight to the
//! same warm OpenCode, interleaved.

use super::harness::ms;
use super::report::{Row, difference, number};
use super::warm::Warm;
use super::{Outcome, harness};

const TARGET_MS: f64 = 5.0;
/// Issue 20 §3: the median of interleaved pairs.
const PAIRED_TARGET_MS: f64 = 3.0;

pub async fn run(samples: usize) -> anyhow::Result<Outcome> {
    let warm = Warm::start().await?;
    let mut hub = Vec::with_capacity(samples);
    let mut direct = Vec::with_capacity(samples);
    let mut paired = Vec::with_capacity(samples);
    // The hub's side split: the job's own span (record made → final, in the hub's
    // milliseconds), the rest (the MCP calls, the relay, the await's return) and, of the rest,
    // the task_start call.
    let mut inside = Vec::with_capacity(samples);
    let mut outside = Vec::with_capacity(samples);
    let mut start_call = Vec::with_capacity(samples);
    for i in 0..samples {
        // Alternate which path goes first, so neither always runs right after the other.
        let (h, d) = if i.is_multiple_of(2) {
            let d = warm.direct(&format!("bench dispatch direct {i}")).await?;
            let h = warm.through_hub(&format!("bench dispatch hub {i}")).await?;
            (h, d)
        } else {
            let h = warm.through_hub(&format!("bench dispatch hub {i}")).await?;
            let d = warm.direct(&format!("bench dispatch direct {i}")).await?;
            (h, d)
        };
        start_call.push(ms(h.start));
        if let Some(job_ms) = h.record["durationMs"].as_f64() {
            inside.push(job_ms);
            outside.push(ms(h.total) - job_ms);
        }
        hub.push(ms(h.total));
        direct.push(ms(d.total));
        paired.push(ms(h.total) - ms(d.total));
    }
    let mut in_worktree = Vec::with_capacity(samples);
    for i in 0..samples {
        let sample = warm
            .through_hub_in_worktree(&format!("bench dispatch worktree {i}"))
            .await?;
        in_worktree.push(ms(sample.total));
    }
    warm.close().await;
    harness::progress(&format!(
        "bench: dispatch paired differences (ms): {paired:.1?}"
    ));

    let hub_median = super::Stats::of(&hub).median;
    let direct_median = super::Stats::of(&direct).median;
    let added = hub_median - direct_median;
    let paired_median = super::Stats::of(&paired).median;
    let rows = vec![
        Row::versus(
            "dispatch: task via orchestra mcp (median)",
            "ms",
            &hub,
            &direct,
        )
        .judged(
            format!("≤ +{TARGET_MS:.0} ms over direct"),
            added,
            TARGET_MS,
            difference(added, "ms"),
        ),
        Row::info(
            "dispatch: paired hub − direct (median of pairs)",
            "ms",
            paired_median,
        )
        .with_samples(&paired)
        .judged(
            format!("≤ +{PAIRED_TARGET_MS:.0} ms paired"),
            paired_median,
            PAIRED_TARGET_MS,
            difference(paired_median, "ms"),
        ),
        Row::versus(
            "dispatch: task in its own worktree via orchestra mcp (median)",
            "ms",
            &in_worktree,
            &direct,
        )
        .with_comparison(difference(
            super::Stats::of(&in_worktree).median - direct_median,
            "ms",
        )),
    ];
    Ok(Outcome {
        rows,
        notes: vec![
            format!(
                "one `opencode serve` we started; the hub attached to it (runtime.isolation attach); \
                 {samples} interleaved pairs after 3 warm-up prompts per path"
            ),
            "hub path = MCP task_start + task_await (returns when the job is final); direct path = \
             create_session + prompt_async + wait for session.idle on /event + GET messages, \
             which is what the hub's runner does"
                .into(),
            format!(
                "medians: hub {}, direct {}; the original added 45–80 ms",
                number(hub_median, "ms"),
                number(direct_median, "ms")
            ),
            format!(
                "the hub's time split (medians): the job itself (record made → final, whole ms) {}, \
                 everything around it (MCP calls, relay, the await's return) {}, of which the \
                 task_start call {}",
                number(super::Stats::of(&inside).median, "ms"),
                number(super::Stats::of(&outside).median, "ms"),
                number(super::Stats::of(&start_call).median, "ms")
            ),
        ],
    })
}
