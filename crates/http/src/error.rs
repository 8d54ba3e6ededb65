//! Every failure the API answers with is JSON naming the problem and the fix.

use axum::Json;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use orchestra_core::config::ConfigError;
use orchestra_core::jobs::JobError;
use orchestra_core::jobs::questions::QuestionError;
use orchestra_core::tasks::TaskError;
use orchestra_core::workers::WorkerError;
use orchestra_core::workflows::WorkflowError;
use orchestra_protocol::ApiError;
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

impl From<TaskError> for ApiFailure {
    fn from(err: TaskError) -> Self {
        let (status, kind) = status_of(&err);
        ApiFailure::new(status, kind, err.to_string())
    }
}

impl ApiFailure {
    /// A failure of the five verbs' routes (`/tasks`, `/list`, …), whose ids come in the body:
    /// 404 only for an unknown task, 500 for the store, 400 for the rest (the HTTP corpus's
    /// contract). Routes that name a thing in their path use `From<TaskError>` instead.
    pub fn of_verb(err: TaskError) -> ApiFailure {
        match &err {
            TaskError::Job(JobError::Store(_)) | TaskError::Job(JobError::UnknownTask { .. }) => {
                ApiFailure::from(err)
            }
            _ => ApiFailure::bad_request(err.to_string()),
        }
    }
}

/// The HTTP status and error kind of a facade error.
fn status_of(err: &TaskError) -> (StatusCode, &'static str) {
    const BAD: (StatusCode, &str) = (StatusCode::BAD_REQUEST, "bad_request");
    const NOT_FOUND: (StatusCode, &str) = (StatusCode::NOT_FOUND, "not_found");
    const CONFLICT: (StatusCode, &str) = (StatusCode::CONFLICT, "conflict");
    const INTERNAL: (StatusCode, &str) = (StatusCode::INTERNAL_SERVER_ERROR, "internal");
    const UPSTREAM: (StatusCode, &str) = (StatusCode::BAD_GATEWAY, "upstream");
    const UNAVAILABLE: (StatusCode, &str) = (StatusCode::SERVICE_UNAVAILABLE, "unavailable");
    let job = |err: &JobError| match err {
        JobError::Store(_) => INTERNAL,
        JobError::UnknownTask { .. } => NOT_FOUND,
        JobError::Attachment(_) => BAD,
    };
    match err {
        TaskError::EmptyTask
        | TaskError::TaskTooLong { .. }
        | TaskError::MissingField { .. }
        | TaskError::InvalidField { .. }
        | TaskError::NoIds
        | TaskError::BadValue { .. } => BAD,
        TaskError::Config(ConfigError::UnknownProfile { .. }) => NOT_FOUND,
        TaskError::Config(
            ConfigError::Io { .. } | ConfigError::Parse { .. } | ConfigError::Invalid { .. },
        ) => BAD,
        TaskError::Job(err) => job(err),
        TaskError::Workflow(err) => match err {
            WorkflowError::UnknownRun { .. } => NOT_FOUND,
            WorkflowError::RunFinished { .. }
            | WorkflowError::RunBusy { .. }
            | WorkflowError::NotRunning { .. } => CONFLICT,
            WorkflowError::Job(err) => job(err),
            WorkflowError::Disabled { .. }
            | WorkflowError::MissingId
            | WorkflowError::UnknownWorkflow { .. }
            | WorkflowError::LimitAboveCap { .. }
            | WorkflowError::TooManySteps { .. }
            | WorkflowError::TaskTooLong { .. }
            | WorkflowError::StepTimeoutAboveCap { .. }
            | WorkflowError::CorruptDefinition { .. } => BAD,
        },
        TaskError::Worker(err) => match err.as_ref() {
            WorkerError::Config(ConfigError::UnknownProfile { .. }) => NOT_FOUND,
            WorkerError::Config(_)
            | WorkerError::NotRunning { .. }
            | WorkerError::AttachUrlMissing => BAD,
            WorkerError::ShuttingDown | WorkerError::Interrupted { .. } => UNAVAILABLE,
            WorkerError::Spawn { .. }
            | WorkerError::Connect { .. }
            | WorkerError::Catalog { .. }
            | WorkerError::Model { .. } => UPSTREAM,
        },
        TaskError::WorkerRestricted { .. } => (StatusCode::FORBIDDEN, "forbidden"),
        TaskError::Memory(err) => match err.kind() {
            "memory_disabled" => (StatusCode::NOT_FOUND, "memory_disabled"),
            "not_found" => NOT_FOUND,
            "bad_request" => BAD,
            _ => INTERNAL,
        },
        TaskError::Question(err) => match err {
            QuestionError::Unknown { .. } => NOT_FOUND,
            QuestionError::Reply { .. } => UPSTREAM,
        },
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
