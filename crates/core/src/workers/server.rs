//! One OpenCode server the hub talks to, spawned by us or attached by URL.
//!
//! Every server has exactly one SSE subscription (`GET /event`). Its events are
//! routed to the job that owns the session they name, so completion is seen
//! the moment OpenCode reports it, without polling.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::directories::{Directories, DirectoryUse, DirectoryWatch};
use crate::opencode::{OpenCodeClient, OpenCodeError, OpenCodeEvent, Part};
use crate::supervisor::{ExitReport, ServerProcess};

/// What a job hears about its session.
#[derive(Debug, Clone)]
pub enum SessionSignal {
    Event(Box<OpenCodeEvent>),
    /// The event stream dropped and came back; events may have been missed.
    Resubscribed,
    /// The server process is gone; the text says how it ended.
    ServerGone(String),
}

/// Routes events by session id. Sessions are registered before the prompt is
/// sent, so no event of theirs can arrive unrouted.
///
/// A session's channel is unbounded because one pump serves every session of the server: a
/// bounded one would let a job that is slow to read stall every other job's events (or, with
/// `try_send`, lose its own completion). Each job reads its channel for as long as it runs,
/// and what arrives is bounded by what its model produces.
#[derive(Default)]
pub struct SessionRouter {
    routes: Mutex<HashMap<String, mpsc::UnboundedSender<SessionSignal>>>,
}

