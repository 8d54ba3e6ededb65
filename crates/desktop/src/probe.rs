//! The test hook: with `ORCHESTRA_DESKTOP_PROBE=<file>` set, the window writes what it shows to
//! that file every few hundred milliseconds — the page's title, address and text, whether the
//! page's own requests to the hub are authorized, the window title, the status bar and where
//! the "Open in OpenCode" button is — so a test can check the window without reading pixels.
//! Off unless the variable is set; the page's text goes nowhere else.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub const VAR: &str = "ORCHESTRA_DESKTOP_PROBE";
pub const PERIOD: Duration = Duration::from_millis(300);

/// Runs in the page. The first run starts one authorized request (`/api/v1/health`, with the
/// page's own session: its cookie and the key the page keeps in `sessionStorage`, as the
/// panel's own calls send them) and later runs report its status.
const PAGE_SCRIPT: &str = r#"(function () {
  var p = window.__orchestraProbe;
  if (!p) {
    p = window.__orchestraProbe = { api: null };
    var key = '';
    try { key = sessionStorage.getItem('orchestra-session') || ''; } catch (e) {}
    fetch('/api/v1/health', { headers: { 'x-orchestra-session': key } }).then(function (r) { p.api = r.status; })
      .catch(function (e) { p.api = String(e); });
  }
  return { url: location.origin + location.pathname, title: document.title,
           text: document.body ? document.body.innerText.slice(0, 20000) : '', api: p.api };
})()"#;

/// What the window knows of itself, written beside the page's part.
#[derive(Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct Shell {
    pub window_title: String,
    pub status: String,
    /// The button's place inside the window: x, y, width, height.
    pub open_button: (i32, i32, i32, i32),
    pub hub_pid: Option<u32>,
    pub hub_owned: Option<bool>,
    pub project: String,
}

pub fn file() -> Option<PathBuf> {
    std::env::var_os(VAR)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

pub fn script() -> &'static str {
    PAGE_SCRIPT
}

/// Writes the probe file (through a temporary file, so a reader never sees half of it).
pub fn write(file: &PathBuf, shell: &Shell, page_json: &str) {
    let page: serde_json::Value = serde_json::from_str(page_json).unwrap_or_default();
    let report = serde_json::json!({ "shell": shell, "page": page });
    let temp = file.with_extension("tmp");
    let written =
        std::fs::write(&temp, report.to_string()).and_then(|()| std::fs::rename(&temp, file));
    if let Err(err) = written {
        tracing::warn!(file = %file.display(), "cannot write the probe file: {err}");
    }
}
