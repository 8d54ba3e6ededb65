//! "Open in OpenCode": OpenCode's own interface is its terminal UI, so the button opens a
//! terminal window running `opencode <project>` in the project. With Orchestra installed in the
//! project (`orchestra install`), that OpenCode's `orchestra mcp` relay finds this same hub, so
//! the tasks its agent starts show up in this window.
//!
//! The terminal is the person's, not ours: it runs in a session of its own and stays open when
//! the window closes (its relay starts a new hub on its next call if this window stopped ours).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;

/// Terminals tried in order after `$TERMINAL`, and how each takes a command to run.
const TERMINALS: [(&str, &[&str]); 10] = [
    ("x-terminal-emulator", &["-e"]),
    ("gnome-terminal", &["--"]),
    ("konsole", &["-e"]),
    ("xfce4-terminal", &["-x"]),
    ("kitty", &[]),
    ("alacritty", &["-e"]),
    ("wezterm", &["start", "--"]),
    ("foot", &[]),
    ("tilix", &["-e"]),
    ("xterm", &["-e"]),
];

/// Opens a terminal running OpenCode on the project; returns what it ran, for the status bar.
pub fn open(project_dir: &Path) -> anyhow::Result<String> {
    let opencode = find_opencode()?;
    let (terminal, prefix) = find_terminal()?;
    let mut command = Command::new(&terminal);
    command
        .args(prefix)
        .arg(&opencode)
        .arg(project_dir)
        .current_dir(project_dir)
        .env("PWD", project_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: the person's window, not a child the window cleans up.
        .process_group(0);
    orchestra_state_dir::private::keep_user_umask(&mut command);
    let mut child = command.spawn().with_context(|| {
        format!(
            "cannot start the terminal {}; set $TERMINAL to the terminal you use",
            terminal.display()
        )
    })?;
    // Reaped by a thread, so a terminal that exits never lingers as a zombie of ours.
    let spawned = std::thread::Builder::new()
        .name("terminal-reaper".into())
        .spawn(move || {
            let _ = child.wait();
        });
    if let Err(err) = spawned {
        tracing::warn!("cannot watch the terminal ({err}); it may linger as a zombie");
    }
    let described = format!(
        "opened OpenCode ({}) in {}",
        opencode.display(),
        terminal.file_name().map_or_else(
            || terminal.display().to_string(),
            |n| n.to_string_lossy().into_owned()
        )
    );
    tracing::info!("{described}");
    Ok(described)
}

/// `$ORCHESTRA_OPENCODE_BIN` (as the hub uses it), else `opencode` on PATH.
fn find_opencode() -> anyhow::Result<PathBuf> {
    if let Some(bin) = std::env::var_os("ORCHESTRA_OPENCODE_BIN").filter(|b| !b.is_empty()) {
        return Ok(PathBuf::from(bin));
    }
    on_path("opencode").context(
        "OpenCode is not on PATH; install it (`npm install -g opencode-ai`) or set \
         ORCHESTRA_OPENCODE_BIN to its binary",
    )
}

/// `$TERMINAL` (run with `-e`), else the first known terminal on PATH.
fn find_terminal() -> anyhow::Result<(PathBuf, &'static [&'static str])> {
    if let Some(terminal) = std::env::var_os("TERMINAL").filter(|t| !t.is_empty()) {
        let terminal = PathBuf::from(terminal);
        let named = terminal
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|name| TERMINALS.iter().find(|(known, _)| *known == name));
        let prefix: &'static [&'static str] = named.map_or(&["-e"], |(_, prefix)| *prefix);
        let path = if terminal.components().count() > 1 {
            Some(terminal.clone())
        } else {
            terminal.to_str().and_then(on_path)
        };
        return path.map(|p| (p, prefix)).with_context(|| {
            format!(
                "$TERMINAL is {}, which is not an executable on PATH",
                terminal.display()
            )
        });
    }
    TERMINALS
        .iter()
        .find_map(|(name, prefix)| on_path(name).map(|path| (path, *prefix)))
        .context(
            "no terminal found to run OpenCode in: set $TERMINAL to your terminal (it is run \
             as `$TERMINAL -e opencode <project>`), or install one (xterm, gnome-terminal, …)",
        )
}

fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|path| {
            std::fs::metadata(path)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
