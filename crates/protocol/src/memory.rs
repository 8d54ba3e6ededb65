//! Memory records, links, searches and pages as every front end sees them.
//!
//! A record is one piece of project knowledge (a decision, a convention, a bug and its fix…)
//! with its scope, provenance and lifecycle. Reads are bounded: every search takes a `limit`
//! and a token budget and pages with an opaque `nextCursor`. Names are camelCase and times
//! unix milliseconds, like the rest of the wire types; the original's `memory` op payload
//! ([`crate::MemoryPayload`]) maps onto [`MemoryPut`] (its `value` is our `body`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Kinds the engine knows; `kind` is an open string, these are the ones it ranks and renders
/// with intent (conventions are pinned first in the context block, for example).
pub const KNOWN_KINDS: [&str; 11] = [
    "decision",
    "convention",
    "fact",
    "bug",
    "fix",
    "todo",
    "summary",
    "artifact",
    "preference",
    "error",
    "observation",
];

/// The kind a record gets when a put names none (the original's records had no kind).
pub const DEFAULT_KIND: &str = "fact";

/// Where a record is visible: one project, or every project of the user.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum MemoryScope {
    #[default]
    Project,
    Global,
}

impl MemoryScope {
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryScope::Project => "project",
            MemoryScope::Global => "global",
        }
    }

    /// Parses `project` or `global` (the original's two values).
    pub fn parse(text: &str) -> Option<MemoryScope> {
        match text {
            "project" => Some(MemoryScope::Project),
            "global" => Some(MemoryScope::Global),
            _ => None,
        }
    }
}

/// Where a record is in its life. Search shows `active` records unless asked otherwise.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemoryStatus {
    #[default]
    Active,
    /// Replaced by a newer record (`supersededBy`).
    Superseded,
    /// Withdrawn by `memory.forget`; kept for the audit trail.
    Retracted,
}

impl MemoryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MemoryStatus::Active => "active",
            MemoryStatus::Superseded => "superseded",
            MemoryStatus::Retracted => "retracted",
        }
    }

    pub fn parse(text: &str) -> Option<MemoryStatus> {
        match text {
            "active" => Some(MemoryStatus::Active),
            "superseded" => Some(MemoryStatus::Superseded),
            "retracted" => Some(MemoryStatus::Retracted),
            _ => None,
        }
    }
}

/// Files and symbols a record is about, so "everything about `src/db.rs`" finds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryEntities {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub symbols: Vec<String>,
}

impl MemoryEntities {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.symbols.is_empty()
    }
}

/// Who wrote a record and from what work.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryProvenance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// `hub` (automatic records), `worker`, `workflow`, `tool`, `user`, `import`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub producer: Option<String>,
}

impl MemoryProvenance {
    pub fn is_empty(&self) -> bool {
        self == &MemoryProvenance::default()
    }
}

/// One record as stored and returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryRecord {
    /// `mem_` plus 16 hex digits.
    pub id: String,
    pub scope: MemoryScope,
    /// The project a `project` record belongs to; absent for `global`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    pub kind: String,
    /// A natural key (`decision:db-engine`); a put with the same scope and key updates the
    /// active record instead of adding one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub title: String,
    pub body: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "MemoryEntities::is_empty")]
    pub entities: MemoryEntities,
    #[serde(default, skip_serializing_if = "MemoryProvenance::is_empty")]
    pub provenance: MemoryProvenance,
    #[serde(default)]
    pub status: MemoryStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    #[serde(default)]
    pub pinned: bool,
    /// How many secrets were replaced by `[REDACTED]` when it was written.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub redactions: u32,
    pub created_at: i64,
    pub updated_at: i64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A typed link between two records (the original's `RELATES_TO {type}`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryLink {
    pub from: String,
    pub to: String,
    /// `relates_to` (the original's default), `supersedes`, `derived_from`, `fixes`, `caused_by`,
    /// `blocks`, `mentions`, …
    pub relation: String,
    pub created_at: i64,
}

/// The relation a link gets when none is named (the original's default).
pub const DEFAULT_RELATION: &str = "relates_to";

