//! Draining a child's stdout/stderr: every line goes to `tracing`, the last lines are kept for
//! error messages, and the `opencode server listening on …` line is reported once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;

/// How many lines [`OutputLog`] keeps.
pub(crate) const OUTPUT_LINES_KEPT: usize = 50;
/// Longer lines are cut in the ring buffer (not in the log).
const MAX_KEPT_LINE_CHARS: usize = 1_000;
const LISTENING_MARKER: &str = "server listening on ";

/// The last [`OUTPUT_LINES_KEPT`] lines of stdout and stderr, interleaved in arrival order.
#[derive(Debug, Default)]
pub(crate) struct OutputLog {
    lines: Mutex<VecDeque<String>>,
}

impl OutputLog {
    fn push(&self, line: String) {
        let mut lines = self
            .lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if lines.len() == OUTPUT_LINES_KEPT {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    pub(crate) fn snapshot(&self) -> Vec<String> {
        let lines = self
            .lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        lines.iter().cloned().collect()
    }

    /// For error messages: the kept lines, or a note that there were none.
    pub(crate) fn render(&self) -> String {
        let lines = self.snapshot();
        if lines.is_empty() {
            "(no output)".to_owned()
        } else {
            lines.join("\n")
        }
    }
}

/// Reads `reader` line by line until EOF, for the whole life of the process: an undrained
/// pipe would eventually block OpenCode on a write. Bytes that are not UTF-8 are replaced
/// rather than ending the loop.
pub(crate) fn drain<R>(
    reader: R,
    stream: &'static str,
    label: String,
    log: Arc<OutputLog>,
    listening: mpsc::Sender<String>,
) where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut buffer = Vec::new();
        let mut announced = false;
        loop {
            buffer.clear();
            match reader.read_until(b'\n', &mut buffer).await {
                Ok(0) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buffer).trim_end().to_owned();
                    tracing::debug!(worker = %label, stream, "{line}");
                    if !announced && let Some(url) = listening_url(&line) {
                        announced = true;
                        // The receiver may be gone once startup is over; nothing to do then.
                        let _ = listening.try_send(url);
                    }
                    log.push(line.chars().take(MAX_KEPT_LINE_CHARS).collect());
                }
                Err(error) => {
                    tracing::debug!(worker = %label, stream, %error, "stopped reading OpenCode output");
                    break;
                }
            }
        }
    });
}

/// `opencode server listening on http://127.0.0.1:4096` → `http://127.0.0.1:4096`.
pub(crate) fn listening_url(line: &str) -> Option<String> {
    let start = line.find(LISTENING_MARKER)? + LISTENING_MARKER.len();
    let url: String = line[start..]
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
        .collect();
    let url = url.trim_end_matches('/');
    url.starts_with("http://")
        .then(|| url.to_owned())
        .filter(|url| url.len() > "http://".len())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_listening_url() {
        assert_eq!(
            listening_url("opencode server listening on http://127.0.0.1:4096").unwrap(),
            "http://127.0.0.1:4096"
        );
        assert_eq!(
            listening_url("\u{1b}[0mopencode server listening on http://127.0.0.1:41687/\u{1b}[0m")
                .unwrap(),
            "http://127.0.0.1:41687"
        );
        assert_eq!(
            listening_url("Warning: OPENCODE_SERVER_PASSWORD is not set"),
            None
        );
        assert_eq!(listening_url("server listening on "), None);
    }

    #[test]
    fn keeps_only_the_last_lines() {
        let log = OutputLog::default();
        assert_eq!(log.render(), "(no output)");
        for n in 0..OUTPUT_LINES_KEPT + 5 {
            log.push(format!("line {n}"));
        }
        let lines = log.snapshot();
        assert_eq!(lines.len(), OUTPUT_LINES_KEPT);
        assert_eq!(lines[0], "line 5");
        assert_eq!(
            lines.last().unwrap(),
            &format!("line {}", OUTPUT_LINES_KEPT + 4)
        );
    }
}
