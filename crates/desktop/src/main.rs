//! `orchestra-desktop`: the project's control panel in a native window.
//!
//! It opens on a project (the argument, or the last one used), attaches to the project's hub or
//! starts one (through `orchestra_client`, with the `orchestra` binary found next to this one or
//! on PATH), shows the hub's page logged in through a one-time login link that only the webview
//! sees, opens the project in OpenCode from a button, and raises desktop notifications when a
//! task needs a person or fails. A hub it started is its own: closing the window stops it and
//! its workers, and the hub stops by itself when this process dies some other way
//! (`orchestra serve --owner-pid`). A hub it only attached to keeps running.
//!
//! A separate binary so that `orchestra` never links GTK or WebKit (`.ci/run` checks it).
//! Why wry + tao and not Tauri: the page is the hub's, served over HTTP, and the window needs
//! only a webview, a status bar, a button and notifications. wry and tao are Tauri's own webview
//! and window layers on the system WebView; Tauri adds an app framework (build script, config,
//! IPC, bundler) we would not use. Installers can come later with `cargo-packager`.
//!
//! Threads: the window's event loop owns the main thread (GTK wants it); a tokio runtime runs
//! the hub link and the event stream; the notifier has a thread of its own.
//!
//! # Layout
//! - `project`: which project, and remembering the last one.
//! - `hub`: finding `orchestra`, attaching to or starting the hub, stopping one we own.
//! - `follow`: the hub's event stream → the status (`tally`) and notifications.
//! - `tally`: what the events mean for the window: tasks running, questions waiting, alerts.
//! - `notify`: freedesktop notifications over D-Bus (gio).
//! - `opencode`: opening the project in OpenCode in a terminal.
//! - `window`: the window, the webview and the status bar; `probe`: the test hook.

mod follow;
mod hub;
mod notify;
mod opencode;
mod probe;
mod project;
mod tally;
mod window;

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

#[derive(Parser)]
#[command(
    name = "orchestra-desktop",
    version,
    about = "Open Orchestra's control panel in a window: attaches to the project's hub or starts it (and stops a hub it started when the window closes)"
)]
struct Args {
    /// The project directory (default: the last one opened).
    project: Option<PathBuf>,
    /// If the hub has to be started, run its workers on the built-in fake model (it echoes
    /// tasks) instead of your OpenCode providers.
    #[arg(long)]
    fake: bool,
    /// The `orchestra` binary (default: the one next to this binary, else `orchestra` on PATH).
    #[arg(long, value_name = "PATH")]
    orchestra: Option<PathBuf>,
    /// More logging on stderr (repeat for more).
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,
}

fn main() -> std::process::ExitCode {
    // Before any thread or file: what this process writes in the state folder is the user's alone.
    orchestra_state_dir::private::restrict_umask();
    let args = Args::parse();
    init_logging(args.verbose);
    if let Err(err) = orchestra_state_dir::check_state_home() {
        eprintln!("orchestra-desktop: error: {err}");
        return std::process::ExitCode::FAILURE;
    }
    match run(args) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("orchestra-desktop: error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<std::process::ExitCode> {
    let memory = project::Memory::in_state_dir();
    let project_dir = project::choose(args.project, &memory)?;
    if let Err(err) = memory.remember(&project_dir) {
        tracing::warn!("{err:#}");
    }
    let setup = hub::Setup {
        orchestra_exe: hub::find_orchestra(args.orchestra)?,
        project_dir,
        fake: args.fake,
    };
    gtk::init().map_err(|err| {
        anyhow::anyhow!(
            "cannot open a window ({err}); orchestra-desktop needs a graphical session (DISPLAY or \
             WAYLAND_DISPLAY set). Without one, `orchestra panel --url` prints a login link for a browser"
        )
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let code = window::run(setup, &runtime)?;
    // The hub we owned is stopped by now; nothing else of ours may hold the process up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    Ok(std::process::ExitCode::from(
        u8::try_from(code).unwrap_or(1),
    ))
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn,orchestra_desktop=info",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORCHESTRA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
