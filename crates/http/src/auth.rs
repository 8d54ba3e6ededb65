//! Who may talk to the hub: a request must come for the hub's own address (`Host`), from no
//! browser page or the hub's own (`Origin`), and carry the hub's token — as a bearer header
//! (programs), or as a session cookie a browser got from a one-time login link.
//!
//! The `Host` check stops DNS rebinding (a page on evil.example resolving to 127.0.0.1); the
//! `Origin` check stops other pages on this machine from using a logged-in browser's cookie.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiFailure;

/// How long a login link works; it works once.
pub const LOGIN_LINK_TTL: Duration = Duration::from_secs(120);
/// Login links waiting to be used, at most (older ones are dropped first).
const MAX_PENDING_LINKS: usize = 32;
/// Browser sessions kept, at most (the oldest is dropped first).
const MAX_SESSIONS: usize = 64;

pub struct Access {
    token: String,
    /// Good only for the worker MCP endpoint (`/mcp/worker`), which runs memory ops only.
    worker_token: String,
    port: u16,
    pending: Mutex<HashMap<String, Instant>>,
    sessions: Mutex<Vec<String>>,
}

impl Access {
    pub fn new(token: String, worker_token: String, port: u16) -> Access {
        Access {
            token,
            worker_token,
            port,
            pending: Mutex::new(HashMap::new()),
            sessions: Mutex::new(Vec::new()),
        }
    }

    /// The cookie's name carries the port: cookies are shared by every port of 127.0.0.1, and
    /// two hubs (two projects) must not overwrite each other's sessions.
    pub fn cookie_name(&self) -> String {
        format!("orchestra_session_{}", self.port)
    }

    /// A new one-time login code.
    pub fn new_login_code(&self) -> String {
        let code = secret();
        let mut pending = lock(&self.pending);
        pending.retain(|_, made| made.elapsed() < LOGIN_LINK_TTL);
        if pending.len() >= MAX_PENDING_LINKS
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, made)| **made)
                .map(|(c, _)| c.clone())
        {
            pending.remove(&oldest);
        }
        pending.insert(code.clone(), Instant::now());
        code
    }

    /// Trades a login code for a session secret, once.
    pub fn redeem(&self, code: &str) -> Option<String> {
        let made = lock(&self.pending).remove(code)?;
        if made.elapsed() >= LOGIN_LINK_TTL {
            return None;
        }
        let session = secret();
        let mut sessions = lock(&self.sessions);
        if sessions.len() >= MAX_SESSIONS {
            sessions.remove(0);
        }
        sessions.push(session.clone());
        Some(session)
    }

    fn authorized(&self, headers: &HeaderMap, path: &str) -> bool {
        if let Some(bearer) = bearer(headers) {
            return same(bearer, &self.token)
                || (worker_path(path) && same(bearer, &self.worker_token));
        }
        let name = self.cookie_name();
        let Some(session) = cookie(headers, &name) else {
            return false;
        };
        lock(&self.sessions).iter().any(|s| same(s, session))
    }

    /// The worker token sent anywhere but the worker endpoint: any command a worker runs can
    /// read that token, so it opens nothing else, and the refusal says so.
    fn worker_token_elsewhere(&self, headers: &HeaderMap, path: &str) -> bool {
        !worker_path(path) && bearer(headers).is_some_and(|b| same(b, &self.worker_token))
    }

    fn own_host(&self, host: &str) -> bool {
        let port = self.port.to_string();
        ["127.0.0.1", "localhost", "[::1]"]
            .iter()
            .any(|name| host == format!("{name}:{port}"))
    }
}

/// Every request passes here first.
pub async fn guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let access = &app.access;
    let headers = request.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !access.own_host(host) {
        return ApiFailure::forbidden(format!(
            "the Host header `{host}` is not this hub's address; the hub answers only at 127.0.0.1:{} (this protects against DNS rebinding)",
            access.port
        ))
        .into_response();
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let own = origin
            .strip_prefix("http://")
            .is_some_and(|rest| access.own_host(rest));
        if !own {
            return ApiFailure::forbidden(format!(
                "requests from the page `{origin}` are refused; only the hub's own page (http://127.0.0.1:{}) may call it",
                access.port
            ))
            .into_response();
        }
    }
    if access.worker_token_elsewhere(headers, request.uri().path()) {
        return ApiFailure::forbidden(format!(
            "this is a worker's token: it opens only {} (the memory ops a worker may run), never the hub's API, its other MCP endpoints or the panel",
            crate::WORKER_MCP_PATH
        ))
        .into_response();
    }
    // The login link is its own credential.
    if request.uri().path() == "/login" {
        return next.run(request).await;
    }
    if !access.authorized(headers, request.uri().path()) {
        return unauthorized(request.uri().path().starts_with("/api/"));
    }
    let _client = app.activity.enter();
    next.run(request).await
}

fn unauthorized(api: bool) -> Response {
    if api {
        return ApiFailure::unauthorized(
            "this hub needs its token: send `Authorization: Bearer <token>` (the token is in the hub's hub.json, readable only by you), or log in through `orchestra panel`",
        )
        .into_response();
    }
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        "<!doctype html><title>Open Orchestra</title><p>Not logged in. Run <code>orchestra panel</code> in the project to open this page logged in.</p>",
    )
        .into_response()
}

/// The bearer token of a request, if it sends one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn worker_path(path: &str) -> bool {
    path == crate::WORKER_MCP_PATH || path.starts_with(&format!("{}/", crate::WORKER_MCP_PATH))
}

/// A cookie's value from the `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Compares secrets in time independent of where they differ.
fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 244 random bits from the OS, as hex.
pub fn secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_code_works_once() {
        let access = Access::new("t".into(), "w".into(), 4000);
        let code = access.new_login_code();
        let session = access.redeem(&code);
        assert!(session.is_some());
        assert!(access.redeem(&code).is_none());
        let mut headers = HeaderMap::new();
        let value = format!(
            "a=b; orchestra_session_4000={}",
            session.unwrap_or_default()
        );
        headers.insert(
            header::COOKIE,
            value
                .parse()
                .unwrap_or(header::HeaderValue::from_static("")),
        );
        assert!(access.authorized(&headers, "/api/v1/health"));
        let mut worker = HeaderMap::new();
        worker.insert(
            header::AUTHORIZATION,
            header::HeaderValue::from_static("Bearer w"),
        );
        assert!(access.authorized(&worker, "/mcp/worker"));
        assert!(!access.authorized(&worker, "/mcp"));
        assert!(!access.authorized(&worker, "/mcp/workers"));
        assert!(!access.authorized(&worker, "/api/v1/memory/search"));
        assert!(access.own_host("127.0.0.1:4000"));
        assert!(!access.own_host("evil.example:4000"));
        assert!(!access.own_host("127.0.0.1:4001"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
