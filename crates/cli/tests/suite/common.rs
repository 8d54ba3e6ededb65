//! `orchestra mcp` as a child process, driven by rmcp's client, against real
//! OpenCode workers and the fake LLM. Shared by the MCP tests. The fake LLM is the
//! project's own provider `fake`, in its `opencode.json`, where users keep theirs.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orchestra_client::{HubFiles, HubInfo};

use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::{
    FOREIGN_CONFIG_VARS, IsolatedHome, TestProject, fake_provider_config, require_opencode,
    write_project_config,
};
use orchestra_testkit::processes;
use rmcp::ServiceExt;
use rmcp::model::CallToolRequestParams;
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

pub struct World {
    pub fake: FakeLlm,
    pub home: IsolatedHome,
    pub project: TestProject,
    pub config: PathBuf,
    /// In the environment of every `orchestra mcp` this world starts, and so of the hub and
    /// everything it starts (see `orchestra_testkit::processes::with_marker`).
    pub marker: String,
}

/// No test leaves a hub behind: the project's hub is stopped when the world goes, also when
/// the test failed.
impl Drop for World {
    fn drop(&mut self) {
        stop_hub(&self.home, &self.project.dir);
    }
}

/// The hub files of `project` in an isolated home.
pub fn hub_files(home: &IsolatedHome, project: &Path) -> HubFiles {
    HubFiles::in_dir(orchestra_state_dir::project_state_dir_in(
        &home.home().join(".local/state"),
        project,
    ))
}

