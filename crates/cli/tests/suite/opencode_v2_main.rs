//! The real OpenCode 2.x (2.1.2, pinned in `tools/opencode-v2`) as the main OpenCode, set up by
//! `orchestra install` the way a 2.x user gets it, with 1.x workers. 2.x offers MCP tools inside
//! one `execute` tool that runs code against `tools.<server>.<tool>` ("code mode"), so the fake
//! main agent calls ours that way. One story, in the order a user meets it:
//! 1. install sees 2.x on PATH; 2.x loads the plugin (its `setup`) and starts `orchestra mcp`;
//! 2. a delegated task: started and awaited through `execute`, run on a 1.x worker, its answer in
//!    the 2.x reply; the memory block (a pinned record) and, while the task runs, the running-task
//!    line in the main model's system prompt;
//! 3. a background task: the turn ends at once, and the result reaches the chat when it is done;
//! 4. passthrough to `docs` and back;
//! 5. a pasted image, described by the vision worker for the main model;
//! 6. a compaction while a task runs keeps its id.
#![allow(clippy::unwrap_used)]

use super::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use orchestra_testkit::fake_llm::{ChatRequest, FakeLlm, Script};
use orchestra_testkit::opencode::{
    IsolatedHome, TestProject, catalog_provider, fake_provider_config, require_opencode,
    require_opencode_v2, write_project_config,
};
use serde_json::{Value, json};

const PINNED: &str = "Pinned for the 2.x main agent (v2-marker-5k)";
/// A 1×1 PNG, as a pasted screenshot arrives.
const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
/// How long the delegated and the background task run on their worker. The main agent's await
/// step must come while the delegated one runs: 5 s was once too short on a loaded CI machine.
const DELEGATED_MS: u64 = 8000;
const BACKGROUND_MS: u64 = 2500;
/// The task a compaction must keep: still running when the test ends (stopping the hub ends it),
/// so a slow machine cannot finish it before the compaction.
const HELD_MS: u64 = 120_000;

/// The text of the user's last message. 2.x may add a user-role `<system-update>` after it (when
/// the code-mode catalog changes, say as an MCP server connects), so those are skipped.
fn user_said(request: &ChatRequest) -> String {
    let text_of = |content: &Value| match content {
        Value::String(text) => Some(text.clone()),
        Value::Array(parts) => parts
            .iter()
            .find(|p| p["type"] == "text")
            .and_then(|p| p["text"].as_str().map(str::to_owned)),
        Value::Null | Value::Bool(_) | Value::Number(_) | Value::Object(_) => None,
    };
    request
        .messages
        .iter()
        .rev()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| text_of(&m["content"]))
        .find(|text| !text.trim_start().starts_with("<system-update>"))
        .unwrap_or_default()
}

