//! Optional Neo4j mirror (feature `neo4j`): replays a store's change log into Neo4j.
//!
//! Never on the hot path: a put commits to SQLite and returns; [`Neo4jSync::run_once`] (called
//! by the hub in the background, or by hand) reads the change log after its stored cursor,
//! writes each entry to Neo4j, and advances the cursor (`memory_cursors`, name
//! [`CURSOR_NAME`]) after every batch — so a restart resumes where it stopped, and an entry is
//! at worst written twice (every statement is an idempotent `MERGE`/`SET`/`DELETE`).
//!
//! Mapping: a record is a `:Memory` node keyed by `id`, with the original's properties
//! (`scope`, `projectId`, `key`, `value` = body, `tags`, `createdAt`, `updatedAt`) plus ours
//! (`kind`, `title`, `status`, `pinned`, `supersedes`, `supersededBy`, `taskId`, `runId`,
//! `worker`, `model`). A link is `(:Memory)-[:RELATES_TO {type}]->(:Memory)`. A delete is a
//! `DETACH DELETE`; entries scrubbed by a delete carry no payload and are skipped.

use std::sync::Arc;

use neo4rs::{ConfigBuilder, Graph, Query, query};
use orchestra_protocol::memory::{ChangeAction, MemoryChange, MemoryLink, MemoryRecord};
use orchestra_store::Store;

use crate::MemoryError;

/// The change-log cursor the sync keeps in the store.
pub const CURSOR_NAME: &str = "neo4j";
const BATCH: u32 = 500;

/// Where Neo4j is. [`Neo4jConfig::from_env`] reads `NEO4J_URI`, `NEO4J_USER` (or
/// `NEO4J_USERNAME`), `NEO4J_PASSWORD`, `NEO4J_DATABASE`, falling back to the original's
/// `OPENCODE_NEO4J_*` names.
#[derive(Clone)]
pub struct Neo4jConfig {
    pub uri: String,
    pub user: String,
    pub password: String,
    pub database: Option<String>,
}

impl std::fmt::Debug for Neo4jConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jConfig")
            .field("uri", &self.uri)
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

fn env(names: &[&str]) -> Option<String> {
    names
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

impl Neo4jConfig {
    /// `None` when no URI is set.
    pub fn from_env() -> Option<Neo4jConfig> {
        Some(Neo4jConfig {
            uri: env(&["NEO4J_URI", "OPENCODE_NEO4J_URI"])?,
            user: env(&["NEO4J_USER", "NEO4J_USERNAME", "OPENCODE_NEO4J_USERNAME"])
                .unwrap_or_else(|| "neo4j".to_owned()),
            password: env(&["NEO4J_PASSWORD", "OPENCODE_NEO4J_PASSWORD"]).unwrap_or_default(),
            database: env(&["NEO4J_DATABASE", "OPENCODE_NEO4J_DATABASE"]),
        })
    }
}

/// What one [`Neo4jSync::run_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Neo4jSyncReport {
    pub applied: u64,
    /// Entries with nothing to write (scrubbed by a later delete).
    pub skipped: u64,
    /// The cursor after the run.
    pub cursor: i64,
}

pub struct Neo4jSync {
    graph: Graph,
    store: Arc<Store>,
}

impl std::fmt::Debug for Neo4jSync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Neo4jSync")
            .field("store", &self.store.path())
            .finish_non_exhaustive()
    }
}

fn neo(error: impl std::fmt::Display) -> MemoryError {
    MemoryError::Neo4j(error.to_string())
}

