//! Who may talk to the hub: a request must come for the hub's own address (`Host`), from no
//! browser page or the hub's own (`Origin`), and carry a credential: the hub's token as a
//! bearer header (programs), or a browser session from a one-time login link (`sessions`: a
//! cookie, which alone opens only the page, plus the key the page sends in a header).
//!
//! The `Host` check stops DNS rebinding (a page on evil.example resolving to 127.0.0.1); the
//! `Origin` check stops other pages on this machine from making a logged-in browser call the
//! hub; the session's header key stops other servers on 127.0.0.1, which receive the cookie
//! (cookies ignore ports), from replaying it.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::AppState;
use crate::error::ApiFailure;
use crate::secrets::{LOGIN_LINK_TTL, lock, same, secret};
use crate::sessions::{BrowserSession, NewSession, SESSION_HEADER, SessionPolicy, Sessions};

/// Login links waiting to be used, at most (older ones are dropped first).
const MAX_PENDING_LINKS: usize = 32;
/// The routes that make login links: the hub's token only. A browser session that could make
/// links could make itself new sessions forever, outliving its expiry.
const TOKEN_ONLY: &[&str] = &["/api/v1/login", "/api/v1/login/file"];

/// A login code not used yet: when it was made, and the login file that carries it, if any.
struct Pending {
    made: Instant,
    file: Option<PathBuf>,
}

pub struct Access {
    token: String,
    /// Good only for the worker MCP endpoint (`/mcp/worker`), which runs memory ops only.
    worker_token: String,
    port: u16,
    pending: Mutex<HashMap<String, Pending>>,
    sessions: Sessions,
}

impl Access {
    pub fn new(token: String, worker_token: String, port: u16, policy: SessionPolicy) -> Access {
        Access {
            token,
            worker_token,
            port,
            pending: Mutex::new(HashMap::new()),
            sessions: Sessions::new(policy),
        }
    }

