//! Memory in the hub: the project's [`MemoryService`] (its store and the user's global store)
//! opened when `memory.enabled`, called off the async threads, announced on the event bus.
//!
//! - [`HubMemory`]: every read and write the hub makes — the `memory.*` ops, the HTTP API, the
//!   block injected into workers' prompts — goes through it. The engine is blocking (SQLite,
//!   tantivy), so each call runs on tokio's blocking pool; every write that changes a record
//!   publishes `orchestra.memory.written`.
//! - `opening`: memory opens in the background; the hub never waits for it to start.
//! - `indexer`: brings the search indexes up to the stores in batches after writes, so no task
//!   start does index work.
//! - `recorder`: one record per finished worker task and workflow run (`memory.autoRecord`),
//!   written from the event bus, so the job runtime below knows nothing of memory.
//! - `tasks`: pending memory tasks — the job a `memoryOnTurnEnd` run reports to, completed by
//!   `memory.done` (the original's contract).
//! - `upkeep`: the age-out of automatic records (`memory.autoRecords`) and the change log's
//!   compaction, in bounded background passes.
//! - `neo4j` (feature `neo4j`): the change-log replay into Neo4j, in the background.
//!
//! This module sits between `jobs` and `workflows`: it may use the job runtime (a pending
//! memory task is a job), never the workflows or the facade above.

mod indexer;
#[cfg(feature = "neo4j")]
mod neo4j;
mod opening;
mod recorder;
mod tasks;
mod upkeep;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestra_memory::{ExportReport, ImportReport, MemoryError, MemoryOpResult, MemoryService};
pub use orchestra_memory::{ForgetResult, MemoryDone, MemoryGetResult, MemorySettings};
use orchestra_protocol::memory::{
    ForgetMode, MemoryContext, MemoryHit, MemoryOp, MemoryPage, MemoryProvenance, MemoryPut,
    MemoryPutResult, MemoryScope, MemorySearchParams, PutOutcome,
};
use orchestra_protocol::{ErrorKind, EventBody, MemoryPayload, MemoryWrittenEvent};
use orchestra_store::Store;

use crate::config::{Config, MemoryScope as ConfigScope};
use crate::events::EventBus;
use crate::jobs::ContextBlock;
#[cfg(feature = "neo4j")]
pub use neo4j::neo4j_sync;
pub use recorder::Recorder;
pub use tasks::{MEMORY_TASK_LABEL, MemoryTaskOutcome};

/// The profile whose agent may use the hub's memory tools (the worker MCP endpoint).
pub use crate::config::MEMORY_PROFILE_ID as MEMORY_PROFILE;
pub use recorder::MEMORY_WORKFLOW;

#[derive(Debug, thiserror::Error)]
pub enum HubMemoryError {
    #[error(
        "memory is turned off for this project (`memory.enabled` is false); set `memory.enabled` to true in orchestrator.json to use {what}"
    )]
    Disabled { what: String },
    #[error(transparent)]
    Engine(#[from] MemoryError),
    #[error(
        "the memory engine stopped unexpectedly ({0}); this is a bug in Open Orchestra — please report it with the hub log"
    )]
    Crashed(String),
    #[error(
        "memory is still opening after {waited:?} (building or repairing its search index, or waiting for another Orchestra process that holds the index lock); try again shortly"
    )]
    Opening { waited: Duration },
    #[error("memory could not be opened: {0}; see the hub log, or run `orchestra memory reindex`")]
    NotOpened(String),
    #[error(
        "no pending memory task `{task_id}`: `memory.done` completes the memory task a `memoryOnTurnEnd` run reports to (its id is in the run's task text); nothing to complete"
    )]
    NoPendingTask { task_id: String },
}

impl HubMemoryError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            HubMemoryError::Disabled { .. } => ErrorKind::MemoryDisabled,
            HubMemoryError::NoPendingTask { .. } => ErrorKind::NotFound,
            HubMemoryError::Engine(error) => error.kind(),
            HubMemoryError::Crashed(_) => ErrorKind::Internal,
            HubMemoryError::Opening { .. } | HubMemoryError::NotOpened(_) => ErrorKind::Unavailable,
        }
    }
}

