//! Browser sessions on the wire: every route refuses a request without credentials, a
//! session's cookie alone opens only the page (every server on 127.0.0.1 receives it), its key
//! alone opens nothing, a foreign `Origin` is refused even with both, and sessions end — idle,
//! too old, logged out, or pushed out by newer ones. Login files are private and go with their
//! link. (The same in a real browser: `crates/cli/tests/panel_session.rs`.)

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use futures_util::StreamExt;
use orchestra_http::SessionPolicy;
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::suite::common::{Served, TOKEN};

const HEADER: &str = "x-orchestra-session";

/// A browser session, as the login page hands it over: the cookie pair and the page's key.
pub struct Login {
    pub cookie: String,
    pub key: String,
}

/// Logs in through a fresh one-time link, as a browser does.
pub async fn log_in(served: &Served) -> Login {
    let link = served.client().login_link().await.unwrap();
    let response = Served::http().get(&link.url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Max-Age="),
        "{set}"
    );
    let page = response.text().await.unwrap();
    let key = page
        .split("name=\"orchestra-session\" content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no key on the login page: {page}"))
        .to_owned();
    assert!(page.contains("/assets/js/login.js"), "{page}");
    Login {
        cookie: set.split(';').next().unwrap().to_owned(),
        key,
    }
}

/// Which credentials a request carries.
#[derive(Clone, Copy, Debug)]
enum Sent {
    Nothing,
    CookieOnly,
    KeyOnly,
    Both,
}

async fn call(
    served: &Served,
    method: &Method,
    path: &str,
    login: &Login,
    sent: Sent,
) -> StatusCode {
    call_from(served, method, path, login, sent, None).await
}

async fn call_from(
    served: &Served,
    method: &Method,
    path: &str,
    login: &Login,
    sent: Sent,
    origin: Option<&str>,
) -> StatusCode {
    let mut request = Served::http().request(method.clone(), served.url(path));
    if matches!(sent, Sent::CookieOnly | Sent::Both) {
        request = request.header(COOKIE, &login.cookie);
    }
    if matches!(sent, Sent::KeyOnly | Sent::Both) {
        request = request.header(HEADER, &login.key);
    }
    if let Some(origin) = origin {
        request = request.header(ORIGIN, origin);
    }
    if method == Method::POST {
        request = request.json(&json!({}));
    }
    // The event stream answers its status at once and then stays open: only the status counts.
    request
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap()
        .status()
}

async fn health(served: &Served, login: &Login) -> StatusCode {
    call(served, &Method::GET, "/api/v1/health", login, Sent::Both).await
}

/// Every route the hub serves, with its parameters filled in.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/assets/js/app.js"),
    ("GET", "/assets/panel.css"),
    ("GET", "/api/v1/health"),
    ("POST", "/api/v1/tools/x"),
    ("POST", "/api/v1/tasks"),
    ("POST", "/api/v1/tasks/await"),
    ("GET", "/api/v1/tasks/x"),
    ("POST", "/api/v1/tasks/x/cancel"),
    ("POST", "/api/v1/list"),
    ("GET", "/api/v1/workers"),
    ("GET", "/api/v1/runs"),
    ("GET", "/api/v1/runs/x"),
    ("POST", "/api/v1/runs/x/pause"),
    ("POST", "/api/v1/runs/x/resume"),
    ("POST", "/api/v1/runs/x/cancel"),
    ("GET", "/api/v1/tasks/x/events"),
    ("POST", "/api/v1/workers/x/restart"),
    ("GET", "/api/v1/questions"),
    ("POST", "/api/v1/questions/x"),
    ("GET", "/api/v1/logs"),
    ("GET", "/api/v1/notify/deliveries"),
    ("GET", "/api/v1/config"),
    ("POST", "/api/v1/memory/search"),
    ("POST", "/api/v1/memory/records"),
    ("GET", "/api/v1/memory/records/x"),
    ("POST", "/api/v1/memory/records/x/supersede"),
    ("POST", "/api/v1/memory/records/x/forget"),
    ("GET", "/api/v1/memory/context"),
    ("GET", "/api/v1/memory/export"),
    ("POST", "/api/v1/memory/import"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/login"),
    ("POST", "/api/v1/login/file"),
    ("POST", "/api/v1/logout"),
    ("POST", "/api/v1/shutdown"),
    ("POST", "/api/v1/hooks/chat-message"),
    ("POST", "/api/v1/hooks/system"),
    ("POST", "/api/v1/hooks/compacting"),
    ("POST", "/api/v1/hooks/tool-before"),
    ("POST", "/api/v1/hooks/tool-after"),
    ("POST", "/api/v1/hooks/event"),
    ("GET", "/api/v1/hooks/deliveries"),
    ("GET", "/mcp"),
    ("POST", "/mcp"),
    ("GET", "/mcp/worker"),
    ("POST", "/mcp/worker"),
    ("GET", "/no/such/route"),
    ("POST", "/no/such/route"),
];

