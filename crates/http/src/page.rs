//! The pages a browser sees: `/login?code=…` (a one-time link that sets the session cookie)
//! and `/`.

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

/// The hub's page.
pub async fn index(State(app): State<AppState>) -> Response {
    let engine = &app.engine;
    let rows: String = engine
        .pool()
        .snapshots()
        .iter()
        .map(|w| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&w.id),
                w.status.as_str(),
                escape(w.model.as_deref().unwrap_or(&w.model_ref))
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Open Orchestra</title></head><body>\
         <h1>Open Orchestra</h1><p>Hub <code>{}</code> for <code>{}</code>, {} task(s) running.</p>\
         <table><tr><th>Worker</th><th>Status</th><th>Model</th></tr>{rows}</table></body></html>",
        escape(engine.hub_id()),
        escape(&engine.project_dir().display().to_string()),
        engine.running_count()
    ))
    .into_response()
}

/// Text made safe for HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}
