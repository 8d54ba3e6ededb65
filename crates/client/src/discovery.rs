//! Where a project's hub announces itself: three files in the project's state folder
//! (`$XDG_STATE_HOME/orchestra/projects/<name>-<hash>/`).
//!
//! - `hub.lock` — held (flock) by the one hub serving the project for its whole life. The
//!   kernel drops the lock when that process dies, however it dies, so a SIGKILLed hub never
//!   blocks the next one.
//! - `hub.json` — the hub's address, token and pid ([`HubInfo`]), written only by the lock
//!   holder, readable only by the user (mode 0600), replaced atomically.
//! - `hub.log` — the output of a hub started in the background.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::ClientError;

/// Bumped when [`HubInfo`] changes incompatibly; a client ignores files of another version.
pub const HUB_INFO_VERSION: u32 = 1;

/// The files of one project's hub.
#[derive(Debug, Clone)]
pub struct HubFiles {
    pub dir: PathBuf,
    pub info: PathBuf,
    pub lock: PathBuf,
    pub log: PathBuf,
}

/// What `hub.json` says about the running hub.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HubInfo {
    pub version: u32,
    pub hub_id: String,
    pub pid: u32,
    /// `http://127.0.0.1:<port>`
    pub url: String,
    /// Every request needs it (`Authorization: Bearer <token>`).
    pub token: String,
    pub project_dir: String,
    pub started_at: i64,
    /// The hub runs its workers on the built-in fake model.
    pub fake: bool,
    /// The `orchestra` version serving.
    pub orchestra_version: String,
    /// A hash of each provider-relevant environment variable the hub started with, so a client
    /// with a different environment can say which variables differ (names only).
    #[serde(default)]
    pub env: BTreeMap<String, u64>,
    /// Every `orchestrator.json` the hub read or would read if it existed.
    #[serde(default)]
    pub config_files: Vec<String>,
    /// [`config_stamp`] of `config_files` when the hub loaded its configuration.
    #[serde(default)]
    pub config_stamp: u64,
}

/// The lock that makes a process the project's one hub; released when dropped or when the
/// process dies.
pub struct HubLock {
    _lock: Flock<File>,
}

impl HubFiles {
    pub fn for_project(project_dir: &Path) -> HubFiles {
        HubFiles::in_dir(orchestra_state_dir::project_state_dir(project_dir))
    }

    pub fn in_dir(dir: PathBuf) -> HubFiles {
        HubFiles {
            info: dir.join("hub.json"),
            lock: dir.join("hub.lock"),
            log: dir.join("hub.log"),
            dir,
        }
    }

    /// Takes the project's hub lock, or `None` when another live process holds it.
    pub fn try_lock(&self) -> Result<Option<HubLock>, ClientError> {
        self.ensure_dir()?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&self.lock)
            .map_err(|source| ClientError::Files {
                path: self.lock.clone(),
                source,
            })?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(Some(HubLock { _lock: lock })),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
            Err((_, errno)) => Err(ClientError::Files {
                path: self.lock.clone(),
                source: std::io::Error::from(errno),
            }),
        }
    }

    /// True while some live process holds the lock (a hub is serving, or starting). Asked
    /// without taking the lock (see `lock_probe.rs`), so a hub starting at this instant never
    /// finds it taken by a client that only looked; only where `/proc/locks` cannot say is the
    /// lock tried (and a starting hub retries for a moment: `serve`).
    pub fn is_locked(&self) -> Result<bool, ClientError> {
        match crate::lock_probe::flock_held(&self.lock) {
            Some(held) => Ok(held),
            None => Ok(self.try_lock()?.is_none()),
        }
    }

    /// The hub's announcement, if there is a readable one of this version, owned by this
    /// user and readable by nobody else (as a hub writes it): a `hub.json` someone else put
    /// there could send our token and requests anywhere.
    pub fn read_info(&self) -> Option<HubInfo> {
        use std::os::unix::fs::MetadataExt;
        let file = File::open(&self.info).ok()?;
        let meta = file.metadata().ok()?;
        if meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
            tracing::warn!(
                path = %self.info.display(),
                uid = meta.uid(),
                mode = format!("{:o}", meta.mode() & 0o777),
                "ignoring a hub.json that is not this user's own with mode 0600"
            );
            return None;
        }
        let text = std::io::read_to_string(file).ok()?;
        let info: HubInfo = serde_json::from_str(&text).ok()?;
        (info.version == HUB_INFO_VERSION).then_some(info)
    }

    /// Writes `hub.json` (mode 0600) through a temporary file, so a reader never sees half of
    /// it. Only the lock holder calls this.
    pub fn write_info(&self, info: &HubInfo, _lock: &HubLock) -> Result<(), ClientError> {
        self.ensure_dir()?;
        let temp = self
            .dir
            .join(format!("hub.json.{}.tmp", std::process::id()));
        let io = |source| ClientError::Files {
            path: temp.clone(),
            source,
        };
        let _ = std::fs::remove_file(&temp);
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(io)?;
        let text = serde_json::to_string_pretty(info).unwrap_or_default();
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&temp, &self.info).map_err(|source| ClientError::Files {
            path: self.info.clone(),
            source,
        })
    }

    /// Removes `hub.json` on the way out (the lock holder only).
    pub fn remove_info(&self, _lock: &HubLock) {
        if let Err(err) = std::fs::remove_file(&self.info)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.info.display(), error = %err, "could not remove hub.json");
        }
    }

    /// The state folder, created readable by the user only.
    fn ensure_dir(&self) -> Result<(), ClientError> {
        // An existing folder made before this version may be wider; this narrows it.
        orchestra_state_dir::private::create_private_dir(&self.dir).map_err(|source| {
            ClientError::Files {
                path: self.dir.clone(),
                source,
            }
        })
    }
}

