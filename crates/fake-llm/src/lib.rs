//! An OpenAI-compatible fake LLM that is a real HTTP server on 127.0.0.1.
//!
//! Point OpenCode's `@ai-sdk/openai-compatible` provider at [`FakeLlm::base_url`]. Replies come from a
//! [`FakeLlm::set_responder`] closure, or else from directives typed in the prompt (see the `directives`
//! module docs: `CALL_TOOL:`, `SLOW:`, `SLOWMS:`, `DELAYMS:`, `FAIL:`, `CUT:`, title requests, tool
//! results, echo). Every chat-completions request is recorded with how its response ended.

mod directives;
mod request;
mod server;
mod wire;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use request::{ChatRequest, RecordedRequest};

/// What the fake sends back for one request, step by step.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    pub steps: Vec<Step>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Pause. Leading delays happen before the status line, later ones between chunks.
    Delay(Duration),
    /// Text streamed as word-sized chunks without pauses.
    Text(String),
    /// Each chunk is sent after waiting `gap`.
    TextChunks { chunks: Vec<String>, gap: Duration },
    /// One tool call; several in one script get indexes 0, 1, … Finish reason becomes `tool_calls`.
    ToolCall { name: String, arguments: Value },
    /// As the first non-delay step: that HTTP status with an OpenAI error body. Later in a stream: an SSE
    /// `data: {"error":…}` event that ends the stream.
    HttpError { status: u16, message: String },
    /// Drop the connection here: no finish chunk, no `[DONE]`.
    CutStream,
    /// Usage reported in the final chunk instead of the estimate (~4 chars per token).
    Usage {
        prompt_tokens: u64,
        completion_tokens: u64,
    },
}

impl Script {
    pub fn text(text: impl Into<String>) -> Script {
        Script {
            steps: vec![Step::Text(text.into())],
        }
    }

    pub fn tool_call(name: impl Into<String>, arguments: Value) -> Script {
        Script {
            steps: vec![Step::ToolCall {
                name: name.into(),
                arguments,
            }],
        }
    }

    pub fn http_error(status: u16, message: impl Into<String>) -> Script {
        Script {
            steps: vec![Step::HttpError {
                status,
                message: message.into(),
            }],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum FakeLlmError {
    #[error(
        "fake LLM could not listen on {addr}: {source}; use FakeLlm::start() to get a free port"
    )]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(
        "fake LLM: waited {timeout:?} for {what}, but only {seen} request(s) were recorded; \
         is the client pointed at this fake's base_url?"
    )]
    Timeout {
        what: String,
        timeout: Duration,
        seen: usize,
    },
}

/// How to start a [`FakeLlm`]; [`FakeLlm::start`] uses the default.
#[derive(Debug, Clone)]
pub struct FakeLlmConfig {
    pub addr: SocketAddr,
    /// Names listed by `GET /v1/models`. The fake answers chat requests for any model name.
    pub models: Vec<String>,
}

impl Default for FakeLlmConfig {
    fn default() -> Self {
        FakeLlmConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            models: ["fake-model", "fake-vision", "fake-mini"]
                .map(String::from)
                .to_vec(),
        }
    }
}

type Responder = Arc<dyn Fn(&ChatRequest) -> Option<Script> + Send + Sync>;