/// The engine's settings from the `memory.*` keys (see the README's memory section).
pub fn settings_of(config: &Config) -> MemorySettings {
    let memory = &config.memory;
    MemorySettings {
        default_scope: match memory.scope {
            ConfigScope::Project => MemoryScope::Project,
            ConfigScope::Global => MemoryScope::Global,
        },
        max_body_chars: usize::try_from(memory.max_chars)
            .unwrap_or(usize::MAX)
            .min(orchestra_memory::MAX_BODY_CHARS),
        inject_budget_tokens: u32::try_from(memory.inject.max_chars.div_ceil(4))
            .unwrap_or(u32::MAX),
        inject_max_entries: usize::try_from(memory.inject.max_entries).unwrap_or(usize::MAX),
        inject_include_global: memory.inject.include_global,
        inject_max_global_entries: usize::try_from(memory.inject.max_global_entries)
            .unwrap_or(usize::MAX),
        inject_project_summary: memory.inject.include_project_summary,
    }
}

/// Where the hub finds the user's global memory.
#[derive(Debug, Clone, Default)]
pub enum GlobalStore {
    /// `$XDG_STATE_HOME/orchestra/global/memory.db`.
    #[default]
    Default,
    /// A store file of its own (tests, a second user profile).
    At(PathBuf),
}

/// One hub's memory. Cheap to clone.
#[derive(Clone)]
pub struct HubMemory {
    inner: Arc<Inner>,
}

/// How long a memory call waits for memory to open (below the 30 s a client waits for a hub).
const OPEN_WAIT: Duration = Duration::from_secs(20);
/// How long a task start waits for its memory block; past it the task runs without one and
/// its record says why.
const BLOCK_DEADLINE: Duration = Duration::from_millis(200);

struct Inner {
    opened: tokio::sync::watch::Receiver<opening::Opened>,
    indexer: indexer::Indexer,
    upkeep: upkeep::Upkeep,
    settings: MemorySettings,
    bus: EventBus,
    auto_record: bool,
    auto_inject: bool,
    pending: Mutex<tasks::Pending>,
}

impl std::fmt::Debug for HubMemory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HubMemory")
            .field("settings", &self.inner.settings)
            .finish_non_exhaustive()
    }
}

impl HubMemory {
    /// Starts opening the project's memory (in `store`) and the global store in the background
    /// (see `opening`); `None` when `memory.enabled` is false. Returns at once: opening builds
    /// or repairs the search indexes, which can take long.
    pub async fn open(
        config: &Config,
        store: Arc<Store>,
        project_dir: &Path,
        global: GlobalStore,
        bus: EventBus,
    ) -> Result<Option<HubMemory>, HubMemoryError> {
        if !config.memory.enabled {
            return Ok(None);
        }
        let settings = settings_of(config);
        let project_id = orchestra_state_dir::project_id(project_dir);
        let opened = opening::open_in_background({
            let settings = settings.clone();
            move || {
                let global = match global {
                    GlobalStore::Default => orchestra_memory::open_global_store()?,
                    GlobalStore::At(path) => Arc::new(Store::open(&path)?),
                };
                MemoryService::open(store, project_id, Some(global), settings)
            }
        });
        Ok(Some(HubMemory {
            inner: Arc::new(Inner {
                indexer: indexer::Indexer::spawn(opened.clone()),
                upkeep: upkeep::Upkeep::spawn(opened.clone(), upkeep::policy_of(config)),
                opened,
                settings,
                bus,
                auto_record: config.memory.auto_record,
                auto_inject: config.memory.auto_inject,
                pending: Mutex::new(tasks::Pending::default()),
            }),
        }))
    }

    /// The engine, once open (waiting for it at most a few seconds).
    pub async fn service(&self) -> Result<Arc<MemoryService>, HubMemoryError> {
        opening::wait_ready(&self.inner.opened, OPEN_WAIT).await
    }

    pub fn settings(&self) -> &MemorySettings {
        &self.inner.settings
    }

    /// `memory.autoRecord`: a record for every finished task and workflow run.
    pub fn auto_record(&self) -> bool {
        self.inner.auto_record
    }

    /// `memory.autoInject`: the memory block in workers' prompts.
    pub fn auto_inject(&self) -> bool {
        self.inner.auto_inject
    }

    #[cfg(feature = "neo4j")]
    pub(crate) fn bus(&self) -> &EventBus {
        &self.inner.bus
    }

    /// Runs `work` on the blocking pool with the service (once open).
    pub async fn blocking<T, F>(&self, work: F) -> Result<T, HubMemoryError>
    where
        T: Send + 'static,
        F: FnOnce(&MemoryService) -> Result<T, MemoryError> + Send + 'static,
    {
        let service = self.service().await?;
        tokio::task::spawn_blocking(move || work(&service))
            .await
            .map_err(|err| HubMemoryError::Crashed(err.to_string()))?
            .map_err(HubMemoryError::from)
    }

