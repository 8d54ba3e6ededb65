//! A task's hold on a worker ([`Lease`]): which server and agent, the model in force, and
//! the directory the job works in (its worktree, addressed through the same server).

use std::sync::Arc;

use orchestra_protocol::{ModelPolicy, WorkerStatus, now_ms};

use super::ServerConn;
use super::directories::DirectoryUse;
use super::{ModelOverride, WorkerPool};
use crate::config::Profile;
use crate::models::{Catalog, Resolution};
use crate::opencode::{OpenCodeClient, OpenCodeError};

/// A task's hold on a worker: the server to use and how to address the
/// profile there. Dropping it releases the worker.
pub struct Lease {
    pub conn: Arc<ServerConn>,
    pub profile: Profile,
    /// The agent to prompt; `None` on an attached server, where the profile's
    /// prompt travels as the prompt's `system` text instead.
    pub agent: Option<String>,
    /// The server's model catalog (`None` if reading it failed at start; read it again then).
    pub catalog: Option<Arc<Catalog>>,
    /// The model reference in force: an override from `worker.model.set` or the profile's.
    pub model_ref: String,
    /// What the job calls the server with: the server's client, or one scoped to the job's
    /// worktree (`in_directory`).
    pub client: OpenCodeClient,
    /// The job's directory when it is not the project (a worktree), and its event watch.
    pub(super) workdir: Option<DirectoryUse>,
    pub(super) pool: WorkerPool,
}

impl Lease {
    /// Notes activity; not an event (it changes on every streamed token).
    pub fn touch(&self) {
        self.pool
            .lock_workers()
            .entry(self.profile.id.clone())
            .or_default()
            .last_activity_at = Some(now_ms());
    }

    /// A sticky task model becomes the worker's model for later tasks.
    pub fn keep_model(&self, reference: &str, resolution: &Resolution) {
        self.pool.lock_overrides().insert(
            self.profile.id.clone(),
            ModelOverride {
                reference: reference.to_owned(),
                policy: ModelPolicy::Sticky,
            },
        );
        self.pool
            .record_model(&self.profile.id, &Ok(resolution.clone()));
    }

    /// The server's catalog as tasks must see it (pinned to `--fake`'s provider, if any).
    pub async fn read_catalog(&self) -> Result<Catalog, OpenCodeError> {
        self.pool.read_catalog(&self.conn.client).await
    }

    pub fn system_prompt(&self) -> Option<String> {
        match self.agent {
            Some(_) => None,
            None => Some(self.profile.prompt.clone()),
        }
    }

    /// The project the worker's server runs in.
    pub fn project_dir(&self) -> &std::path::Path {
        &self.pool.inner.launch.project_dir
    }

    /// Where the job works: its worktree, else the project.
    pub fn work_dir(&self) -> &std::path::Path {
        match &self.workdir {
            Some(used) => used.dir(),
            None => self.project_dir(),
        }
    }

    /// Moves the job to `dir` (its worktree): every later call, and the session it creates,
    /// are addressed there, and the directory's events are followed.
    pub async fn move_to(&mut self, dir: &std::path::Path) -> Result<(), OpenCodeError> {
        let (client, used) = self.conn.use_directory(dir).await?;
        self.client = client;
        self.workdir = Some(used);
        Ok(())
    }

    /// Hands over the job's hold on its worktree's OpenCode instance, to be let go once the
    /// job's session is retired (dropping it disposes the instance when no other job uses it).
    pub fn take_directory(&mut self) -> Option<DirectoryUse> {
        self.workdir.take()
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.update(&self.profile.id, |w| {
            w.active_jobs = w.active_jobs.saturating_sub(1);
            if w.active_jobs == 0 && w.status == WorkerStatus::Busy {
                w.status = WorkerStatus::Ready;
            }
        });
    }
}
