//! The state-folder layout: where Orchestra keeps a project's state (store, install record,
//! hub files) and the user-level state shared by every project.
//!
//! std and nix only on purpose: the hub client and the desktop window need these folder names
//! and modes, and should not link SQLite to compute them. `private` keeps the folder private.
//!
//! ```text
//! $XDG_STATE_HOME/orchestra/
//!   projects/<name>-<hash>/   project_state_dir (orchestra.db, hub.json, hub.lock, hub.log, …)
//!   global/                   global_state_dir (memory.db)
//! ```

pub mod private;

use std::path::{Path, PathBuf};

/// The folder where Orchestra keeps a project's state (store, install record, hub files).
/// Outside the project on purpose: a new `.opencode/` folder makes OpenCode treat it as a
/// config directory and install packages into it on the next start.
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

/// Neither `$XDG_STATE_HOME` nor `$HOME` says where the state folder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoStateHome;

impl std::fmt::Display for NoStateHome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "neither HOME nor XDG_STATE_HOME is set, so there is no private place for Orchestra's \
             state (its store, hub token and lock); set HOME (or XDG_STATE_HOME) and try again",
        )
    }
}

impl std::error::Error for NoStateHome {}

/// Where the state folder is, or why there is none. The binaries call this first and refuse
/// to run without one: a shared temp folder would put the store, the hub's token and its lock
/// where other users can reach them.
pub fn check_state_home() -> Result<PathBuf, NoStateHome> {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(home) => Ok(PathBuf::from(home).join(".local").join("state")),
        None => Err(NoStateHome),
    }
}

/// `$XDG_STATE_HOME`, else `~/.local/state`. Without either (which the binaries refuse up
/// front, see [`check_state_home`]) a temp folder, so a library caller still gets a path.
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
    use std::path::Path;

    #[test]
    fn the_project_key_is_per_project_and_stable() {
        let a = super::project_key(Path::new("/no/such/dir/alpha"));
        assert_eq!(a, super::project_key(Path::new("/no/such/dir/alpha")));
        assert!(a.starts_with("alpha-"));
        assert_ne!(a, super::project_key(Path::new("/other/alpha")));
    }

    #[test]
    fn the_project_state_dir_is_outside_the_project() {
        let dir = super::project_state_dir_in(Path::new("/state"), Path::new("/p"));
        assert!(
            dir.starts_with("/state/orchestra/projects"),
            "{}",
            dir.display()
        );
        assert!(!dir.starts_with("/p"), "{}", dir.display());
    }
}
