//! Private state: what Orchestra keeps under `$XDG_STATE_HOME/orchestra` (stores, memory
//! indexes, logs, locks, `hub.json`, the plugin file) is for the user alone, whatever the umask
//! and whichever version created it first. Folders are 0700 and files 0600.
//!
//! Two layers hold this. Every Orchestra binary calls [`restrict_umask`] first thing, so files
//! that libraries create on their own (SQLite's WAL and SHM, tantivy's segments) are born 0600.
//! And the folders and files we create go through [`create_private_dir`] and [`narrow`], which
//! also narrow what an older version left wider. The user's own umask is kept for what Orchestra
//! starts on the user's behalf (OpenCode, a terminal, a browser) and for files it writes into the
//! project ([`user_umask`], [`keep_user_umask`]).

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Mode of every folder Orchestra creates in its state folder.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file Orchestra writes in its state folder.
pub const FILE_MODE: u32 = 0o600;
/// The process umask while an Orchestra binary runs.
const PRIVATE_UMASK: u32 = 0o077;
/// The usual umask, assumed when the user's could not be learnt.
const DEFAULT_UMASK: u32 = 0o022;
/// How an Orchestra process tells an Orchestra child the user's umask (octal), since the child
/// inherits the private one.
pub const USER_UMASK_ENV: &str = "ORCHESTRA_USER_UMASK";

static USER_UMASK: OnceLock<u32> = OnceLock::new();

/// Sets the process umask to 077 and remembers the user's (from [`USER_UMASK_ENV`] when an
/// Orchestra parent set it, else the umask the process started with). Call it first in `main`,
/// before any thread starts.
pub fn restrict_umask() -> u32 {
    let started_with = nix::sys::stat::umask(mode(PRIVATE_UMASK)).bits();
    let from_parent = std::env::var(USER_UMASK_ENV)
        .ok()
        .and_then(|text| u32::from_str_radix(text.trim(), 8).ok())
        .filter(|umask| *umask <= 0o777);
    let user = from_parent.unwrap_or(started_with);
    *USER_UMASK.get_or_init(|| user)
}

/// The user's umask, as [`restrict_umask`] found it (022 when it was not called).
pub fn user_umask() -> u32 {
    USER_UMASK.get().copied().unwrap_or(DEFAULT_UMASK)
}

/// Gives a child that is not Orchestra (a terminal, a browser, an opener) the user's umask back,
/// and tells an Orchestra child what it was.
#[allow(unsafe_code)]
pub fn keep_user_umask(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let user = user_umask();
    command.env(USER_UMASK_ENV, format!("{user:o}"));
    // SAFETY: the closure runs in the forked child between fork and exec and only calls
    // umask(2), which is async-signal-safe, touches no lock and cannot fail.
    unsafe {
        command.pre_exec(move || {
            nix::sys::stat::umask(mode(user));
            Ok(())
        });
    }
}

fn mode(bits: u32) -> nix::sys::stat::Mode {
    // `mode_t` is `u32` on Linux; the bits were checked to be at most 0o777.
    nix::sys::stat::Mode::from_bits_truncate(bits as nix::libc::mode_t)
}

/// Creates `dir` and its missing parents with mode 0700, then narrows `dir` and every folder
/// between it and Orchestra's state root (`$XDG_STATE_HOME/orchestra`) that a group or others
/// can reach. Folders outside the state root (a custom `tasks.storePath`) are created 0700 but
/// never changed: they may be the user's own.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)?;
    let root = state_root();
    if !dir.starts_with(&root) {
        return Ok(());
    }
    let mut folder = Some(dir);
    while let Some(current) = folder {
        narrow(current)?;
        if current == root {
            break;
        }
        folder = current.parent();
    }
    Ok(())
}

/// Takes group and other permissions off `path` (a file or folder we own), if it exists.
pub fn narrow(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    // A symlink's own mode means nothing; what it points at is not necessarily ours.
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let current = meta.permissions().mode() & 0o7777;
    if current & 0o077 == 0 {
        return Ok(());
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(current & 0o700))
}

/// Opens (creating 0600 if needed) a file we own and narrows it if it was wider: for SQLite
/// files, which SQLite would otherwise create with the umask, and whose WAL and SHM files take
/// the database file's mode.
pub fn create_private_file(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .append(true)
        .mode(FILE_MODE)
        .open(path)?;
    narrow(path)
}

/// Orchestra's state root: `$XDG_STATE_HOME/orchestra`.
pub fn state_root() -> PathBuf {
    crate::state_home().join("orchestra")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_wide_file_is_narrowed_and_a_private_one_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let wide = dir.path().join("wide");
        std::fs::write(&wide, "x").unwrap();
        std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o664)).unwrap();
        super::narrow(&wide).unwrap();
        assert_eq!(mode(&wide), 0o600);
        let private = dir.path().join("private");
        super::create_private_file(&private).unwrap();
        assert_eq!(mode(&private), 0o600);
        super::narrow(&dir.path().join("missing")).unwrap();
    }

    #[test]
    fn folders_outside_the_state_root_are_created_private_but_existing_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let nested = dir.path().join("a").join("b");
        super::create_private_dir(&nested).unwrap();
        assert_eq!(mode(&nested), 0o700);
        assert_eq!(mode(&dir.path().join("a")), 0o700);
        assert_eq!(mode(dir.path()), 0o755, "not ours to change");
    }
}
