//! SQLite persistence for Open Orchestra: hubs, jobs and the hub's output log.
//!
//! This is the only crate that knows SQL. Everything above it talks to a
//! [`Store`], which is cheap to share as `Arc<Store>` and safe to open from
//! two hub processes at once (two OpenCode windows on one project): SQLite
//! runs in WAL mode with a busy timeout, and every read-modify-write happens
//! in a `BEGIN IMMEDIATE` transaction.
//!
//! # Layout
//! - `store`: opening, connection settings, the `Store` handle.
//! - `schema`: numbered migrations tracked with `PRAGMA user_version`.
//! - `hubs`: hub registration, heartbeats, recovery of orphaned jobs.
//! - `jobs`: job records ([`JobFilter`]).
//! - `logs`: the output log ([`LogEntry`]).
//! - `liveness`: [`pid_is_alive`].

mod error;
mod hubs;
mod jobs;
mod liveness;
mod logs;
mod schema;
mod store;

use std::path::{Path, PathBuf};

pub use error::StoreError;
pub use jobs::JobFilter;
pub use liveness::pid_is_alive;
pub use logs::LogEntry;
pub use store::Store;

/// Where a project's store lives unless `tasks.storePath` says otherwise:
/// `<project>/.opencode/orchestra/orchestra.db`.
pub fn default_store_path(project_dir: &Path) -> PathBuf {
    project_dir
        .join(".opencode")
        .join("orchestra")
        .join("orchestra.db")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_path_is_under_dot_opencode() {
        assert_eq!(
            default_store_path(Path::new("/p")),
            PathBuf::from("/p/.opencode/orchestra/orchestra.db")
        );
    }
}
