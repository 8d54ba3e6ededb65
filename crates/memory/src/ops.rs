//! The `memory.*` ops over the original's `memory` payload, so the hub's op dispatcher is one
//! call: `service.run_op(op, &payload, &origin)`. `memory.done` only checks and echoes its
//! payload — finishing the memory task's job is the hub's part. A worker's op (producer
//! `worker`) gets the narrower rules of `worker`.

use orchestra_protocol::MemoryPayload;
use orchestra_protocol::memory::{
    MemoryDetail, MemoryHit, MemoryLink, MemoryOp, MemoryPage, MemoryProvenance, MemoryPut,
    MemoryPutResult, MemoryScope, MemorySearchParams,
};
use serde::{Deserialize, Serialize};

use crate::MemoryError;
use crate::bank::ForgetResult;
use crate::service::{MemoryGetResult, MemoryService};
use crate::worker::{check_worker_op, is_worker};

/// What `memory.done` reports: the memory task it completes and what was recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryDone {
    pub task_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stored_keys: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub linked_keys: Vec<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
}

/// The result of one op, serialized as the op's own shape.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum MemoryOpResult {
    Put(MemoryPutResult),
    Link(MemoryLink),
    Done(MemoryDone),
    Search(MemoryPage<MemoryHit>),
    Get(MemoryGetResult),
    Forget(ForgetResult),
}

fn scope_of(payload: &MemoryPayload) -> Result<Option<MemoryScope>, MemoryError> {
    match payload.scope.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => MemoryScope::parse(text).map(Some).ok_or_else(|| {
            MemoryError::invalid(
                "scope",
                format!("`{text}` is not a scope; use `project` or `global`"),
            )
        }),
    }
}

fn required<'a>(
    value: &'a Option<String>,
    field: &'static str,
    op: MemoryOp,
) -> Result<&'a str, MemoryError> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| MemoryError::invalid(field, format!("{} needs `{field}`", op.as_str())))
}

/// `id`, else `key`: the record a get or forget acts on.
fn reference(payload: &MemoryPayload, op: MemoryOp) -> Result<&str, MemoryError> {
    payload
        .id
        .as_deref()
        .or(payload.key.as_deref())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or_else(|| MemoryError::invalid("id", format!("{} needs `id` or `key`", op.as_str())))
}

/// Checks an op's payload without running it: the fields the op needs are there and the
/// scope is one of the two. `run_op` checks the same and more (sizes, kinds, references).
pub fn check_op(op: MemoryOp, payload: &MemoryPayload) -> Result<(), MemoryError> {
    scope_of(payload)?;
    match op {
        MemoryOp::Put => required(&payload.value, "value", op).map(drop),
        MemoryOp::Link => {
            required(&payload.from_key, "fromKey", op)?;
            required(&payload.to_key, "toKey", op).map(drop)
        }
        MemoryOp::Done => required(&payload.task_id, "taskId", op).map(drop),
        MemoryOp::Search => Ok(()),
        MemoryOp::Get | MemoryOp::Forget => reference(payload, op).map(drop),
    }
}

impl MemoryService {
    /// Runs one `memory.*` op. `origin` is the provenance the hub knows (the calling task,
    /// worker, model, run); the payload's `taskId` fills it in when the hub knows none.
    pub fn run_op(
        &self,
        op: MemoryOp,
        payload: &MemoryPayload,
        origin: &MemoryProvenance,
    ) -> Result<MemoryOpResult, MemoryError> {
        let worker = is_worker(origin);
        let scope = if worker {
            check_worker_op(op, payload)?;
            match op {
                MemoryOp::Put | MemoryOp::Link | MemoryOp::Forget => Some(MemoryScope::Project),
                MemoryOp::Done | MemoryOp::Search | MemoryOp::Get => scope_of(payload)?,
            }
        } else {
            scope_of(payload)?
        };
        match op {
            MemoryOp::Put => {
                if worker {
                    self.refuse_pinned_for_worker(payload.key.as_deref())?;
                    self.refuse_pinned_for_worker(payload.supersedes.as_deref())?;
                }
                let body = required(&payload.value, "value", op)?.to_owned();
                let mut provenance = origin.clone();
                if provenance.task_id.is_none() {
                    provenance.task_id.clone_from(&payload.task_id);
                }
                let put = MemoryPut {
                    scope,
                    kind: payload.kind.clone(),
                    key: payload.key.clone().filter(|k| !k.trim().is_empty()),
                    title: payload.title.clone(),
                    body,
                    tags: payload.tags.clone(),
                    entities: payload.entities.clone().unwrap_or_default(),
                    provenance,
                    supersedes: payload.supersedes.clone(),
                    pinned: if worker { None } else { payload.pinned },
                };
                Ok(MemoryOpResult::Put(self.put(put)?))
            }
            MemoryOp::Link => {
                let from = required(&payload.from_key, "fromKey", op)?;
                let to = required(&payload.to_key, "toKey", op)?;
                Ok(MemoryOpResult::Link(self.link(
                    from,
                    to,
                    payload.relation.as_deref(),
                    scope,
                )?))
            }
            MemoryOp::Done => {
                let task_id = required(&payload.task_id, "taskId", op)?.to_owned();
                Ok(MemoryOpResult::Done(MemoryDone {
                    task_id,
                    summary: payload.summary.clone(),
                    stored_keys: payload.stored_keys.clone(),
                    linked_keys: payload.linked_keys.clone(),
                    notes: payload.notes.clone(),
                }))
            }
            MemoryOp::Search => {
                let params = MemorySearchParams {
                    query: payload.query.clone().unwrap_or_default(),
                    scopes: scope.into_iter().collect(),
                    kinds: payload.kind.iter().cloned().collect(),
                    tags: payload.tags.clone(),
                    include_superseded: false,
                    include_retracted: false,
                    limit: payload.limit,
                    budget_tokens: payload.budget_tokens,
                    cursor: payload.cursor.clone(),
                    detail: payload.detail.unwrap_or(MemoryDetail::Summary),
                };
                Ok(MemoryOpResult::Search(self.search(&params)?))
            }
            MemoryOp::Get => Ok(MemoryOpResult::Get(self.get_with_links(
                reference(payload, op)?,
                scope,
                payload.budget_tokens,
            )?)),
            MemoryOp::Forget => Ok(MemoryOpResult::Forget(self.forget(
                if worker {
                    let target = reference(payload, op)?;
                    self.refuse_pinned_for_worker(Some(target))?;
                    target
                } else {
                    reference(payload, op)?
                },
                scope,
                payload.mode.unwrap_or_default(),
            )?)),
        }
    }
}
