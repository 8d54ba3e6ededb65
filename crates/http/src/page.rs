//! Logging a browser in and out:
//!
//! - `GET /login?code=…`: the one-time link. It sets the session's cookie and answers a small
//!   page that keeps the session's key in the tab (`assets/js/login.js`) and opens the panel
//!   (`/`, served by the `panel` module). The key goes in the page, not in an address, so it is
//!   in no history, log or `Referer`.
//! - `POST /api/v1/login/file`: a login link in a private file, for `orchestra panel` to give
//!   a browser by path (`login_file`).
//! - `POST /api/v1/logout`: ends the session the request came with.

use std::sync::Arc;

use axum::extract::{Extension, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Json, Response};
use orchestra_protocol::api::LoginFile;
use orchestra_protocol::now_ms;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::error::ApiFailure;
use crate::secrets::LOGIN_LINK_TTL;
use crate::sessions::BrowserSession;

#[derive(Deserialize)]
pub struct LoginQuery {
    code: Option<String>,
}

/// Trades a one-time code for a session: the cookie, and the key on a page that hands it to
/// the panel. The address bar then shows `/`, so the used code stays on screen nowhere.
pub async fn login(State(app): State<AppState>, Query(query): Query<LoginQuery>) -> Response {
    let session = query
        .code
        .as_deref()
        .and_then(|code| app.access.redeem(code));
    let Some(session) = session else {
        return (
            StatusCode::UNAUTHORIZED,
            Html("<!doctype html><title>Open Orchestra</title><p>This login link was already used or has expired. Run <code>orchestra panel</code> again for a new one.</p>"),
        )
            .into_response();
    };
    let lifetime = app.access.sessions().policy().lifetime.as_secs();
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/; Max-Age={lifetime}",
        app.access.cookie_name(),
        session.cookie
    );
    // The key is hex (`auth::secret`): nothing in it needs escaping.
    let page = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Open Orchestra</title>\
         <meta name=\"orchestra-session\" content=\"{}\">\
         <script type=\"module\" src=\"/assets/js/login.js\"></script></head>\
         <body><p>Logging in…</p></body></html>\n",
        session.key
    );
    let mut response = ([(header::SET_COOKIE, cookie)], Html(page)).into_response();
    let out = response.headers_mut();
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    out.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(crate::panel::CSP),
    );
    out.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Writes a one-time login link into a private file in the project's state folder.
pub async fn login_file(State(app): State<AppState>) -> Result<Json<LoginFile>, ApiFailure> {
    let Some(dir) = app.login_dir.as_deref() else {
        return Err(ApiFailure::not_found(
            "this hub has no state folder to write a login file in; ask for a link with POST /api/v1/login",
        ));
    };
    let code = app.access.new_login_code();
    let url = format!("{}/login?code={code}", app.base_url);
    let path = crate::login_file::write(dir, &url).map_err(|err| {
        ApiFailure::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!(
                "could not write a login file in {}: {err}; `orchestra panel --url` prints the link instead",
                dir.display()
            ),
        )
    })?;
    app.access.attach_file(&code, path.clone());
    // The file goes when its link expires, even if nobody asks the hub anything meanwhile.
    let access = Arc::downgrade(&app.access);
    tokio::spawn(async move {
        tokio::time::sleep(LOGIN_LINK_TTL).await;
        if let Some(access) = access.upgrade() {
            access.expire_codes();
        }
    });
    let ttl = i64::try_from(LOGIN_LINK_TTL.as_millis()).unwrap_or(i64::MAX);
    Ok(Json(LoginFile {
        path: path.display().to_string(),
        expires_at: now_ms().saturating_add(ttl),
    }))
}

/// Ends the request's browser session and clears its cookie.
pub async fn logout(
    State(app): State<AppState>,
    session: Option<Extension<BrowserSession>>,
) -> Response {
    let Some(Extension(session)) = session else {
        return ApiFailure::bad_request(
            "logout ends a browser session; this request came with the hub's token, which is no session",
        )
        .into_response();
    };
    app.access.sessions().close(&session);
    let clear = format!(
        "{}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0",
        app.access.cookie_name()
    );
    (
        [(header::SET_COOKIE, clear)],
        Json(json!({"ok": true, "message": "logged out; `orchestra panel` logs in again"})),
    )
        .into_response()
}
