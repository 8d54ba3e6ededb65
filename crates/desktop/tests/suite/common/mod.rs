//! The desktop shell's test bed: a test project whose `opencode.json` has the fake LLM as its
//! provider (where users keep theirs), an isolated home, `orchestra-desktop` on a virtual display
//! with its probe file, and `orchestra mcp` as a main agent would run it.
#![allow(dead_code, clippy::unwrap_used)]

pub mod bus;
pub mod x11;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use orchestra_client::{HubClient, HubFiles, HubInfo};
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

/// One window test at a time: each runs a WebKit, a hub and an OpenCode, which is all two cores
/// can take without timing out.
pub static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub struct World {
    pub fake: FakeLlm,
    pub home: IsolatedHome,
    pub project: TestProject,
    /// In the environment of everything the test starts, and so of everything those start.
    pub marker: String,
}

/// The `orchestra` binary next to `orchestra-desktop`, where the desktop looks for it first.
pub fn orchestra_bin() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_orchestra-desktop")).with_file_name("orchestra");
    assert!(
        bin.exists(),
        "{} is missing: build it first (`cargo build -p orchestra-cli`; scripts/test builds the whole workspace)",
        bin.display()
    );
    bin
}

impl World {
    pub async fn new() -> World {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let home = IsolatedHome::new().unwrap();
        let project = TestProject::new().unwrap();
        write_project_config(&project, &fake_provider_config(&fake.base_url())).unwrap();
        World {
            fake,
            home,
            project,
            marker: processes::new_marker(),
        }
    }

    pub fn hub_files(&self) -> HubFiles {
        HubFiles::in_dir(orchestra_state_dir::project_state_dir_in(
            &self.home.home().join(".local/state"),
            &self.project.dir,
        ))
    }

    pub fn hub_info(&self) -> HubInfo {
        self.hub_files()
            .read_info()
            .expect("no hub announced itself")
    }

    /// The environment a person's session would give a program, inside the isolated home.
    fn command(&self, program: &Path) -> Command {
        let mut command = Command::new(program);
        for var in FOREIGN_CONFIG_VARS {
            command.env_remove(var);
        }
        command
            .envs(self.home.env())
            .env("ORCHESTRA_OPENCODE_BIN", require_opencode())
            .env("ORCHESTRA_LOG", "info")
            .env(processes::MARKER_VAR, &self.marker)
            .stdin(Stdio::null());
        command
    }

    /// `orchestra-desktop [project]` on `display`, with the session bus at `bus` (an address
    /// that leads nowhere when `None`).
    pub fn launch(
        &self,
        display: &str,
        bus: Option<&str>,
        project: Option<&Path>,
        env: &[(&str, &str)],
    ) -> Desktop {
        let stamp = processes::new_marker();
        let probe = self.home.root.join(format!("probe-{stamp}.json"));
        let log = self.home.root.join(format!("desktop-{stamp}.log"));
        let mut command = self.command(Path::new(env!("CARGO_BIN_EXE_orchestra-desktop")));
        command
            .args(project)
            .env("DISPLAY", display)
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                bus.unwrap_or("unix:path=/nonexistent/orchestra-test-bus"),
            )
            .env("ORCHESTRA_DESKTOP_PROBE", &probe)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        // The binary is found beside the desktop's; fail early with the fix if it is not built.
        orchestra_bin();
        let child = command.spawn().unwrap();
        Desktop {
            pid: child.id(),
            child,
            probe,
            log,
        }
    }

    /// `orchestra serve` on the project, in the foreground as a person would run it.
    pub fn serve(&self) -> Child {
        self.command(&orchestra_bin())
            .arg("serve")
            .arg("--project")
            .arg(&self.project.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    }

    /// `orchestra mcp` on the project, driven by an MCP client as OpenCode drives it.
    pub async fn mcp(&self) -> Mcp {
        let mut command = tokio::process::Command::from(self.command(&orchestra_bin()));
        command.arg("mcp").arg("--project").arg(&self.project.dir);
        let (transport, _) = TokioChildProcess::builder(command)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pid = transport.id().unwrap();
        let service = ().serve(transport).await.unwrap();
        Mcp { service, pid }
    }

    /// Every process of this world still running (the desktop, WebKit's, the hub, OpenCode,
    /// whatever those started).
    pub fn processes(&self) -> Vec<u32> {
        processes::with_marker(&self.marker)
    }

    /// Waits up to `secs` for every process of this world to be gone; says which are not.
    pub fn assert_nothing_left(&self, secs: u64) {
        let left = processes::wait_all_gone(&self.processes(), Duration::from_secs(secs));
        let described: Vec<String> = left
            .iter()
            .map(|&pid| format!("{pid}: {}", processes::cmdline(pid)))
            .collect();
        assert!(left.is_empty(), "processes left running: {described:#?}");
    }
}