impl SessionRouter {
    pub fn register(&self, session_id: &str) -> mpsc::UnboundedReceiver<SessionSignal> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(session_id.to_owned(), tx);
        rx
    }

    pub fn unregister(&self, session_id: &str) {
        self.lock().remove(session_id);
    }

    fn dispatch(&self, event: OpenCodeEvent) {
        let tx = event_session(&event).and_then(|id| self.lock().get(id).cloned());
        if let Some(tx) = tx {
            // A closed receiver means the job already finished; nothing to do.
            let _ = tx.send(SessionSignal::Event(Box::new(event)));
        }
    }

    fn broadcast(&self, signal: SessionSignal) {
        for tx in self.lock().values() {
            let _ = tx.send(signal.clone());
        }
    }

    fn lock(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<SessionSignal>>> {
        // A poisoned router only means a panic elsewhere; its map is still valid.
        self.routes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn event_session(event: &OpenCodeEvent) -> Option<&str> {
    match event {
        OpenCodeEvent::SessionIdle { session_id }
        | OpenCodeEvent::SessionStatus { session_id, .. }
        | OpenCodeEvent::MessagePartDelta { session_id, .. }
        | OpenCodeEvent::PermissionReplied { session_id, .. } => Some(session_id),
        OpenCodeEvent::SessionError { session_id, .. } => session_id.as_deref(),
        OpenCodeEvent::MessageUpdated { info } => Some(&info.session_id),
        OpenCodeEvent::MessagePartUpdated { part } => part_session(part),
        OpenCodeEvent::PermissionAsked(request) => Some(&request.session_id),
        OpenCodeEvent::ServerConnected | OpenCodeEvent::Heartbeat | OpenCodeEvent::Other { .. } => {
            None
        }
    }
}

fn part_session(part: &Part) -> Option<&str> {
    match part {
        // Finished model steps carry their tokens: a job's token budget counts them live.
        Part::Text { session_id, .. }
        | Part::Tool { session_id, .. }
        | Part::StepFinish { session_id, .. } => Some(session_id),
        Part::Other => None,
    }
}

/// A live connection to one OpenCode server.
pub struct ServerConn {
    pub client: OpenCodeClient,
    pub router: Arc<SessionRouter>,
    /// `None` for a server we attached to and do not own.
    pub process: Option<ServerProcess>,
    pub label: String,
    /// When the hub connected to it (unix ms): the worker's uptime counts from here.
    pub started_at: i64,
    stop: CancellationToken,
    /// The event pump; `shutdown` waits for it.
    pump: TaskTracker,
    /// Why the server was taken away (`fail_all`): a call that fails because of it names this
    /// reason, not the connection error it caused.
    gone: std::sync::OnceLock<String>,
    /// Worktrees jobs work in on this server, each disposed in OpenCode after its last job.
    directories: Arc<Directories>,
}

impl ServerConn {
    /// Subscribes to the server's events and returns once the subscription is
    /// live, so the first prompt's events cannot be missed.
    pub async fn connect(
        label: String,
        process: Option<ServerProcess>,
        client: OpenCodeClient,
    ) -> Result<Arc<ServerConn>, OpenCodeError> {
        let router = Arc::new(SessionRouter::default());
        let stop = CancellationToken::new();
        let stream = client.events().await?;
        let conn = Arc::new(ServerConn {
            client: client.clone(),
            router: router.clone(),
            process,
            label: label.clone(),
            started_at: orchestra_protocol::now_ms(),
            stop: stop.clone(),
            pump: TaskTracker::new(),
            gone: std::sync::OnceLock::new(),
            directories: Arc::default(),
        });
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        conn.pump
            .spawn(pump_events(label, client, router, stream, stop, ready_tx));
        conn.pump.close();
        // OpenCode sends `server.connected` first; wait for it (bounded) so the
        // subscription is known to be registered server-side.
        let _ = tokio::time::timeout(Duration::from_secs(5), ready_rx).await;
        Ok(conn)
    }

    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(ServerProcess::pid)
    }

    /// Resident memory of the server process we started (`None` for an attached server).
    pub fn rss_bytes(&self) -> Option<u64> {
        self.process.as_ref().and_then(ServerProcess::rss_bytes)
    }

    pub fn exit_watch(&self) -> Option<watch::Receiver<Option<ExitReport>>> {
        self.process.as_ref().map(ServerProcess::exit_watch)
    }

    /// Tells every job on this server that it is gone.
    pub fn fail_all(&self, reason: &str) {
        // The first reason wins: it is the cause, later ones are its consequences.
        let _ = self.gone.set(reason.to_owned());
        self.router
            .broadcast(SessionSignal::ServerGone(reason.to_owned()));
    }

    /// Why the server was taken away, once it was (`fail_all`).
    pub fn gone_reason(&self) -> Option<&str> {
        self.gone.get().map(String::as_str)
    }

    /// Stops the event pump and the process we started (up to `grace` for it to exit), and
    /// waits for the pump to end (bounded).
    pub async fn shutdown(&self, grace: Duration) {
        self.stop.cancel();
        if let Some(process) = &self.process
            && let Err(err) = process.stop(grace).await
        {
            tracing::warn!(server = %self.label, error = %err, "stopping OpenCode server failed");
        }
        if tokio::time::timeout(PUMP_STOP, self.pump.wait())
            .await
            .is_err()
        {
            tracing::debug!(server = %self.label, "the event pump did not stop in time");
        }
    }
}

impl ServerConn {
    /// Starts using `dir` (a task's worktree) on this server: the client addressing it, and
    /// the use to keep for as long as the job's session is there. The first use subscribes to
    /// the directory's events and returns once that subscription is live; the last one let go
    /// disposes the directory's OpenCode instance.
    pub async fn use_directory(
        &self,
        dir: &std::path::Path,
    ) -> Result<(OpenCodeClient, DirectoryUse), OpenCodeError> {
        let client = self.client.in_directory(dir)?;
        let used = self
            .directories
            .enter(dir, client.clone(), |client| self.watch_directory(client))
            .await?;
        Ok((client, used))
    }

    /// Subscribes to the events of `client`'s directory and returns once the subscription is
    /// live, so a session created next cannot miss its first events.
    pub(super) async fn watch_directory(
        &self,
        client: OpenCodeClient,
    ) -> Result<DirectoryWatch, OpenCodeError> {
        let stream = client.events().await?;
        let stop = self.stop.child_token();
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        // Spawned apart from `pump`, which is closed once the server connects; the stop token
        // (a child of the server's) ends it with the watch or the server.
        let pump = tokio::spawn(pump_events(
            format!("{} (worktree)", self.label),
            client,
            self.router.clone(),
            stream,
            stop.clone(),
            ready_tx,
        ));
        let _ = tokio::time::timeout(Duration::from_secs(5), ready_rx).await;
        Ok(DirectoryWatch {
            stop,
            pump: Some(pump),
        })
    }
}

impl Drop for ServerConn {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// How long `shutdown` waits for the event pump once told to stop: it stops at its next
/// `select!`, so only a pump inside a re-subscribe request takes longer.
const PUMP_STOP: Duration = Duration::from_secs(1);

/// OpenCode sends `server.heartbeat` about every 10 s; a stream silent for this long has
/// stalled (a half-open connection, a proxy that stopped forwarding) and is replaced.
const STALLED_AFTER: Duration = Duration::from_secs(30);

/// Reads the SSE stream for the server's life, re-subscribing when it drops or stalls.
async fn pump_events(
    label: String,
    client: OpenCodeClient,
    router: Arc<SessionRouter>,
    mut stream: crate::opencode::EventStream,
    stop: CancellationToken,
    ready: tokio::sync::oneshot::Sender<()>,
) {
    let mut ready = Some(ready);
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return,
            next = tokio::time::timeout(STALLED_AFTER, stream.next()) => match next {
                Ok(next) => next,
                Err(_) => {
                    tracing::warn!(server = %label, "no event or heartbeat for 30 s; reconnecting the event stream");
                    None
                }
            },
        };
        match next {
            Some(Ok(OpenCodeEvent::ServerConnected)) => {
                if let Some(ready) = ready.take() {
                    let _ = ready.send(());
                }
            }
            Some(Ok(event)) => router.dispatch(event),
            Some(Err(err)) => {
                tracing::debug!(server = %label, error = %err, "event stream error");
            }
            None => {
                // The stream ended: resubscribe until the server is stopped.
                let mut backoff = Duration::from_millis(100);
                loop {
                    if stop.is_cancelled() {
                        return;
                    }
                    match client.events().await {
                        Ok(new_stream) => {
                            stream = new_stream;
                            tracing::info!(server = %label, "event stream reconnected");
                            router.broadcast(SessionSignal::Resubscribed);
                            break;
                        }
                        Err(err) => {
                            tracing::debug!(server = %label, error = %err, "event resubscribe failed");
                            tokio::select! {
                                () = stop.cancelled() => return,
                                () = tokio::time::sleep(backoff) => {}
                            }
                            backoff = (backoff * 2).min(Duration::from_millis(800));
                        }
                    }
                }
            }
        }
    }
}
