//! Live progress in the terminal, rendered from the hub's event stream (no polling): a spinner
//! on a terminal, plain lines otherwise — one per change, and a heartbeat when nothing happens
//! for a while.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use futures_util::{Stream, StreamExt};
use orchestra_client::{ClientError, HubClient};
use orchestra_protocol::{EventBody, HubEvent, JobRecord, now_ms};

/// How often a plain (non-terminal) progress line repeats when nothing changed.
const PLAIN_HEARTBEAT: Duration = Duration::from_secs(5);

/// The event stream of one job, opened before the job is started so nothing is missed.
pub struct JobEvents {
    after: u64,
    client: HubClient,
}

impl JobEvents {
    /// Remembers where the stream stands now; [`JobEvents::follow`] replays from here.
    pub async fn mark(client: &HubClient) -> Result<JobEvents, ClientError> {
        let health = client.health().await?;
        Ok(JobEvents {
            after: health.last_event_id,
            client: client.clone(),
        })
    }

    /// The job's events from the mark on.
    pub async fn follow(
        &self,
        job_id: &str,
    ) -> Result<impl Stream<Item = Result<HubEvent, ClientError>> + use<>, ClientError> {
        self.client.events_of(Some(self.after), Some(job_id)).await
    }
}

/// Follows a worker job until it is final, showing what the worker does. `None` when the
/// stream ended first (the hub stopped).
pub async fn job(
    events: impl Stream<Item = Result<HubEvent, ClientError>>,
    worker: &str,
) -> Option<JobRecord> {
    let progress = Progress::new();
    let mut events = Box::pin(events);
    let started = now_ms();
    let mut calls: HashSet<String> = HashSet::new();
    let mut output = String::new();
    let mut last_line = String::new();
    let mut shown_at = Instant::now();
    loop {
        let next = tokio::time::timeout(PLAIN_HEARTBEAT, events.next()).await;
        match next {
            Ok(Some(Ok(event))) => match event.body.clone() {
                EventBody::JobFinished { job } => {
                    progress.finish();
                    return Some(*job);
                }
                EventBody::JobDelta { text, .. } => {
                    output.push_str(&text);
                    output = tail(&output.replace('\n', " "), 60).to_owned();
                }
                EventBody::JobTool(tool) => {
                    calls.insert(tool.call_id);
                }
                EventBody::PermissionAsked(question) => progress.line(&format!(
                    "the worker asks permission for {} {}",
                    question.permission,
                    question.patterns.join(" ")
                )),
                EventBody::PermissionAnswered(answer) => progress.line(&format!(
                    "permission answered `{}` ({})",
                    answer.reply, answer.by
                )),
                _ => {}
            },
            Ok(Some(Err(err))) => {
                progress.line(&format!("the event stream failed: {err}"));
                progress.finish();
                return None;
            }
            Ok(None) => {
                progress.finish();
                return None;
            }
            Err(_) => {}
        }
        let line = format!(
            "{worker} · {} tool call(s){}",
            calls.len(),
            if output.is_empty() {
                String::new()
            } else {
                format!(" · {output}")
            }
        );
        let changed = line != last_line;
        if progress.is_live() || changed || shown_at.elapsed() >= PLAIN_HEARTBEAT {
            let secs = (now_ms() - started) as f64 / 1000.0;
            progress.update(&format!("{line} · {secs:.1}s"));
            last_line = line;
            shown_at = Instant::now();
        }
    }
}

/// The last `max` characters of `text`.
pub fn tail(text: &str, max: usize) -> &str {
    let count = text.chars().count();
    match text.char_indices().nth(count.saturating_sub(max)) {
        Some((at, _)) if count > max => &text[at..],
        _ => text,
    }
}

/// A spinner on a terminal, plain lines otherwise.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
}

impl Progress {
    pub fn new() -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { bar }
    }

    pub fn is_live(&self) -> bool {
        self.bar.is_some()
    }

    pub fn update(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.set_message(line.to_owned()),
            None => eprintln!("orchestra: {line}"),
        }
    }

    pub fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("orchestra: {line}"),
        }
    }

    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
