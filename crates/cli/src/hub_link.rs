//! How the CLI's commands reach the project's hub, and the commands that are nothing more than
//! a call to it: the listings, `stop` and `panel`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use orchestra_client::{ClientError, ConnectOptions, Connection, HubFiles, connect};
use orchestra_protocol::{ListFormat, ListView, TaskListParams};

use crate::write_stdout;

/// Which hub a command wants: the project's, on the fake model or not.
#[derive(Clone)]
pub struct HubTarget {
    pub project_dir: PathBuf,
    /// `--config`: an extra orchestrator.json for a hub this command starts.
    pub config_file: Option<PathBuf>,
    pub fake: bool,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    #[arg(long)]
    pub limit: Option<u32>,
    /// Only tasks of this worker.
    #[arg(long)]
    pub worker: Option<String>,
    /// If no hub runs, start one on the built-in fake model.
    #[arg(long)]
    pub fake: bool,
}

impl HubTarget {
    fn options(&self, start: bool, any_mode: bool) -> anyhow::Result<ConnectOptions> {
        Ok(ConnectOptions {
            project_dir: self.project_dir.clone(),
            orchestra_exe: std::env::current_exe()
                .context("cannot find the path of this orchestra binary")?,
            fake: self.fake,
            any_mode,
            config_file: self.config_file.clone(),
            start,
            owner_pid: None,
        })
    }

    /// The project's hub, started in the background when none runs (on the fake model with
    /// `fake`); a running hub must run on the model asked for. Says what it did on stderr.
    pub async fn connect(&self) -> anyhow::Result<Connection> {
        self.connect_as(false).await
    }

    /// Like [`HubTarget::connect`], accepting a running hub on either model (for commands
    /// that only read).
    pub async fn connect_any(&self) -> anyhow::Result<Connection> {
        self.connect_as(true).await
    }

    async fn connect_as(&self, any_mode: bool) -> anyhow::Result<Connection> {
        let connection = connect(&self.options(true, any_mode)?).await?;
        for warning in &connection.warnings {
            eprintln!("orchestra: warning: {warning}");
        }
        if connection.started {
            eprintln!(
                "orchestra: started the project's hub (pid {}) at {}{}",
                connection.info.pid,
                connection.info.url,
                if connection.info.fake {
                    ", on the built-in fake model (--fake)"
                } else {
                    ""
                }
            );
        }
        Ok(connection)
    }
}

/// `orchestra status | workers | profiles | tasks | output`.
pub async fn list(
    target: &HubTarget,
    view: ListView,
    args: ListArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let hub = target.connect_any().await?;
    let listing = hub
        .client
        .list(&TaskListParams {
            view,
            worker_id: args.worker,
            limit: args.limit,
            format: Some(if args.json {
                ListFormat::Json
            } else {
                ListFormat::Markdown
            }),
            ..TaskListParams::default()
        })
        .await?;
    write_stdout(&format!("{}\n", listing.text))?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// `orchestra stop`: asks the hub to stop and waits until it has let go of the project.
pub async fn stop(target: &HubTarget) -> anyhow::Result<std::process::ExitCode> {
    let hub = match connect(&target.options(false, true)?).await {
        Ok(hub) => hub,
        Err(ClientError::NoHub { .. }) => {
            write_stdout("orchestra: no hub runs for this project\n")?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
        Err(err) => return Err(err.into()),
    };
    hub.client.shutdown().await?;
    let files = HubFiles::for_project(&target.project_dir);
    let deadline = Instant::now() + Duration::from_secs(30);
    while files.is_locked()? {
        if Instant::now() >= deadline {
            anyhow::bail!(
                "the hub (pid {}) was asked to stop but still runs after 30 s; `kill {}` stops it",
                hub.info.pid,
                hub.info.pid
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    write_stdout(&format!(
        "orchestra: stopped the hub (pid {})\n",
        hub.info.pid
    ))?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// `orchestra panel [--url]`: a one-time login link to the hub's page, printed or opened.
///
/// Opened, the link never goes on a command line: any local user can read every process's
/// arguments (`/proc/*/cmdline`) and redeem the link first. The hub writes it into a page in
/// the project's private state folder instead, and the browser is given that file's path; the
/// file is gone once the link is used or has expired.
pub async fn panel(target: &HubTarget, print_only: bool) -> anyhow::Result<std::process::ExitCode> {
    let hub = target.connect_any().await?;
    if print_only {
        let link = hub.client.login_link().await?;
        write_stdout(&format!("{}\n", link.url))?;
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let file = match hub.client.login_file().await {
        Ok(file) => file,
        Err(err) => {
            let link = hub.client.login_link().await?;
            eprintln!(
                "orchestra: the hub could not write a login file ({err}); open this link (it works once):"
            );
            write_stdout(&format!("{}\n", link.url))?;
            return Ok(std::process::ExitCode::SUCCESS);
        }
    };
    match open_in_browser(&file.path) {
        Ok(opener) => {
            eprintln!("orchestra: opened the panel in your browser (with {opener})");
        }
        Err(why) => {
            eprintln!(
                "orchestra: could not open a browser ({why}); open this file in your browser (it works once, for two minutes), or set BROWSER:"
            );
            write_stdout(&format!("{}\n", file.path))?;
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// `orchestra endpoint [--no-start]`: the project's hub (started if none runs, unless
/// `start` is false) as one JSON line with its token, for Orchestra's OpenCode plugin, which
/// reads it from this pipe so that the token never goes into a file.
pub async fn endpoint(target: &HubTarget, start: bool) -> anyhow::Result<std::process::ExitCode> {
    let hub = if start {
        target.connect_any().await?
    } else {
        connect(&target.options(false, true)?).await?
    };
    let line = serde_json::json!({
        "url": hub.info.url,
        "token": hub.info.token,
        "pid": hub.info.pid,
        "hubId": hub.info.hub_id,
    });
    write_stdout(&format!("{line}\n"))?;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Opens `target` (a file's path or an address) with the user's browser: `$BROWSER` when set (as `man` and `git` use it), else
/// the desktop's opener (`open` on macOS, `xdg-open` elsewhere). Returns the opener used, or why
/// none worked.
fn open_in_browser(target: &str) -> Result<String, String> {
    let desktop = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let chosen = std::env::var("BROWSER")
        .ok()
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty());
    let opener = chosen.unwrap_or_else(|| desktop.to_owned());
    let mut command = std::process::Command::new(&opener);
    command
        .arg(target)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    // The browser is the user's program, not ours: what it saves gets the user's umask, not 077.
    orchestra_state_dir::private::keep_user_umask(&mut command);
    let status = command.status();
    match status {
        Ok(status) if status.success() => Ok(opener),
        Ok(status) => Err(format!("`{opener}` exited with {status}")),
        Err(err) => Err(format!("`{opener}` could not run: {err}")),
    }
}
