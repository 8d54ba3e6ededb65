//! `orchestra mcp` as a child process, driven by rmcp's client, against real
//! OpenCode workers and the fake LLM. Shared by the MCP tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::{
    IsolatedHome, TestProject, fake_provider_config, require_opencode,
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
    /// The `--config` file every hub of this world gets; it sets [`World::store_path`].
    pub config: PathBuf,
    pub store_path: PathBuf,
    /// In the environment of every `orchestra mcp` this world starts, and so of everything
    /// those start (see `orchestra_testkit::processes::with_marker`).
    pub marker: String,
}

pub struct Client {
    pub service: RunningService<RoleClient, ()>,
    pub pid: u32,
}

impl World {
    pub async fn new(orchestrator: Value) -> World {
        let fake = FakeLlm::start().await.unwrap();
        let home = IsolatedHome::new().unwrap();
        let project = TestProject::new().unwrap();
        let config = home.root.join("orchestrator.json");
        let store_path = home.root.join("state/orchestra.db");
        let mut file = json!({"tasks": {"storePath": store_path}});
        orchestra_core::workers::agents::merge_json(&mut file, &orchestrator);
        std::fs::write(&config, file.to_string()).unwrap();
        World {
            fake,
            home,
            project,
            config,
            store_path,
            marker: processes::new_marker(),
        }
    }

    /// The store every hub of this world uses, opened by the test.
    pub fn store(&self) -> orchestra_store::Store {
        orchestra_store::Store::open(&self.store_path).unwrap()
    }

    /// `orchestra mcp` on this world's project, config, home and fake model.
    pub fn mcp_command(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestra"));
        command
            .arg("mcp")
            .arg("--project")
            .arg(&self.project.dir)
            .arg("--config")
            .arg(&self.config)
            .envs(self.home.env())
            .env(
                "OPENCODE_CONFIG_CONTENT",
                fake_provider_config(&self.fake.base_url()).to_string(),
            )
            .env("ORCHESTRA_OPENCODE_BIN", require_opencode())
            .env("ORCHESTRA_LOG", "warn")
            .env(processes::MARKER_VAR, &self.marker);
        command
    }

    pub async fn connect(&self) -> Client {
        let command = self.mcp_command();
        let transport = TokioChildProcess::new(command).unwrap();
        let pid = transport.id().unwrap();
        let service = ().serve(transport).await.unwrap();
        Client { service, pid }
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

    /// SIGKILLs the hub process, as a crash would, and waits until it is gone.
    pub async fn kill(self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(self.pid).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        wait_gone(self.pid).await;
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
