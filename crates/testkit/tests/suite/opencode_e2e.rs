#![allow(clippy::unwrap_used)]
//! The real pinned OpenCode (1.18.33) against the fake LLM, fully isolated and offline.
//!
//! What OpenCode 1.18.33 sends (seen in the fake's request log by this test):
//! * `tools` in serve mode, build agent: bash, edit, glob, grep, question, read, skill, task, todowrite,
//!   webfetch, write, in that (alphabetical) order.
//! * The `write` tool's parameters are `{"content": string, "filePath": string}` (absolute path), both required.
//! * After the tool ran, the follow-up request ends with `{"role":"tool","tool_call_id":"call_…","content":…}`,
//!   where the content is the write tool's output (`Wrote file successfully.`).

use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::{
    IsolatedHome, TestProject, fake_provider_config, require_opencode,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const PASSWORD: &str = "testkit-secret";

/// Kills the whole process group if the test fails half-way.
struct ProcessGroup(Option<Pid>);

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

fn text_parts(reply: &Value) -> Vec<String> {
    reply["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["type"] == "text")
        .map(|p| p["text"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_opencode_talks_to_the_fake_and_runs_the_write_tool() {
    let bin = require_opencode();
    let fake = FakeLlm::start_scripted().await.unwrap();
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let config = fake_provider_config(&fake.base_url()).to_string();

    let started = Instant::now();
    let mut child = Command::new(&bin)
        .args(["serve", "--port", "0", "--hostname", "127.0.0.1"])
        .current_dir(&project.dir)
        .env("PWD", &project.dir)
        .envs(home.env())
        .env("OPENCODE_CONFIG_CONTENT", &config)
        .env("OPENCODE_SERVER_PASSWORD", PASSWORD)
        .env_remove("OPENCODE_CONFIG")
        .env_remove("OPENCODE_SERVER_USERNAME")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pgid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    let mut group = ProcessGroup(Some(pgid));

    let mut stderr = child.stderr.take().unwrap();
    let stderr_log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = stdout.next_line().await.unwrap() {
            if let Some(rest) = line.split("opencode server listening on ").nth(1) {
                return rest.trim().to_owned();
            }
        }
        panic!("opencode exited before listening");
    })
    .await
    .expect("no `opencode server listening on` line within 30 s");
    let listening = started.elapsed();
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });

    // A request during startup can be accepted and never answered: short per-request timeouts.
    let health_client = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let health = loop {
        let attempt = health_client
            .get(format!("{url}/global/health"))
            .basic_auth("opencode", Some(PASSWORD))
            .send()
            .await;
        if let Ok(resp) = attempt
            && resp.status().is_success()
        {
            break resp.json::<Value>().await.unwrap();
        }
        assert!(started.elapsed() < Duration::from_secs(30), "never healthy");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let healthy = started.elapsed();
    assert_eq!(health["healthy"], true);
    assert_eq!(health["version"], "1.18.33");

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let post = |path: String, body: Value| {
        client
            .post(format!("{url}{path}"))
            .basic_auth("opencode", Some(PASSWORD))
            .json(&body)
            .send()
    };
    let session: Value = post("/session".into(), json!({"title": "t"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["id"].as_str().unwrap().to_owned();

    let t = Instant::now();
    let reply: Value = post(
        format!("/session/{id}/message"),
        json!({"parts": [{"type": "text", "text": "hello fake"}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let first_prompt = t.elapsed();
    assert_eq!(text_parts(&reply), ["ECHO: hello fake"], "{reply}");

    let first = fake.requests();
    assert_eq!(first.len(), 1, "a titled session makes no title call");
    let request = &first[0];
    assert_eq!(
        (request.model.as_str(), request.stream),
        ("fake-model", true)
    );
    assert_eq!(request.last_user_text, "hello fake");
    let write = request.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["function"]["name"] == "write")
        .unwrap();
    let params = &write["function"]["parameters"];
    let mut write_args: Vec<&String> = params["properties"].as_object().unwrap().keys().collect();
    write_args.sort();
    assert_eq!(write_args, ["content", "filePath"], "{params}");
    eprintln!("tools sent by OpenCode: {:?}", request.tool_names);
    eprintln!("write tool parameters: {params}");

    let target = project.dir.join("hello.txt");
    let call = format!(
        "CALL_TOOL:write {}",
        json!({"filePath": target.to_string_lossy(), "content": "hi"})
    );
    let t = Instant::now();
    let reply: Value = post(
        format!("/session/{id}/message"),
        json!({"parts": [{"type": "text", "text": call}]}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let tool_prompt = t.elapsed();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "hi");
    let texts = text_parts(&reply);
    assert_eq!(texts.len(), 1, "{reply}");
    assert!(texts[0].starts_with("TOOL_RESULT_SEEN: "), "{reply}");

    let all = fake.requests();
    assert_eq!(all.len(), 3, "hello, the tool call, the follow-up");
    let follow_up = all[2].messages.last().unwrap();
    assert_eq!(follow_up["role"], "tool", "{follow_up}");
    let tool_call_id = all[2].messages[all[2].messages.len() - 2]["tool_calls"][0]["id"].clone();
    assert_eq!(follow_up["tool_call_id"], tool_call_id);
    eprintln!("tool result message: {follow_up}");
    eprintln!(
        "timings: listening {listening:?}, healthy {healthy:?}, first prompt {first_prompt:?}, \
         write-tool prompt {tool_prompt:?}"
    );

    // Tear down by process group, then prove nothing of it is left.
    let t = Instant::now();
    killpg(pgid, Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("opencode ignored SIGTERM for 10 s")
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match killpg(pgid, None) {
            Err(Errno::ESRCH) => break,
            Ok(()) | Err(_) => {
                assert!(
                    Instant::now() < deadline,
                    "processes of group {pgid} survive SIGTERM"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    group.0 = None;
    eprintln!(
        "opencode exited with {status} after SIGTERM; group gone in {:?}",
        t.elapsed()
    );
    let stderr = stderr_log.await.unwrap();
    assert!(!stderr.contains("ProviderModelNotFoundError"), "{stderr}");
}
