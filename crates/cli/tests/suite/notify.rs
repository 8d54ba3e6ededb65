//! `notify` end to end: a real `orchestra` hub (started by `orchestra mcp`, its targets in the
//! user's `--config` file) running a task on the pinned OpenCode and the fake LLM, sending the
//! task's events to a webhook on 127.0.0.1 that fails twice before it accepts, to command
//! hooks, and to a desktop notification daemon on a private D-Bus session bus.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Value, json};

use super::common::{self, World, bounded, hub_info};

/// What the webhook receiver saw: (Idempotency-Key, the status it answered, the body).
type Calls = Arc<Mutex<Vec<(String, u16, Value)>>>;

/// The receiver's state: what it saw, and whether it refuses everything for now.
#[derive(Clone, Default)]
struct Receiver {
    calls: Calls,
    down: Arc<std::sync::atomic::AtomicBool>,
}

/// Answers 500 to the first two deliveries of each key, then 200; 503 to all while down.
async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let calls = receiver.calls;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut calls = calls.lock().unwrap();
    let earlier = calls.iter().filter(|(k, _, _)| *k == key).count();
    let status = if receiver.down.load(std::sync::atomic::Ordering::SeqCst) {
        503
    } else if earlier < 2 {
        500
    } else {
        200
    };
    calls.push((
        key,
        status,
        serde_json::from_str(&body).unwrap_or(Value::Null),
    ));
    StatusCode::from_u16(status).unwrap()
}

async fn start_receiver() -> (String, Receiver) {
    let receiver = Receiver::default();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(receive))
        .with_state(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, receiver)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_that_fails_twice_gets_each_event_once_and_command_hooks_get_the_json() {
    bounded(async {
        let (url, receiver) = start_receiver().await;
        let calls = receiver.calls;
        let out = tempfile::tempdir().unwrap();
        let teed = out.path().join("teed.json");
        let shelled = out.path().join("shelled.json");
        let world = World::new(json!({"notify": [
            {"type": "webhook", "url": url, "events": ["orchestra.job.finished"]},
            // No shell: split on spaces and run directly.
            {"type": "command", "command": format!("tee {}", teed.display())},
            // Shell syntax: run under sh -c.
            {"type": "command", "command": format!("cat > '{}'", shelled.display())},
            {"type": "command", "command": "false"},
        ]}))
        .await;
        let client = world.connect().await;
        let record = client.run("coder", "NOTIFY-1 say hello").await;
        assert_eq!(record["status"], "succeeded", "{record}");
        let task_id = record["id"].as_str().unwrap().to_owned();

        // The task's finish arrives at the webhook, after two refusals.
        let accepted = common::eventually("the webhook to accept the task's event", async || {
            calls
                .lock()
                .unwrap()
                .iter()
                .find_map(|(key, status, body)| {
                    (*status == 200 && body["data"]["job"]["id"] == task_id.as_str())
                        .then(|| (key.clone(), body.clone()))
                })
        })
        .await;
        let (key, body) = accepted;
        assert_eq!(body["type"], "orchestra.job.finished");
        assert_eq!(
            body["id"].to_string(),
            key,
            "Idempotency-Key is the event id"
        );
        assert_eq!(body["data"]["job"]["status"], "succeeded");
        // After dedupe by key, every event was accepted exactly once.
        let calls = calls.lock().unwrap().clone();
        let mut by_key: BTreeMap<&str, Vec<u16>> = BTreeMap::new();
        for (key, status, _) in &calls {
            by_key.entry(key).or_default().push(*status);
        }
        for (key, statuses) in &by_key {
            assert_eq!(
                statuses.iter().filter(|s| **s == 200).count(),
                1,
                "{key}: {statuses:?}"
            );
        }
        assert_eq!(by_key[key.as_str()], [500, 500, 200]);

        // Both command hooks got the same envelope on stdin.
        for file in [&teed, &shelled] {
            let text = common::eventually("a command hook's output", async || {
                std::fs::read_to_string(file)
                    .ok()
                    .filter(|t| t.contains(&task_id))
            })
            .await;
            let envelope: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(envelope["type"], "orchestra.job.finished");
            assert_eq!(envelope["data"]["job"]["id"], task_id.as_str());
        }

        // What was sent, and what failed, is in the HTTP API.
        let info = hub_info(&world.home, &world.project.dir).await;
        let http = reqwest::Client::new();
        let deliveries = |query: &'static str| {
            let request = http
                .get(format!("{}/api/v1/notify/deliveries{query}", info.url))
                .bearer_auth(&info.token);
            async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
        };
        let failed = eventually_async(
            || deliveries("?status=failed"),
            |rows: &Value| {
                rows.as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r["target"] == "command false")
            },
        )
        .await;
        let row = failed
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["target"] == "command false")
            .unwrap();
        assert!(row["lastError"].as_str().unwrap().contains("exit"), "{row}");
        let all = deliveries("").await;
        let webhook = all
            .as_array()
            .unwrap()
            .iter()
            .find(|r| {
                r["target"] == format!("webhook {url}")
                    && r["eventId"].as_u64().map(|id| id.to_string()) == Some(key.clone())
            })
            .unwrap();
        assert_eq!(webhook["status"], "delivered", "{webhook}");
        assert_eq!(webhook["attempts"], 3, "{webhook}");
        let bad = http
            .get(format!("{}/api/v1/notify/deliveries?status=lost", info.url))
            .bearer_auth(&info.token)
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        assert!(
            bad.text()
                .await
                .unwrap()
                .contains("pending, delivered or failed")
        );
        client.close().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_still_pending_when_the_hub_stops_is_delivered_by_the_next_hub() {
    bounded(async {
        let (url, receiver) = start_receiver().await;
        receiver
            .down
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let world = World::new(json!({"notify": [
            {"type": "webhook", "url": url.clone(), "events": ["orchestra.job.finished"]},
        ]}))
        .await;
        let client = world.connect().await;
        let record = client.run("coder", "NOTIFY-RESTART hello").await;
        let task_id = record["id"].as_str().unwrap().to_owned();
        let refused = |calls: &Calls| {
            calls.lock().unwrap().iter().find_map(|(key, _, body)| {
                (body["data"]["job"]["id"] == task_id.as_str()).then(|| key.clone())
            })
        };
        let key = common::eventually("a refused delivery", async || refused(&receiver.calls)).await;
        // The hub goes away with the delivery pending; the receiver comes back.
        client.close().await;
        super::common::stop_hub(&world.home, &world.project.dir);
        receiver
            .down
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let client = world.connect().await;
        let accepted = || {
            receiver
                .calls
                .lock()
                .unwrap()
                .iter()
                .filter(|(k, status, _)| *k == key && *status == 200)
                .count()
        };
        // The next hub's row for it says `delivered`: nothing more is sent for it after that,
        // so the receiver's count is final once the row is.
        let info = hub_info(&world.home, &world.project.dir).await;
        let http = reqwest::Client::new();
        let target = format!("webhook {url}");
        let row = eventually_async(
            || {
                let request = http
                    .get(format!("{}/api/v1/notify/deliveries", info.url))
                    .bearer_auth(&info.token);
                async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
            },
            |rows: &Value| {
                rows.as_array().unwrap().iter().any(|r| {
                    r["target"] == target.as_str()
                        && r["eventId"].as_u64() == key.parse().ok()
                        && r["status"] == "delivered"
                })
            },
        )
        .await;
        assert_eq!(accepted(), 1, "{row}");
        client.close().await;
    })
    .await;
}

