//! A hub on the real pinned OpenCode, pointed at the fake LLM, in a throw-away
//! project with an isolated HOME. Shared by the end-to-end tests. The fake is the
//! project's own provider, in its `opencode.json`, where users keep theirs; the hub
//! adds nothing about providers.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use orchestra_core::config::{self, LoadOptions};
use orchestra_core::hub::{Hub, HubOptions};
use orchestra_core::tasks::{TaskAnswer, TaskEngine};
use orchestra_core::workers::LaunchSettings;
use orchestra_protocol::{JobRecord, TaskAwaitParams, TaskKind, TaskStartParams};
use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::{
    IsolatedHome, TestProject, fake_provider_config, require_opencode, write_project_config,
};
use serde_json::{Value, json};

pub struct World {
    pub fake: FakeLlm,
    pub home: IsolatedHome,
    pub project: TestProject,
    pub hub: Hub,
    /// The orchestrator.json every hub of this world loads.
    pub config_file: std::path::PathBuf,
}

impl World {
    /// `orchestrator` is merged over a store path inside the isolated home and
    /// loaded as an extra config file (`--config`).
    pub async fn start(orchestrator: Value) -> World {
        let fake = FakeLlm::start_scripted().await.unwrap();
        World::start_with(fake, orchestrator).await
    }

    pub async fn start_with(fake: FakeLlm, orchestrator: Value) -> World {
        World::start_in(fake, IsolatedHome::new().unwrap(), orchestrator, Vec::new()).await
    }

    /// A hub in a given home, with extra launch environment.
    pub async fn start_in(
        fake: FakeLlm,
        home: IsolatedHome,
        orchestrator: Value,
        extra_env: Vec<(String, String)>,
    ) -> World {
        let opencode_config = fake_provider_config(&fake.base_url());
        World::start_configured(fake, home, orchestrator, extra_env, opencode_config).await
    }

    /// A hub in a project whose `opencode.json` is `opencode_config` (several providers, …)
    /// instead of the one fake provider.
    pub async fn start_with_opencode_config(
        fake: FakeLlm,
        opencode_config: Value,
        orchestrator: Value,
    ) -> World {
        let home = IsolatedHome::new().unwrap();
        World::start_configured(fake, home, orchestrator, Vec::new(), opencode_config).await
    }

    async fn start_configured(
        fake: FakeLlm,
        home: IsolatedHome,
        orchestrator: Value,
        extra_env: Vec<(String, String)>,
        opencode_config: Value,
    ) -> World {
        let project = TestProject::new().unwrap();
        write_project_config(&project, &opencode_config).unwrap();
        let store = home.root.join("state/orchestra.db");
        let mut file = json!({"tasks": {"storePath": store}});
        merge(&mut file, &orchestrator);
        let config_dir = home.root.join("orchestrator-config");
        std::fs::create_dir_all(&config_dir).unwrap();
        let extra = config_dir.join("orchestrator.json");
        std::fs::write(&extra, file.to_string()).unwrap();
        let hub = start_hub(&project, &home, &extra, extra_env).await;
        World {
            fake,
            home,
            project,
            hub,
            config_file: extra,
        }
    }

    /// Another hub on the same project, config and store: a second OpenCode
    /// window, or the hub started again after the first one went away.
    pub async fn another_hub(&self) -> Hub {
        start_hub(&self.project, &self.home, &self.config_file, Vec::new()).await
    }

    pub fn engine(&self) -> &TaskEngine {
        self.hub.engine()
    }

    pub async fn start_task(&self, worker: &str, task: &str) -> String {
        self.engine()
            .start(
                TaskStartParams {
                    kind: TaskKind::Worker,
                    task: task.into(),
                    worker_id: Some(worker.into()),
                    ..TaskStartParams::default()
                },
                None,
            )
            .await
            .unwrap()
            .task_id
    }

    /// Awaits until the job is final (re-awaiting past the 45 s cap).
    pub async fn finish(&self, id: &str) -> JobRecord {
        finish_on(self.engine(), id).await
    }

