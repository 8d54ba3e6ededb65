//! What a worker may do to memory through the hub's worker endpoint. A worker's token can be
//! read by anything the worker runs (OpenCode hands its environment to bash commands), so the
//! endpoint grants no more than a worker needs: it writes project records that are never pinned,
//! and it never deletes, never writes global memory and never changes a pinned record (pinned
//! and global records reach every later prompt; only the user sets those).
//! Reads (search, get) and `memory.done` are as for anyone.

use orchestra_protocol::MemoryPayload;
use orchestra_protocol::memory::{ForgetMode, MemoryOp, MemoryProvenance, MemoryScope};

use crate::MemoryError;
use crate::service::MemoryService;

/// The producer the hub records for what a worker writes; such writes get the rules above.
pub const WORKER_PRODUCER: &str = "worker";

pub(crate) fn is_worker(origin: &MemoryProvenance) -> bool {
    origin.producer.as_deref() == Some(WORKER_PRODUCER)
}

fn refused(field: &'static str, what: &str) -> MemoryError {
    MemoryError::invalid(
        field,
        format!(
            "a worker may not {what}: what a worker writes is project memory, not pinned, and it cannot delete (pinned and global records reach every later prompt, so only the user sets them: `orchestra memory put`)"
        ),
    )
}

/// Checks a worker's op against the rules in the module header, without running it.
pub fn check_worker_op(op: MemoryOp, payload: &MemoryPayload) -> Result<(), MemoryError> {
    let writes = match op {
        MemoryOp::Put | MemoryOp::Link | MemoryOp::Forget => true,
        MemoryOp::Done | MemoryOp::Search | MemoryOp::Get => false,
    };
    let scope = payload.scope.as_deref().map(str::trim);
    if writes && scope.and_then(MemoryScope::parse) == Some(MemoryScope::Global) {
        return Err(refused("scope", "write global memory"));
    }
    if op == MemoryOp::Put && payload.pinned == Some(true) {
        return Err(refused("pinned", "pin a record"));
    }
    if op == MemoryOp::Forget && payload.mode == Some(ForgetMode::Delete) {
        return Err(refused("mode", "delete a record (`retract` hides it)"));
    }
    Ok(())
}

impl MemoryService {
    /// Refuses a worker's put or forget that would change a pinned record: `reference` is the
    /// key it updates, the record it supersedes or the record it retracts.
    pub(crate) fn refuse_pinned_for_worker(
        &self,
        reference: Option<&str>,
    ) -> Result<(), MemoryError> {
        let Some(reference) = reference.map(str::trim).filter(|r| !r.is_empty()) else {
            return Ok(());
        };
        match self.get(reference, Some(MemoryScope::Project))? {
            Some(record) if record.pinned => Err(refused(
                "key",
                &format!("change the pinned record `{reference}`"),
            )),
            Some(_) | None => Ok(()),
        }
    }
}
