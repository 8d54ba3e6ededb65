//! The bench's world: the fake LLM, an isolated HOME, a throw-away git project, `orchestra mcp`
//! as a child process driven by a real MCP client, and OpenCode servers started directly.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, anyhow, bail};
use orchestra_core::config::Config;
use orchestra_core::supervisor::{ServeSpec, ServerProcess};
use orchestra_testkit::fake_llm::opencode::fake_mode_config;
use orchestra_testkit::fake_llm::{FakeLlm, RecordedRequest};
use orchestra_testkit::sandbox::{IsolatedHome, TestProject};
use rmcp::ServiceExt;
use rmcp::service::{Peer, RoleClient, RunningService};
use rmcp::transport::TokioChildProcess;
use serde_json::{Value, json};

/// Bench progress goes to stderr: stdout carries the table.
pub fn progress(message: &str) {
    eprintln!("{message}");
}

static ORCHESTRA_BIN: OnceLock<PathBuf> = OnceLock::new();

/// Chooses the `orchestra` binary the bench measures: `chosen` (`--orchestra`), else the
/// `orchestra` next to this binary (`target/<profile>/`, where the same `cargo build` puts it).
pub fn set_orchestra_bin(chosen: Option<PathBuf>) -> anyhow::Result<()> {
    let bin = match chosen {
        Some(bin) => bin,
        None => std::env::current_exe()
            .context("cannot find this orchestra-bench binary")?
            .with_file_name("orchestra"),
    };
    if !bin.is_file() {
        bail!(
            "no orchestra binary at {}; build it first (`cargo build -p orchestra-cli`, with \
             `--release` for a release bench) or pass --orchestra PATH",
            bin.display()
        );
    }
    progress(&format!("bench: measuring {}", bin.display()));
    // Set once, before any group runs; a second call would only repeat the same choice.
    let _ = ORCHESTRA_BIN.set(bin);
    Ok(())
}

/// The `orchestra` binary under measurement (see [`set_orchestra_bin`]).
pub fn orchestra_bin() -> anyhow::Result<&'static Path> {
    ORCHESTRA_BIN
        .get()
        .map(PathBuf::as_path)
        .context("the bench chose no orchestra binary")
}

pub struct World {
    pub fake: FakeLlm,
    pub home: IsolatedHome,
    pub project: TestProject,
    pub opencode: PathBuf,
}

impl World {
    pub async fn new() -> anyhow::Result<World> {
        let opencode = orchestra_testkit::opencode::pinned_opencode_bin()?;
        Ok(World {
            // The bench scripts delays and cancels through directives in its own prompts.
            fake: FakeLlm::start_scripted().await?,
            home: IsolatedHome::new()?,
            project: TestProject::new()?,
            opencode,
        })
    }

    /// Isolated HOME/XDG, offline switches, the fake provider, and our OpenCode binary.
    pub fn env(&self) -> Vec<(String, String)> {
        self.with_fake(self.home.env())
    }

    fn with_fake(&self, mut env: Vec<(String, String)>) -> Vec<(String, String)> {
        env.push(("OPENCODE_CONFIG_CONTENT".into(), {
            // OpenCode configured as the hub configures the servers it starts.
            let mut config = fake_mode_config(&self.fake.base_url());
            orchestra_core::workers::agents::merge_json(
                &mut config,
                &orchestra_core::workers::server_defaults(&Config::builtin()),
            );
            config.to_string()
        }));
        env.push((
            "ORCHESTRA_OPENCODE_BIN".into(),
            self.opencode.display().to_string(),
        ));
        env
    }

    /// [`World::env`] for an OpenCode that loads plugins (`OPENCODE_PURE` unset), as a user's
    /// does; npm stays offline (see `IsolatedHome::env_with_plugins`).
    pub fn env_loading_plugins(&self) -> Vec<(String, String)> {
        self.with_fake(self.home.env_with_plugins())
    }

