//! `orchestra doctor`: what stands between this machine and a working first task, one check per
//! line, each failure with its fix. Read-only except for one thing it says it does: to ask
//! OpenCode for its providers it connects to the project's hub, starting one if none runs. That
//! hub is left to stop by itself when idle, as every command leaves the hub it starts, and the
//! hub line says doctor started it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orchestra_client::{HubFiles, HubInfo};
use orchestra_core::config::Config;
use orchestra_protocol::{JobStatus, ListFormat, ListScope, ListView, TaskListParams};
use serde::Serialize;
use serde_json::Value;

use crate::hub_link::HubTarget;
use crate::opencode_bin::{self, OpenCodeLine, PINNED_VERSION};
use crate::write_stdout;

mod credentials;
mod providers;

use providers::provider_check;

#[derive(clap::Args)]
pub struct DoctorArgs {
    /// The report as JSON (`ok` is false when something is broken).
    #[arg(long)]
    json: bool,
    /// Do not send the test prompt that checks a provider answers.
    #[arg(long)]
    no_prompt: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    /// Works, but not as it should (say an OpenCode other than the pinned one).
    Warn,
    /// Broken: the exit code is 1.
    Fail,
    /// Could not be checked because an earlier check failed.
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
pub struct Check {
    pub id: &'static str,
    pub status: Status,
    pub summary: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
    #[serde(skip_serializing_if = "Value::is_null")]
    pub details: Value,
}

fn check(id: &'static str, status: Status, summary: impl Into<String>) -> Check {
    Check {
        id,
        status,
        summary: summary.into(),
        fix: None,
        details: Value::Null,
    }
}

impl Check {
    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }

    fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

pub async fn run(
    args: DoctorArgs,
    config: anyhow::Result<Config>,
    target: &HubTarget,
) -> anyhow::Result<std::process::ExitCode> {
    let mut checks = Vec::new();
    let config = match config {
        Ok(config) => Some(config),
        Err(err) => {
            checks.push(
                check(
                    "config",
                    Status::Fail,
                    format!("orchestrator.json: {err:#}"),
                )
                .fix("fix the file it names (`orchestra schema` prints what it may hold)"),
            );
            None
        }
    };
    let worker = worker_opencode(config.as_ref()).await;
    let worker_found = worker.status != Status::Fail;
    checks.push(worker);
    let main = main_opencode().await;
    let main_is_v2 = main.0.details["line"] == serde_json::json!(OpenCodeLine::V2);
    checks.push(main.0);
    // The state folder's and the hub's lines are written last (in their place): the providers
    // check may start a hub, which creates the folder, and the report must say what is true
    // when it ends, not "not running" beside a hub doctor itself started.
    let state_index = checks.len();
    let (_, hub_running) = hub(&target.project_dir);
    let stale_pid = if hub_running {
        None
    } else {
        HubFiles::for_project(&target.project_dir)
            .read_info()
            .map(|info| info.pid)
    };
    checks.push(plugin(&target.project_dir, main.1.as_deref(), hub_running).await);
    let started = if worker_found {
        let (provider_checks, started) = providers(target, !args.no_prompt).await;
        checks.extend(provider_checks);
        started
    } else {
        checks.push(check(
            "providers",
            Status::Skipped,
            "not checked: no OpenCode for the workers",
        ));
        None
    };
    if let (true, Some(main_bin)) = (main_is_v2, main.1.as_deref()) {
        let offered: Vec<String> = checks
            .iter()
            .find(|c| c.id == "providers")
            .and_then(|c| c.details["providers"].as_array())
            .into_iter()
            .flatten()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect();
        checks.extend(credentials::v2_credentials(main_bin, &target.project_dir, &offered).await);
    }
    let idle_stop_ms = config
        .as_ref()
        .map_or(Config::builtin().hub.idle_stop_ms, |c| c.hub.idle_stop_ms);
    let hub_check = match started {
        Some(info) => hub_started_by_doctor(&info, stale_pid, idle_stop_ms),
        None => hub(&target.project_dir).0,
    };
    checks.insert(state_index, state_folder(&target.project_dir));
    checks.insert(state_index + 1, hub_check);
    let ok = checks.iter().all(|c| c.status != Status::Fail);
    if args.json {
        let report = serde_json::json!({"ok": ok, "checks": checks});
        write_stdout(&format!("{}\n", serde_json::to_string_pretty(&report)?))?;
    } else {
        let mut text = String::new();
        for c in &checks {
            let mark = match c.status {
                Status::Ok => "ok  ",
                Status::Warn => "warn",
                Status::Fail => "FAIL",
                Status::Skipped => "skip",
            };
            text.push_str(&format!("{mark} {:<15} {}\n", c.id, c.summary));
            if let Some(fix) = &c.fix {
                text.push_str(&format!("     {:<15} fix: {fix}\n", ""));
            }
        }
        text.push_str(if ok {
            "orchestra doctor: nothing is broken\n"
        } else {
            "orchestra doctor: something is broken (FAIL above)\n"
        });
        write_stdout(&text)?;
    }
    Ok(if ok {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    })
}

/// The OpenCode the hub starts for its workers.
async fn worker_opencode(config: Option<&Config>) -> Check {
    let builtin = Config::builtin();
    let found = crate::launch::find_opencode(config.unwrap_or(&builtin));
    let bin = match found {
        Ok(bin) => bin,
        Err(err) => {
            return check("opencode", Status::Fail, format!("{err:#}")).fix(
                "install Orchestra with npm (`npm i -g opencode-orchestra` brings the pinned \
                 OpenCode), or run `scripts/install-opencode` in a source checkout, or set \
                 ORCHESTRA_OPENCODE_BIN to an opencode-ai 1.18.33 binary",
            );
        }
    };
    let details = serde_json::json!({"binary": bin});
    match opencode_bin::version_of(&bin).await {
        None => check(
            "opencode",
            Status::Fail,
            format!(
                "workers: {} does not run (`--version` failed)",
                bin.display()
            ),
        )
        .fix("reinstall it (`scripts/install-opencode`, or reinstall the npm package)")
        .details(details),
        Some(version) => {
            let line = OpenCodeLine::of_version(&version).unwrap_or(OpenCodeLine::V1);
            let details = serde_json::json!({"binary": bin, "version": version, "line": line});
            let summary = format!("workers: {} {version} ({line})", bin.display());
            match line {
                OpenCodeLine::V2 => check("opencode", Status::Fail, summary)
                    .fix(format!(
                        "workers need OpenCode 1.x (they use its HTTP API, which 2.x dropped); \
                         point ORCHESTRA_OPENCODE_BIN at opencode-ai {PINNED_VERSION}, or unset it \
                         to use the pinned one shipped with Orchestra"
                    ))
                    .details(details),
                OpenCodeLine::V1 if version != PINNED_VERSION => check(
                    "opencode",
                    Status::Warn,
                    format!("{summary}, not the pinned {PINNED_VERSION}"),
                )
                .fix("unset ORCHESTRA_OPENCODE_BIN / runtime.opencodeBin to use the tested release")
                .details(details),
                OpenCodeLine::V1 => check(
                    "opencode",
                    Status::Ok,
                    format!("{summary}, the pinned release"),
                )
                .details(details),
            }
        }
    }
}

/// The OpenCode the user chats in: `opencode` on PATH. Returns its check and its path.
async fn main_opencode() -> (Check, Option<PathBuf>) {
    let Some(bin) = opencode_bin::on_path() else {
        return (
            check(
                "main-opencode",
                Status::Warn,
                "no `opencode` on PATH: Orchestra's tasks work (`orchestra run`), but there is \
                 no OpenCode to chat with the orchestrator in",
            )
            .fix(
                "install OpenCode (`npm i -g @opencode/cli` for 2.x, or `npm i -g opencode-ai` \
                 for 1.x; Orchestra works with both), then `orchestra install`",
            ),
            None,
        );
    };
    let found = match opencode_bin::version_of(&bin).await {
        Some(version) => {
            let line = OpenCodeLine::of_version(&version).unwrap_or(OpenCodeLine::V1);
            let note = match line {
                OpenCodeLine::V1 => "",
                OpenCodeLine::V2 => {
                    "; on 2.x the plugin works through 2.x's own hooks, and the orchestra \
                     tools are called from its code-mode `execute` tool"
                }
            };
            check(
                "main-opencode",
                Status::Ok,
                format!("you run {} {version} ({line}){note}", bin.display()),
            )
            .details(serde_json::json!({"binary": bin, "version": version, "line": line}))
        }
        None => check(
            "main-opencode",
            Status::Warn,
            format!("{} did not tell its version", bin.display()),
        )
        .fix("check that `opencode --version` runs"),
    };
    (found, Some(bin))
}

/// The project's state folder: where the hub's token, store and logs live.
fn state_folder(project_dir: &Path) -> Check {
    let dir = orchestra_state_dir::project_state_dir(project_dir);
    let shown = dir.display();
    if !dir.exists() {
        return match dir.ancestors().skip(1).find(|d| d.exists()) {
            None => check(
                "state-folder",
                Status::Fail,
                format!("{shown}: no parent folder exists"),
            )
            .fix("set HOME or XDG_STATE_HOME to a folder you own"),
            Some(parent) => match probe_write(parent) {
                Ok(()) => check(
                    "state-folder",
                    Status::Ok,
                    format!("{shown} does not exist yet; the first hub creates it"),
                ),
                Err(err) => check(
                    "state-folder",
                    Status::Fail,
                    format!(
                        "{shown} cannot be created ({} is not writable: {err})",
                        parent.display()
                    ),
                )
                .fix(
                    "make that folder writable for you, or set XDG_STATE_HOME to a folder you own",
                ),
            },
        };
    }
    if let Err(err) = probe_write(&dir) {
        return check(
            "state-folder",
            Status::Fail,
            format!("{shown} is not writable: {err}"),
        )
        .fix(format!("`chmod u+rwx {shown}` (or fix its owner)"));
    }
    // The folder may be readable by others (umask); the hub's token file must not be.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let token_file = dir.join("hub.json");
        if let Ok(meta) = std::fs::metadata(&token_file)
            && meta.permissions().mode() & 0o077 != 0
        {
            return check(
                "state-folder",
                Status::Warn,
                format!(
                    "{} (the hub's token) is readable by other users (mode {:o})",
                    token_file.display(),
                    meta.permissions().mode() & 0o777
                ),
            )
            .fix(format!("`chmod 600 {}`", token_file.display()));
        }
    }
    check(
        "state-folder",
        Status::Ok,
        format!("{shown} is writable; the token file is private"),
    )
}