/// Names of the environment variables that decide which providers and config OpenCode sees.
fn provider_relevant(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "OPENCODE_CONFIG",
        "OPENCODE_CONFIG_CONTENT",
        "OPENCODE_CONFIG_DIR",
        "OPENCODE_PERMISSION",
    ];
    const SUFFIXES: &[&str] = &["_API_KEY", "_API_BASE", "_BASE_URL", "_API_TOKEN"];
    const PREFIXES: &[&str] = &[
        "AWS_",
        "AZURE_",
        "GOOGLE_",
        "VERTEX",
        "ANTHROPIC_",
        "OPENAI_",
    ];
    EXACT.contains(&name)
        || SUFFIXES.iter().any(|s| name.ends_with(s))
        || PREFIXES.iter().any(|p| name.starts_with(p))
}

/// This process's provider-relevant environment, each value hashed (values are secrets).
pub fn env_fingerprint() -> BTreeMap<String, u64> {
    std::env::vars_os()
        .filter_map(|(name, value)| {
            let name = name.into_string().ok()?;
            provider_relevant(&name).then(|| (name, fnv1a(value.as_encoded_bytes())))
        })
        .collect()
}

/// The names whose values differ between two fingerprints (set in one, unset in the other,
/// or different).
pub fn env_differences(hub: &BTreeMap<String, u64>, ours: &BTreeMap<String, u64>) -> Vec<String> {
    let mut names: Vec<String> = hub
        .keys()
        .chain(ours.keys())
        .filter(|name| hub.get(*name) != ours.get(*name))
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

/// A hash of these files' paths and contents (an absent file counts as absent): it changes
/// when one of them is created, edited or removed.
pub fn config_stamp(files: &[String]) -> u64 {
    let mut bytes = Vec::new();
    for file in files {
        bytes.extend_from_slice(file.as_bytes());
        bytes.push(0);
        match std::fs::read(file) {
            Ok(content) => {
                bytes.push(1);
                bytes.extend_from_slice(&fnv1a(&content).to_le_bytes());
            }
            Err(_) => bytes.push(2),
        }
    }
    fnv1a(&bytes)
}

/// FNV-1a: stable across processes and Rust versions, unlike `DefaultHasher`.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in bytes {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn info() -> HubInfo {
        HubInfo {
            version: HUB_INFO_VERSION,
            hub_id: "h".into(),
            pid: 1,
            url: "http://127.0.0.1:1".into(),
            token: "t".into(),
            project_dir: "/p".into(),
            started_at: 0,
            fake: false,
            orchestra_version: "0".into(),
            env: BTreeMap::new(),
            config_files: Vec::new(),
            config_stamp: 0,
        }
    }

    #[test]
    fn one_lock_holder_at_a_time_and_the_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let files = HubFiles::in_dir(dir.path().join("state"));
        let lock = files.try_lock().unwrap().unwrap();
        assert!(files.try_lock().unwrap().is_none());
        assert!(files.is_locked().unwrap());
        files.write_info(&info(), &lock).unwrap();
        assert_eq!(files.read_info().unwrap(), info());
        let mode = std::fs::metadata(&files.info).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(&files.dir).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        files.remove_info(&lock);
        drop(lock);
        assert!(!files.is_locked().unwrap());
        assert!(files.read_info().is_none());
    }

    #[test]
    fn a_hub_json_others_can_read_or_write_is_not_trusted() {
        let dir = tempfile::tempdir().unwrap();
        let files = HubFiles::in_dir(dir.path().join("state"));
        let lock = files.try_lock().unwrap().unwrap();
        files.write_info(&info(), &lock).unwrap();
        assert!(files.read_info().is_some());
        std::fs::set_permissions(&files.info, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(files.read_info().is_none(), "a 0644 hub.json was trusted");
        std::fs::set_permissions(&files.info, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(files.read_info().is_some());
    }

    #[test]
    fn differences_name_variables_not_values() {
        let hub = BTreeMap::from([("OPENAI_API_KEY".to_owned(), 1), ("HOME".to_owned(), 2)]);
        let ours = BTreeMap::from([("HOME".to_owned(), 2), ("GROQ_API_KEY".to_owned(), 3)]);
        assert_eq!(
            env_differences(&hub, &ours),
            vec!["GROQ_API_KEY".to_owned(), "OPENAI_API_KEY".to_owned()]
        );
        assert!(provider_relevant("MYPROV_API_KEY"));
        assert!(!provider_relevant("PATH"));
    }

    /// A hub starting while clients keep looking always gets its lock.
    #[test]
    fn looking_never_turns_a_starting_hub_away() {
        let dir = tempfile::tempdir().unwrap();
        let files = HubFiles::in_dir(dir.path().to_path_buf());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let lookers: Vec<_> = (0..2)
            .map(|_| {
                let files = files.clone();
                let stop = stop.clone();
                std::thread::spawn(move || {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let _ = files.is_locked().unwrap();
                    }
                })
            })
            .collect();
        let mut turned_away = 0;
        for _ in 0..2000 {
            match files.try_lock().unwrap() {
                Some(lock) => drop(lock),
                None => turned_away += 1,
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for looker in lookers {
            looker.join().unwrap();
        }
        assert_eq!(turned_away, 0, "of 2000 starts");
    }
}
