//! Why the worker pool could not give a task a worker, and what kind of failure that is.

use orchestra_protocol::ErrorKind;

use crate::config::ConfigError;
use crate::models::ResolveError;
use crate::opencode::OpenCodeError;
use crate::supervisor::SupervisorError;

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(
        "worker `{profile}` is not running and autoSpawn is off; pass `autoSpawn: true` or start it first"
    )]
    NotRunning { profile: String },
    #[error("could not start OpenCode for worker `{profile}`: {source}")]
    Spawn {
        profile: String,
        #[source]
        source: SupervisorError,
    },
    #[error("could not connect to OpenCode for worker `{profile}` at {url}: {source}")]
    Connect {
        profile: String,
        url: String,
        #[source]
        source: OpenCodeError,
    },
    #[error(
        "runtime.isolation is `attach` but runtime.attachUrl is not set; set it to the URL `opencode serve` printed"
    )]
    AttachUrlMissing,
    #[error("the hub is shutting down; no new work is accepted")]
    ShuttingDown,
    #[error("starting the worker's server was interrupted ({reason}); start the task again")]
    Interrupted { reason: String },
    #[error("could not read the model catalog from OpenCode for worker `{profile}`: {source}")]
    Catalog {
        profile: String,
        #[source]
        source: OpenCodeError,
    },
    #[error("worker `{profile}`: {source}")]
    Model {
        profile: String,
        #[source]
        source: ResolveError,
    },
}

impl WorkerError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            WorkerError::Config(err) => err.kind(),
            WorkerError::NotRunning { .. } | WorkerError::AttachUrlMissing => ErrorKind::BadRequest,
            WorkerError::ShuttingDown | WorkerError::Interrupted { .. } => ErrorKind::Unavailable,
            WorkerError::Spawn { .. }
            | WorkerError::Connect { .. }
            | WorkerError::Catalog { .. }
            | WorkerError::Model { .. } => ErrorKind::Upstream,
        }
    }
}
