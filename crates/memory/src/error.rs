//! The memory engine's error type. Every message names the problem and the fix.

use std::path::PathBuf;

use orchestra_protocol::ErrorKind;
use orchestra_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error(transparent)]
    Store(#[from] StoreError),

    #[error(
        "the memory search index at {path} failed: {source}; it is rebuilt from the store automatically — if this repeats, delete that folder"
    )]
    Index {
        path: PathBuf,
        #[source]
        source: tantivy::TantivyError,
    },

    #[error("cannot {action} the memory index folder {path}: {source}; check its permissions")]
    IndexDir {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("{field}: {problem}")]
    Invalid {
        field: &'static str,
        problem: String,
    },

    #[error("no memory record `{reference}` in {scope} memory; search for it with `memory.search`")]
    NotFound { reference: String, scope: String },

    #[error(
        "global memory is not available here (no user-level store was opened); use scope `project`"
    )]
    NoGlobalStore,

    #[error(
        "the cursor `{0}` does not belong to this search (or is damaged); repeat the search without a cursor"
    )]
    BadCursor(String),

    #[error("cannot read {what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },

    #[error("line {line} of the import is not a memory export line: {problem}")]
    ImportLine { line: usize, problem: String },

    #[cfg(feature = "neo4j")]
    #[error(
        "Neo4j sync failed: {0}; check NEO4J_URI / NEO4J_USER / NEO4J_PASSWORD and that the server is reachable — the sync resumes where it stopped"
    )]
    Neo4j(String),
}

impl MemoryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            MemoryError::NotFound { .. } => ErrorKind::NotFound,
            MemoryError::Invalid { .. }
            | MemoryError::BadCursor(_)
            | MemoryError::ImportLine { .. }
            | MemoryError::NoGlobalStore => ErrorKind::BadRequest,
            MemoryError::Store(_)
            | MemoryError::Index { .. }
            | MemoryError::IndexDir { .. }
            | MemoryError::Io { .. } => ErrorKind::Internal,
            #[cfg(feature = "neo4j")]
            MemoryError::Neo4j(_) => ErrorKind::Internal,
        }
    }

    pub(crate) fn invalid(field: &'static str, problem: impl Into<String>) -> MemoryError {
        MemoryError::Invalid {
            field,
            problem: problem.into(),
        }
    }
}