    pub async fn run(&self, worker: &str, task: &str) -> JobRecord {
        let id = self.start_task(worker, task).await;
        self.finish(&id).await
    }

    /// What this hub's pool says about one worker now.
    pub async fn worker(&self, id: &str) -> orchestra_protocol::WorkerSnapshot {
        self.engine()
            .pool()
            .snapshots()
            .into_iter()
            .find(|w| w.id == id)
            .unwrap()
    }

    pub async fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .engine()
            .pool()
            .snapshots()
            .iter()
            .filter_map(|w| w.pid)
            .collect();
        pids.sort_unstable();
        pids.dedup();
        pids
    }

    /// Stops the hub and checks that every OpenCode process it had is gone.
    pub async fn shutdown(self) {
        let pids = self.pids().await;
        self.hub.shutdown().await;
        for pid in pids {
            assert_gone(pid).await;
        }
    }
}

async fn start_hub(
    project: &TestProject,
    home: &IsolatedHome,
    config_file: &std::path::Path,
    extra_env: Vec<(String, String)>,
) -> Hub {
    let loaded = config::load(&LoadOptions {
        project_dir: project.dir.clone(),
        global_dir: Some(home.root.join("no-global")),
        extra_file: Some(config_file.to_path_buf()),
    })
    .unwrap();
    Hub::start(HubOptions {
        project_dir: project.dir.clone(),
        provenance: loaded.provenance,
        config: loaded.config,
        launch: LaunchSettings {
            supervisor: None,
            binary: require_opencode(),
            project_dir: project.dir.clone(),
            env: home.env().into_iter().chain(extra_env).collect(),
            config_overlay: json!({}),
            provider_pin: None,
        },
        warm: false,
        // Global memory stays in the test's home, never the user's.
        global_memory: orchestra_core::memory::GlobalStore::At(
            home.root.join("state/global-memory.db"),
        ),
        worker_mcp: None,
    })
    .await
    .unwrap()
}

/// Awaits a job on any engine until it is final (re-awaiting past the 45 s cap).
pub async fn finish_on(engine: &TaskEngine, id: &str) -> JobRecord {
    for _ in 0..8 {
        let answer = engine
            .await_tasks(&TaskAwaitParams {
                task_id: Some(id.into()),
                ..TaskAwaitParams::default()
            })
            .await
            .unwrap();
        let record = one(answer);
        if record.status.is_final() {
            return record;
        }
    }
    panic!("job {id} never finished");
}

pub fn one(answer: TaskAnswer) -> JobRecord {
    match answer {
        TaskAnswer::One(lookup) => lookup.record().cloned().unwrap(),
        TaskAnswer::Many(_) => panic!("expected one record"),
    }
}

pub async fn assert_gone(pid: u32) {
    for _ in 0..100 {
        if !orchestra_store::pid_is_alive(pid) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("OpenCode process {pid} is still running after shutdown");
}

fn merge(base: &mut Value, overlay: &Value) {
    orchestra_core::workers::agents::merge_json(base, overlay);
}

/// Bounds a whole test so a hang fails instead of blocking CI.
pub async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(120), f)
        .await
        .expect("test took longer than 120 s");
}

/// An OpenCode server someone else started in `theirs` (the hub attaches to it or reaches it
/// through a proxy), with basic-auth `password`.
pub async fn someone_elses_server(
    home: &IsolatedHome,
    theirs: &TestProject,
    password: &str,
    label: &str,
) -> orchestra_core::supervisor::ServerProcess {
    orchestra_core::supervisor::ServerProcess::spawn(orchestra_core::supervisor::ServeSpec {
        supervisor: None,
        binary: require_opencode(),
        cwd: theirs.dir.clone(),
        env: home.env(),
        password: password.into(),
        port: 0,
        startup_timeout: Duration::from_secs(60),
        label: label.into(),
    })
    .await
    .unwrap()
}