/// Routes that only load the page: a session's cookie alone opens them.
fn page_route(path: &str) -> bool {
    path == "/" || path.starts_with("/assets/")
}

/// The routes the server's source declares, as `METHOD /path` with `x` for each parameter, so
/// a route added later without a line in [`ROUTES`] fails this file.
fn declared_routes() -> Vec<(String, String)> {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    let memory = std::fs::read_to_string(src.join("memory_api.rs")).unwrap();
    let (v1, top) = lib.split_once(".route(\"/\", get(panel::index))").unwrap();
    let mut routes = Vec::new();
    for (text, prefix) in [(v1, "/api/v1"), (memory.as_str(), "/api/v1/memory")] {
        routes.extend(routes_in(text, prefix));
    }
    routes.push(("GET".into(), "/".into()));
    routes.extend(routes_in(top, ""));
    routes
}

fn routes_in(text: &str, prefix: &str) -> Vec<(String, String)> {
    let mut routes = Vec::new();
    for piece in text.split(".route(\"").skip(1) {
        let Some((path, rest)) = piece.split_once("\", ") else {
            continue;
        };
        let method = if rest.starts_with("get(") {
            "GET"
        } else {
            "POST"
        };
        let path: Vec<String> = path
            .split('/')
            .map(|part| {
                if part.starts_with('{') {
                    "x".to_owned()
                } else {
                    part.to_owned()
                }
            })
            .collect();
        routes.push((method.to_owned(), format!("{prefix}{}", path.join("/"))));
    }
    routes
}

#[tokio::test]
async fn every_route_needs_the_whole_session_and_refuses_a_foreign_origin() {
    let served = Served::start().await;
    for (method, path) in declared_routes() {
        let path = path
            .replace("{*path}", "x")
            .replace("/assets/x", "/assets/panel.css");
        if path == "/login" {
            continue; // The one-time link is its own credential (its own tests).
        }
        assert!(
            ROUTES.iter().any(|(m, p)| *m == method && *p == path),
            "{method} {path} is served but not checked here; add it to ROUTES"
        );
    }
    let login = log_in(&served).await;
    for (method, path) in ROUTES {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        for sent in [Sent::Nothing, Sent::KeyOnly] {
            let status = call(&served, &method, path, &login, sent).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with {sent:?}"
            );
        }
        let cookie_only = call(&served, &method, path, &login, Sent::CookieOnly).await;
        if page_route(path) {
            assert_eq!(cookie_only, StatusCode::OK, "{method} {path}: the page");
        } else {
            assert_eq!(
                cookie_only,
                StatusCode::UNAUTHORIZED,
                "{method} {path}: a cookie alone (which other ports receive) must open nothing"
            );
        }
        for origin in ["http://evil.example", "http://127.0.0.1:1", "null"] {
            let status = call_from(&served, &method, path, &login, Sent::Both, Some(origin)).await;
            assert_eq!(
                status,
                StatusCode::FORBIDDEN,
                "{method} {path} from {origin}"
            );
        }
        // With both, the route answers (not 401); these two would end the session or the hub.
        if !matches!(*path, "/api/v1/logout" | "/api/v1/shutdown") {
            let status = call(&served, &method, path, &login, Sent::Both).await;
            assert_ne!(
                status,
                StatusCode::UNAUTHORIZED,
                "{method} {path} with the session"
            );
            if path.starts_with("/api/v1/login") {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{path}: a session must not mint logins (it would outlive its expiry)"
                );
            }
        }
    }
    let health = call(&served, &Method::GET, "/api/v1/health", &login, Sent::Both).await;
    assert_eq!(health, StatusCode::OK);
    served.stop().await;
}