    /// A plain `opencode serve` in the project, as a main agent or an attach target would run.
    pub async fn serve(&self, label: &str) -> anyhow::Result<ServerProcess> {
        self.serve_with(label, self.env()).await
    }

    /// [`World::serve`] with this environment.
    pub async fn serve_with(
        &self,
        label: &str,
        env: Vec<(String, String)>,
    ) -> anyhow::Result<ServerProcess> {
        let server = ServerProcess::spawn(ServeSpec {
            supervisor: None,
            binary: self.opencode.clone(),
            cwd: self.project.dir.clone(),
            env,
            password: fresh_password(),
            port: 0,
            startup_timeout: Duration::from_secs(60),
            label: label.into(),
        })
        .await?;
        Ok(server)
    }

    /// The files of this world's project hub (its `hub.json` names the hub process).
    pub fn hub_files(&self) -> orchestra_client::HubFiles {
        orchestra_client::HubFiles::in_dir(orchestra_state_dir::project_state_dir_in(
            &self.home.home().join(".local/state"),
            &self.project.dir,
        ))
    }

    /// The project hub's announcement, waiting for it up to 30 s.
    pub async fn hub_info(&self) -> anyhow::Result<orchestra_client::HubInfo> {
        let files = self.hub_files();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(info) = files.read_info() {
                return Ok(info);
            }
            if Instant::now() > deadline {
                bail!("no hub announced itself in {}", files.dir.display());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// `orchestra mcp` (the binary under measurement) with `orchestrator` as its `--config`: a relay that
    /// starts the project's hub in the background.
    pub async fn hub(
        &self,
        orchestrator: &Value,
        extra_env: &[(String, String)],
    ) -> anyhow::Result<Hub> {
        let config = self.home.root.join("orchestrator.json");
        std::fs::write(&config, orchestrator.to_string())
            .with_context(|| format!("writing {}", config.display()))?;
        let exe = orchestra_bin()?;
        let mut command = tokio::process::Command::new(exe);
        command
            .arg("mcp")
            .arg("--project")
            .arg(&self.project.dir)
            .arg("--config")
            .arg(&config)
            .envs(self.env())
            .envs(extra_env.iter().cloned())
            .env("ORCHESTRA_LOG", "error");
        let transport = TokioChildProcess::new(command).context("spawning orchestra mcp")?;
        let pid = transport.id().context("orchestra mcp has no pid")?;
        let service = ()
            .serve(transport)
            .await
            .map_err(|e| anyhow!("MCP initialize with orchestra mcp failed: {e}"))?;
        Ok(Hub {
            service,
            pid,
            stop: Some(StopHub {
                exe: exe.to_path_buf(),
                project: self.project.dir.clone(),
                env: self.env(),
            }),
        })
    }

    /// The recorded request whose last user text contains `marker`.
    pub fn request(&self, marker: &str) -> Option<RecordedRequest> {
        self.fake
            .requests()
            .into_iter()
            .find(|r| r.last_user_text.contains(marker))
    }

    /// Waits (polling the fake's log every 2 ms) for `marker`'s request to satisfy `check`.
    pub async fn wait_request(
        &self,
        marker: &str,
        timeout: Duration,
        check: impl Fn(&RecordedRequest) -> bool,
    ) -> anyhow::Result<RecordedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(found) = self.request(marker).filter(|r| check(r)) {
                return Ok(found);
            }
            if Instant::now() > deadline {
                bail!(
                    "the fake LLM never saw the expected state of request `{marker}` within {timeout:?}"
                );
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A random password for servers we start.
fn fresh_password() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-{nanos:x}-{}", std::process::id())
}

/// An `orchestra mcp` relay child and our MCP session with it.
pub struct Hub {
    service: RunningService<RoleClient, ()>,
    /// The relay's pid (the hub is another process: see [`World::hub_info`]).
    pub pid: u32,
    stop: Option<StopHub>,
}

/// Stops the project's hub when dropped: the relay that started it goes, or a bench step
/// failed half-way; either way no hub outlives the bench.
struct StopHub {
    exe: PathBuf,
    project: PathBuf,
    env: Vec<(String, String)>,
}

impl Drop for StopHub {
    fn drop(&mut self) {
        let _ = std::process::Command::new(&self.exe)
            .arg("stop")
            .arg("--project")
            .arg(&self.project)
            .envs(self.env.iter().cloned())
            .output();
    }
}

impl Hub {
    pub fn peer(&self) -> Peer<RoleClient> {
        self.service.peer().clone()
    }

    pub async fn call(&self, tool: &str, args: Value) -> anyhow::Result<Value> {
        call(&self.peer(), tool, args).await
    }

    /// `task_start` on worker `coder`; returns the task id.
    pub async fn start(&self, task: &str) -> anyhow::Result<String> {
        start(&self.peer(), task).await
    }

    pub async fn finish(&self, id: &str) -> anyhow::Result<Value> {
        finish(&self.peer(), id).await
    }

    /// Closes the MCP session and stops the project's hub (and so its workers).
    pub async fn close(mut self) {
        let _ = self.service.cancel().await;
        if let Some(stop) = self.stop.take() {
            // Blocking for the few ms `orchestra stop` takes; off the runtime's threads.
            let _ = tokio::task::spawn_blocking(move || drop(stop)).await;
        }
    }
}

pub async fn call(peer: &Peer<RoleClient>, tool: &str, args: Value) -> anyhow::Result<Value> {
    let Value::Object(args) = args else {
        bail!("tool arguments must be a JSON object");
    };
    let reply = orchestra_testkit::mcp::call_tool(peer, tool, args)
        .await
        .map_err(|e| anyhow!("{tool}: {e}"))?;
    if reply.is_error {
        bail!("{tool} returned a tool error: {}", reply.text);
    }
    serde_json::from_str(&reply.text)
        .with_context(|| format!("{tool} returned non-JSON: {}", reply.text))
}

pub async fn start(peer: &Peer<RoleClient>, task: &str) -> anyhow::Result<String> {
    start_with(
        peer,
        json!({"kind": "worker", "workerId": "coder", "task": task}),
    )
    .await
}

/// `task_start` with these arguments; the task's id.
pub async fn start_with(peer: &Peer<RoleClient>, arguments: Value) -> anyhow::Result<String> {
    let started = call(peer, "task_start", arguments).await?;
    started["taskId"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("task_start returned no taskId: {started}"))
}

/// `task_await` until the record is final (each call is capped by the hub at ≤ 45 s).
pub async fn finish(peer: &Peer<RoleClient>, id: &str) -> anyhow::Result<Value> {
    for _ in 0..20 {
        let record = call(
            peer,
            "task_await",
            json!({"taskId": id, "timeoutMs": 45000}),
        )
        .await?;
        if record["status"] != "running" {
            return Ok(record);
        }
    }
    bail!("task {id} was still running after 20 task_await calls")
}

/// Fails unless the record is `succeeded`.
pub fn succeeded(record: &Value) -> anyhow::Result<()> {
    if record["status"] == "succeeded" {
        Ok(())
    } else {
        bail!("a bench task did not succeed: {record}")
    }
}

/// Maps `Instant`s (the fake's clock) to unix ms (the job record's clock).
pub struct Anchor {
    instant: Instant,
    unix_ms: f64,
}

impl Anchor {
    pub fn now() -> Anchor {
        let instant = Instant::now();
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
        Anchor { instant, unix_ms }
    }

    pub fn unix_ms(&self, at: Instant) -> f64 {
        match at.checked_duration_since(self.instant) {
            Some(after) => self.unix_ms + after.as_secs_f64() * 1000.0,
            None => self.unix_ms - self.instant.duration_since(at).as_secs_f64() * 1000.0,
        }
    }
}

pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