/// What a put carries. Fields left out keep the updated record's values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryPut {
    #[serde(default)]
    pub scope: Option<MemoryScope>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub body: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "MemoryEntities::is_empty")]
    pub entities: MemoryEntities,
    #[serde(default, skip_serializing_if = "MemoryProvenance::is_empty")]
    pub provenance: MemoryProvenance,
    /// The id or key of a record this one replaces; that record becomes `superseded`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supersedes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned: Option<bool>,
}

/// What a put did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PutOutcome {
    Created,
    /// The active record with the same scope and key was rewritten.
    Updated,
    /// The same scope and key already held exactly this content.
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryPutResult {
    pub record: MemoryRecord,
    pub outcome: PutOutcome,
    /// Ids of the records this put superseded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<String>,
}

/// How much of each record a read returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemoryDetail {
    /// Id, kind, key, title, status, score: one line per hit.
    #[default]
    Index,
    /// Plus a snippet of the body, tags and entities.
    Summary,
    /// The whole record.
    Full,
}

/// `memory.search`: ranked full-text search, bounded by `limit` and `budgetTokens`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemorySearchParams {
    /// Words, identifiers, file paths or error strings. Empty lists the newest records.
    #[serde(default)]
    pub query: String,
    /// Default: both `project` and `global`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<MemoryScope>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<String>,
    /// Records carrying every one of these tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Also show superseded records (ranked after the active ones).
    #[serde(default)]
    pub include_superseded: bool,
    /// Also show retracted records (ranked last).
    #[serde(default)]
    pub include_retracted: bool,
    /// Default 10, at most 100.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Stop before the page would exceed this many tokens (estimated). Default 2000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_tokens: Option<u32>,
    /// `nextCursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    #[serde(default)]
    pub detail: MemoryDetail,
}

/// One search result at the requested detail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryHit {
    pub id: String,
    pub scope: MemoryScope,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    pub title: String,
    pub status: MemoryStatus,
    #[serde(default)]
    pub pinned: bool,
    pub score: f32,
    /// Estimated tokens of this hit as returned.
    pub tokens: u32,
    pub updated_at: i64,
    /// `summary`: the start of the body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// `full`: the whole record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<MemoryRecord>,
}

/// A row that could not be read (a corrupt record); listings skip it and say so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedRecord {
    pub id: String,
    pub reason: String,
}

/// One bounded page of results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryPage<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Estimated tokens of `items`.
    pub tokens: u32,
    /// Set when the next item alone is larger than `budgetTokens`: the budget it needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_budget_tokens: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedRecord>,
}

/// `memory.forget`: `retract` keeps the record (hidden from search); `delete` removes it and
/// scrubs its content from the change log, for privacy.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ForgetMode {
    #[default]
    Retract,
    Delete,
}

/// The block injected into a worker's `system` prompt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryContext {
    /// Byte-identical for the same inputs while the memory it shows is unchanged.
    pub text: String,
    /// FNV-1a 64 of `text`, hex: a cheap cache key.
    pub hash: String,
    /// Estimated tokens of `text`.
    pub tokens: u32,
    /// The records shown, in order.
    pub record_ids: Vec<String>,
}

/// What the change log records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ChangeAction {
    Put,
    Update,
    Supersede,
    Link,
    Retract,
    Delete,
}

impl ChangeAction {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Put => "put",
            ChangeAction::Update => "update",
            ChangeAction::Supersede => "supersede",
            ChangeAction::Link => "link",
            ChangeAction::Retract => "retract",
            ChangeAction::Delete => "delete",
        }
    }

    pub fn parse(text: &str) -> Option<ChangeAction> {
        match text {
            "put" => Some(ChangeAction::Put),
            "update" => Some(ChangeAction::Update),
            "supersede" => Some(ChangeAction::Supersede),
            "link" => Some(ChangeAction::Link),
            "retract" => Some(ChangeAction::Retract),
            "delete" => Some(ChangeAction::Delete),
            _ => None,
        }
    }
}

