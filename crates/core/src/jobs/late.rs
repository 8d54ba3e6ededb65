//! A job's final record that the store refused because the job was already closed. The usual
//! reason is honest (a cancel came first); the other is that this hub was presumed dead while
//! it was suspended, and another hub marked its jobs interrupted. Either way the result is
//! never dropped without a word: it replaces a presumed interruption, and otherwise the job's
//! log says why it was not recorded.

use orchestra_protocol::{JobRecord, JobStatus};
use orchestra_store::{LateResult, Store};

/// What the job's log says about a late result (level, message).
pub(super) fn record_late(store: &Store, record: &JobRecord) -> (&'static str, String) {
    match store.finish_interrupted_job(record) {
        Ok(LateResult::Recorded) => {
            tracing::warn!(
                job = %record.id,
                status = record.status.as_str(),
                "another hub had marked this job interrupted while this hub seemed dead; its real result is recorded"
            );
            (
                "warn",
                format!(
                    "this hub did not answer for a while (suspended?) and another hub marked the \
                     task interrupted; its real result ({}) arrived later and replaces that",
                    record.status.as_str()
                ),
            )
        }
        Ok(LateResult::Kept { status, error }) => {
            let why = match (status, error) {
                (JobStatus::Canceled, Some(error)) => format!("it was canceled first ({error})"),
                (status, Some(error)) => format!("it was already {} ({error})", status.as_str()),
                (status, None) => format!("it was already {}", status.as_str()),
            };
            tracing::warn!(job = %record.id, %why, "a late result was not recorded");
            (
                "warn",
                format!(
                    "a result ({}) arrived after the task was closed and was not recorded: {why}",
                    record.status.as_str()
                ),
            )
        }
        Ok(LateResult::Gone) => {
            tracing::warn!(job = %record.id, "a late result's job is no longer in the store");
            (
                "warn",
                format!(
                    "a result ({}) arrived for a task no longer in the store (pruned) and was not recorded",
                    record.status.as_str()
                ),
            )
        }
        Err(err) => {
            tracing::error!(job = %record.id, error = %err, "recording a late result failed");
            (
                "error",
                format!(
                    "a result arrived after the task was closed and could not be recorded: {err}"
                ),
            )
        }
    }
}
