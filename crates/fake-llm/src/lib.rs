//! A fake OpenAI-compatible model that is a real HTTP server on 127.0.0.1.
//!
//! Point OpenCode's `@ai-sdk/openai-compatible` provider at [`FakeLlm::base_url`] (the
//! [`opencode`] module builds that provider block). Replies come from a [`FakeLlm::set_responder`]
//! closure, else from the default rules: a title for title requests, `TOOL_RESULT_SEEN:` after a
//! tool result, and otherwise an echo of the prompt. With [`Directives::On`] (tests and
//! benchmarks) the prompt text can also script the reply (see the `directives` module docs:
//! `CALL_TOOL:`, `SLOW:`, `SLOWMS:`, `DELAYMS:`, `FAIL:`, `CUT:`). The product's `--fake` mode and
//! `orchestra fake-llm` run with [`Directives::Off`]: text copied into a task must never make the
//! worker run a tool. The last [`FakeLlmConfig::log_capacity`] chat-completions requests are kept
//! with how their responses ended.
//!
//! Running OpenCode against this fake isolated from the user's home and offline is the test
//! kit's job (`orchestra_testkit::sandbox`): this crate is only the model, which `--fake` links.

mod directives;
mod model_errors;
pub mod opencode;
mod request;
mod server;
mod wire;

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use model_errors::ModelErrors;
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
        "fake LLM could not listen on {addr}: {source}; use FakeLlm::start_scripted() to get a free port"
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

/// Whether text in a prompt may script the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directives {
    /// Echo only: a prompt is never read as instructions. The product's `--fake` mode uses
    /// this, because a directive such as `CALL_TOOL:bash` in a task would make the worker run it.
    Off,
    /// `CALL_TOOL:`, `SLOW:`, `FAIL:` … in the prompt script the reply (tests, benchmarks).
    On,
}

/// How many requests the log keeps by default.
pub const DEFAULT_LOG_CAPACITY: usize = 1000;

/// How to start a [`FakeLlm`]. The default listens on a free port of 127.0.0.1, echoes
/// ([`Directives::Off`]) and keeps the last [`DEFAULT_LOG_CAPACITY`] requests.
#[derive(Debug, Clone)]
pub struct FakeLlmConfig {
    pub addr: SocketAddr,
    /// Names listed by `GET /v1/models`. The fake answers chat requests for any model name.
    pub models: Vec<String>,
    pub directives: Directives,
    /// The request log is a ring of this many requests (bodies included, so it is bounded);
    /// 0 keeps none.
    pub log_capacity: usize,
}

impl Default for FakeLlmConfig {
    fn default() -> Self {
        FakeLlmConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            models: ["fake-model", "fake-vision", "fake-mini"]
                .map(String::from)
                .to_vec(),
            directives: Directives::Off,
            log_capacity: DEFAULT_LOG_CAPACITY,
        }
    }
}

type Responder = Arc<dyn Fn(&ChatRequest) -> Option<Script> + Send + Sync>;

/// State shared by the handle and the request handlers. Locks are held only for quick copies,
/// never across an await.
pub(crate) struct Shared {
    records: Mutex<VecDeque<RecordedRequest>>,
    log_capacity: usize,
    directives: Directives,
    next_index: AtomicUsize,
    changed: watch::Sender<u64>,
    responder: RwLock<Option<Responder>>,
    models: Vec<String>,
    shutdown: watch::Receiver<bool>,
}

impl Shared {
    fn records(&self) -> MutexGuard<'_, VecDeque<RecordedRequest>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn notify(&self) {
        self.changed.send_modify(|generation| *generation += 1);
    }

    fn record(&self, req: &ChatRequest, headers: Vec<(String, String)>) -> usize {
        let index = self.next_index.fetch_add(1, Ordering::SeqCst);
        tracing::debug!(index, model = %req.model, "fake LLM request");
        if self.log_capacity > 0 {
            let recorded = req.record(index, Instant::now(), headers);
            let mut records = self.records();
            while records.len() >= self.log_capacity {
                records.pop_front();
            }
            records.push_back(recorded);
        }
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
    /// Echo only, on a free port of 127.0.0.1: the product's `--fake` model.
    pub async fn start_echo() -> Result<FakeLlm, FakeLlmError> {
        FakeLlm::start_with(FakeLlmConfig::default()).await
    }

    /// Scripted by directives in the prompt, on a free port of 127.0.0.1: tests and benchmarks.
    pub async fn start_scripted() -> Result<FakeLlm, FakeLlmError> {
        FakeLlm::start_with(FakeLlmConfig {
            directives: Directives::On,
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
            records: Mutex::new(VecDeque::new()),
            log_capacity: config.log_capacity,
            directives: config.directives,
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

    /// The chat-completions requests received since start (or the last clear), in arrival order;
    /// at most [`FakeLlmConfig::log_capacity`] of them, the oldest dropped first.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.records().iter().cloned().collect()
    }

    pub fn directives(&self) -> Directives {
        self.shared.directives
    }

    pub fn clear_requests(&self) {
        self.shared.records().clear();
        self.shared.notify();
    }

    /// Waits until at least `n` requests are in the log and returns all of them (so `n` must not
    /// exceed the log capacity).
    pub async fn wait_for_requests(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<RecordedRequest>, FakeLlmError> {
        self.wait_until(timeout, format!("{n} request(s)"), |records| {
            (records.len() >= n).then(|| records.iter().cloned().collect())
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
        check: impl Fn(&VecDeque<RecordedRequest>) -> Option<T>,
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

    /// Scripts replies; returning `None` falls back to the default rules (directives only when
    /// they are on). Replaces any earlier responder.
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

    /// Back to the default rules only.
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