#[tokio::test]
async fn logout_ends_the_session_and_its_event_stream() {
    let served = Served::start().await;
    let login = log_in(&served).await;
    let other = log_in(&served).await;
    let stream = Served::http()
        .get(served.url("/api/v1/events"))
        .header(COOKIE, &login.cookie)
        .header(HEADER, &login.key)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let mut body = stream.bytes_stream();

    let by_token = Served::http()
        .post(served.url("/api/v1/logout"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(by_token.status(), StatusCode::BAD_REQUEST);
    let out = Served::http()
        .post(served.url("/api/v1/logout"))
        .header(COOKIE, &login.cookie)
        .header(HEADER, &login.key)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::OK);
    let cleared = out.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    for (method, path) in [
        (Method::GET, "/api/v1/health"),
        (Method::GET, "/"),
        (Method::POST, "/api/v1/logout"),
    ] {
        for sent in [Sent::Both, Sent::CookieOnly] {
            let status = call(&served, &method, path, &login, sent).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{path} after logout with {sent:?}"
            );
        }
    }
    let still = call(&served, &Method::GET, "/api/v1/health", &other, Sent::Both).await;
    assert_eq!(still, StatusCode::OK, "another session is untouched");
    // The open stream ends within a couple of seconds (keep-alives come every 10 s).
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(chunk) = body.next().await {
            if chunk.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the logged-out session's event stream stayed open"
    );
    served.stop().await;
}

#[tokio::test]
async fn sessions_end_when_idle_or_too_old_and_the_oldest_is_pushed_out() {
    let policy = SessionPolicy {
        idle: Duration::from_millis(700),
        lifetime: Duration::from_millis(1600),
        max: 3,
    };
    let served = Served::start_sessions(|_| {}, policy).await;

    let kept = log_in(&served).await;
    let idle = log_in(&served).await;
    // `kept` is used every 400 ms: it outlives the idle limit; `idle` is not: it ends.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(health(&served, &kept).await, StatusCode::OK);
    }
    assert_eq!(
        health(&served, &idle).await,
        StatusCode::UNAUTHORIZED,
        "idle"
    );
    assert_eq!(
        call(&served, &Method::GET, "/", &idle, Sent::CookieOnly).await,
        StatusCode::UNAUTHORIZED,
        "an ended session's cookie does not even open the page"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        health(&served, &kept).await,
        StatusCode::UNAUTHORIZED,
        "too old"
    );

    let logins = [
        log_in(&served).await,
        log_in(&served).await,
        log_in(&served).await,
        log_in(&served).await,
    ];
    let statuses: Vec<StatusCode> =
        futures_util::future::join_all(logins.iter().map(|login| health(&served, login))).await;
    assert_eq!(
        statuses,
        [
            StatusCode::UNAUTHORIZED,
            StatusCode::OK,
            StatusCode::OK,
            StatusCode::OK
        ],
        "the fourth login pushes out the first"
    );
    served.stop().await;
}

#[tokio::test]
async fn a_login_file_is_private_and_goes_once_its_link_is_used() {
    let served = Served::start().await;
    let file = served.client().login_file().await.unwrap();
    let path = std::path::PathBuf::from(&file.path);
    assert!(
        path.starts_with(served.dir.path().join("state")),
        "{}",
        file.path
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", file.path);
    let page = std::fs::read_to_string(&path).unwrap();
    let url = page
        .split("url=")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(url.starts_with(&served.url("/login?code=")), "{page}");
    assert!(!page.contains(TOKEN));
    let first = Served::http().get(&url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert!(!path.exists(), "the login file outlived its link");
    let again = Served::http().get(&url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    let body: Value = Served::http()
        .post(served.url("/api/v1/login/file"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["kind"], "unauthorized", "{body}");
    served.stop().await;
}
