//! The memory engine of Open Orchestra: project knowledge that workflows and tools write, that
//! searches fast, and that workers see.
//!
//! # Where records live
//! - **Project records** live in the project's own store (the `orchestra.db` that also holds
//!   its jobs, under `$XDG_STATE_HOME/orchestra/projects/<project>/`, or `tasks.storePath`).
//! - **Global records** — shared by every project of the user — live in a user-level store,
//!   `$XDG_STATE_HOME/orchestra/global/memory.db` ([`global_store_path`]).
//! - Every record also carries its owner (scope + project id), and every read and write filters
//!   on it, so two projects that share one store file (a `tasks.storePath` set in the global
//!   config) still never see each other's records. Lookups by id check the owner too.
//!
//! SQLite is the source of truth (`orchestra-store`: records, links, an append-only change
//! log). Each store has a tantivy index beside it (`memory-index/` next to the store file),
//! derived from the store and rebuilt from it — automatically, with a log line — when it is
//! missing, unreadable, of another format, or ahead of its store.
//!
//! # Processes
//! One hub runs per project, but several projects' hubs (and the CLI) run at once, and all of
//! them open the global store. SQLite serializes their writes (WAL, `BEGIN IMMEDIATE`). tantivy
//! allows one `IndexWriter` per index folder, so no process keeps one open: a write only
//! commits to SQLite (durable at once, ~0.1 ms), and the next search in *any* process first
//! brings the index up to the change log's head. Whoever does it takes an `flock` on
//! `memory-index.lock`, indexes every record changed since the sequence number stored in the
//! index's last commit — other processes' writes included — commits once, and lets go. A
//! process that finds the index already caught up only reloads its reader. So writes are never
//! blocked by the index, searches always see every committed write (read-your-writes across
//! processes), and tantivy commits once per search-after-writes rather than per record.
//! The hub goes further (issue 20): it indexes automatic records in batches in the background
//! and builds a task's memory block from the index as it stands
//! ([`MemoryService::render_context_as_indexed`], remembered per index generation and text),
//! so no task start does index work; catch-up commits are merged by size class (tantivy's log
//! merge policy), so a record is rewritten O(log n) times, not once per few commits.
//!
//! # Rules
//! - No LLM on the write path. Secrets are redacted before anything is stored ([`redact()`]).
//! - Superseded and retracted records are hidden from search unless asked for.
//! - Every read is bounded: a limit, a token budget and a cursor; a record is never cut to fit.
//! - The context block ([`MemoryService::render_context`]) is deterministic.
//!
//! # Layout
//! - `service`: [`MemoryService`] — routing by scope, checked puts, get, link, forget, search.
//! - `bank`: [`MemoryBank`] — one store plus its index; the write transactions.
//! - `index`: the tantivy index, its sync protocol and rebuilds; `tokenize`: the analyzers.
//! - `context`: the injected block; `ops`: the `memory.*` ops; `jsonl`: export/import.
//! - `quote`: text fenced as data with its provenance (the block, delivered results).
//! - `worker`: what a worker may do through its endpoint (project, unpinned, no delete).
//! - `limits`: every field's cap, checked and redacted on every write path.
//! - `upkeep`: the age-out of automatic records and the change log's compaction.
//! - `redact`, `cursor`, `settings`; `neo4j` (feature `neo4j`): the change-log replay.

mod bank;
mod block_cache;
mod context;
mod cursor;
mod error;
mod index;
mod jsonl;
mod limits;
#[cfg(feature = "neo4j")]
pub mod neo4j;
mod ops;
pub mod quote;
pub mod redact;
mod service;
mod settings;
pub mod tokenize;
mod upkeep;
mod worker;

pub use bank::{ForgetResult, MemoryBank, index_dir_of};
pub use cursor::fnv1a;
pub use error::MemoryError;
pub use jsonl::{ExportReport, ImportReport};
pub use limits::MAX_BODY_CHARS;
pub use ops::{MemoryDone, MemoryOpResult, check_op};
pub use redact::redact;
pub use service::{MemoryGetResult, MemoryService, global_store_path, open_global_store};
pub use settings::{MemorySettings, PROJECT_SUMMARY_KEY};
pub use upkeep::{
    AUTOMATIC_PRODUCER, AUTOMATIC_TAG, AgeOutReport, AutoRecordPolicy, CompactReport,
};
pub use worker::{WORKER_PRODUCER, check_worker_op};