    /// Writes a record, indexes it, and announces it.
    pub async fn put(
        &self,
        put: MemoryPut,
        task_id: Option<String>,
    ) -> Result<MemoryPutResult, HubMemoryError> {
        let result = self
            .blocking(move |service| {
                let result = service.put(put)?;
                indexer::index_now(service);
                Ok(result)
            })
            .await?;
        self.announce_put(&result, task_id);
        Ok(result)
    }

    /// An automatic record (`recorder`): written and announced; indexed by the next batch.
    pub(crate) async fn put_automatic(
        &self,
        put: MemoryPut,
        task_id: Option<String>,
    ) -> Result<MemoryPutResult, HubMemoryError> {
        let result = self.blocking(move |service| service.put(put)).await?;
        self.inner.indexer.poke();
        self.inner.upkeep.automatic_written();
        self.announce_put(&result, task_id);
        Ok(result)
    }

    /// One `memory.*` op over the original's payload (see `orchestra_memory::MemoryService::
    /// run_op`); writes are announced. `memory.done` is only checked here: completing the
    /// memory task is [`HubMemory::complete_task`].
    pub async fn run_op(
        &self,
        op: MemoryOp,
        payload: MemoryPayload,
        origin: MemoryProvenance,
        task_id: Option<String>,
    ) -> Result<MemoryOpResult, HubMemoryError> {
        let before = match op {
            MemoryOp::Forget => self.lookup_for_forget(&payload).await,
            MemoryOp::Put | MemoryOp::Link | MemoryOp::Done | MemoryOp::Search | MemoryOp::Get => {
                None
            }
        };
        let result = self
            .blocking(move |service| {
                let result = service.run_op(op, &payload, &origin)?;
                if op_writes(op) {
                    indexer::index_now(service);
                }
                Ok(result)
            })
            .await?;
        match &result {
            MemoryOpResult::Put(put) => self.announce_put(put, task_id),
            MemoryOpResult::Forget(forgot) => {
                if let Some(record) = before {
                    self.announce_forget(&record, forgot, task_id);
                }
            }
            MemoryOpResult::Link(_)
            | MemoryOpResult::Done(_)
            | MemoryOpResult::Search(_)
            | MemoryOpResult::Get(_) => {}
        }
        Ok(result)
    }

    async fn lookup_for_forget(
        &self,
        payload: &MemoryPayload,
    ) -> Option<orchestra_protocol::memory::MemoryRecord> {
        let reference = payload.id.clone().or_else(|| payload.key.clone())?;
        let scope = payload.scope.as_deref().and_then(MemoryScope::parse);
        self.blocking(move |service| service.get(&reference, scope))
            .await
            .ok()
            .flatten()
    }

    pub async fn search(
        &self,
        params: MemorySearchParams,
    ) -> Result<MemoryPage<MemoryHit>, HubMemoryError> {
        self.blocking(move |service| service.search(&params)).await
    }

    /// A record (id or key) with its links, bounded by `budget_tokens`.
    pub async fn get(
        &self,
        reference: String,
        scope: Option<MemoryScope>,
        budget_tokens: Option<u32>,
    ) -> Result<MemoryGetResult, HubMemoryError> {
        self.blocking(move |service| service.get_with_links(&reference, scope, budget_tokens))
            .await
    }

    /// Retracts or deletes a record and announces it.
    pub async fn forget(
        &self,
        reference: String,
        scope: Option<MemoryScope>,
        mode: ForgetMode,
        task_id: Option<String>,
    ) -> Result<ForgetResult, HubMemoryError> {
        let (record, result) = self
            .blocking(move |service| {
                let record = service.get(&reference, scope)?;
                let result = service.forget(&reference, scope, mode)?;
                indexer::index_now(service);
                Ok((record, result))
            })
            .await?;
        if let Some(record) = record {
            self.announce_forget(&record, &result, task_id);
        }
        Ok(result)
    }

    /// The memory block a worker would get for `task_text`.
    pub async fn context(
        &self,
        task_text: String,
        budget_tokens: Option<u32>,
    ) -> Result<MemoryContext, HubMemoryError> {
        self.blocking(move |service| service.render_context(&task_text, budget_tokens))
            .await
    }

