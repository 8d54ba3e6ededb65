//! `GET /api/v1/notify/deliveries[?status=failed&limit=N]`: what the hub sent (or failed to
//! send) to the user's `notify` targets, newest first.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use orchestra_protocol::{DeliveryStatus, NotifyDelivery};
use serde::Deserialize;

use crate::AppState;
use crate::error::ApiFailure;

const MAX_DELIVERIES: u32 = 500;

#[derive(Debug, Deserialize)]
pub struct DeliveriesQuery {
    status: Option<String>,
    limit: Option<u32>,
}

pub async fn deliveries(
    State(app): State<AppState>,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<Vec<NotifyDelivery>>, ApiFailure> {
    let Query(query) = query.map_err(|err| {
        ApiFailure::bad_request(format!(
            "bad query: {}; use ?status=pending|delivered|failed&limit=<n>",
            err.body_text()
        ))
    })?;
    let status = match query.status.as_deref() {
        None => None,
        Some(word) => Some(DeliveryStatus::parse(word).ok_or_else(|| {
            ApiFailure::bad_request(format!(
                "unknown status `{word}`; use pending, delivered or failed"
            ))
        })?),
    };
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_DELIVERIES);
    let rows = orchestra_core::notify::deliveries(app.engine.runtime().store(), status, limit)
        .map_err(orchestra_core::tasks::TaskError::from)?;
    Ok(Json(rows))
}