/// The main agent (it has `execute`) does what the user's words ask, one `execute` call a step.
/// Workers (1.x: no `execute`) answer a passthrough message with its tag and echo the rest; the
/// title generator gets the echo too.
fn main_agent_v2(request: &ChatRequest) -> Option<Script> {
    let text = &user_said(request);
    if !request.tool_names.iter().any(|t| t == "execute") {
        let tag = text.split_whitespace().find(|w| w.starts_with("PT-"))?;
        return Some(Script::text(format!("WORKER_ANSWER {tag}")));
    }
    let execute = |code: String| Some(Script::tool_call("execute", json!({ "code": code })));
    let start = |args: Value| execute(format!("return await tools.orchestra.task_start({args})"));
    let result: Option<Value> = request
        .last_tool_result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok());
    if text.contains("DELEGATE") {
        let Some(value) = result else {
            return start(json!({"kind": "worker", "workerId": "coder",
                "task": format!("DELAYMS:{DELEGATED_MS} WORKER_TASK: add two and two")}));
        };
        let waiting_for = if value["next"] == "task_await" {
            value["taskId"].as_str()
        } else if value["status"] == "running" {
            value["id"].as_str()
        } else {
            None
        };
        if let Some(id) = waiting_for {
            return execute(format!(
                "return await tools.orchestra.task_await({})",
                json!({"taskId": id, "timeoutMs": 30000})
            ));
        }
        let answer = value["responseText"].as_str().unwrap_or("no result");
        return Some(Script::text(format!("MAIN_REPLY: {answer}")));
    }
    if text.contains("START_SLOW") {
        return match result {
            None => start(json!({"kind": "worker", "workerId": "coder",
                "task": format!("DELAYMS:{BACKGROUND_MS} slow job")})),
            Some(value) => Some(Script::text(format!("STARTED {}", value["taskId"]))),
        };
    }
    if text.contains("TALK_TO_DOCS") {
        return match result {
            None => start(json!({"kind": "op", "op": "passthrough.set",
                "worker": {"workerId": "docs"}})),
            Some(value) => Some(Script::text(format!("PASSTHROUGH_ON {}", value["status"]))),
        };
    }
    if text.contains("START_AGAIN") {
        return match result {
            None => start(json!({"kind": "worker", "workerId": "coder",
                "task": format!("DELAYMS:{HELD_MS} second slow job")})),
            Some(value) => Some(Script::text(format!("STARTED {}", value["taskId"]))),
        };
    }
    if request.system_prompt.contains("PASSTHROUGH mode")
        && let Some(answer) = common::fenced(text)
    {
        return Some(Script::text(answer));
    }
    let said: String = text.chars().take(120).collect();
    Some(Script::text(format!("MAIN_SAYS {said}")))
}

/// `opencode serve` of 2.x in its own process group, killed with its children (the `orchestra
/// mcp` it starts) when dropped.
struct MainV2 {
    child: tokio::process::Child,
    url: String,
    http: reqwest::Client,
    project: String,
}

const V2_PASSWORD: &str = "v2-secret";

impl MainV2 {
    async fn start(bin: &Path, cwd: &Path, project: &Path, env: Vec<(String, String)>) -> MainV2 {
        let mut child = tokio::process::Command::new(bin)
            .args(["serve", "--hostname", "127.0.0.1", "--port", "0"])
            .current_dir(cwd)
            .env("PWD", cwd)
            .envs(env)
            .env("OPENCODE_SERVER_PASSWORD", V2_PASSWORD)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(at) = line.find("http://") {
                    return line[at..].trim().to_owned();
                }
            }
            panic!("opencode 2.x serve ended without a URL");
        })
        .await
        .expect("opencode 2.x did not say where it listens within 60 s");
        // Keep reading, so a full pipe never stalls it.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        MainV2 {
            child,
            url,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            project: project.display().to_string(),
        }
    }

    fn request(&self, method: reqwest::Method, route: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{route}", self.url))
            .basic_auth("opencode", Some(V2_PASSWORD))
            .header("x-opencode-directory", &self.project)
    }

    async fn get(&self, route: &str) -> Value {
        let response = self
            .request(reqwest::Method::GET, route)
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success(), "GET {route}: {response:?}");
        response.json().await.unwrap()
    }

    async fn post(&self, route: &str, body: Value) -> Value {
        let response = self
            .request(reqwest::Method::POST, route)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "POST {route}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Sends `text` as the user and returns the assistant's texts of the turn it started, once
    /// 2.x marks the turn over (its `idle` entry, newer than the message).
    async fn say(&self, session: &str, text: &str) -> Vec<String> {
        let sent = self
            .post(
                &format!("/api/session/{session}/prompt"),
                json!({ "text": text }),
            )
            .await;
        let id = sent["data"]["id"].as_str().unwrap().to_owned();
        common::eventually(&format!("2.x to answer {text:?}"), async || {
            let messages = self.get(&format!("/api/session/{session}/message")).await;
            let messages = messages["data"].as_array()?;
            // Newest first: what comes before our message is the turn it started. Until the turn
            // begins, the message waits in the session's inbox and is not in the list at all.
            let ours = messages.iter().position(|m| m["id"] == id.as_str())?;
            let turn = &messages[..ours];
            turn.iter()
                .any(|m| m["type"] == "idle")
                .then(|| assistant_texts(turn))
        })
        .await
    }
}

