//! Prompting a warm OpenCode directly, the way the hub's runner does it: create a session,
//! `prompt_async`, wait for `session.idle` on `/event`, read the messages.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures_util::StreamExt;
use orchestra_core::opencode::{
    CreateSessionRequest, OpenCodeClient, OpenCodeEvent, PromptRequest, SessionStatus,
};
use orchestra_core::supervisor::ServerProcess;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[derive(Default)]
struct Idle {
    waiters: HashMap<String, oneshot::Sender<()>>,
    /// When each session on this server (ours or the hub's) was first seen idle.
    seen: HashMap<String, Instant>,
}

type Waiters = Arc<Mutex<Idle>>;

/// A client of one OpenCode server with one event subscription, drained in the background so
/// events of other sessions never queue up in front of ours.
pub struct Direct {
    pub client: OpenCodeClient,
    waiters: Waiters,
    reader: JoinHandle<()>,
}

/// One direct prompt.
pub struct DirectSample {
    pub total: Duration,
    pub text: String,
    /// When the messages had been read: the direct analogue of a finished job record.
    pub done_at: Instant,
    pub session: String,
}

impl Direct {
    pub async fn connect(
        server: &ServerProcess,
        project: &std::path::Path,
    ) -> anyhow::Result<Direct> {
        let client = server.client(Some(project.to_path_buf()))?;
        let mut events = client.events().await?;
        let waiters: Waiters = Arc::default();
        let shared = waiters.clone();
        let reader = tokio::spawn(async move {
            while let Some(event) = events.next().await {
                let idle = match event {
                    Ok(OpenCodeEvent::SessionIdle { session_id }) => session_id,
                    Ok(OpenCodeEvent::SessionStatus {
                        session_id,
                        status: SessionStatus::Idle,
                    }) => session_id,
                    Ok(_) => continue,
                    Err(err) => {
                        tracing::warn!(error = %err, "bench: direct event stream failed");
                        break;
                    }
                };
                let now = Instant::now();
                let waiter = {
                    let mut state = shared.lock().unwrap_or_else(PoisonError::into_inner);
                    state.seen.entry(idle.clone()).or_insert(now);
                    state.waiters.remove(&idle)
                };
                if let Some(waiter) = waiter {
                    let _ = waiter.send(());
                }
            }
        });
        Ok(Direct {
            client,
            waiters,
            reader,
        })
    }

    /// Creates a session and starts `text` on it; returns the session id and an idle signal.
    pub async fn begin(&self, text: &str) -> anyhow::Result<(String, oneshot::Receiver<()>)> {
        let session = self
            .client
            .create_session(&CreateSessionRequest {
                title: Some("bench direct".into()),
                ..CreateSessionRequest::default()
            })
            .await?;
        let (tx, rx) = oneshot::channel();
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .waiters
            .insert(session.id.clone(), tx);
        self.client
            .prompt_async(&session.id, &PromptRequest::text(text))
            .await?;
        Ok((session.id, rx))
    }

    /// When `session` (any client's) was first seen idle on this server's event stream.
    pub fn idle_seen(&self, session: &str) -> Option<Instant> {
        self.waiters
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .seen
            .get(session)
            .copied()
    }

    /// One full prompt: session, `prompt_async`, idle, messages.
    pub async fn prompt(&self, text: &str) -> anyhow::Result<DirectSample> {
        let began = Instant::now();
        let (session, idle) = self.begin(text).await?;
        tokio::time::timeout(Duration::from_secs(60), idle)
            .await
            .context("the direct prompt never went idle within 60 s")?
            .context("the direct event stream ended")?;
        let messages = self.client.messages(&session).await?;
        let done_at = Instant::now();
        let total = done_at - began;
        let summary = orchestra_core::jobs::summarize(&messages);
        if summary.text.trim().is_empty() {
            bail!("the direct prompt got no text back");
        }
        Ok(DirectSample {
            total,
            text: summary.text,
            done_at,
            session,
        })
    }
}

impl Drop for Direct {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
