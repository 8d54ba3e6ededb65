//! `GET /api/v1/events`: the hub's event stream over SSE. Each SSE event carries the hub
//! event's id, so a client that reconnects with `Last-Event-ID` gets exactly what it missed
//! (from the bus's ring, or further back from the store). A browser session's stream ends
//! when the session does (logout, expiry), within [`SESSION_CHECK`].

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Extension, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{StreamExt, stream};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiFailure;
use crate::sessions::BrowserSession;

/// A comment line this often keeps proxies and idle timeouts from closing the stream, and lets
/// a client notice a dead hub.
const KEEP_ALIVE: Duration = Duration::from_secs(10);
/// How often a browser session's stream looks whether its session still lives: a logged-out
/// page stops receiving events about as soon as it is told so.
const SESSION_CHECK: Duration = Duration::from_secs(1);

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Replay events after this id (the same as `Last-Event-ID`, for clients that cannot set
    /// headers).
    after: Option<u64>,
    /// Only this job's events.
    job: Option<String>,
    /// No events at all, only the keep-alive: a client that holds the stream open to be
    /// counted as present (the MCP relay) and to notice when the hub goes away, without the
    /// hub encoding and the client decoding every event.
    #[serde(default)]
    presence: bool,
}

pub async fn events(
    State(app): State<AppState>,
    headers: HeaderMap,
    session: Option<Extension<BrowserSession>>,
    query: Result<Query<EventsQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(query) => query,
        Err(err) => {
            return ApiFailure::bad_request(format!(
                "bad query for the event stream: {err}; use ?after=<event id>&job=<task id> (or ?presence=true for no events)"
            ))
            .into_response();
        }
    };
    let after = match headers.get("last-event-id").map(|v| v.to_str()) {
        Some(Ok(text)) => match text.trim().parse::<u64>() {
            Ok(id) => Some(id),
            Err(_) => {
                return ApiFailure::bad_request(format!(
                    "Last-Event-ID `{text}` is not an event id (a whole number)"
                ))
                .into_response();
            }
        },
        Some(Err(_)) => {
            return ApiFailure::bad_request("Last-Event-ID is not readable text").into_response();
        }
        None => query.after,
    };
    let presence = app.activity.enter_stream();
    let stop = app.stop.clone();
    let session = session.map(|Extension(session)| (app.access.clone(), session));
    let check = tokio::time::interval(SESSION_CHECK);
    if query.presence {
        let quiet = stream::once(async move {
            until_gone(&stop, session.as_ref(), check).await;
            drop(presence);
        })
        .filter_map(|()| async { None::<Result<Event, Infallible>> });
        return Sse::new(quiet)
            .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
            .into_response();
    }
    let subscription = app.engine.bus().subscribe(after);
    let job = query.job;
    let events = stream::unfold(
        (subscription, presence, stop, job, session, check),
        |(mut subscription, presence, stop, job, session, mut check)| async move {
            loop {
                let event = tokio::select! {
                    () = stop.cancelled() => return None,
                    _ = check.tick(), if session.is_some() => {
                        match &session {
                            Some((access, session)) if !access.sessions().alive(session) => return None,
                            _ => continue,
                        }
                    }
                    event = subscription.next() => event?,
                };
                if job.as_deref().is_some_and(|id| event.job_id() != Some(id)) {
                    continue;
                }
                let sse = match Event::default()
                    .id(event.id.to_string())
                    .event(event.body.type_name())
                    .json_data(&*event)
                {
                    Ok(sse) => sse,
                    Err(err) => {
                        tracing::warn!(error = %err, id = event.id, "an event could not be encoded");
                        continue;
                    }
                };
                return Some((
                    Ok::<Event, Infallible>(sse),
                    (subscription, presence, stop, job, session, check),
                ));
            }
        },
    );
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(KEEP_ALIVE))
        .into_response()
}

/// Returns when the hub stops or, for a browser, its session ends.
async fn until_gone(
    stop: &tokio_util::sync::CancellationToken,
    session: Option<&(std::sync::Arc<crate::auth::Access>, BrowserSession)>,
    mut check: tokio::time::Interval,
) {
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = check.tick(), if session.is_some() => {
                if let Some((access, session)) = session
                    && !access.sessions().alive(session)
                {
                    return;
                }
            }
        }
    }
}