fn probe_write(dir: &Path) -> Result<(), String> {
    let probe = dir.join(format!(".orchestra-doctor-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|err| err.to_string())?;
    std::fs::remove_file(&probe).map_err(|err| err.to_string())
}

/// The hub as its files show it, without starting one. Returns the check and whether one runs.
fn hub(project_dir: &Path) -> (Check, bool) {
    let files = HubFiles::for_project(project_dir);
    let locked = files.is_locked();
    let info = files.read_info();
    let ours = env!("CARGO_PKG_VERSION");
    match (locked, info) {
        (Err(err), _) => (
            check(
                "hub",
                Status::Fail,
                format!("cannot read the hub's lock: {err}"),
            )
            .fix("see the state-folder check"),
            false,
        ),
        (Ok(true), Some(info)) if info.orchestra_version != ours => (
            check(
                "hub",
                Status::Warn,
                format!(
                    "running (pid {}, {}), but it is orchestra {} and this is {ours}",
                    info.pid, info.url, info.orchestra_version
                ),
            )
            .fix("`orchestra stop`; the next command starts this version's hub"),
            true,
        ),
        (Ok(true), Some(info)) => (
            check(
                "hub",
                Status::Ok,
                format!(
                    "running (pid {}, {}, orchestra {}{})",
                    info.pid,
                    info.url,
                    info.orchestra_version,
                    if info.fake { ", on the fake model" } else { "" }
                ),
            ),
            true,
        ),
        (Ok(true), None) => (
            check(
                "hub",
                Status::Ok,
                "starting (its lock is held, no address yet)",
            ),
            true,
        ),
        (Ok(false), Some(info)) => (
            check(
                "hub",
                Status::Warn,
                format!(
                    "not running; stale state from pid {} is left in {}",
                    info.pid,
                    files.dir.display()
                ),
            )
            .fix("nothing to do: the next command replaces it (`orchestra stop` clears it now)"),
            false,
        ),
        (Ok(false), None) => (
            check(
                "hub",
                Status::Ok,
                "not running (commands start it when needed)",
            ),
            false,
        ),
    }
}

/// The hub the providers check started. It is left running, as every command leaves the hub
/// it starts: it stops by itself once idle (`hub.idleStopMs`), and the next command finds it
/// warm. The line says so, and how to stop it now.
fn hub_started_by_doctor(info: &HubInfo, stale_pid: Option<u32>, idle_stop_ms: u64) -> Check {
    let replaced = match stale_pid {
        Some(pid) => format!("; it replaced the stale state pid {pid} left"),
        None => String::new(),
    };
    check(
        "hub",
        Status::Ok,
        format!(
            "not running before; doctor started it to ask OpenCode for its providers (pid {}, {}, \
             orchestra {}){replaced}. Like any hub a command starts, it stops by itself after {} \
             with no client and no task (`orchestra stop` stops it now)",
            info.pid,
            info.url,
            info.orchestra_version,
            duration_words(idle_stop_ms)
        ),
    )
    .details(serde_json::json!({
        "startedByDoctor": true,
        "pid": info.pid,
        "url": info.url,
        "idleStopMs": idle_stop_ms,
    }))
}

/// `600000` → "10 min (hub.idleStopMs)".
fn duration_words(ms: u64) -> String {
    let text = match ms {
        ms if ms >= 60_000 && ms % 60_000 == 0 => format!("{} min", ms / 60_000),
        ms if ms >= 1000 && ms % 1000 == 0 => format!("{} s", ms / 1000),
        ms => format!("{ms} ms"),
    };
    format!("{text} (hub.idleStopMs)")
}

/// Installed (the install record names the plugin file and the file is there) and loaded (the
/// user's OpenCode resolves it in this project; a running hub counts connected plugins).
async fn plugin(project_dir: &Path, main: Option<&Path>, hub_running: bool) -> Check {
    let record_path = orchestra_state_dir::project_state_dir(project_dir).join("installed.json");
    let record: Option<Value> = std::fs::read_to_string(&record_path)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let Some(record) = record else {
        return check("plugin", Status::Warn, "not installed in this project").fix(
            "`orchestra install` (adds the MCP server, the orchestrator agent and the plugin)",
        );
    };
    let Some(file) = record["plugin"]["file"].as_str().map(PathBuf::from) else {
        return check(
            "plugin",
            Status::Ok,
            "Orchestra is installed without the plugin (--no-plugin)",
        );
    };
    let key = record["plugin"]["key"].as_str().unwrap_or("plugin");
    if !file.is_file() {
        return check(
            "plugin",
            Status::Fail,
            format!("{} is missing", file.display()),
        )
        .fix("`orchestra install` writes it again");
    }
    let connected = if hub_running {
        connected_plugins(project_dir).await
    } else {
        None
    };
    let connected_note = match connected {
        Some(n) => format!("; {n} OpenCode session(s) with it are connected to the hub"),
        None => String::new(),
    };
    let Some(main) = main else {
        return check(
            "plugin",
            Status::Ok,
            format!("installed ({} in `{key}`){connected_note}", file.display()),
        );
    };
    match opencode_plugins(main, project_dir).await {
        Some(listed) if listed.iter().any(|spec| spec.ends_with(&file.display().to_string())) => check(
            "plugin",
            Status::Ok,
            format!("installed and loaded by {} ({}){connected_note}", main.display(), file.display()),
        ),
        Some(listed) if listed.iter().any(|spec| spec.contains("--pure")) => check(
            "plugin",
            Status::Fail,
            "installed, but OpenCode runs without external plugins (OPENCODE_PURE / --pure)",
        )
        .fix("unset OPENCODE_PURE"),
        Some(_) => check(
            "plugin",
            Status::Fail,
            format!("installed, but {} does not load {}", main.display(), file.display()),
        )
        .fix(format!(
            "`orchestra install` again (it writes `{key}`; pass `--opencode v1|v2` if your OpenCode is the other line)"
        )),
        None => check(
            "plugin",
            Status::Ok,
            format!(
                "installed ({} in `{key}`); {} cannot list its plugins, so loading was not checked{connected_note}",
                file.display(),
                main.display()
            ),
        ),
    }
}

/// `opencode debug info` in the project: the plugin specs OpenCode resolves (1.x only).
async fn opencode_plugins(main: &Path, project_dir: &Path) -> Option<Vec<String>> {
    let output = opencode_bin::output_of(
        main,
        &["debug", "info"],
        Some(project_dir),
        Duration::from_secs(60),
    )
    .await?;
    let text = String::from_utf8_lossy(&output.stdout);
    let (_, after) = text.split_once("plugins:")?;
    Some(
        after
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .map(|line| line.trim_start_matches("- ").to_owned())
            .collect(),
    )
}

async fn connected_plugins(project_dir: &Path) -> Option<u64> {
    let info = HubFiles::for_project(project_dir).read_info()?;
    let client = orchestra_client::HubClient::new(&info).ok()?;
    let health: Value = client.get("/api/v1/health").await.ok()?;
    health["plugins"].as_u64()
}

/// The providers OpenCode offers this project (read through the hub's worker server) and, with
/// `prompt`, whether one answers a one-word prompt. Also returns the hub when this started it.
async fn providers(target: &HubTarget, prompt: bool) -> (Vec<Check>, Option<HubInfo>) {
    let hub = match target.connect().await {
        Ok(hub) => hub,
        Err(err) => {
            return (vec![
                check("providers", Status::Fail, format!("no hub to ask: {err:#}"))
                    .fix("`orchestra stop`, then `orchestra doctor` again; `orchestra output` shows the hub's log"),
            ], None);
        }
    };
    let started = hub.started.then(|| hub.info.clone());
    let listing = hub
        .client
        .list(&TaskListParams {
            view: ListView::Models,
            scope: Some(ListScope::Configured),
            format: Some(ListFormat::Json),
            limit: Some(500),
            ..TaskListParams::default()
        })
        .await;
    let models: Value = match listing {
        Ok(listing) => serde_json::from_str(&listing.text).unwrap_or(Value::Null),
        Err(err) => {
            return (
                vec![check(
                    "providers",
                    Status::Fail,
                    format!("reading the models failed: {err}"),
                )],
                started,
            );
        }
    };
    let listed = provider_check(&models);
    if listed.status == Status::Fail {
        return (vec![listed], started);
    }
    if !prompt {
        return (
            vec![
                listed,
                check(
                    "answer",
                    Status::Skipped,
                    "--no-prompt: no test prompt sent",
                ),
            ],
            started,
        );
    }
    (vec![listed, answer(&hub.client).await], started)
}

/// One short task on the default worker, its answer or its error.
async fn answer(client: &orchestra_client::HubClient) -> Check {
    let began = Instant::now();
    let record = match crate::quickstart::task_to_end(
        client,
        "Reply with the single word OK.",
        Duration::from_secs(90),
    )
    .await
    {
        Ok(record) => record,
        Err(err) => return check("answer", Status::Fail, err),
    };
    let model = record.model.as_deref().unwrap_or("unknown model");
    match record.status {
        JobStatus::Succeeded => check(
            "answer",
            Status::Ok,
            format!("{model} answered in {:.1} s", began.elapsed().as_secs_f64()),
        ),
        JobStatus::Failed | JobStatus::Canceled | JobStatus::Running => check(
            "answer",
            Status::Fail,
            format!(
                "{model} did not answer: {}",
                record
                    .error
                    .as_deref()
                    .and_then(|e| e.lines().next())
                    .unwrap_or("no error recorded")
            ),
        )
        .fix(crate::quickstart::NO_PROVIDER_FIX),
    }
}