/// No test leaves anything behind, also when it failed.
impl Drop for World {
    fn drop(&mut self) {
        for pid in self.processes() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap_or(0)),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

pub struct Desktop {
    pub child: Child,
    pub pid: u32,
    probe: PathBuf,
    log: PathBuf,
}

impl Desktop {
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn probe(&self) -> Option<Value> {
        serde_json::from_str(&std::fs::read_to_string(&self.probe).ok()?).ok()
    }

    /// Waits up to 60 s for a probe report `ready` accepts; panics with the last report and the
    /// desktop's log.
    pub async fn wait_probe(&mut self, what: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let mut last = None;
        for _ in 0..600 {
            if let Some(report) = self.probe() {
                if ready(&report) {
                    return report;
                }
                last = Some(report);
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the desktop exited ({status}) before {what}; its log:\n{}",
                    self.log()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no {what} within 60 s; last probe: {last:#?}\ndesktop log:\n{}",
            self.log()
        );
    }

    /// Waits up to `secs` for the process to exit; its exit status.
    pub async fn wait_exit(&mut self, secs: u64) -> std::process::ExitStatus {
        for _ in 0..secs * 10 {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the desktop still runs {secs} s after its window was closed; log:\n{}",
            self.log()
        );
    }
}

pub struct Mcp {
    pub service: RunningService<RoleClient, ()>,
    pub pid: u32,
}

impl Mcp {
    pub async fn call_json(&self, tool: &str, args: Value) -> Value {
        let Value::Object(args) = args else {
            panic!("args must be an object")
        };
        let result = self
            .service
            .call_tool(CallToolRequestParams::new(tool.to_owned()).with_arguments(args))
            .await
            .unwrap();
        let text: String = result
            .content
            .iter()
            .filter_map(|c| c.as_text().map(|t| t.text.clone()))
            .collect();
        assert!(!result.is_error.unwrap_or(false), "{tool} failed: {text}");
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{tool}: not JSON ({e}): {text}"))
    }

    /// Starts a task on the coder worker; its id.
    pub async fn start(&self, task: &str) -> String {
        let started = self
            .call_json(
                "task_start",
                json!({"kind": "worker", "workerId": "coder", "task": task}),
            )
            .await;
        started["taskId"].as_str().unwrap().to_owned()
    }

    /// Awaits a task's final record.
    pub async fn finish(&self, id: &str) -> Value {
        for _ in 0..20 {
            let record = self.call_json("task_await", json!({"taskId": id})).await;
            if record["status"] != "running" {
                return record;
            }
        }
        panic!("task {id} never finished");
    }

    pub async fn close(self) {
        self.service.cancel().await.unwrap();
    }
}

/// A hub the test started itself, once it answers.
pub struct Hub {
    pub client: HubClient,
    pub info: HubInfo,
}

pub async fn wait_for_hub(world: &World) -> Hub {
    for _ in 0..600 {
        if let Some(info) = world.hub_files().read_info() {
            let client = HubClient::new(&info).unwrap();
            if client.health().await.is_ok() {
                return Hub { client, info };
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the hub did not come up within 60 s");
}

pub async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(240), f)
        .await
        .expect("test took longer than 240 s");
}
