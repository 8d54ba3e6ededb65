//! `orchestra serve` as a person starts it: one hub per project, announced in a private state
//! file, serving MCP over HTTP to clients that connect by URL (a real worker task), the event
//! stream, and the panel through a one-time login link; a second `serve` points at the first.
#![allow(clippy::unwrap_used)]

use super::common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::{World, alive, bounded, hub_info, wait_gone};
use orchestra_testkit::opencode::require_opencode;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// One JSON-RPC answer from a JSON body or an SSE body (whose first event primes the stream).
async fn answer(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    let json = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .find(|data| !data.is_empty())
        .unwrap_or(text.as_str());
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON-RPC: {e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_is_one_hub_per_project_with_mcp_over_http_and_a_panel_login() {
    bounded(async {
        let world = World::new(json!({})).await;
        let orchestra = |args: &[&str]| {
            let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"));
            command
                .args(args)
                .arg("--project")
                .arg(&world.project.dir)
                .envs(world.home.env())
                .env("ORCHESTRA_OPENCODE_BIN", require_opencode());
            command
        };
        let mut serving = tokio::process::Command::from(orchestra(&["serve"]))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let info = hub_info(&world.home, &world.project.dir).await;
        assert_eq!(Some(info.pid), serving.id());
        let files = common::hub_files(&world.home, &world.project.dir);
        let mode = std::fs::metadata(&files.info).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o777,
            0o600,
            "hub.json must be readable by the user only"
        );
        assert!(info.url.starts_with("http://127.0.0.1:"), "{}", info.url);

        // A second hub for the project says where the first is, and leaves.
        let second = orchestra(&["serve"]).output().unwrap();
        assert!(second.status.success());
        let said = String::from_utf8_lossy(&second.stdout);
        assert!(
            said.contains("already serves") && said.contains(&info.url),
            "{said}"
        );

        // MCP over Streamable HTTP, as a client that connects by URL: a real task on a worker.
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        let mcp = format!("{}/mcp", info.url);
        let post = |body: Value, session: Option<String>| {
            let mut request = http
                .post(&mcp)
                .bearer_auth(&info.token)
                .header("accept", "application/json, text/event-stream")
                .header("mcp-protocol-version", "2025-06-18")
                .json(&body);
            if let Some(session) = session {
                request = request.header("mcp-session-id", session);
            }
            request.send()
        };
        let init = post(
            json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": "by-url", "version": "1"}}}),
            None,
        )
        .await
        .unwrap();
        let session = init
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(
            answer(init).await["result"]["serverInfo"]["name"],
            "orchestra"
        );
        post(
            json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
            session.clone(),
        )
        .await
        .unwrap();
        let call = |id: u64, name: &str, arguments: Value| {
            post(
                json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                       "params": {"name": name, "arguments": arguments}}),
                session.clone(),
            )
        };
        let started = answer(
            call(
                2,
                "task_start",
                json!({"kind": "worker", "workerId": "coder", "task": "hello over http"}),
            )
            .await
            .unwrap(),
        )
        .await;
        let started: Value =
            serde_json::from_str(started["result"]["content"][0]["text"].as_str().unwrap())
                .unwrap();
        let task = started["taskId"].as_str().unwrap().to_owned();
        let mut record = Value::Null;
        for id in 3..20 {
            let awaited = answer(
                call(id, "task_await", json!({"taskId": task}))
                    .await
                    .unwrap(),
            )
            .await;
            record =
                serde_json::from_str(awaited["result"]["content"][0]["text"].as_str().unwrap())
                    .unwrap();
            if record["status"] != "running" {
                break;
            }
        }
        assert_eq!(record["status"], "succeeded", "{record}");
        assert_eq!(record["responseText"], "ECHO: hello over http");
        assert_eq!(record["requestedBy"], "by-url");

        // The panel: a one-time link from the CLI logs a browser in.
        let link = orchestra(&["panel", "--url"]).output().unwrap();
        assert!(
            link.status.success(),
            "{}",
            String::from_utf8_lossy(&link.stderr)
        );
        let url = String::from_utf8_lossy(&link.stdout).trim().to_owned();
        assert!(
            url.starts_with(&info.url) && !url.contains(&info.token),
            "{url}"
        );
        let browser = reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let login = browser.get(&url).send().await.unwrap();
        assert_eq!(login.status(), StatusCode::OK);
        let cookie = login.headers()["set-cookie"].to_str().unwrap();
        let cookie = cookie.split(';').next().unwrap().to_owned();
        let page = browser
            .get(format!("{}/", info.url))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        assert!(page.text().await.unwrap().contains("Open Orchestra"));
        let again = browser.get(&url).send().await.unwrap();
        assert_eq!(
            again.status(),
            StatusCode::UNAUTHORIZED,
            "a login link works once"
        );

        // Ctrl-C (SIGTERM) stops the hub, its workers, and its announcement.
        let workers: Vec<Value> = http
            .get(format!("{}/api/v1/workers", info.url))
            .bearer_auth(&info.token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let opencode = workers.iter().find_map(|w| w["pid"].as_u64()).unwrap() as u32;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(info.pid).unwrap()),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let status = tokio::time::timeout(Duration::from_secs(30), serving.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success());
        assert!(!alive(info.pid));
        wait_gone(opencode).await;
        assert!(files.read_info().is_none());
    })
    .await;
}
