//! MCP-over-HTTP sessions at `/mcp` are clients too: a client that connects by URL sends a
//! request per tool call and holds nothing open in between, so without this count the idle stop
//! would end its hub mid-session. A session counts from the answer to its `initialize` (the
//! `Mcp-Session-Id` it carries) until the client ends it (`DELETE`), the hub no longer knows it
//! (404), or it has gone unused for [`SESSION_IDLE`], rmcp's own limit after which it closes a
//! session whose client vanished without saying so.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// rmcp's default session keep-alive (`SessionConfig::DEFAULT_KEEP_ALIVE`): past it the session
/// is gone on the server side too.
pub const SESSION_IDLE: Duration = Duration::from_secs(5 * 60);

/// More open sessions than any person runs clients; past it the least recently used is dropped
/// from the count (a client that opens sessions without end cannot grow this map).
const MAX_COUNTED: usize = 256;

const SESSION_HEADER: &str = "mcp-session-id";

#[derive(Default)]
pub struct McpSessions {
    last_used: Mutex<HashMap<String, Instant>>,
}

impl McpSessions {
    /// Sessions open now (used within [`SESSION_IDLE`]).
    pub fn open(&self) -> usize {
        let mut sessions = self.lock();
        sessions.retain(|_, used| used.elapsed() < SESSION_IDLE);
        sessions.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.last_used
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn used(&self, id: &str) {
        let mut sessions = self.lock();
        if !sessions.contains_key(id) && sessions.len() >= MAX_COUNTED {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, used)| **used)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(id.to_owned(), Instant::now());
    }

    fn ended(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// Middleware on `/mcp`: follows each session's start, use and end.
pub async fn track(
    State(sessions): State<Arc<McpSessions>>,
    request: Request,
    next: Next,
) -> Response {
    let asked = request
        .headers()
        .get(SESSION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let ending = request.method() == Method::DELETE;
    let response = next.run(request).await;
    match asked {
        Some(id) if ending || response.status() == StatusCode::NOT_FOUND => sessions.ended(&id),
        Some(id) if response.status().is_success() => sessions.used(&id),
        Some(_) => {}
        None => {
            let opened = response
                .headers()
                .get(SESSION_HEADER)
                .and_then(|v| v.to_str().ok());
            if let (true, Some(id)) = (response.status().is_success(), opened) {
                sessions.used(id);
            }
        }
    }
    response
}
