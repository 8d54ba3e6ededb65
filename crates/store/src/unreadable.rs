//! Rows the store could not decode. One such row (written by an incompatible build, or damaged
//! by hand) must never take a listing or a hub start down: it is skipped, logged, and reported
//! to whoever asked for the listing.

use std::fmt;

/// A row skipped because its JSON did not decode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableRow {
    /// `jobs`, `workflow_runs` or `worker_snapshots`.
    pub table: &'static str,
    /// The row's id (for snapshots: `<hub>/<worker>`).
    pub id: String,
    /// What the decoder said.
    pub reason: String,
}

impl fmt::Display for UnreadableRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.table {
            "jobs" => "job",
            "workflow_runs" => "workflow run",
            "worker_snapshots" => "worker snapshot",
            other => other,
        };
        write!(
            f,
            "skipped unreadable {what} `{}` ({}); it was written by an incompatible orchestra or \
             damaged: delete that row or move the store aside",
            self.id, self.reason
        )
    }
}

/// Takes a running row whose JSON does not decode out of `running` (its hub is gone; it can be
/// neither finished nor resumed), leaving the record itself as it is for whoever looks at it.
pub(crate) fn retire_unreadable(
    conn: &rusqlite::Connection,
    table: &'static str,
    id: &str,
    now: i64,
    error: &crate::StoreError,
) -> Result<(), crate::StoreError> {
    let sql = match table {
        "jobs" => {
            "UPDATE jobs SET status = 'failed', finished_at = ?2 WHERE id = ?1 AND status = 'running'"
        }
        _ => {
            "UPDATE workflow_runs SET status = 'error', updated_at = ?2
             WHERE id = ?1 AND status = 'running'"
        }
    };
    conn.execute(sql, rusqlite::params![id, now])?;
    tracing::warn!(
        table,
        id,
        "{error}; taken out of running without rewriting it"
    );
    Ok(())
}

/// Rows that decoded, and the ones that did not.
#[derive(Debug, Clone, PartialEq)]
pub struct Rows<T> {
    pub items: Vec<T>,
    pub skipped: Vec<UnreadableRow>,
}

impl<T> Rows<T> {
    pub(crate) fn new() -> Self {
        Rows {
            items: Vec::new(),
            skipped: Vec::new(),
        }
    }

    /// Adds a decoded row, or records and logs one that did not decode.
    pub(crate) fn push(
        &mut self,
        table: &'static str,
        id: &str,
        decoded: Result<T, serde_json::Error>,
    ) {
        match decoded {
            Ok(item) => self.items.push(item),
            Err(error) => {
                let row = UnreadableRow {
                    table,
                    id: id.to_owned(),
                    reason: error.to_string(),
                };
                tracing::warn!("{row}");
                self.skipped.push(row);
            }
        }
    }
}