fn record_query(record: &MemoryRecord) -> Query {
    let text = |value: &Option<String>| value.clone().unwrap_or_default();
    query(
        "MERGE (m:Memory {id: $id})
         SET m.scope = $scope, m.projectId = $projectId, m.key = $key, m.value = $value,
             m.tags = $tags, m.createdAt = $createdAt, m.updatedAt = $updatedAt,
             m.kind = $kind, m.title = $title, m.status = $status, m.pinned = $pinned,
             m.supersedes = $supersedes, m.supersededBy = $supersededBy,
             m.taskId = $taskId, m.runId = $runId, m.worker = $worker, m.model = $model",
    )
    .param("id", record.id.clone())
    .param("scope", record.scope.as_str())
    .param("projectId", text(&record.project_id))
    .param("key", text(&record.key))
    .param("value", record.body.clone())
    .param("tags", record.tags.clone())
    .param("createdAt", record.created_at)
    .param("updatedAt", record.updated_at)
    .param("kind", record.kind.clone())
    .param("title", record.title.clone())
    .param("status", record.status.as_str())
    .param("pinned", record.pinned)
    .param("supersedes", text(&record.supersedes))
    .param("supersededBy", text(&record.superseded_by))
    .param("taskId", text(&record.provenance.task_id))
    .param("runId", text(&record.provenance.run_id))
    .param("worker", text(&record.provenance.worker))
    .param("model", text(&record.provenance.model))
}

fn link_query(link: &MemoryLink) -> Query {
    query(
        "MERGE (a:Memory {id: $from}) MERGE (b:Memory {id: $to})
         MERGE (a)-[r:RELATES_TO {type: $type}]->(b) SET r.updatedAt = $at",
    )
    .param("from", link.from.clone())
    .param("to", link.to.clone())
    .param("type", link.relation.clone())
    .param("at", link.created_at)
}

/// The statement for one change, or `None` when it carries nothing to write.
fn statement(change: &MemoryChange) -> Option<Query> {
    match change.action {
        ChangeAction::Delete => Some(
            query("MATCH (m:Memory {id: $id}) DETACH DELETE m")
                .param("id", change.record_id.clone()),
        ),
        ChangeAction::Link => {
            let link: MemoryLink = serde_json::from_value(change.payload.clone()?).ok()?;
            Some(link_query(&link))
        }
        ChangeAction::Put
        | ChangeAction::Update
        | ChangeAction::Supersede
        | ChangeAction::Retract => {
            let record: MemoryRecord = serde_json::from_value(change.payload.clone()?).ok()?;
            Some(record_query(&record))
        }
    }
}

impl Neo4jSync {
    pub async fn connect(
        config: &Neo4jConfig,
        store: Arc<Store>,
    ) -> Result<Neo4jSync, MemoryError> {
        let mut builder = ConfigBuilder::default()
            .uri(config.uri.clone())
            .user(config.user.clone())
            .password(config.password.clone());
        if let Some(database) = &config.database {
            builder = builder.db(database.as_str());
        }
        let graph = Graph::connect(builder.build().map_err(neo)?)
            .await
            .map_err(neo)?;
        graph
            .run(query(
                "CREATE INDEX memory_id IF NOT EXISTS FOR (m:Memory) ON (m.id)",
            ))
            .await
            .map_err(neo)?;
        Ok(Neo4jSync { graph, store })
    }

    /// Replays every change after the stored cursor, in batches, advancing the cursor after
    /// each one.
    pub async fn run_once(&self) -> Result<Neo4jSyncReport, MemoryError> {
        let mut report = Neo4jSyncReport {
            cursor: self.store.memory_cursor(CURSOR_NAME)?,
            ..Default::default()
        };
        loop {
            let changes = self.store.memory_changes_after(report.cursor, BATCH)?;
            let Some(last) = changes.last().map(|c| c.seq) else {
                break;
            };
            let mut txn = self.graph.start_txn().await.map_err(neo)?;
            for change in &changes {
                match statement(change) {
                    Some(statement) => {
                        txn.run(statement).await.map_err(neo)?;
                        report.applied += 1;
                    }
                    None => report.skipped += 1,
                }
            }
            txn.commit().await.map_err(neo)?;
            self.store.set_memory_cursor(CURSOR_NAME, last)?;
            report.cursor = last;
        }
        Ok(report)
    }

    /// The `:Memory` node count with this project id (for checks).
    pub async fn count_nodes(&self, project_id: &str) -> Result<i64, MemoryError> {
        let mut rows = self
            .graph
            .execute(
                query("MATCH (m:Memory {projectId: $p}) RETURN count(m) AS n")
                    .param("p", project_id.to_owned()),
            )
            .await
            .map_err(neo)?;
        let row = rows.next().await.map_err(neo)?;
        Ok(row.and_then(|r| r.get::<i64>("n").ok()).unwrap_or(0))
    }
}
