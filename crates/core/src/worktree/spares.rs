//! Spare worktrees (`worktree.spares`): checkouts made ahead of time, off every task's path,
//! so a task's worktree is ready in the time of a rename and a branch switch. `git worktree
//! add` writes every file of the branch, which takes seconds on a big repository or a slow
//! disk; switching a spare to the task's base commit rewrites only the files that differ.
//!
//! A spare is a registered worktree at `<root>/spare-<uuid>` with a detached HEAD and no
//! branch; it never holds a task's work. Taking one (under the worktrees' lock) moves it to
//! `<root>/<taskId>` and checks out `orchestra/<taskId>` at the base there; when that fails
//! the spare is removed and the task's worktree is made from scratch. The first spare is made
//! after the project's first worktree task, and each one taken is replaced in the background.
//! A starting hub adopts the clean spares an earlier one left, up to `spares`, and removes the
//! rest (`reconcile`), so no checkout is ever left that nothing owns.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::git::Git;
use super::{WorktreeError, Worktrees};

/// How a spare's folder name starts (a task's folder is its uuid).
pub(super) const SPARE_PREFIX: &str = "spare-";

/// The spares of one project's worktrees, shared by every clone of [`Worktrees`].
#[derive(Debug, Default)]
pub(super) struct SparePool {
    state: std::sync::Mutex<PoolState>,
    /// Signalled when a background fill ends.
    settled: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct PoolState {
    ready: Vec<PathBuf>,
    /// A background fill is making spares now.
    filling: bool,
    /// Task worktrees being made now, and when the last one was done: a fill waits for a
    /// quiet moment (none being made, none for `QUIET`).
    creating: usize,
    last_create: Option<Instant>,
}

/// Marks a task worktree being made for as long as it lives (see `PoolState::creating`).
pub(super) struct Creating<'a>(&'a SparePool);

impl Drop for Creating<'_> {
    fn drop(&mut self) {
        self.0.with_state(|state| {
            state.creating = state.creating.saturating_sub(1);
            state.last_create = Some(Instant::now());
        });
    }
}

/// A fill starts once no task worktree was made for this long, so a burst of tasks (each a
/// full checkout once the spares are gone) does not share the disk with a spare being made.
const QUIET: Duration = Duration::from_millis(750);

impl SparePool {
    fn with_state<T>(&self, f: impl FnOnce(&mut PoolState) -> T) -> T {
        // A panic elsewhere cannot leave the list half-changed: every change is one push/pop.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut state)
    }
}

/// Whether `path` is a spare's folder directly under `root`.
pub(super) fn is_spare(root: &Path, path: &Path) -> bool {
    path.parent() == Some(root)
        && path
            .file_name()
            .is_some_and(|name| name.to_string_lossy().starts_with(SPARE_PREFIX))
}

