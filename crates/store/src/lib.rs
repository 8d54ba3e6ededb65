//! SQLite persistence for Open Orchestra: hubs, jobs, workflow runs and the hub's output log.
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
//! - `runs`: workflow runs and their recovery after a hub died.
//! - `events`: the hub's event stream, kept for replay.
//! - `memory`: memory records, links, the change log ([`MemoryTx`], [`MemoryListFilter`]).
//! - `groups`: process groups of worker servers ([`ProcessGroupRecord`]), for orphan reaping.
//! - `liveness`: [`pid_is_alive`].
//! - `unreadable`: rows that do not decode are skipped and reported ([`Rows`]), never fatal.
//! - `private`: folders 0700 and files 0600 in Orchestra's state folder, the process umask.

mod error;
mod events;
mod groups;
mod hubs;
mod jobs;
mod liveness;
mod logs;
mod memory;
pub mod private;
mod runs;
mod schema;
mod store;
mod unreadable;

use std::path::{Path, PathBuf};

pub use error::StoreError;
pub use groups::ProcessGroupRecord;
pub use jobs::JobFilter;
pub use liveness::{HUB_STALE_AFTER_MS, pid_is_alive};
pub use logs::LogEntry;
pub use memory::{
    MemoryImportCounts, MemoryListFilter, MemoryRow, MemoryRows, MemoryTx, memory_project_column,
};
pub use runs::RUN_INTERRUPTED;
pub use store::Store;
pub use unreadable::{Rows, UnreadableRow};

/// Where a project's store lives unless `tasks.storePath` says otherwise:
/// `$XDG_STATE_HOME/orchestra/projects/<name>-<hash>/orchestra.db`. Outside the
/// project on purpose: a new `.opencode/` folder makes OpenCode treat it as a
/// config directory and install packages into it on the next start.
pub fn default_store_path(project_dir: &Path) -> PathBuf {
    project_state_dir(project_dir).join("orchestra.db")
}

/// The folder where Orchestra keeps a project's state (store, install record, hub files).
pub fn project_state_dir(project_dir: &Path) -> PathBuf {
    project_state_dir_in(&state_home(), project_dir)
}

/// [`project_state_dir`] under a given `$XDG_STATE_HOME` (for a process that looks at another
/// environment's state, such as a test driving an isolated home).
pub fn project_state_dir_in(state_home: &Path, project_dir: &Path) -> PathBuf {
    state_home
        .join("orchestra")
        .join("projects")
        .join(project_key(project_dir))
}

/// The folder of the user-level state shared by every project: the store that holds
/// `global` memory records (`$XDG_STATE_HOME/orchestra/global/`).
pub fn global_state_dir() -> PathBuf {
    state_home().join("orchestra").join("global")
}

/// `$XDG_STATE_HOME`, else `~/.local/state`, else a temp folder.
fn state_home() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local").join("state"),
        None => std::env::temp_dir(),
    }
}

/// The id memory records carry for the project at `project_dir`: the name of its state folder
/// (`<name>-<hash of the canonical path>`), so it is stable and names one project.
pub fn project_id(project_dir: &Path) -> String {
    project_key(project_dir)
}

/// A readable, stable folder name for a project: its last path component
/// plus a hash of the whole path, so two hubs on one project meet in one
/// store and two projects with the same name do not.
fn project_key(project_dir: &Path) -> String {
    let canonical = project_dir
        .canonicalize()
        .unwrap_or_else(|_| project_dir.to_path_buf());
    let text = canonical.to_string_lossy();
    // FNV-1a: stable across Rust versions, unlike `DefaultHasher`.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let name: String = canonical
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    format!("{name}-{hash:016x}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_default_path_is_per_project_and_stable() {
        let a = super::project_key(std::path::Path::new("/no/such/dir/alpha"));
        assert_eq!(
            a,
            super::project_key(std::path::Path::new("/no/such/dir/alpha"))
        );
        assert!(a.starts_with("alpha-"));
        assert_ne!(a, super::project_key(std::path::Path::new("/other/alpha")));
    }

    #[test]
    fn the_default_path_is_outside_the_project() {
        let path = super::default_store_path(std::path::Path::new("/p"));
        assert!(!path.starts_with("/p"), "{}", path.display());
        assert!(path.ends_with("orchestra.db"));
    }
}
