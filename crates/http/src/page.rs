//! `/login?code=…`: the one-time link that sets a browser's session cookie and sends it to the
//! panel (`/`, served by the `panel` module).

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use crate::AppState;

#[derive(Deserialize)]
pub struct LoginQuery {
    code: Option<String>,
}

/// Trades a one-time code for a session cookie and sends the browser to the page, so the code
/// never stays in the address bar or the history's last entry.
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
    let cookie = format!(
        "{}={session}; HttpOnly; SameSite=Strict; Path=/",
        app.access.cookie_name()
    );
    ([(header::SET_COOKIE, cookie)], Redirect::to("/")).into_response()
}
