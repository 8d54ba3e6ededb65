//! The desktop half of `notifications.idle`: `notify-send` when it is installed. The hub event
//! (`orchestra.notification`) is published by the caller either way.

use std::process::Stdio;
use std::time::Duration;

/// A notification daemon that does not answer must not keep a child around.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(5);
/// The program that shows a desktop notification on Linux (libnotify).
const NOTIFY_SEND: &str = "notify-send";

/// Shows `title` / `body` through `notify-send`, in a process group of its own; quietly does
/// nothing when the program is not installed (servers, containers).
pub async fn desktop(title: &str, body: &str) {
    let mut command = tokio::process::Command::new(NOTIFY_SEND);
    command
        .arg("--app-name=Open Orchestra")
        // The title can come from a project's config: after `--` it cannot be an option.
        .arg("--")
        .arg(title)
        .arg(body)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            tracing::debug!("notify-send is not installed; the idle notification is an event only");
            return;
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not run notify-send for an idle notification");
            return;
        }
    };
    match tokio::time::timeout(NOTIFY_TIMEOUT, child.wait()).await {
        Ok(Ok(status)) if !status.success() => {
            tracing::debug!(%status, "notify-send failed (no notification daemon?)");
        }
        Ok(Ok(_)) => {}
        Ok(Err(err)) => tracing::warn!(error = %err, "waiting for notify-send failed"),
        Err(_) => {
            // Kills the child by the pid we hold; dropping it would too (kill_on_drop).
            if let Err(err) = child.kill().await {
                tracing::warn!(error = %err, "could not stop a hanging notify-send");
            }
        }
    }
}