/// State shared by the handle and the request handlers. Locks are held only for quick copies,
/// never across an await.
pub(crate) struct Shared {
    records: Mutex<Vec<RecordedRequest>>,
    next_index: AtomicUsize,
    changed: watch::Sender<u64>,
    responder: RwLock<Option<Responder>>,
    models: Vec<String>,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    fn records(&self) -> MutexGuard<'_, Vec<RecordedRequest>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|generation| *generation += 1);
    }

    fn record(&self, req: &ChatRequest) -> usize {
        let index = self.next_index.fetch_add(1, Ordering::SeqCst);
        let recorded = req.record(index, Instant::now());
        tracing::debug!(index, model = %recorded.model, text = %recorded.last_user_text, "fake LLM request");
        self.records().push(recorded);
        self.notify();
        index
    }

    fn update(&self, index: usize, f: impl FnOnce(&mut RecordedRequest)) {
        if let Some(r) = self.records().iter_mut().rev().find(|r| r.index == index) {
            f(r);
        }
        self.notify();
    }

    fn mark_completed(&self, index: usize) {
        self.update(index, |r| r.completed_at = Some(Instant::now()));
    }

    fn mark_disconnected(&self, index: usize) {
        tracing::debug!(index, "fake LLM client hung up mid-response");
        self.update(index, |r| r.disconnected_at = Some(Instant::now()));
    }

    fn responder(&self) -> Option<Responder> {
        self.responder
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

/// Handle to a running fake. Dropping it (or [`FakeLlm::shutdown`]) stops the server; streams in
/// progress are cut.
pub struct FakeLlm {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl FakeLlm {
    /// Listens on 127.0.0.1 with a free port.
    pub async fn start() -> Result<FakeLlm, FakeLlmError> {
        FakeLlm::start_with(FakeLlmConfig::default()).await
    }

    pub async fn start_on(addr: SocketAddr) -> Result<FakeLlm, FakeLlmError> {
        FakeLlm::start_with(FakeLlmConfig {
            addr,
            ..FakeLlmConfig::default()
        })
        .await
    }

    pub async fn start_with(config: FakeLlmConfig) -> Result<FakeLlm, FakeLlmError> {
        let listener = tokio::net::TcpListener::bind(config.addr)
            .await
            .map_err(|source| FakeLlmError::Bind {
                addr: config.addr,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| FakeLlmError::Bind {
            addr: config.addr,
            source,
        })?;
        let (stop, shutdown) = watch::channel(false);
        let shared = Arc::new(Shared {
            records: Mutex::new(Vec::new()),
            next_index: AtomicUsize::new(0),
            changed: watch::channel(0).0,
            responder: RwLock::new(None),
            models: config.models,
            shutdown: shutdown.clone(),
        });
        let app = server::router(shared.clone());
        let mut signal = shutdown;
        let task = tokio::spawn(async move {
            let graceful = async move {
                let _ = signal.wait_for(|stop| *stop).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(graceful)
                .await
            {
                tracing::warn!(error = %e, "fake LLM server stopped with an error");
            }
        });
        tracing::debug!(%addr, "fake LLM listening");
        Ok(FakeLlm {
            shared,
            addr,
            stop,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT/v1`, the `baseURL` OpenCode's provider options want.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every chat-completions request received since start (or the last clear), in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.records().clone()
    }

    pub fn clear_requests(&self) {
        self.shared.records().clear();
        self.shared.notify();
    }

    /// Waits until at least `n` requests are recorded and returns all of them.
    pub async fn wait_for_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedRequest>, FakeLlmError> {
        self.wait_until(timeout, format!("{n} request(s)"), |records| {
            (records.len() >= n).then(|| records.to_vec())
        })
        .await
    }

    /// Waits for the first request whose client hung up before its response ended.
    pub async fn wait_for_disconnect(
        &self,
        timeout: Duration,
    ) -> Result<RecordedRequest, FakeLlmError> {
        self.wait_until(timeout, "a client disconnect".to_owned(), |records| {
            records
                .iter()
                .find(|r| r.disconnected_at.is_some())
                .cloned()
        })
        .await
    }

    async fn wait_until<T>(
        &self,
        timeout: Duration,
        what: String,
        check: impl Fn(&[RecordedRequest]) -> Option<T>,
    ) -> Result<T, FakeLlmError> {
        // Subscribing before checking means no change between the check and the wait is missed.
        let mut changes = self.shared.changed.subscribe();
        let wait = async {
            loop {
                if let Some(found) = check(&self.shared.records()) {
                    return Some(found);
                }
                if changes.changed().await.is_err() {
                    return None;
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(Some(found)) => Ok(found),
            Ok(None) | Err(_) => Err(FakeLlmError::Timeout {
                what,
                timeout,
                seen: self.shared.records().len(),
            }),
        }
    }

    /// Scripts replies; returning `None` falls back to the directive rules. Replaces any earlier responder.
    pub fn set_responder(
        &self,
        f: impl Fn(&ChatRequest) -> Option<Script> + Send + Sync + 'static,
    ) {
        *self
            .shared
            .responder
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(f));
    }

    /// Back to the directive rules only.
    pub fn clear_responder(&self) {
        *self
            .shared
            .responder
            .write()
            .unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Stops accepting, cuts running streams, and waits (up to 5 s) for the server task to end.
    pub async fn shutdown(mut self) {
        self.stop.send_replace(true);
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .is_err()
            {
                tracing::warn!("fake LLM did not stop within 5 s; aborting its task");
                abort.abort();
            }
        }
    }
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        // The server task finishes by itself once connections close; streams see the flag and cut.
        self.stop.send_replace(true);
    }
}