    /// The cookie's name carries the port: cookies are shared by every port of 127.0.0.1, and
    /// two hubs (two projects) must not overwrite each other's sessions.
    pub fn cookie_name(&self) -> String {
        format!("orchestra_session_{}", self.port)
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// A new one-time login code.
    pub fn new_login_code(&self) -> String {
        let code = secret();
        let mut pending = lock(&self.pending);
        expire(&mut pending);
        if pending.len() >= MAX_PENDING_LINKS
            && let Some(oldest) = pending
                .iter()
                .min_by_key(|(_, p)| p.made)
                .map(|(c, _)| c.clone())
            && let Some(dropped) = pending.remove(&oldest)
        {
            forget(dropped);
        }
        pending.insert(
            code.clone(),
            Pending {
                made: Instant::now(),
                file: None,
            },
        );
        code
    }

    /// Records that `code` is carried by the login file at `file`, removed with the code.
    pub fn attach_file(&self, code: &str, file: PathBuf) {
        match lock(&self.pending).get_mut(code) {
            Some(pending) => pending.file = Some(file),
            None => crate::login_file::remove(&file),
        }
    }

    /// Drops the codes that expired (and their login files).
    pub fn expire_codes(&self) {
        expire(&mut lock(&self.pending));
    }

    /// Trades a login code for a new session, once.
    pub fn redeem(&self, code: &str) -> Option<NewSession> {
        let pending = lock(&self.pending).remove(code)?;
        let fresh = pending.made.elapsed() < LOGIN_LINK_TTL;
        forget(pending);
        fresh.then(|| self.sessions.open())
    }

    fn check(&self, headers: &HeaderMap, path: &str) -> Verdict {
        if let Some(bearer) = bearer(headers) {
            let ok = same(bearer, &self.token)
                || (worker_path(path) && same(bearer, &self.worker_token));
            return if ok { Verdict::Token } else { Verdict::Refused };
        }
        let name = self.cookie_name();
        let Some(cookie) = cookie(headers, &name) else {
            return Verdict::Refused;
        };
        let key = headers
            .get(SESSION_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|k| !k.is_empty());
        match key {
            Some(key) => match self.sessions.authorize(cookie, key) {
                Some(_) if TOKEN_ONLY.contains(&path) => Verdict::TokenOnly,
                Some(session) => Verdict::Session(session),
                None => Verdict::Refused,
            },
            None if page_path(path) && self.sessions.page_allowed(cookie) => Verdict::Page,
            None => Verdict::Refused,
        }
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

/// The hub stops: the files of links nobody used go too.
impl Drop for Access {
    fn drop(&mut self) {
        for (_, pending) in lock(&self.pending).drain() {
            forget(pending);
        }
    }
}

fn expire(pending: &mut HashMap<String, Pending>) {
    let old: Vec<String> = pending
        .iter()
        .filter(|(_, p)| p.made.elapsed() >= LOGIN_LINK_TTL)
        .map(|(code, _)| code.clone())
        .collect();
    for code in old {
        if let Some(dropped) = pending.remove(&code) {
            forget(dropped);
        }
    }
}

/// A code is gone: so is its login file.
fn forget(pending: Pending) {
    if let Some(file) = pending.file {
        crate::login_file::remove(&file);
    }
}

/// The page and its static files: what a browser loads by navigating, which cannot carry a
/// header. They hold no data of the hub's; everything on the page comes from the API.
fn page_path(path: &str) -> bool {
    path == "/" || path.starts_with("/assets/")
}

/// What a request's credentials allow.
enum Verdict {
    /// The hub's token (or the worker endpoint's, on that endpoint).
    Token,
    /// A browser session, cookie and key.
    Session(BrowserSession),
    /// A browser session on a route for the token only.
    TokenOnly,
    /// A session's cookie without its key, on the page.
    Page,
    Refused,
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
    let path = request.uri().path().to_owned();
    if path == "/login" {
        return next.run(request).await;
    }
    let mut request = request;
    match access.check(request.headers(), &path) {
        Verdict::Token | Verdict::Page => {}
        Verdict::Session(session) => {
            request.extensions_mut().insert(session);
        }
        Verdict::TokenOnly => {
            return ApiFailure::forbidden(format!(
                "`{path}` makes login links, which needs the hub's token (`orchestra panel` asks for one); a panel session cannot"
            ))
            .into_response();
        }
        Verdict::Refused => return unauthorized(path.starts_with("/api/")),
    }
    let _client = app.activity.enter();
    next.run(request).await
}

fn unauthorized(api: bool) -> Response {
    if api {
        return ApiFailure::unauthorized(
            "this hub needs its token: send `Authorization: Bearer <token>` (the token is in the hub's hub.json, readable only by you), or log in through `orchestra panel` (a panel session is its cookie and the key its page sends in X-Orchestra-Session; sessions end after a while unused, a week after login, and on Log out)",
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

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(
                *name,
                value
                    .parse()
                    .unwrap_or(header::HeaderValue::from_static("")),
            );
        }
        headers
    }

    #[test]
    fn a_login_code_works_once_and_its_session_needs_cookie_and_key() {
        let access = Access::new("t".into(), "w".into(), 4000, SessionPolicy::default());
        let code = access.new_login_code();
        let Some(session) = access.redeem(&code) else {
            panic!("a fresh code is redeemed");
        };
        assert!(access.redeem(&code).is_none());
        let cookie = format!("a=b; orchestra_session_4000={}", session.cookie);
        let both = headers(&[
            ("cookie", cookie.clone()),
            (SESSION_HEADER, session.key.clone()),
        ]);
        assert!(matches!(
            access.check(&both, "/api/v1/health"),
            Verdict::Session(_)
        ));
        assert!(matches!(
            access.check(&both, "/api/v1/login"),
            Verdict::TokenOnly
        ));
        let cookie_only = headers(&[("cookie", cookie)]);
        assert!(matches!(access.check(&cookie_only, "/"), Verdict::Page));
        assert!(matches!(
            access.check(&cookie_only, "/assets/js/app.js"),
            Verdict::Page
        ));
        for path in ["/api/v1/health", "/mcp", "/login/x", "/api/v1/login"] {
            assert!(
                matches!(access.check(&cookie_only, path), Verdict::Refused),
                "{path}"
            );
        }
        let key_only = headers(&[(SESSION_HEADER, session.key)]);
        assert!(matches!(
            access.check(&key_only, "/api/v1/health"),
            Verdict::Refused
        ));
        let worker = headers(&[("authorization", "Bearer w".into())]);
        assert!(matches!(
            access.check(&worker, "/mcp/worker"),
            Verdict::Token
        ));
        for path in ["/mcp", "/mcp/workers", "/api/v1/memory/search"] {
            assert!(
                matches!(access.check(&worker, path), Verdict::Refused),
                "{path}"
            );
        }
        assert!(access.own_host("127.0.0.1:4000"));
        assert!(!access.own_host("evil.example:4000"));
        assert!(!access.own_host("127.0.0.1:4001"));
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }

    #[test]
    fn a_login_file_goes_with_its_code() {
        let dir = tempfile::tempdir().unwrap_or_else(|err| panic!("{err}"));
        let access = Access::new("t".into(), "w".into(), 4000, SessionPolicy::default());
        let used = access.new_login_code();
        let unused = access.new_login_code();
        let mut files = Vec::new();
        for code in [&used, &unused] {
            let file = crate::login_file::write(dir.path(), &format!("http://x/login?code={code}"))
                .unwrap_or_else(|err| panic!("{err}"));
            access.attach_file(code, file.clone());
            files.push(file);
        }
        assert!(access.redeem(&used).is_some());
        assert!(!files[0].exists() && files[1].exists());
        drop(access);
        assert!(!files[1].exists(), "the hub stopped");
    }
}