/// One entry of the append-only change log. `payload` is the record (or link) after the
/// change; a `delete` scrubs it to `null` in every entry of that record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryChange {
    pub seq: i64,
    pub at: i64,
    pub action: ChangeAction,
    pub record_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<serde_json::Value>,
}

/// The `memory.*` operations (`task_start({kind: "op", op})`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum MemoryOp {
    #[serde(rename = "memory.put")]
    Put,
    #[serde(rename = "memory.link")]
    Link,
    #[serde(rename = "memory.done")]
    Done,
    #[serde(rename = "memory.search")]
    Search,
    #[serde(rename = "memory.get")]
    Get,
    #[serde(rename = "memory.forget")]
    Forget,
}

impl MemoryOp {
    pub const ALL: [MemoryOp; 6] = [
        MemoryOp::Put,
        MemoryOp::Link,
        MemoryOp::Done,
        MemoryOp::Search,
        MemoryOp::Get,
        MemoryOp::Forget,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemoryOp::Put => "memory.put",
            MemoryOp::Link => "memory.link",
            MemoryOp::Done => "memory.done",
            MemoryOp::Search => "memory.search",
            MemoryOp::Get => "memory.get",
            MemoryOp::Forget => "memory.forget",
        }
    }

    pub fn parse(text: &str) -> Option<MemoryOp> {
        MemoryOp::ALL.into_iter().find(|op| op.as_str() == text)
    }
}

/// The task that wrote a record, as `GET /api/v1/memory/records/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryTaskRef {
    pub id: String,
    /// The worker (profile id), or `workflow:<id>` / `op:<op>`.
    pub worker_id: String,
    pub kind: crate::TaskKind,
    pub status: crate::JobStatus,
    /// The start of the task's text.
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    pub started_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<i64>,
}

/// `GET /api/v1/memory/records/{id}`: a record, its links both ways, and the task that wrote it
/// (from its provenance, when that task is still in the job store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemoryRecordDetail {
    /// Absent when it is larger than `budgetTokens` (see `needsBudgetTokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record: Option<MemoryRecord>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub links: Vec<MemoryLink>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<MemoryTaskRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_budget_tokens: Option<u32>,
}

/// `POST /api/v1/memory/records/{id}/forget`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ForgetRequest {
    /// `retract` (default) or `delete`.
    #[serde(default)]
    pub mode: ForgetMode,
    /// Where to look for the record (default: project, then global).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<MemoryScope>,
}

/// `POST /api/v1/memory/records/{id}/forget`: what happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ForgetOutcome {
    pub id: String,
    pub mode: ForgetMode,
    /// False when the record was already retracted.
    pub changed: bool,
}

/// `POST /api/v1/memory/import`: what an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportOutcome {
    pub records: u64,
    /// Records whose id was already in the store (left alone).
    pub existing: u64,
    pub links: u64,
    pub rejected_count: u64,
    /// `line N: problem`, the first hundred.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejected: Vec<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn op_names_round_trip() {
        for op in MemoryOp::ALL {
            assert_eq!(MemoryOp::parse(op.as_str()), Some(op));
            let json = serde_json::to_string(&op).unwrap();
            assert_eq!(json, format!("\"{}\"", op.as_str()));
        }
    }

    #[test]
    fn record_uses_camel_case_and_omits_empty_fields() {
        let record = MemoryRecord {
            id: "mem_1".into(),
            scope: MemoryScope::Project,
            project_id: Some("p".into()),
            kind: "decision".into(),
            key: None,
            title: String::new(),
            body: "b".into(),
            tags: vec![],
            entities: MemoryEntities::default(),
            provenance: MemoryProvenance::default(),
            status: MemoryStatus::Active,
            supersedes: None,
            superseded_by: Some("mem_2".into()),
            pinned: false,
            redactions: 0,
            created_at: 1,
            updated_at: 2,
        };
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["projectId"], "p");
        assert_eq!(json["supersededBy"], "mem_2");
        assert!(json.get("tags").is_none());
        assert!(json.get("redactions").is_none());
        let back: MemoryRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back, record);
    }
}