async fn eventually_async<F, Fut>(mut fetch: F, done: impl Fn(&Value) -> bool) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    common::eventually("the deliveries to match", async || {
        let value = fetch().await;
        done(&value).then_some(value)
    })
    .await
}

/// A private session bus and a notification daemon on it; `None` (the test says it skipped)
/// when a program it needs is missing.
struct PrivateBus {
    daemon: Child,
    receiver: Child,
    address: String,
    lines: std::sync::mpsc::Receiver<String>,
}

impl PrivateBus {
    fn start() -> Option<PrivateBus> {
        for (program, package) in [
            ("dbus-daemon", "dbus-daemon"),
            ("notify-send", "libnotify-bin"),
            ("/usr/bin/python3", "python3-gi"),
        ] {
            if Command::new("sh")
                .args(["-c", &format!("command -v {program}")])
                .output()
                .map(|o| !o.status.success())
                .unwrap_or(true)
            {
                eprintln!(
                    "SKIPPED: the desktop notification test needs `{program}` (Debian package {package}; scripts/install-system-deps installs it)"
                );
                return None;
            }
        }
        let gi = Command::new("/usr/bin/python3")
            .args(["-c", "import gi"])
            .output()
            .unwrap();
        if !gi.status.success() {
            eprintln!(
                "SKIPPED: the desktop notification test needs python3-gi (scripts/install-system-deps installs it)"
            );
            return None;
        }
        let mut daemon = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut address = String::new();
        std::io::BufReader::new(daemon.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_owned();
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/notifications_daemon.py"
        );
        let mut receiver = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(&address)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = receiver.stdout.take().unwrap();
        let (send, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                if send.send(line).is_err() {
                    return;
                }
            }
        });
        let ready = lines.recv_timeout(Duration::from_secs(15)).unwrap();
        assert_eq!(ready, "READY");
        Some(PrivateBus {
            daemon,
            receiver,
            address,
            lines,
        })
    }
}

impl Drop for PrivateBus {
    fn drop(&mut self) {
        for child in [&mut self.receiver, &mut self.daemon] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_desktop_notification_reaches_the_session_bus() {
    let Some(bus) = PrivateBus::start() else {
        return;
    };
    bounded(async {
        let world = World::new(json!({"notify": [{"type": "desktop"}]})).await;
        let client = world
            .connect_with(&[], &[("DBUS_SESSION_BUS_ADDRESS", bus.address.as_str())])
            .await;
        let record = client.run("coder", "NOTIFY-DESKTOP <b>bold</b>").await;
        assert_eq!(record["status"], "succeeded", "{record}");
        let shown: Value = tokio::task::block_in_place(|| {
            serde_json::from_str(&bus.lines.recv_timeout(Duration::from_secs(30)).unwrap()).unwrap()
        });
        assert_eq!(shown["app"], "Open Orchestra");
        assert_eq!(shown["summary"], "Task succeeded: coder", "{shown}");
        let body = shown["body"].as_str().unwrap();
        // The worker's text is shown as text, never as markup.
        assert!(
            body.contains("NOTIFY-DESKTOP &lt;b&gt;bold&lt;/b&gt;"),
            "{body}"
        );
        client.close().await;
    })
    .await;
}