impl Worktrees {
    /// Call before making a task's worktree; the fill waits while the guard lives.
    pub(super) fn creating(&self) -> Creating<'_> {
        self.spares.with_state(|state| state.creating += 1);
        Creating(&self.spares)
    }

    /// Spares ready to be taken now.
    pub fn spares_ready(&self) -> usize {
        self.spares.with_state(|state| state.ready.len())
    }

    /// Returns once no spare is being made (a fill that is under way has ended).
    pub async fn spares_settled(&self) {
        loop {
            let settled = self.spares.settled.notified();
            if !self.spares.with_state(|state| state.filling) {
                return;
            }
            settled.await;
        }
    }

    /// Makes the task's worktree at `path` on `branch` at `sha` from a ready spare. False
    /// when there is none, or when the one taken could not be used (it is removed then, and
    /// the caller makes the worktree from scratch). Called under `lock`.
    pub(super) async fn take_spare_locked(&self, path: &Path, branch: &str, sha: &str) -> bool {
        let Some(spare) = self.spares.with_state(|state| state.ready.pop()) else {
            return false;
        };
        let (spare_text, path_text) = (
            spare.to_string_lossy().into_owned(),
            path.to_string_lossy().into_owned(),
        );
        let moved = self
            .checkout()
            .run(&["worktree", "move", &spare_text, &path_text])
            .await;
        let switched = match moved {
            Ok(_) => {
                Git::new(path)
                    .run(&["checkout", "-q", "-b", branch, sha])
                    .await
            }
            Err(err) => Err(err),
        };
        let Err(err) = switched else {
            return true;
        };
        tracing::warn!(error = %err, spare = %spare.display(), "a spare worktree could not be used; making the task's worktree from scratch");
        // It may sit at either place, and the branch may exist, by where the failure came.
        for leftover in [spare.as_path(), path] {
            if let Err(cleanup) = self.remove_folder_locked(leftover).await {
                tracing::warn!(error = %cleanup, path = %leftover.display(), "removing an unusable spare worktree failed");
            }
        }
        if let Err(cleanup) = self.forget_locked(branch).await {
            tracing::warn!(error = %cleanup, branch, "removing an unusable spare worktree's branch failed");
        }
        false
    }

    /// Starts making spares up to `worktree.spares` in the background; a no-op when enough
    /// are ready or a fill is under way. The fill's git children are killed if the hub's
    /// runtime ends first; what they left half-made goes at the next start (`reconcile`).
    pub(super) fn refill(&self) {
        let wanted = self.settings.spares;
        let start = self.spares.with_state(|state| {
            let start = !state.filling && state.ready.len() < wanted;
            state.filling |= start;
            start
        });
        if !start {
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let wait = this.spares.with_state(|state| {
                    if state.creating > 0 {
                        return Some(QUIET);
                    }
                    let since = state.last_create.map(|at| at.elapsed())?;
                    (since < QUIET).then(|| QUIET - since)
                });
                match wait {
                    Some(wait) => tokio::time::sleep(wait).await,
                    None => break,
                }
            }
            while this.spares_ready() < wanted {
                match this.make_spare().await {
                    Ok(path) => this.spares.with_state(|state| state.ready.push(path)),
                    Err(err) => {
                        tracing::warn!(error = %err, "making a spare worktree failed; tasks make theirs from scratch");
                        break;
                    }
                }
            }
            this.spares.with_state(|state| state.filling = false);
            this.spares.settled.notify_waiters();
        });
    }

    /// One spare, detached at the checkout's current commit. Made without `lock`: it creates
    /// no branch and git marks a worktree being added so a concurrent `prune` keeps it, so
    /// tasks starting meanwhile do not wait for this checkout.
    async fn make_spare(&self) -> Result<PathBuf, WorktreeError> {
        let base = self.base().await?;
        std::fs::create_dir_all(&self.root).map_err(|source| WorktreeError::Io {
            path: self.root.clone(),
            source,
        })?;
        let path = self
            .root
            .join(format!("{SPARE_PREFIX}{}", uuid::Uuid::new_v4()));
        let path_text = path.to_string_lossy().into_owned();
        let made = self
            .checkout()
            .run(&["worktree", "add", "-q", "--detach", &path_text, &base.sha])
            .await;
        if let Err(err) = made {
            if path.exists() {
                let _ = std::fs::remove_dir_all(&path);
            }
            let _ = self.checkout().finish(&["worktree", "prune"]).await;
            return Err(err);
        }
        Ok(path)
    }

    /// At hub start (under `lock`): keeps a spare an earlier hub left when there is room and
    /// it is still what a spare must be — registered, detached, and clean (nothing modified,
    /// untracked or ignored in it). True when it was adopted; otherwise the caller removes it.
    pub(super) async fn adopt_spare_locked(&self, path: &Path, registered: bool) -> bool {
        let filling = self.spares.with_state(|state| state.filling);
        if !registered || filling || self.spares_ready() >= self.settings.spares || !path.exists() {
            return false;
        }
        let tree = Git::new(path);
        let detached = matches!(
            tree.finish(&["symbolic-ref", "-q", "HEAD"]).await,
            Ok(head) if head.code == Some(1)
        );
        let clean = matches!(
            tree.finish(&["status", "--porcelain", "--untracked-files=all", "--ignored"]).await,
            Ok(status) if status.code == Some(0) && status.stdout.trim().is_empty()
        );
        if detached && clean {
            self.spares
                .with_state(|state| state.ready.push(path.to_path_buf()));
        }
        detached && clean
    }
}
