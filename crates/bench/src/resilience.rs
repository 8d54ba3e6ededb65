//! Fallback and notify: how long a rate-limited model holds a task up before the next of the
//! profile's `fallbackModels` gets the prompt, and how long after an event the user's webhook
//! has it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use orchestra_core::config::Config;
use orchestra_testkit::fake_llm::ModelErrors;
use orchestra_testkit::fake_llm::opencode::{PROVIDER_ID, fake_mode_config};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Outcome;
use super::harness::{World, ms, succeeded};
use super::report::Row;

/// The targets: the next model within 3 s of the first failure; webhooks within 1 s
/// (p95) of the event.
const FALLBACK_TARGET_MS: f64 = 3000.0;
const NOTIFY_TARGET_MS: f64 = 1000.0;

/// Each sample fails on a model of its own: a model that failed cools down for 60 s, and a
/// sample that skipped it would measure nothing.
pub async fn fallback(samples: usize) -> anyhow::Result<Outcome> {
    let world = World::new().await?;
    let mut config = fake_mode_config(&world.fake.base_url());
    let mut errors = ModelErrors::new();
    for i in 0..samples {
        let entry = config["provider"][PROVIDER_ID]["models"]["fake-text"].clone();
        config["provider"][PROVIDER_ID]["models"][format!("flaky-{i}")] = entry;
        errors = errors.fail(format!("flaky-{i}"), 429);
    }
    errors.install(&world.fake);
    orchestra_core::workers::agents::merge_json(
        &mut config,
        &orchestra_core::workers::server_defaults(&Config::builtin()),
    );
    // A profile per sample too: five failures of one profile's model open its breaker, and
    // later samples would skip the failing model.
    let profiles: Vec<Value> = (0..samples)
        .map(|i| {
            json!({"id": format!("fallback-{i}"), "name": "Bench", "model": format!("{PROVIDER_ID}/flaky-{i}"),
                   "purpose": "bench", "whenToUse": "never",
                   "fallbackModels": [format!("{PROVIDER_ID}/fake-model")]})
        })
        .collect();
    let hub = world
        .hub(
            &json!({ "profiles": profiles }),
            &[("OPENCODE_CONFIG_CONTENT".into(), config.to_string())],
        )
        .await?;
    let mut gaps = Vec::with_capacity(samples);
    for i in 0..samples {
        let marker = format!("bench-fallback-{i}");
        let started = hub
            .call(
                "task_start",
                json!({"kind": "worker", "workerId": format!("fallback-{i}"), "task": marker}),
            )
            .await?;
        let id = started["taskId"].as_str().context("no taskId")?.to_owned();
        let record = hub.finish(&id).await?;
        succeeded(&record)?;
        if record["fallbacks"].as_array().map_or(0, Vec::len) != 1 {
            bail!("sample {i} did not fall back once: {record}");
        }
        let requests = world.fake.requests();
        let mine = |model: &str| {
            requests
                .iter()
                .find(|r| r.model == model && r.last_user_text.contains(&marker))
                .cloned()
        };
        let failed = mine(&format!("flaky-{i}")).context("no request to the failing model")?;
        let answered = mine("fake-model").context("no request to the fallback model")?;
        let failed_at = failed.completed_at.unwrap_or(failed.received_at);
        gaps.push(ms(answered
            .received_at
            .saturating_duration_since(failed_at)));
    }
    hub.close().await;
    let median = super::report::Stats::of(&gaps).median;
    Ok(Outcome {
        rows: vec![
            Row::observed(
                "fallback: 429 answered → fallback model's request (median)",
                "ms",
                &gaps,
            )
            .judged("≤ 3 s", median, FALLBACK_TARGET_MS, "—".into()),
        ],
        notes: vec![
            "each sample's own model answers 429 (a failed model cools down for 60 s); the \
             fallback model's first token follows its request at once on the fake"
                .into(),
        ],
    })
}

/// Events of `samples` tasks to a webhook on 127.0.0.1 that answers 200 at once.
pub async fn notify(samples: usize) -> anyhow::Result<Outcome> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    let (seen, mut received) = tokio::sync::mpsc::unbounded_channel();
    let server = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                if let Ok(body) = answer(socket).await {
                    let _ = seen.send((unix_ms(), body));
                }
            });
        }
    });
    let world = World::new().await?;
    let hub = world
        .hub(
            &json!({"notify": [{"type": "webhook", "url": url, "events": ["orchestra.job.finished"]}]}),
            &[],
        )
        .await?;
    let mut latencies = Vec::with_capacity(samples);
    for i in 0..samples {
        let id = hub.start(&format!("bench-notify-{i}")).await?;
        succeeded(&hub.finish(&id).await?)?;
        let (at, body) = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match received.recv().await {
                    Some((at, body)) if body["data"]["job"]["id"] == id.as_str() => {
                        return Some((at, body));
                    }
                    Some(_) => {}
                    None => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
        .context("the webhook never got the task's event")?;
        let published = body["timestamp"].as_f64().context("no timestamp")?;
        latencies.push(at - published);
    }
    hub.close().await;
    server.abort();
    let p95 = percentile(&latencies, 0.95);
    Ok(Outcome {
        rows: vec![Row::observed("notify: event → webhook received (p95)", "ms", &[p95])
            .with_samples(&latencies)
            .judged("≤ 1 s", p95, NOTIFY_TARGET_MS, "—".into())],
        notes: vec!["webhook on 127.0.0.1 answering 200; latency from the event's timestamp (when the hub published it) to the POST read by the receiver".into()],
    })
}

/// Reads one HTTP request (headers, then Content-Length bytes), answers 200, returns the body.
async fn answer(mut socket: tokio::net::TcpStream) -> anyhow::Result<Value> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let (head_end, length) = loop {
        let read = socket.read(&mut chunk).await?;
        if read == 0 {
            bail!("connection closed mid-request");
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while buffer.len() < head_end + length {
        let read = socket.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
    socket
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
        .await?;
    Ok(serde_json::from_slice(&buffer[head_end..]).unwrap_or(Value::Null))
}

fn unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

fn percentile(samples: &[f64], q: f64) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
    sorted[rank - 1]
}
