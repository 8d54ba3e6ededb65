//! Every failure the API answers with is JSON naming the problem and the fix.

use axum::Json;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchestra_core::tasks::TaskError;
use orchestra_protocol::{ApiError, ErrorKind};
use serde::de::DeserializeOwned;

#[derive(Debug)]
pub struct ApiFailure {
    status: StatusCode,
    kind: &'static str,
    error: String,
}

impl ApiFailure {
    pub fn new(status: StatusCode, kind: &'static str, error: impl Into<String>) -> ApiFailure {
        ApiFailure {
            status,
            kind,
            error: error.into(),
        }
    }

    pub fn bad_request(error: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::BAD_REQUEST, "bad_request", error)
    }

    pub fn not_found(error: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::NOT_FOUND, "not_found", error)
    }

    pub fn forbidden(error: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::FORBIDDEN, "forbidden", error)
    }

    pub fn unauthorized(error: impl Into<String>) -> ApiFailure {
        ApiFailure::new(StatusCode::UNAUTHORIZED, "unauthorized", error)
    }
}

impl IntoResponse for ApiFailure {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ApiError {
                error: self.error,
                kind: self.kind.to_owned(),
            }),
        )
            .into_response()
    }
}

impl ApiFailure {
    /// A failure of core's, answered with the status of its kind.
    pub fn classified(kind: ErrorKind, error: impl Into<String>) -> ApiFailure {
        let status = match kind {
            ErrorKind::BadRequest => StatusCode::BAD_REQUEST,
            ErrorKind::NotFound | ErrorKind::MemoryDisabled => StatusCode::NOT_FOUND,
            ErrorKind::Conflict | ErrorKind::BudgetExceeded => StatusCode::CONFLICT,
            ErrorKind::Forbidden => StatusCode::FORBIDDEN,
            ErrorKind::Upstream => StatusCode::BAD_GATEWAY,
            ErrorKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiFailure::new(status, kind.as_str(), error)
    }

    /// A failure of the five verbs' routes (`/tasks`, `/list`, …), whose ids come in the body:
    /// only the job runtime's own failures keep their kind (404 for an unknown task, 500 for
    /// the store), the rest are 400 (the HTTP corpus's contract). Routes that name a thing in
    /// their path use `From<TaskError>` instead.
    pub fn of_verb(err: TaskError) -> ApiFailure {
        match &err {
            // A worktree that cannot be made or is busy keeps its kind (400 / 409).
            // A spent budget stays `budget_exceeded`: the caller must raise it, not fix a field.
            TaskError::Job(_) | TaskError::Worktree(_) | TaskError::Limits(_) => {
                ApiFailure::from(err)
            }
            TaskError::EmptyTask
            | TaskError::TaskTooLong { .. }
            | TaskError::MissingField { .. }
            | TaskError::MissingViewField { .. }
            | TaskError::Config(_)
            | TaskError::NoIds
            | TaskError::Workflow(_)
            | TaskError::Worker(_)
            | TaskError::Question(_)
            | TaskError::BadValue { .. }
            | TaskError::Memory(_)
            | TaskError::InvalidField { .. }
            | TaskError::WorkerRestricted { .. } => ApiFailure::bad_request(err.to_string()),
        }
    }
}

impl From<TaskError> for ApiFailure {
    fn from(err: TaskError) -> Self {
        ApiFailure::classified(err.kind(), err.to_string())
    }
}

/// A JSON body parsed into `T`, naming the field that is wrong when it does not fit. An empty
/// body reads as `{}`, so calls whose fields are all optional need no body.
pub fn parse_body<T: DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, ApiFailure> {
    let text: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    let mut deserializer = serde_json::Deserializer::from_slice(text);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        if path == "." || path.is_empty() {
            ApiFailure::bad_request(format!("the body of {what} is not valid: {inner}"))
        } else {
            ApiFailure::bad_request(format!(
                "`{path}` in the body of {what} is not valid: {inner}"
            ))
        }
    })
}