    /// The block for a worker's prompt when `memory.autoInject` is on and there is something
    /// to show (see [`HubMemory::block_for_task`]).
    pub async fn block_for_worker(&self, task_text: &str) -> Option<String> {
        self.block_for_task(task_text).await.text
    }

    /// The block for a task start, read from the indexes as they stand (no index work on the
    /// task's path) within [`BLOCK_DEADLINE`]. A failure or a late block never stops the task:
    /// it runs without the block, and `note` (kept in the job record) and the log say why.
    pub async fn block_for_task(&self, task_text: &str) -> ContextBlock {
        if !self.auto_inject() {
            return ContextBlock::default();
        }
        // Writes from other processes (the CLI, other projects' global records) are indexed
        // by the next batch.
        self.inner.indexer.poke();
        let text = task_text.to_owned();
        let built = tokio::time::timeout(BLOCK_DEADLINE, async {
            let service = opening::wait_ready(&self.inner.opened, BLOCK_DEADLINE).await?;
            tokio::task::spawn_blocking(move || service.render_context_as_indexed(&text, None))
                .await
                .map_err(|err| HubMemoryError::Crashed(err.to_string()))?
                .map_err(HubMemoryError::from)
        })
        .await;
        let reason = match built {
            Ok(Ok(block)) if block.text.is_empty() => return ContextBlock::default(),
            Ok(Ok(block)) => {
                return ContextBlock {
                    text: Some(block.text),
                    note: None,
                };
            }
            Ok(Err(HubMemoryError::Opening { .. })) | Err(_) => format!(
                "memory block left out: memory was not ready within {} ms (its index is opening, rebuilding or locked by another process)",
                BLOCK_DEADLINE.as_millis()
            ),
            Ok(Err(err)) => format!("memory block left out: {err}"),
        };
        tracing::warn!(reason, "the worker runs without the memory block");
        ContextBlock {
            text: None,
            note: Some(reason),
        }
    }

    /// Writes this project's and the global records as JSONL to `out`.
    pub async fn export(
        &self,
        out: Box<dyn std::io::Write + Send>,
    ) -> Result<ExportReport, HubMemoryError> {
        self.blocking(move |service| {
            let mut out = out;
            service.export_jsonl(&mut out)
        })
        .await
    }

    /// Reads a JSONL export from `input`.
    pub async fn import(
        &self,
        input: Box<dyn std::io::BufRead + Send>,
    ) -> Result<ImportReport, HubMemoryError> {
        self.blocking(move |service| {
            let mut input = input;
            let report = service.import_jsonl(&mut input)?;
            indexer::index_now(service);
            Ok(report)
        })
        .await
    }

    fn announce_put(&self, put: &MemoryPutResult, task_id: Option<String>) {
        let outcome = match put.outcome {
            PutOutcome::Created => "created",
            PutOutcome::Updated => "updated",
            // Nothing was written: nothing to announce.
            PutOutcome::Unchanged => return,
        };
        let record = &put.record;
        self.inner
            .bus
            .publish(EventBody::MemoryWritten(MemoryWrittenEvent {
                record_id: record.id.clone(),
                scope: record.scope,
                kind: record.kind.clone(),
                key: record.key.clone(),
                title: record.title.clone(),
                outcome: outcome.to_owned(),
                superseded: put.superseded.clone(),
                task_id: task_id.or_else(|| record.provenance.task_id.clone()),
            }));
    }

    fn announce_forget(
        &self,
        record: &orchestra_protocol::memory::MemoryRecord,
        result: &ForgetResult,
        task_id: Option<String>,
    ) {
        if !result.changed {
            return;
        }
        let outcome = match result.mode {
            ForgetMode::Retract => "retracted",
            ForgetMode::Delete => "deleted",
        };
        self.inner
            .bus
            .publish(EventBody::MemoryWritten(MemoryWrittenEvent {
                record_id: record.id.clone(),
                scope: record.scope,
                kind: record.kind.clone(),
                key: record.key.clone(),
                title: record.title.clone(),
                outcome: outcome.to_owned(),
                superseded: Vec::new(),
                task_id,
            }));
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, tasks::Pending> {
        self.inner
            .pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Ops that change records (indexed before the op returns).
fn op_writes(op: MemoryOp) -> bool {
    match op {
        MemoryOp::Put | MemoryOp::Link | MemoryOp::Forget => true,
        MemoryOp::Done | MemoryOp::Search | MemoryOp::Get => false,
    }
}