/// The running hub's announcement, waiting for it up to 30 s.
pub async fn hub_info(home: &IsolatedHome, project: &Path) -> HubInfo {
    let files = hub_files(home, project);
    for _ in 0..600 {
        if let Some(info) = files.read_info() {
            return info;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no hub announced itself for {}", project.display());
}

/// `orchestra stop` as a person would run it; if that could not stop it, the hub's recorded
/// pid is killed.
pub fn stop_hub(home: &IsolatedHome, project: &Path) {
    let stopped = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["stop", "--project"])
        .arg(project)
        .envs(home.env())
        .output();
    if let Some(info) = hub_files(home, project).read_info()
        && alive(info.pid)
        && !stopped.is_ok_and(|out| out.status.success())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(info.pid).unwrap_or(0)),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The OpenCode worker servers of hub `hub`: each runs under the hub's supervisor
/// (`orchestra __supervise`), a child of the hub.
pub fn worker_servers(hub: u32) -> Vec<u32> {
    children_of(hub)
        .into_iter()
        .flat_map(|child| {
            if processes::cmdline(child).contains(" __supervise ") {
                children_of(child)
            } else {
                vec![child]
            }
        })
        .collect()
}

/// The processes whose parent is `pid`.
pub fn children_of(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in entries.flatten() {
        let Some(child) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let after = stat.rfind(')').map_or("", |i| &stat[i + 1..]);
        let ppid = after
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

pub struct Client {
    pub service: RunningService<RoleClient, ()>,
    pub pid: u32,
}

impl World {
    pub async fn new(orchestrator: Value) -> World {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let home = IsolatedHome::new().unwrap();
        let project = TestProject::new().unwrap();
        write_project_config(&project, &fake_provider_config(&fake.base_url())).unwrap();
        let config = home.root.join("orchestrator.json");
        std::fs::write(&config, orchestrator.to_string()).unwrap();
        World {
            fake,
            home,
            project,
            config,
            marker: processes::new_marker(),
        }
    }

    /// The project's store (where the hub keeps jobs, runs, events, process groups).
    pub fn store(&self) -> orchestra_store::Store {
        let dir = hub_files(&self.home, &self.project.dir).dir;
        orchestra_store::Store::open(&dir.join("orchestra.db")).unwrap()
    }

    pub async fn connect(&self) -> Client {
        self.connect_with(&[], &[]).await
    }

    /// `orchestra mcp <args>` with extra environment.
    pub async fn connect_with(&self, args: &[&str], env: &[(&str, &str)]) -> Client {
        let mut command = self.mcp_command(args);
        command.envs(env.iter().copied());
        let transport = TokioChildProcess::new(command).unwrap();
        let pid = transport.id().unwrap();
        let service = ().serve(transport).await.unwrap();
        Client { service, pid }
    }

    /// `orchestra mcp <args>` on this world's project, config and home.
    pub fn mcp_command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestra"));
        for var in FOREIGN_CONFIG_VARS {
            command.env_remove(var);
        }
        command
            .arg("mcp")
            .args(args)
            .arg("--project")
            .arg(&self.project.dir)
            .arg("--config")
            .arg(&self.config)
            .envs(self.home.env())
            .env("ORCHESTRA_OPENCODE_BIN", require_opencode())
            .env("ORCHESTRA_LOG", "warn")
            .env(processes::MARKER_VAR, &self.marker);
        command
    }
}

impl Client {
    /// Calls a tool; returns (is_error, text).
    pub async fn call(&self, tool: &str, args: Value) -> (bool, String) {
        let Value::Object(args) = args else {
            panic!("args must be an object")
        };
        let result = self
            .service
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
            .await
            .unwrap();
        let text = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect::<Vec<_>>()
            .join("\n");
        (result.is_error.unwrap_or(false), text)
    }

    pub async fn call_json(&self, tool: &str, args: Value) -> Value {
        let (is_error, text) = self.call(tool, args).await;
        assert!(!is_error, "{tool} failed: {text}");
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{tool} returned non-JSON ({e}): {text}"))
    }

    /// The pid of the first worker server the hub runs, waiting (up to a minute) for one that
    /// is still starting: worker listings do not wait for a start.
    pub async fn worker_pid(&self) -> u32 {
        for _ in 0..600 {
            let workers = self
                .call_json("task_list", json!({"view": "workers", "format": "json"}))
                .await;
            if let Some(pid) = workers
                .as_array()
                .unwrap()
                .iter()
                .find_map(|w| w["pid"].as_u64())
            {
                return u32::try_from(pid).unwrap();
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no worker server is running");
    }

    /// Ends the MCP session (the client went away) and waits for the relay to exit.
    pub async fn close(self) {
        self.service.cancel().await.unwrap();
        wait_gone(self.pid).await;
    }

    /// Starts a task on `worker` and awaits its final record.
    pub async fn run(&self, worker: &str, task: &str) -> Value {
        let started = self
            .call_json(
                "task_start",
                json!({"kind": "worker", "workerId": worker, "task": task}),
            )
            .await;
        self.finish(started["taskId"].as_str().unwrap()).await
    }

    pub async fn finish(&self, id: &str) -> Value {
        for _ in 0..60 {
            let record = self.call_json("task_await", json!({"taskId": id})).await;
            if record["status"] != "running" {
                return record;
            }
        }
        panic!("task {id} never finished");
    }
}

/// SIGKILLs a process, as a crash would, and waits until it is gone.
pub async fn kill(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap()),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    wait_gone(pid).await;
}

pub async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(150), f)
        .await
        .expect("test took longer than 150 s");
}

pub fn alive(pid: u32) -> bool {
    orchestra_store::pid_is_alive(pid)
}

pub async fn wait_gone(pid: u32) {
    for _ in 0..100 {
        if !alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("process {pid} is still alive");
}

/// The user's main OpenCode, started directly (not under a hub), with one fresh session in
/// `project`: the main agent of the main-agent and plugin stories. Returns the server, its
/// client and the session's id.
pub async fn main_opencode(
    opencode: PathBuf,
    project: &Path,
    env: Vec<(String, String)>,
    startup_timeout: Duration,
) -> (
    orchestra_core::supervisor::ServerProcess,
    orchestra_core::opencode::OpenCodeClient,
    String,
) {
    let main =
        orchestra_core::supervisor::ServerProcess::spawn(orchestra_core::supervisor::ServeSpec {
            supervisor: None,
            binary: opencode,
            cwd: project.to_path_buf(),
            env,
            password: "main-secret".into(),
            port: 0,
            startup_timeout,
            label: "main".into(),
        })
        .await
        .unwrap();
    let client = main.client(Some(project.to_path_buf())).unwrap();
    let session = client
        .create_session(&orchestra_core::opencode::CreateSessionRequest {
            title: Some("main".into()),
            ..Default::default()
        })
        .await
        .unwrap()
        .id;
    (main, client, session)
}

/// Polls `check` every 100 ms until it gives a value, for at most a minute.
pub async fn eventually<T>(what: &str, mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The text between the first `<orchestra-data>` fence's opening and closing tags.
pub fn fenced(text: &str) -> Option<String> {
    let open = text.find("<orchestra-data")?;
    let body = &text[open..];
    let start = body.find('\n')? + 1;
    let end = body.find("</orchestra-data>")?;
    Some(body[start..end].trim().to_owned())
}

/// Stops the project's hub when dropped, so a test that fails (a panic unwinds past any call
/// after it) leaves no hub behind either.
pub struct StopHubOnDrop<'a>(pub &'a IsolatedHome, pub &'a Path);

impl Drop for StopHubOnDrop<'_> {
    fn drop(&mut self) {
        stop_hub(self.0, self.1);
    }
}

/// How many plugin instances have their delivery stream open to the project's hub; `None`
/// while the hub does not answer.
async fn plugin_count(home: &IsolatedHome, project: &Path) -> Option<u64> {
    let hub = hub_info(home, project).await;
    let http = reqwest::Client::builder().no_proxy().build().ok()?;
    let health: Value = http
        .get(format!("{}/api/v1/health", hub.url))
        .bearer_auth(&hub.token)
        .send()
        .await
        .ok()?
        .json()
        .await
        .ok()?;
    health["plugins"].as_u64()
}

/// How many plugin instances have their delivery stream open to the project's hub.
pub async fn plugin_streams(home: &IsolatedHome, project: &Path) -> u64 {
    plugin_count(home, project)
        .await
        .expect("the hub answers its health check")
}

/// Waits until the hub reports a connected plugin (its delivery stream).
pub async fn plugin_connected(home: &IsolatedHome, project: &Path) {
    eventually("the plugin to connect to the hub", async || {
        (plugin_count(home, project).await? >= 1).then_some(())
    })
    .await;
}

/// `orchestra install --json` on `project`, as a person runs it; its report.
pub fn install(home: &IsolatedHome, project: &Path) -> Value {
    let install = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["install", "--json", "--project"])
        .arg(project)
        .envs(home.env())
        .output()
        .unwrap();
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    serde_json::from_slice(&install.stdout).unwrap()
}
