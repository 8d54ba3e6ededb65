//! `orchestra serve`: the project's hub as a long-lived process. It owns the workers, the
//! store and the event stream, and serves the HTTP API, the event stream, MCP over HTTP and
//! the panel on 127.0.0.1. Exactly one serves a project: the hub lock decides, and a second
//! `orchestra serve` says where the running one is and exits 0.
//!
//! Shutdown order matters to clients: `hub.json` goes first (no client picks this hub any
//! more), then the HTTP server (event streams end), then the hub (jobs canceled, workers
//! stopped), and the lock last — a client that finds no hub waits for the lock, and starts a
//! new hub only once this one has let go of everything.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use orchestra_client::discovery::{HUB_INFO_VERSION, config_stamp, env_fingerprint};
use orchestra_client::{HubFiles, HubInfo};
use orchestra_core::config::LoadedConfig;
use orchestra_core::hub::{Hub, HubOptions};
use orchestra_core::memory::GlobalStore;
use orchestra_http::{HubServer, McpServers, ServeOptions};
use orchestra_mcp::OrchestraMcp;
use orchestra_protocol::now_ms;

use crate::{launch, owner, shutdown_signal, write_stdout};

/// The configuration files a hub watches, stamped before they are loaded (so an edit made
/// while loading counts as a change).
pub struct ConfigSources {
    pub files: Vec<String>,
    pub stamp: u64,
}

impl ConfigSources {
    pub fn stamp(files: Vec<String>) -> ConfigSources {
        ConfigSources {
            stamp: config_stamp(&files),
            files,
        }
    }
}

#[derive(clap::Args)]
pub struct ServeArgs {
    /// Run the workers on the built-in fake model (it echoes prompts) instead of your
    /// OpenCode providers.
    #[arg(long)]
    fake: bool,
    /// The port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Stop after this many milliseconds with no client and no running work. Default: never
    /// for a hub you start; `hub.idleStopMs` for one a client started in the background.
    #[arg(long)]
    idle_stop_ms: Option<u64>,
    /// Started by a client (`orchestra mcp`, `orchestra run`, …), not by a person.
    #[arg(long, hide = true)]
    background: bool,
    /// Stop when the process with this pid exits (the desktop window that started this hub).
    #[arg(long, value_name = "PID")]
    owner_pid: Option<u32>,
}

pub async fn serve(
    args: ServeArgs,
    config: ConfigSources,
    loaded: anyhow::Result<LoadedConfig>,
    project_dir: &Path,
) -> anyhow::Result<std::process::ExitCode> {
    let ConfigSources {
        files: config_files,
        stamp,
    } = config;
    let files = HubFiles::for_project(project_dir);
    let Some(lock) = take_hub_lock(&files).await? else {
        let message = match files.read_info() {
            Some(info) => format!(
                "a hub already serves {} at {} (pid {}); `orchestra stop` stops it",
                project_dir.display(),
                info.url,
                info.pid
            ),
            None => format!(
                "a hub for {} is starting in another process; `orchestra status` shows it",
                project_dir.display()
            ),
        };
        write_stdout(&format!("orchestra: {message}\n"))?;
        return Ok(std::process::ExitCode::SUCCESS);
    };
    let loaded = loaded?;
    let idle_stop = match (args.idle_stop_ms, args.background) {
        (Some(ms), _) => Some(Duration::from_millis(ms)),
        (None, true) => Some(Duration::from_millis(loaded.config.hub.idle_stop_ms)),
        (None, false) => None,
    };
    let port = if args.port != 0 {
        args.port
    } else {
        loaded.config.hub.port
    };
    let launch = launch::prepare(&loaded.config, project_dir, args.fake).await?;
    let providers = launch.describe();
    // Bound before the hub starts: its worker servers are given the hub's URL (the memory
    // worker's tools live at /mcp/worker). Requests that arrive meanwhile wait in the queue.
    let bound = HubServer::bind(port)
        .await
        .context("starting the hub's HTTP server")?;
    let hub = Hub::start(HubOptions {
        project_dir: project_dir.to_path_buf(),
        config: loaded.config,
        launch: launch.settings,
        warm: true,
        provenance: loaded.provenance,
        global_memory: GlobalStore::Default,
        worker_mcp: Some(bound.worker_mcp()),
    })
    .await?;
    crate::log_capture::start(hub.bus().clone());
    crate::malloc::return_freed_memory(hub.bus().clone());
    let token = orchestra_http::new_token();
    let server = bound.serve(
        &hub,
        ServeOptions {
            port,
            idle_stop,
            fake: args.fake,
            token: token.clone(),
            mcp: McpServers {
                tools: Arc::new(OrchestraMcp::http_tools),
                worker: Arc::new(OrchestraMcp::http_worker),
            },
            sessions: orchestra_http::SessionPolicy::default(),
            // The project's state folder: private (0700), made by the lock above.
            login_dir: Some(files.dir.clone()),
        },
    );
    let info = HubInfo {
        version: HUB_INFO_VERSION,
        hub_id: hub.id().to_owned(),
        pid: std::process::id(),
        url: server.url(),
        token,
        project_dir: project_dir.display().to_string(),
        started_at: now_ms(),
        fake: args.fake,
        orchestra_version: env!("CARGO_PKG_VERSION").to_owned(),
        env: env_fingerprint(),
        config_files,
        config_stamp: stamp,
    };
    if let Err(err) = files.write_info(&info, &lock) {
        server.close().await;
        hub.shutdown().await;
        return Err(err).context("announcing the hub");
    }
    write_stdout(&format!(
        "orchestra: hub {} serving {} at {} (pid {}); {}\n",
        hub.id(),
        project_dir.display(),
        info.url,
        info.pid,
        providers
    ))?;
    tokio::select! {
        () = shutdown_signal() => tracing::info!("signal: the hub stops"),
        () = server.stop_requested() => {}
        () = owner::gone(args.owner_pid) => {}
    }
    files.remove_info(&lock);
    server.close().await;
    hub.shutdown().await;
    drop(launch.fake);
    drop(lock);
    write_stdout("orchestra: hub stopped\n")?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// How long a starting hub keeps trying a lock it found taken: a client of an older version
/// probes the lock by taking it for an instant, which must not turn a start away.
const LOCK_RETRY: Duration = Duration::from_millis(300);
const LOCK_RETRY_PAUSE: Duration = Duration::from_millis(25);

/// The project's hub lock, or `None` when another live process keeps holding it.
async fn take_hub_lock(
    files: &HubFiles,
) -> Result<Option<orchestra_client::discovery::HubLock>, orchestra_client::ClientError> {
    let deadline = std::time::Instant::now() + LOCK_RETRY;
    loop {
        if let Some(lock) = files.try_lock()? {
            return Ok(Some(lock));
        }
        if std::time::Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(LOCK_RETRY_PAUSE).await;
    }
}