impl Drop for MainV2 {
    fn drop(&mut self) {
        if let Some(pid) = self.child.id().and_then(|pid| i32::try_from(pid).ok()) {
            let _ = nix::sys::signal::killpg(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// The assistant texts among 2.x messages.
fn assistant_texts(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["type"] == "assistant")
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|part| part["type"] == "text")
        .filter_map(|part| part["text"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_2_as_the_main_agent_works_with_orchestra() {
    let v2 = require_opencode_v2();
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let _stop = stop_hubs_on_drop(&home, &project);
    tokio::time::timeout(Duration::from_secs(240), story(&v2, &home, &project))
        .await
        .expect("the 2.x story took longer than 240 s");
}

/// Stops, when the test ends (passed or failed), the project's hub and the one a wrong plugin
/// would start for 2.x's working directory (the home folder).
fn stop_hubs_on_drop<'a>(
    home: &'a IsolatedHome,
    project: &'a TestProject,
) -> [common::StopHubOnDrop<'a>; 2] {
    [
        common::StopHubOnDrop(home, &project.dir),
        common::StopHubOnDrop(home, &home.root),
    ]
}

/// A 2.x user's environment: 2.x is the `opencode` on PATH; the workers run the pinned 1.x.
fn user_env(home: &IsolatedHome, v2: &Path) -> Vec<(String, String)> {
    let mut env = home.env_with_plugins();
    env.push((
        "ORCHESTRA_OPENCODE_BIN".into(),
        require_opencode().display().to_string(),
    ));
    env.push((
        "PATH".into(),
        format!(
            "{}:{}",
            v2.parent().unwrap().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    ));
    env
}

async fn story(v2: &Path, home: &IsolatedHome, project: &TestProject) {
    let fake = FakeLlm::start_scripted().await.unwrap();
    fake.set_responder(main_agent_v2);
    write_project_config(project, &fake_provider_config(&fake.base_url())).unwrap();
    let env = user_env(home, v2);

    // 1. Install, as a 2.x user runs it: 2.x is the `opencode` on PATH.
    let orchestra = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_orchestra"))
            .args(args)
            .arg("--project")
            .arg(&project.dir)
            .envs(env.clone())
            .output()
            .unwrap()
    };
    let install = orchestra(&["install", "--json"]);
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    let report: Value = serde_json::from_slice(&install.stdout).unwrap();
    let folder = report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["entry"].as_str())
        .find_map(|entry| entry.strip_prefix("plugins[\"")?.strip_suffix("\"]"))
        .unwrap_or_else(|| panic!("install wrote no `plugins` entry for 2.x: {report}"))
        .to_owned();
    assert!(
        Path::new(&folder).join("index.js").is_file(),
        "2.x loads a folder's index.js: {report}"
    );
    let put = orchestra(&[
        "memory",
        "put",
        "--pin",
        "--kind",
        "convention",
        "--key",
        "v2",
        "--title",
        "V2",
        PINNED,
    ]);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );

    // Started elsewhere, the way 2.x's background service runs (in the user's home), serving the
    // project as a location: the plugin must find the project from that, not from its cwd.
    let main = MainV2::start(v2, &home.root, &project.dir, env.clone()).await;
    assert_eq!(main.get("/api/info").await["version"], "2.1.2");
    // 2.x loads a location's plugins in the background after its first request.
    let ours = common::eventually("2.x to list the plugin", async || {
        let plugins = main.get("/api/plugin").await;
        plugins["data"]
            .as_array()?
            .iter()
            .find(|p| p["id"] == "open-orchestra")
            .cloned()
    })
    .await;
    assert_eq!(ours["state"]["status"], "active", "{ours}");
    common::eventually("2.x to connect `orchestra mcp`", async || {
        let servers = main.get("/api/mcp").await;
        servers["data"]
            .as_array()?
            .iter()
            .any(|s| s["name"] == "orchestra" && s["status"]["status"] == "connected")
            .then_some(())
    })
    .await;
    let session = main
        .post(
            "/api/session",
            json!({"agent": "orchestrator", "location": {"directory": project.dir}}),
        )
        .await;
    let session = session["data"]["id"].as_str().unwrap().to_owned();

    // 2. A delegated task.
    let replies = main.say(&session, "DELEGATE: add two and two").await;
    assert!(
        replies.contains(&"MAIN_REPLY: ECHO: WORKER_TASK: add two and two".to_owned()),
        "{replies:?}"
    );
    let requests = fake.requests();
    let main_requests: Vec<_> = requests
        .iter()
        .filter(|r| r.tool_names.iter().any(|t| t == "execute"))
        .collect();
    assert!(
        main_requests.len() >= 3,
        "start, await, answer: {}",
        main_requests.len()
    );
    assert!(
        main_requests
            .iter()
            .all(|r| r.system_prompt.contains("v2-marker-5k")),
        "the plugin's context hook put the memory block into every main-agent step"
    );
    // The await step ran while the task did: the tool hook named the chat as the task's
    // caller (`callerSessionId`), so the hub put the running-task line into that step.
    assert!(
        main_requests[1]
            .system_prompt
            .contains("Tasks you started in this session are still running"),
        "{}",
        main_requests[1].system_prompt
    );
    // The installed agent's prompt, as 2.x passes it on: ours, written for 2.x's code mode.
    let system = &main_requests[0].system_prompt;
    assert!(
        system.contains("You are the orchestrator of Open Orchestra")
            && system.contains("`tools.orchestra.task_await`")
            && !system.contains("`orchestra_task_"),
        "{system}"
    );
    // The task ran on a 1.x worker (its own tools, no `execute`), with the task's text.
    assert!(
        requests
            .iter()
            .any(|r| !r.tool_names.iter().any(|t| t == "execute")
                && r.last_user_text.contains("WORKER_TASK: add two and two")),
        "no worker request"
    );

    // 3. A background task: the turn ends at once; the result comes to the chat when it is done.
    let replies = main.say(&session, "START_SLOW please").await;
    let started = replies
        .iter()
        .find_map(|r| r.strip_prefix("STARTED "))
        .unwrap_or_else(|| panic!("{replies:?}"))
        .trim_matches('"')
        .to_owned();
    let delivered = common::eventually("the background result in the 2.x chat", async || {
        // Added without waking the chat, it waits in the session's inbox for the next turn.
        let inbox = main.get(&format!("/api/session/{session}/inbox")).await;
        let messages = main.get(&format!("/api/session/{session}/message")).await;
        let both = format!("{inbox}{messages}");
        both.contains(&format!("Task `{started}` (coder) finished"))
            .then_some(both)
    })
    .await;
    assert!(delivered.contains("ECHO: slow job"), "{delivered}");

    // 4. Passthrough to docs, and back.
    let replies = main.say(&session, "TALK_TO_DOCS please").await;
    assert!(
        replies.iter().any(|r| r.starts_with("PASSTHROUGH_ON")),
        "{replies:?}"
    );
    let replies = main.say(&session, "PT-1 what does the README say?").await;
    assert!(
        replies.contains(&"WORKER_ANSWER PT-1".to_owned()),
        "the message went to docs and its answer came back: {replies:?}"
    );
    let replies = main.say(&session, "back").await;
    assert!(!replies.is_empty());
    let replies = main.say(&session, "hello main").await;
    assert!(
        replies
            .iter()
            .any(|r| r.starts_with("MAIN_SAYS hello main")),
        "passthrough ended: {replies:?}"
    );

    // 5. A pasted image: the vision worker describes it, the main model gets the words.
    let sent = main
        .post(
            &format!("/api/session/{session}/prompt"),
            json!({"text": "What does this screenshot show? IMAGE_STEP",
                   "files": [{"uri": PNG, "name": "shot.png"}]}),
        )
        .await;
    assert!(sent["data"]["id"].is_string(), "{sent}");
    let main_request = common::eventually("the main model to get the image step", async || {
        fake.requests().into_iter().find(|r| {
            r.tool_names.iter().any(|t| t == "execute") && r.last_user_text.contains("IMAGE_STEP")
        })
    })
    .await;
    let requests = fake.requests();
    assert!(
        requests.iter().any(|r| r.image_parts == 1
            && !r.tool_names.iter().any(|t| t == "execute")
            && serde_json::to_string(&r.messages)
                .unwrap()
                .contains("What does this screenshot show?")),
        "the vision worker never got the image"
    );
    assert_eq!(main_request.image_parts, 0, "the main model gets no image");
    assert!(
        serde_json::to_string(&main_request.messages)
            .unwrap()
            .contains("was described by the vision worker"),
        "{:?}",
        main_request.messages
    );

    // 6. A compaction while a task runs: the summary request is told to keep its id.
    let replies = main.say(&session, "START_AGAIN please").await;
    let second = replies
        .iter()
        .find_map(|r| r.strip_prefix("STARTED "))
        .unwrap_or_else(|| panic!("{replies:?}"))
        .trim_matches('"')
        .to_owned();
    main.post(&format!("/api/session/{session}/compact"), json!({}))
        .await;
    common::eventually("the compaction request", async || {
        fake.requests().into_iter().find(|r| {
            r.system_prompt.contains("Keep these task ids") && r.system_prompt.contains(&second)
        })
    })
    .await;

    assert!(
        common::hub_files(home, &home.root).read_info().is_none(),
        "the plugin started a hub for 2.x's working directory instead of the project"
    );
    drop(main);
}

/// A key stored the 2.x way (`opencode auth login`, in 2.x's own database) is not one the 1.x
/// workers can read: doctor names it, and says how to give it to them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_key_only_opencode_2_holds() {
    let v2 = require_opencode_v2();
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let _stop = stop_hubs_on_drop(&home, &project);
    let fake = FakeLlm::start_echo().await.unwrap();
    write_project_config(&project, &fake_provider_config(&fake.base_url())).unwrap();
    // A catalog provider both lines know, offered once a key for it is stored.
    home.set_models_catalog(&json!({
        "acme": catalog_provider("acme", "ACME_API_KEY", &format!("{}/v1", fake.base_url())),
    }))
    .unwrap();
    let env = user_env(&home, &v2);
    {
        // What `opencode auth login` does for a key, through 2.x's own API.
        let main = MainV2::start(&v2, &project.dir, &project.dir, env.clone()).await;
        // 2.x loads a location's integrations in the background after its first request.
        common::eventually("2.x to know the catalog's provider", async || {
            let all = main.get("/api/integration").await;
            all["data"]
                .as_array()?
                .iter()
                .any(|i| i["id"] == "acme")
                .then_some(())
        })
        .await;
        main.post(
            "/api/integration/acme/connect/key",
            json!({"key": "sk-only-in-v2"}),
        )
        .await;
    }
    let doctor = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["doctor", "--json", "--no-prompt", "--project"])
        .arg(&project.dir)
        .current_dir(&project.dir)
        .envs(env)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&doctor.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&doctor.stderr)));
    let credentials = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "v2-credentials")
        .unwrap_or_else(|| panic!("no v2-credentials check: {report}"));
    assert_eq!(credentials["status"], "warn", "{credentials}");
    assert!(
        credentials["summary"]
            .as_str()
            .unwrap()
            .contains("(`acme`)"),
        "{credentials}"
    );
    assert!(
        !report.to_string().contains("sk-only-in-v2"),
        "doctor never prints a secret"
    );
    assert!(credentials["fix"].as_str().unwrap().contains("auth login"));
}
