//! One attempt to deliver an event envelope to one target: POST to a webhook, a command with
//! the JSON on stdin, or `notify-send`. Every attempt is bounded by the target's timeout; a
//! command runs in a process group of its own that is killed whole when it overruns.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{NotifyKind, NotifyTarget};

/// The program that shows a desktop notification (libnotify's `notify-send`).
const NOTIFY_SEND: &str = "notify-send";
/// How much of a failing command's stderr the delivery's error keeps.
const STDERR_KEPT: usize = 400;

/// What an attempt needs besides the target.
pub(super) struct Envelope<'a> {
    pub json: &'a str,
    pub event_id: u64,
    pub event_type: &'a str,
    pub title: &'a str,
    pub body: &'a str,
}

pub(super) async fn attempt(
    target: &NotifyTarget,
    http: &reqwest::Client,
    envelope: &Envelope<'_>,
) -> Result<(), String> {
    let limit = Duration::from_millis(target.timeout_ms);
    match target.kind {
        NotifyKind::Webhook => webhook(target, http, envelope, limit).await,
        NotifyKind::Command => command(target, envelope, limit).await,
        NotifyKind::Desktop => desktop(envelope, limit).await,
    }
}

async fn webhook(
    target: &NotifyTarget,
    http: &reqwest::Client,
    envelope: &Envelope<'_>,
    limit: Duration,
) -> Result<(), String> {
    let url = target.url.as_deref().unwrap_or_default();
    let response = http
        .post(url)
        .timeout(limit)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", envelope.event_id.to_string())
        .header("X-Orchestra-Event", envelope.event_type)
        .body(envelope.json.to_owned())
        .send()
        .await
        .map_err(|err| format!("POST {url} failed: {err}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(())
    } else {
        Err(format!("POST {url} answered HTTP {}", status.as_u16()))
    }
}

/// Characters that only a shell gives meaning to: a command with any of them runs under
/// `sh -c`, one without is split on whitespace and run directly.
const SHELL_SYNTAX: &[char] = &[
    '|', '&', ';', '<', '>', '(', ')', '$', '`', '\\', '"', '\'', '*', '?', '[', ']', '#', '~',
    '{', '}', '\n',
];

fn argv(command: &str) -> Vec<String> {
    if command.contains(SHELL_SYNTAX) {
        vec!["sh".into(), "-c".into(), command.to_owned()]
    } else {
        command.split_whitespace().map(str::to_owned).collect()
    }
}

async fn command(
    target: &NotifyTarget,
    envelope: &Envelope<'_>,
    limit: Duration,
) -> Result<(), String> {
    let text = target.command.as_deref().unwrap_or_default();
    let args = argv(text);
    let Some((program, rest)) = args.split_first() else {
        return Err("the command is empty".into());
    };
    let mut child = tokio::process::Command::new(program)
        .args(rest)
        .env("ORCHESTRA_EVENT_TYPE", envelope.event_type)
        .env("ORCHESTRA_EVENT_ID", envelope.event_id.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| format!("could not start `{text}`: {err}"))?;
    let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
    let run = async {
        if let Some(mut stdin) = child.stdin.take() {
            // A command that ignores stdin may close it early; that is not a failure.
            let _ = stdin.write_all(envelope.json.as_bytes()).await;
        }
        let mut stderr = String::new();
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        (child.wait().await, stderr)
    };
    let outcome = tokio::time::timeout(limit, run).await;
    match outcome {
        Ok((Ok(status), _)) if status.success() => Ok(()),
        Ok((Ok(status), stderr)) => Err(format!(
            "`{text}` exited with {status}: {}",
            tail(stderr.trim(), STDERR_KEPT)
        )),
        Ok((Err(err), _)) => Err(format!("waiting for `{text}` failed: {err}")),
        Err(_) => {
            // The whole group: a hook's own children must not outlive its timeout.
            if let Some(pgid) = pgid {
                let _ = nix::sys::signal::killpg(
                    nix::unistd::Pid::from_raw(pgid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            Err(format!(
                "`{text}` took longer than {} ms (timeoutMs) and was killed",
                limit.as_millis()
            ))
        }
    }
}

async fn desktop(envelope: &Envelope<'_>, limit: Duration) -> Result<(), String> {
    let mut child = tokio::process::Command::new(NOTIFY_SEND)
        .arg("--app-name=Open Orchestra")
        // Text from a task follows `--`, so it cannot be read as an option.
        .arg("--")
        .arg(envelope.title)
        .arg(escape_markup(envelope.body))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::NotFound => {
                "notify-send is not installed (Debian: apt-get install libnotify-bin)".to_owned()
            }
            _ => format!("could not run notify-send: {err}"),
        })?;
    let mut stderr = String::new();
    let run = async {
        if let Some(mut pipe) = child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr).await;
        }
        child.wait().await
    };
    match tokio::time::timeout(limit, run).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!(
            "notify-send exited with {status} (is a notification daemon on the session bus?): {}",
            tail(stderr.trim(), STDERR_KEPT)
        )),
        Ok(Err(err)) => Err(format!("waiting for notify-send failed: {err}")),
        Err(_) => Err(format!(
            "notify-send took longer than {} ms",
            limit.as_millis()
        )),
    }
}

/// Notification servers read the body as markup: a task's text is shown as text.
fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn tail(text: &str, max: usize) -> String {
    let count = text.chars().count();
    text.chars().skip(count.saturating_sub(max)).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::argv;

    #[test]
    fn a_plain_command_runs_without_a_shell_and_shell_syntax_gets_one() {
        assert_eq!(
            argv("/usr/bin/logger -t orchestra"),
            ["/usr/bin/logger", "-t", "orchestra"]
        );
        assert_eq!(argv("cat > /tmp/x"), ["sh", "-c", "cat > /tmp/x"]);
        assert_eq!(argv("echo \"$HOME\""), ["sh", "-c", "echo \"$HOME\""]);
    }
}
