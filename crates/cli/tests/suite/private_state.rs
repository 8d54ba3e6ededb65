//! Issue 19, part 3: what Orchestra keeps in `$XDG_STATE_HOME/orchestra` is the user's alone,
//! whatever the umask and whichever version created it first. With umask 022 (the usual one),
//! `orchestra install` and one task on a real OpenCode worker, then every entry of the state
//! folder — stores and their WAL/SHM files, the memory indexes and their locks, hub files, logs,
//! the install record, the plugin file — is checked: no group or other permission. A state
//! folder an older version left wide (folders 0755, `global/memory.db` 0644) is narrowed. The
//! user's own files keep the user's umask: the `opencode.json` install writes is 0644.
#![allow(clippy::unwrap_used)]

use super::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use orchestra_testkit::opencode::{
    FOREIGN_CONFIG_VARS, IsolatedHome, TestProject, require_opencode,
};

/// `orchestra ARGS --project P` under `umask 022`, as a person's shell runs it.
fn orchestra_umask_022(home: &IsolatedHome, project: &TestProject, args: &[&str]) -> Output {
    let mut command = std::process::Command::new("sh");
    for var in FOREIGN_CONFIG_VARS {
        command.env_remove(var);
    }
    command
        .arg("-c")
        .arg(r#"umask 022 && exec "$@""#)
        .arg("sh")
        .arg(env!("CARGO_BIN_EXE_orchestra"))
        .args(args)
        .arg("--project")
        .arg(&project.dir)
        .envs(home.env())
        .env("ORCHESTRA_OPENCODE_BIN", require_opencode())
        .output()
        .unwrap()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Every entry under `root` (itself included) with its mode, symlinks left out.
fn walk(root: &Path) -> Vec<(PathBuf, u32)> {
    let mut found = vec![(root.to_owned(), mode(root))];
    let mut folders = vec![root.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                continue;
            }
            if meta.is_dir() {
                folders.push(path.clone());
            }
            found.push((path, meta.permissions().mode() & 0o7777));
        }
    }
    found
}

struct StopHub<'a>(&'a IsolatedHome, &'a TestProject);

impl Drop for StopHub<'_> {
    fn drop(&mut self) {
        common::stop_hub(self.0, &self.1.dir);
    }
}

#[test]
fn state_is_private_under_umask_022_and_a_wide_older_state_is_narrowed() {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let root = home.home().join(".local/state/orchestra");
    // What an older version left: wide folders and a world-readable global store.
    let global = root.join("global");
    std::fs::create_dir_all(&global).unwrap();
    for folder in [&root, &global] {
        std::fs::set_permissions(folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let old_store = global.join("memory.db");
    std::fs::write(&old_store, b"").unwrap();
    std::fs::set_permissions(&old_store, std::fs::Permissions::from_mode(0o644)).unwrap();

    let _hub = StopHub(&home, &project);
    let out = orchestra_umask_022(&home, &project, &["install"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = orchestra_umask_022(
        &home,
        &project,
        &["run", "--fake", "--worker", "coder", "remember", "this"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // While the hub runs its stores have their WAL and SHM files (SQLite makes them itself, and
    // removes them when the last connection closes cleanly): they are private too.
    let running = walk(&root);
    let side_files: Vec<String> = running
        .iter()
        .filter(|(path, _)| {
            let name = path.display().to_string();
            name.ends_with("-wal") || name.ends_with("-shm")
        })
        .map(|(path, mode)| format!("{:o} {}", mode, path.display()))
        .collect();
    assert!(
        !side_files.is_empty(),
        "no WAL or SHM file while the hub runs"
    );
    assert!(
        side_files.iter().all(|line| line.starts_with("600 ")),
        "SQLite's side files are not 0600: {side_files:#?}"
    );
    // Stopped, so everything the hub writes on its way out is there too.
    common::stop_hub(&home, &project.dir);

    let entries = walk(&root);
    let names: Vec<String> = entries
        .iter()
        .map(|(path, _)| path.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    // The walk saw what matters: both stores, both indexes, hub files, the
    // plugin file and the install record.
    for expected in [
        "global/memory.db",
        "global/memory-index",
        "orchestra.db",
        "memory-index",
        "hub.log",
        "hub.lock",
        "orchestra-opencode-plugin-v1.js",
    ] {
        assert!(
            names.iter().any(|name| name.ends_with(expected)),
            "no {expected} in {names:#?}"
        );
    }
    let wide: Vec<String> = entries
        .iter()
        .filter(|(_, mode)| mode & 0o077 != 0)
        .map(|(path, mode)| format!("{:o} {}", mode, path.display()))
        .collect();
    assert!(
        wide.is_empty(),
        "{} of {} entries are open to group or others:\n{}",
        wide.len(),
        entries.len(),
        wide.join("\n")
    );
    assert_eq!(mode(&root), 0o700);
    assert_eq!(mode(&old_store), 0o600);

    // The project's own file keeps the user's umask, not Orchestra's private one.
    assert_eq!(mode(&project.dir.join("opencode.json")), 0o644);
}
