//! The directories other than the project that jobs on one server work in (task worktrees).
//!
//! OpenCode boots an instance for every directory a request names (file watcher, LSP and MCP
//! clients, caches) and keeps it until told otherwise, so a hub that runs thousands of worktree
//! tasks would grow its worker servers without bound. Here each such directory has one event
//! subscription shared by the jobs working in it, and when the last of them lets go (its session
//! retired) the hub disposes the directory's instance.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::opencode::{OpenCodeClient, OpenCodeError};

/// How long a dispose may hold up other jobs' worktree starts on the same server.
const DISPOSE_WAIT: Duration = Duration::from_secs(5);

/// The open directories of one server and how many jobs use each.
#[derive(Default)]
pub(super) struct Directories {
    /// A tokio mutex, held across the subscription and the dispose: a job arriving for a
    /// directory whose instance is being disposed waits, then boots a fresh one, and never has
    /// its instance disposed under it.
    open: tokio::sync::Mutex<HashMap<PathBuf, OpenDirectory>>,
}

struct OpenDirectory {
    users: usize,
    watch: DirectoryWatch,
}

/// A second event subscription on the same server for one directory (a task's worktree):
/// OpenCode scopes `GET /event` to a directory, so a session created there is heard only here.
pub(super) struct DirectoryWatch {
    pub(super) stop: CancellationToken,
    pub(super) pump: Option<JoinHandle<()>>,
}

impl DirectoryWatch {
    /// Ends the subscription and waits (bounded) for its pump to be gone, so nothing of it can
    /// ask OpenCode for the directory again once its instance is disposed.
    async fn close(mut self) {
        self.stop.cancel();
        if let Some(pump) = self.pump.take() {
            let _ = tokio::time::timeout(Duration::from_secs(1), pump).await;
        }
    }
}

impl Drop for DirectoryWatch {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One job's use of a directory on a server. Dropping the last use of a directory closes its
/// subscription and disposes its OpenCode instance (in the background).
pub struct DirectoryUse {
    dir: PathBuf,
    client: OpenCodeClient,
    /// Gone with the server, and its instances with it.
    directories: Weak<Directories>,
}

impl DirectoryUse {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for DirectoryUse {
    fn drop(&mut self) {
        let Some(directories) = self.directories.upgrade() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let dir = std::mem::take(&mut self.dir);
        let client = self.client.clone();
        runtime.spawn(async move {
            directories.release(&dir, &client).await;
        });
    }
}

impl Directories {
    /// Starts using `dir`: the first use subscribes to the directory's events (`subscribe`,
    /// returning once the subscription is live); the use is kept for as long as the job's
    /// session is there.
    pub(super) async fn enter<Subscribed>(
        self: &Arc<Self>,
        dir: &Path,
        client: OpenCodeClient,
        subscribe: impl FnOnce(OpenCodeClient) -> Subscribed,
    ) -> Result<DirectoryUse, OpenCodeError>
    where
        Subscribed: std::future::Future<Output = Result<DirectoryWatch, OpenCodeError>>,
    {
        let mut open = self.open.lock().await;
        match open.get_mut(dir) {
            Some(entry) => entry.users += 1,
            None => {
                let watch = subscribe(client.clone()).await?;
                open.insert(dir.to_path_buf(), OpenDirectory { users: 1, watch });
            }
        }
        Ok(DirectoryUse {
            dir: dir.to_path_buf(),
            client,
            directories: Arc::downgrade(self),
        })
    }

    async fn release(&self, dir: &Path, client: &OpenCodeClient) {
        let mut open = self.open.lock().await;
        let Some(entry) = open.get_mut(dir) else {
            return;
        };
        entry.users = entry.users.saturating_sub(1);
        if entry.users > 0 {
            return;
        }
        if let Some(entry) = open.remove(dir) {
            entry.watch.close().await;
        }
        // Bounded: every worktree start on this server waits for the map meanwhile.
        match tokio::time::timeout(DISPOSE_WAIT, client.dispose_instance()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::debug!(dir = %dir.display(), error = %err, "could not dispose a worktree's OpenCode instance");
            }
            Err(_) => {
                tracing::debug!(dir = %dir.display(), "OpenCode did not answer the dispose of a worktree's instance in time");
            }
        }
    }
}
