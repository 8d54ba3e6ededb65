//! SQLite persistence for Open Orchestra: hubs, jobs, workflow runs and the hub's output log.
//!
//! This is the only crate that knows SQL. Everything above it talks to a
//! [`Store`], which is cheap to share as `Arc<Store>` and safe to open from
//! two hub processes at once (two OpenCode windows on one project): SQLite
//! runs in WAL mode with a busy timeout, and every read-modify-write happens
//! in a `BEGIN IMMEDIATE` transaction.
//!
//! A statement is compiled once and kept (`prepare_cached`). A parameter whose value the
//! planner would read (a `LIMIT`, or a column a partial index or a sort depends on) is written
//! `+?n`: otherwise SQLite compiles the statement again on every call (`statement_reuse`'s
//! tests say which).
//!
//! # Layout
//! - `store`: opening, connection settings, the `Store` handle.
//! - `schema`: numbered migrations tracked with `PRAGMA user_version`.
//! - `hubs`: hub registration, heartbeats, recovery of orphaned jobs.
//! - `jobs`: job records ([`JobFilter`]).
//! - `logs`: the output log ([`LogEntry`]).
//! - `runs`: workflow runs and their recovery after a hub died.
//! - `events`: the hub's event stream, kept for replay.
//! - `memory`: memory records, links, the change log ([`MemoryTx`], [`MemoryListFilter`]).
//! - `groups`: process groups of worker servers ([`ProcessGroupRecord`]), for orphan reaping.
//! - `spend`: what worker jobs spent since a time (the per-day budget).
//! - `liveness`: [`pid_is_alive`].
//! - `unreadable`: rows that do not decode are skipped and reported ([`Rows`]), never fatal.

mod deliveries;
mod error;
mod events;
mod groups;
mod hubs;
mod jobs;
mod late_results;
mod liveness;
mod logs;
mod memory;
mod memory_upkeep;
mod passthrough;
mod runs;
mod schema;
mod spend;
#[cfg(test)]
mod statement_reuse;
mod store;
mod unreadable;
mod worktrees;

use std::path::{Path, PathBuf};

pub use deliveries::DeliveryAttempt;
pub use error::StoreError;
pub use groups::ProcessGroupRecord;
pub use jobs::JobFilter;
pub use late_results::LateResult;
pub use liveness::{HUB_STALE_AFTER_MS, pid_is_alive};
pub use logs::LogEntry;
pub use memory::{
    MemoryImportCounts, MemoryListFilter, MemoryRow, MemoryRows, MemoryTx, memory_project_column,
};
pub use memory_upkeep::{AUTOMATIC_TAG, AgedOutQuery};
pub use passthrough::PassthroughState;
pub use runs::RUN_INTERRUPTED;
pub use store::Store;
pub use unreadable::{Rows, UnreadableRow};

/// Where a project's store lives unless `tasks.storePath` says otherwise: `orchestra.db` in
/// the project's state folder (`orchestra_state_dir::project_state_dir`, outside the project).
pub fn default_store_path(project_dir: &Path) -> PathBuf {
    orchestra_state_dir::project_state_dir(project_dir).join("orchestra.db")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_path_is_outside_the_project() {
        let path = super::default_store_path(std::path::Path::new("/p"));
        assert!(!path.starts_with("/p"), "{}", path.display());
        assert!(path.ends_with("orchestra.db"));
    }
}
