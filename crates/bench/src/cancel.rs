//! Cancel: from calling `task_cancel` to the fake LLM seeing its connection closed.

use std::time::{Duration, Instant};

use serde_json::json;

use super::Outcome;
use super::harness::ms;
use super::report::Row;
use super::warm::Warm;

const TARGET_MS: f64 = 500.0;
const WAIT: Duration = Duration::from_secs(30);

pub async fn run(samples: usize) -> anyhow::Result<Outcome> {
    let warm = Warm::start().await?;
    let mut hub = Vec::with_capacity(samples);
    let mut reply = Vec::with_capacity(samples);
    let mut direct = Vec::with_capacity(samples);
    for i in 0..samples {
        let marker = format!("bench-cancel-hub-{i}");
        let id = warm.hub.start(&format!("SLOW:30 {marker}")).await?;
        streaming(&warm, &marker).await?;
        let asked = Instant::now();
        let record = warm
            .hub
            .call("task_cancel", json!({"taskId": id, "reason": "bench"}))
            .await?;
        reply.push(ms(asked.elapsed()));
        if record["status"] != "canceled" {
            anyhow::bail!("task_cancel did not cancel: {record}");
        }
        hub.push(ms(disconnected(&warm, &marker)
            .await?
            .duration_since(asked)));

        let marker = format!("bench-cancel-direct-{i}");
        let (session, _idle) = warm.direct.begin(&format!("SLOW:30 {marker}")).await?;
        streaming(&warm, &marker).await?;
        let asked = Instant::now();
        warm.direct.client.abort(&session).await?;
        direct.push(ms(disconnected(&warm, &marker)
            .await?
            .duration_since(asked)));
    }
    warm.close().await;
    Ok(Outcome {
        rows: vec![
            Row::versus(
                "cancel: task_cancel → model connection closed (median)",
                "ms",
                &hub,
                &direct,
            )
            .at_most(TARGET_MS, "direct abort"),
            Row::observed("cancel: task_cancel reply (median)", "ms", &reply),
        ],
        notes: vec![format!(
            "each sample cancels a `SLOW:30` task (one chunk a second for 30 s) once its model \
             request is streaming; baseline = POST /session/{{id}}/abort sent directly to the same \
             server; the original left the model running for 30 s"
        )],
    })
}

/// Waits until the fake has the request and has sent it something.
async fn streaming(warm: &Warm, marker: &str) -> anyhow::Result<()> {
    warm.world.wait_request(marker, WAIT, |_| true).await?;
    // The first chunk follows after 1 s; cancel mid-stream, not before the stream began.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    Ok(())
}

async fn disconnected(warm: &Warm, marker: &str) -> anyhow::Result<Instant> {
    let request = warm
        .world
        .wait_request(marker, Duration::from_secs(10), |r| {
            r.disconnected_at.is_some()
        })
        .await?;
    request
        .disconnected_at
        .ok_or_else(|| anyhow::anyhow!("request `{marker}` has no disconnect time"))
}
