//! OpenCode 2.x (`@opencode/cli`): the plugin module's shape (node imports it and finds what
//! both lines read), the config `orchestra install --opencode v2` writes and `uninstall` takes
//! back, and the real 2.x (2.1.2, pinned in `tools/opencode-v2`) as the main OpenCode, set up by
//! `orchestra install` the way a 2.x user gets it, delegating to 1.x workers.
#![allow(clippy::unwrap_used)]

use super::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use orchestra_testkit::fake_llm::{ChatRequest, FakeLlm, Script};
use orchestra_testkit::opencode::{
    IsolatedHome, TestProject, fake_provider_config, require_opencode, write_project_config,
};
use serde_json::{Value, json};

fn orchestra(home: &IsolatedHome, project: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(args)
        .arg("--project")
        .arg(project)
        .envs(home.env())
        .output()
        .unwrap()
}

fn ok_json(output: std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn plugin_file_of(report: &Value) -> String {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["entry"].as_str().unwrap())
        .find(|entry| entry.ends_with(".js"))
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_module_loads_in_node_with_the_shape_both_lines_read() {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let report = ok_json(orchestra(
        &home,
        &project.dir,
        &["install", "--json", "--opencode", "v2"],
    ));
    let file = plugin_file_of(&report);
    // What 2.x (2.1.2) does with it: import, decode `default` as { id, setup }, call setup(ctx)
    // (`location.directory` is the project; `options` the config's plugin options), and
    // later run the `context` hook for a model step. The hook finds the project's hub (the
    // plugin starts it) and must leave only text parts in the system prompt.
    let script = r#"
const m = await import(process.argv[1]);
const hooks = {};
const ctx = { location: { directory: process.argv[2] }, options: {}, session: { hook: async (name, fn) => { hooks[name] = fn; } } };
await m.default.setup(ctx);
const evt = { sessionID: "ses_doctor", system: [] };
await hooks.context(evt);
console.log(JSON.stringify({
  exports: Object.keys(m).sort(), id: m.default.id, sameServer: m.default.server === m.OpenOrchestra,
  setup: typeof m.default.setup, hooks: Object.keys(hooks), systemTypes: [...new Set(evt.system.map((p) => p.type))],
}));
process.exit(0);
"#;
    let output = tokio::task::spawn_blocking({
        let env = home.env();
        let dir = project.dir.clone();
        move || {
            Command::new("node")
                .args(["--input-type=module", "-e", script, &file])
                .arg(&dir)
                .envs(env)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    common::stop_hub(&home, &project.dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shape: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        shape,
        json!({"exports": ["OpenOrchestra", "default"], "id": "open-orchestra", "sameServer": true,
               "setup": "function", "hooks": ["context"], "systemTypes": shape["systemTypes"].clone()})
    );
    assert!(
        shape["systemTypes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t == "text"),
        "{shape}"
    );
}

#[test]
fn install_for_v2_writes_plugins_and_uninstall_takes_exactly_that_back() {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let original = "{\n  // mine\n  \"plugins\": [\"./my-plugin.ts\"]\n}\n";
    project.write("opencode.json", original).unwrap();
    let config = || -> Value {
        jsonc_parser::parse_to_serde_value(
            &std::fs::read_to_string(project.dir.join("opencode.json")).unwrap(),
            &Default::default(),
        )
        .unwrap()
    };

    let report = ok_json(orchestra(
        &home,
        &project.dir,
        &["install", "--json", "--opencode", "v2"],
    ));
    // 2.1.2 refuses a file in `plugins` ("configured plugin path must be a directory") and
    // loads a folder's index.js.
    let v2_file = plugin_file_of(&report);
    let v2_folder = Path::new(&v2_file).parent().unwrap().to_owned();
    assert!(v2_file.ends_with("/index.js"), "{v2_file}");
    let config_v2 = config();
    assert_eq!(
        config_v2["plugins"],
        json!(["./my-plugin.ts", v2_folder.display().to_string()])
    );
    assert!(
        config_v2.get("plugin").is_none(),
        "no V1 key for 2.x: {config_v2}"
    );
    assert_eq!(config_v2["mcp"]["orchestra"]["command"][1], "mcp");
    assert_eq!(config_v2["agent"]["orchestrator"]["mode"], "primary");

    // The same project moved back to 1.x: the entry moves from `plugins` to `plugin`, as a
    // file, and 2.x's folder goes.
    let report = ok_json(orchestra(
        &home,
        &project.dir,
        &["install", "--json", "--opencode", "v1"],
    ));
    let v1_file = plugin_file_of(&report);
    let config_v1 = config();
    assert_eq!(config_v1["plugins"], json!(["./my-plugin.ts"]));
    assert_eq!(config_v1["plugin"], json!([v1_file]));
    assert!(Path::new(&v1_file).is_file());
    assert!(!v2_folder.exists(), "the 2.x folder was left behind");

    ok_json(orchestra(
        &home,
        &project.dir,
        &["install", "--json", "--opencode", "v2"],
    ));
    assert!(
        !Path::new(&v1_file).exists(),
        "the 1.x file was left behind"
    );
    ok_json(orchestra(&home, &project.dir, &["uninstall", "--json"]));
    assert_eq!(
        std::fs::read_to_string(project.dir.join("opencode.json")).unwrap(),
        original
    );
    assert!(!v2_folder.exists());
}

/// The main 2.x agent's script. 2.x offers MCP tools through one `execute` tool that runs code
/// against `tools.<server>.<tool>` ("code mode"), so the main agent starts a task, awaits it, and
/// answers with its result, each step one `execute` call. Workers (1.x: no `execute`) and the
/// title generator get the default echo.
fn main_agent_v2(request: &ChatRequest) -> Option<Script> {
    if !request.tool_names.iter().any(|t| t == "execute") {
        return None;
    }
    let execute = |code: String| Some(Script::tool_call("execute", json!({ "code": code })));
    let Some(result) = &request.last_tool_result else {
        return execute(
            "return await tools.orchestra.task_start({kind: 'worker', workerId: 'coder', \
             task: 'WORKER_TASK: add two and two'})"
                .to_owned(),
        );
    };
    let value: Value = serde_json::from_str(result).ok()?;
    let waiting_for = if value["next"] == "task_await" {
        value["taskId"].as_str()
    } else if value["status"] == "running" {
        value["id"].as_str()
    } else {
        None
    };
    if let Some(id) = waiting_for {
        return execute(format!(
            "return await tools.orchestra.task_await({{taskId: {}, timeoutMs: 30000}})",
            json!(id)
        ));
    }
    Some(Script::text(format!(
        "MAIN_REPLY: {}",
        value["responseText"].as_str().unwrap_or("no result")
    )))
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

/// The assistant text of a 2.x session's messages (newest first in 2.x's answer).
fn assistant_texts(messages: &Value) -> Vec<String> {
    messages["data"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["type"] == "assistant")
        .flat_map(|m| m["content"].as_array().cloned().unwrap_or_default())
        .filter(|part| part["type"] == "text")
        .filter_map(|part| part["text"].as_str().map(str::to_owned))
        .collect()
}

/// What a 2.x user gets: `orchestra install` sees 2.x on PATH and writes what it reads; 2.x
/// loads the plugin (its `setup`) and starts `orchestra mcp`; the main agent (the installed
/// `orchestrator`) starts a task through the orchestra tools, the task runs on a 1.x worker, and
/// its answer comes back into the 2.x session. The plugin's `context` hook puts the memory block
/// (a pinned record) into the main model's system prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_2_as_the_main_agent_delegates_through_orchestra() {
    let v2 = orchestra_testkit::opencode::require_opencode_v2();
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let _stop = StopHubAtTheEnd(&home, &project);
    tokio::time::timeout(
        Duration::from_secs(180),
        delegates_through_orchestra(&v2, &home, &project),
    )
    .await
    .expect("the 2.x story took longer than 180 s");
}

/// Stops the hub the plugin started when the test ends, passed or failed (a failed assertion
/// unwinds past any call after it).
struct StopHubAtTheEnd<'a>(&'a IsolatedHome, &'a TestProject);

impl Drop for StopHubAtTheEnd<'_> {
    fn drop(&mut self) {
        common::stop_hub(self.0, &self.1.dir);
        // And one a wrong plugin would start for 2.x's working directory.
        common::stop_hub(self.0, &self.0.root);
    }
}

async fn delegates_through_orchestra(v2: &Path, home: &IsolatedHome, project: &TestProject) {
    const PINNED: &str = "Pinned for the 2.x main agent (v2-marker-5k)";
    let fake = FakeLlm::start_scripted().await.unwrap();
    fake.set_responder(main_agent_v2);
    write_project_config(project, &fake_provider_config(&fake.base_url())).unwrap();
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

    let orchestra = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_orchestra"))
            .args(args)
            .arg("--project")
            .arg(&project.dir)
            .envs(env.clone())
            .output()
            .unwrap()
    };
    let report = ok_json(orchestra(&["install", "--json"]));
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

    let session = main
        .post(
            "/api/session",
            json!({"agent": "orchestrator", "location": {"directory": project.dir}}),
        )
        .await;
    let session = session["data"]["id"].as_str().unwrap().to_owned();
    main.post(
        &format!("/api/session/{session}/prompt"),
        json!({"text": "Add two and two, through a worker."}),
    )
    .await;
    let mut replies = Vec::new();
    for _ in 0..600 {
        replies = assistant_texts(&main.get(&format!("/api/session/{session}/message")).await);
        if replies.iter().any(|text| text.starts_with("MAIN_REPLY")) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let requests = fake.requests();
    assert!(
        replies
            .iter()
            .any(|text| text == "MAIN_REPLY: ECHO: WORKER_TASK: add two and two"),
        "the 2.x session's replies: {replies:?}; the model saw {} requests",
        requests.len()
    );
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
    // The installed agent's prompt, as 2.x passes it on: ours, written for 2.x's code mode.
    let system = &main_requests[0].system_prompt;
    assert!(
        system.contains("You are the orchestrator of Open Orchestra")
            && system.contains("`tools.orchestra.task_await`")
            && !system.contains("orchestra_task_"),
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
    assert!(
        common::hub_files(home, &home.root).read_info().is_none(),
        "the plugin started a hub for 2.x's working directory instead of the project"
    );
    drop(main);
}
