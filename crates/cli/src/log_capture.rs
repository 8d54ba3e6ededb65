//! The hub's log for the panel: a `tracing` layer in `orchestra serve` that turns log lines
//! into `orchestra.log` events on the hub's bus (so they are streamed, stored with the other
//! events, and read back by `GET /api/v1/logs`), with the task and worker a line is about.
//!
//! What it captures does not depend on what stderr shows (`-v`, `ORCHESTRA_LOG`): warnings and
//! errors from everything, info from our own crates, and the output lines of the workers'
//! OpenCode servers (target `opencode`, with the server's label as the worker). Capturing never
//! blocks logging: lines go through a bounded channel and are dropped (and counted) when the
//! hub cannot keep up.

use std::fmt::Write as _;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use orchestra_core::events::EventBus;
use orchestra_core::supervisor::OUTPUT_TARGET;
use orchestra_protocol::{EventBody, LogEvent};
use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};

/// Lines waiting to be published at most; more are dropped.
const QUEUE: usize = 8192;
/// Longest message kept (a worker can print a very long line).
const MAX_MESSAGE_CHARS: usize = 4000;

static SINK: OnceLock<mpsc::Sender<LogEvent>> = OnceLock::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// The layer to install with the process's subscriber; it captures nothing until [`start`].
pub struct Capture;

/// Which lines the capture takes (see the module docs).
pub fn wanted(meta: &Metadata<'_>) -> bool {
    if !meta.is_event() {
        return false;
    }
    let target = meta.target();
    // The bus's own problems would come back to the bus.
    if target.starts_with("orchestra_core::events") {
        return false;
    }
    let level = *meta.level();
    level <= Level::WARN
        || (level == Level::INFO && (target.starts_with("orchestra") || target == OUTPUT_TARGET))
}

/// Publishes captured lines on `bus` from now on (once per process; a second call is ignored).
pub fn start(bus: EventBus) {
    let (tx, mut rx) = mpsc::channel::<LogEvent>(QUEUE);
    if SINK.set(tx).is_err() {
        return;
    }
    tokio::spawn(async move {
        while let Some(line) = rx.recv().await {
            let dropped = DROPPED.swap(0, Ordering::Relaxed);
            if dropped > 0 {
                bus.publish(EventBody::Log(LogEvent::new(
                    "warn",
                    format!(
                        "{dropped} log line(s) were not captured for the panel (too many at once)"
                    ),
                )));
            }
            bus.publish(EventBody::Log(line));
        }
    });
}

impl<S: Subscriber> Layer<S> for Capture {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let Some(sink) = SINK.get() else {
            return;
        };
        let meta = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let mut message = fields.message;
        if !fields.rest.is_empty() {
            if !message.is_empty() {
                message.push(' ');
            }
            message.push_str(fields.rest.trim_start());
        }
        if message.chars().count() > MAX_MESSAGE_CHARS {
            message = message.chars().take(MAX_MESSAGE_CHARS).collect::<String>() + " …(cut)";
        }
        let line = LogEvent {
            level: level_word(*meta.level()).into(),
            message,
            target: Some(meta.target().to_owned()),
            job_id: fields.job,
            worker_id: fields.worker,
        };
        if sink.try_send(line).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn level_word(level: Level) -> &'static str {
    if level == Level::ERROR {
        "error"
    } else if level == Level::WARN {
        "warn"
    } else if level == Level::INFO {
        "info"
    } else {
        "debug"
    }
}

/// A line's message, the task and worker it names, and its other fields as `key=value`.
#[derive(Default)]
struct Fields {
    message: String,
    job: Option<String>,
    worker: Option<String>,
    rest: String,
}

impl Fields {
    fn put(&mut self, field: &Field, value: String) {
        match field.name() {
            "message" => self.message = value,
            "job" | "job_id" | "task" => self.job = Some(value),
            // `server` is the label of the OpenCode server a line is about (`shared`, a profile).
            "worker" | "worker_id" | "server" => self.worker = Some(value),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[tokio::test]
    async fn lines_become_log_events_with_their_task_and_worker() {
        let bus = EventBus::in_memory();
        let mut events = bus.subscribe(None);
        start(bus.clone());
        let subscriber = tracing_subscriber::registry()
            .with(Capture.with_filter(tracing_subscriber::filter::filter_fn(wanted)));
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "orchestra_core::jobs", job = "j1", worker = "coder", attempt = 2, "started the turn");
            tracing::info!(target: "opencode", worker = %"shared", stream = "stdout", "hello from opencode");
            tracing::info!(target: "hyper::proto", "not ours, not shown");
            tracing::debug!(target: "orchestra_core::jobs", "too chatty");
            tracing::warn!(target: "hyper::proto", "a warning from anyone is shown");
        });
        let mut lines = Vec::new();
        while lines.len() < 3 {
            let event = tokio::time::timeout(std::time::Duration::from_secs(5), events.next())
                .await
                .unwrap()
                .unwrap();
            if let EventBody::Log(line) = &event.body {
                lines.push(line.clone());
            }
        }
        assert_eq!(lines[0].message, "started the turn attempt=2");
        assert_eq!(lines[0].job_id.as_deref(), Some("j1"));
        assert_eq!(lines[0].worker_id.as_deref(), Some("coder"));
        assert_eq!(lines[0].level, "info");
        assert_eq!(lines[1].message, "hello from opencode stream=stdout");
        assert_eq!(lines[1].worker_id.as_deref(), Some("shared"));
        assert_eq!(lines[1].target.as_deref(), Some("opencode"));
        assert_eq!(lines[2].level, "warn");
        assert_eq!(lines[2].message, "a warning from anyone is shown");
    }
}
