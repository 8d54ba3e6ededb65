//! A hub with its HTTP server on 127.0.0.1, in a temp project and store.
#![allow(dead_code)]

use std::sync::Arc;

use orchestra_client::{HubClient, HubInfo};
use orchestra_core::config::Config;
use orchestra_core::hub::{Hub, HubOptions};
use orchestra_core::memory::GlobalStore;
use orchestra_core::workers::{LaunchSettings, WorkerMcp};
use orchestra_http::{HubServer, McpServers, ServeOptions, SessionPolicy};
use orchestra_mcp::OrchestraMcp;

pub const TOKEN: &str = "test-token-0123456789abcdef";

pub struct Served {
    pub hub: Hub,
    pub server: HubServer,
    pub dir: tempfile::TempDir,
    /// The worker MCP endpoint the hub's worker servers would be given.
    pub worker_mcp: WorkerMcp,
}

impl Served {
    pub async fn start() -> Served {
        Served::start_with(|_| {}).await
    }

    /// A hub whose config `change` adjusts first (memory off, …).
    pub async fn start_with(change: impl FnOnce(&mut Config)) -> Served {
        Served::start_sessions(change, SessionPolicy::default()).await
    }

    /// A hub whose browser sessions follow `sessions` (short ones, to see them end).
    pub async fn start_sessions(
        change: impl FnOnce(&mut Config),
        sessions: SessionPolicy,
    ) -> Served {
        Served::start_full(change, sessions, None).await
    }

    /// A hub that stops after `idle_stop` with no client and no running job.
    pub async fn start_idle(idle_stop: std::time::Duration) -> Served {
        Served::start_full(|_| {}, SessionPolicy::default(), Some(idle_stop)).await
    }

    async fn start_full(
        change: impl FnOnce(&mut Config),
        sessions: SessionPolicy,
        idle_stop: Option<std::time::Duration>,
    ) -> Served {
        let dir = tempfile::tempdir().unwrap();
        // As in the test projects of the other suites (the corpora refer to it).
        std::fs::write(dir.path().join("README.md"), "# test project\n").unwrap();
        let mut config = Config::builtin();
        config.tasks.store_path = Some(dir.path().join("orchestra.db"));
        change(&mut config);
        std::fs::create_dir(dir.path().join("state")).unwrap();
        let bound = HubServer::bind(0).await.unwrap();
        let worker_mcp = bound.worker_mcp();
        let hub = Hub::start(HubOptions {
            project_dir: dir.path().to_path_buf(),
            config,
            launch: LaunchSettings {
                supervisor: None,
                // Never started: no test here runs a task on a worker.
                binary: dir.path().join("no-opencode"),
                project_dir: dir.path().to_path_buf(),
                env: Vec::new(),
                config_overlay: serde_json::Value::Null,
                provider_pin: None,
            },
            warm: false,
            provenance: Default::default(),
            global_memory: GlobalStore::At(dir.path().join("global").join("memory.db")),
            worker_mcp: Some(worker_mcp.clone()),
        })
        .await
        .unwrap();
        let server = bound.serve(
            &hub,
            ServeOptions {
                port: 0,
                idle_stop,
                fake: false,
                token: TOKEN.into(),
                mcp: McpServers {
                    tools: Arc::new(OrchestraMcp::http_tools),
                    worker: Arc::new(OrchestraMcp::http_worker),
                },
                sessions,
                login_dir: Some(dir.path().join("state")),
            },
        );
        Served {
            hub,
            server,
            dir,
            worker_mcp,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    pub fn client(&self) -> HubClient {
        HubClient::new(&HubInfo {
            version: orchestra_client::discovery::HUB_INFO_VERSION,
            hub_id: self.hub.id().into(),
            pid: std::process::id(),
            url: self.server.url(),
            token: TOKEN.into(),
            project_dir: self.dir.path().display().to_string(),
            started_at: 0,
            fake: false,
            orchestra_version: String::new(),
            env: Default::default(),
            config_files: Vec::new(),
            config_stamp: 0,
        })
        .unwrap()
    }

    pub fn http() -> reqwest::Client {
        reqwest::Client::builder().no_proxy().build().unwrap()
    }

    pub async fn stop(self) {
        self.server.close().await;
        self.hub.shutdown().await;
    }
}
