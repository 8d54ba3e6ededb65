//! Draining a child's stdout/stderr: every line goes to `tracing` (target `opencode`, level
//! info, with the server's label as `worker`: the hub's log capture shows them in the panel),
//! the last lines are kept for error messages, and the `opencode server listening on …` line
//! is reported once.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::sync::mpsc;
use tokio_util::task::TaskTracker;

/// How many lines [`OutputLog`] keeps.
pub(crate) const OUTPUT_LINES_KEPT: usize = 50;
/// Longer lines are cut in the ring buffer (not in the log).
const MAX_KEPT_LINE_CHARS: usize = 1_000;
const LISTENING_MARKER: &str = "server listening on ";
/// The `tracing` target of OpenCode's own output lines.
pub const OUTPUT_TARGET: &str = "opencode";

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

/// Longest line kept whole; the rest of a longer line is dropped (counted in the log line), so
/// a child printing megabytes without a newline cannot make the hub buffer them.
const MAX_LINE_BYTES: usize = 16 * 1024;

/// Reads `reader` line by line until EOF, for the whole life of the process: an undrained
/// pipe would eventually block OpenCode on a write. Bytes that are not UTF-8 are replaced
/// rather than ending the loop. Only the stream given a `listening` sender is searched for the
/// listening line (stdout: OpenCode prints it there, and a line on stderr could be anyone's).
pub(crate) fn drain<R>(
    tasks: &TaskTracker,
    reader: R,
    stream: &'static str,
    label: String,
    log: Arc<OutputLog>,
    listening: Option<mpsc::Sender<String>>,
) where
    R: AsyncRead + Unpin + Send + 'static,
{
    tasks.spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut sink = LineSink {
            line: Vec::new(),
            dropped: 0,
            stream,
            label,
            log,
            listening,
        };
        loop {
            let chunk = match reader.fill_buf().await {
                Ok([]) => break,
                Ok(chunk) => chunk,
                Err(error) => {
                    tracing::debug!(worker = %sink.label, stream, %error, "stopped reading OpenCode output");
                    break;
                }
            };
            let (part, ends_line) = match chunk.iter().position(|b| *b == b'\n') {
                Some(at) => (&chunk[..at], true),
                None => (chunk, false),
            };
            sink.extend(part);
            let consumed = part.len() + usize::from(ends_line);
            reader.consume(consumed);
            if ends_line {
                sink.finish_line();
            }
        }
        if !sink.line.is_empty() {
            sink.finish_line();
        }
    });
}

/// The line being read, and where finished lines go.
struct LineSink {
    line: Vec<u8>,
    /// Bytes of the current line beyond [`MAX_LINE_BYTES`], dropped.
    dropped: usize,
    stream: &'static str,
    label: String,
    log: Arc<OutputLog>,
    listening: Option<mpsc::Sender<String>>,
}

impl LineSink {
    fn extend(&mut self, part: &[u8]) {
        let room = MAX_LINE_BYTES.saturating_sub(self.line.len());
        let keep = part.len().min(room);
        self.line.extend_from_slice(&part[..keep]);
        self.dropped = self.dropped.saturating_add(part.len() - keep);
    }

    fn finish_line(&mut self) {
        let line = String::from_utf8_lossy(&self.line).trim_end().to_owned();
        self.line.clear();
        let (label, stream) = (&self.label, self.stream);
        if self.dropped > 0 {
            tracing::info!(target: OUTPUT_TARGET, worker = %label, stream, dropped = self.dropped, "{line} …(line cut)");
            self.dropped = 0;
        } else {
            tracing::info!(target: OUTPUT_TARGET, worker = %label, stream, "{line}");
        }
        if let Some(url) = self.listening.as_ref().and_then(|_| listening_url(&line))
            && let Some(sender) = self.listening.take()
        {
            // The receiver may be gone once startup is over; nothing to do then.
            let _ = sender.try_send(url);
        }
        self.log
            .push(line.chars().take(MAX_KEPT_LINE_CHARS).collect());
    }
}

/// `opencode server listening on http://127.0.0.1:4096` → `http://127.0.0.1:4096`. Only a
/// loopback host (`127.0.0.1` or `localhost`, which is what we ask OpenCode to bind) with a
/// port is accepted: the hub sends the server's password to this address.
pub(crate) fn listening_url(line: &str) -> Option<String> {
    let start = line.find(LISTENING_MARKER)? + LISTENING_MARKER.len();
    let url: String = line
        .get(start..)?
        .chars()
        .take_while(|c| !c.is_whitespace() && *c != '\u{1b}')
        .collect();
    let url = url.trim_end_matches('/');
    let authority = url.strip_prefix("http://")?;
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    matches!(host, "127.0.0.1" | "localhost").then(|| format!("http://{host}:{port}"))
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
        // Only loopback, only with a port: the password goes to this address.
        assert_eq!(
            listening_url("server listening on http://10.0.0.5:4096"),
            None
        );
        assert_eq!(
            listening_url("server listening on http://evil.example:80"),
            None
        );
        assert_eq!(listening_url("server listening on http://127.0.0.1"), None);
        assert_eq!(
            listening_url("server listening on http://127.0.0.1:0"),
            None
        );
        assert_eq!(
            listening_url("server listening on http://127.0.0.1:99999"),
            None
        );
        assert_eq!(
            listening_url("server listening on http://127.0.0.1.evil.example:80"),
            None
        );
        assert_eq!(
            listening_url("opencode server listening on http://localhost:4096/").unwrap(),
            "http://localhost:4096"
        );
    }

    #[tokio::test]
    async fn long_lines_are_cut_and_the_listening_line_still_found() {
        let log = Arc::new(OutputLog::default());
        let (tx, mut rx) = mpsc::channel(2);
        let mut text = vec![b'x'; MAX_LINE_BYTES * 4];
        text.extend_from_slice(b"\nopencode server listening on http://127.0.0.1:4321\ntail");
        drain(
            &TaskTracker::new(),
            std::io::Cursor::new(text),
            "stdout",
            "t".into(),
            log.clone(),
            Some(tx),
        );
        let url = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        assert_eq!(url.as_deref(), Some("http://127.0.0.1:4321"));
        for _ in 0..100 {
            if log.snapshot().len() == 3 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let lines = log.snapshot();
        assert_eq!(
            lines.len(),
            3,
            "{:?}",
            lines.iter().map(String::len).collect::<Vec<_>>()
        );
        assert_eq!(lines[0].len(), MAX_KEPT_LINE_CHARS);
        assert_eq!(lines[2], "tail");
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
