//! Making a task's worktree: check the checkout can have one (a repository with a commit, on a
//! branch), take a spare (`spares.rs`) or `git worktree add -b orchestra/<taskId>` from that
//! branch's commit, copy in the configured git-ignored files, run the user's setup command.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use orchestra_protocol::{WorktreeInfo, WorktreeSetup};

use super::{WorktreeError, Worktrees};

/// How long `worktree.setup` may run before it is killed and the task fails.
const SETUP_TIMEOUT: Duration = Duration::from_secs(600);
/// How much of the setup command's output the record keeps.
const SETUP_OUTPUT_CHARS: usize = 2000;

/// The branch a worktree is made from, and where the project sits inside the repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// The branch name (`main`), without `refs/heads/`.
    pub branch: String,
    pub sha: String,
    /// The project directory relative to the repository's top (empty at the top).
    pub prefix: String,
}

impl Worktrees {
    /// Checks that a worktree can be made and from what; fails with the fix when not.
    pub async fn base(&self) -> Result<Base, WorktreeError> {
        let git = self.checkout();
        let dir = self.project_dir.clone();
        let bare = git.finish(&["rev-parse", "--is-bare-repository"]).await?;
        if bare.code != Some(0) {
            return Err(WorktreeError::NotARepo { dir });
        }
        if bare.stdout.trim() == "true" {
            return Err(WorktreeError::Bare { dir });
        }
        let head = git
            .finish(&["rev-parse", "-q", "--verify", "HEAD^{commit}"])
            .await?;
        if head.code != Some(0) {
            return Err(WorktreeError::NoCommit { dir });
        }
        let branch = git
            .finish(&["symbolic-ref", "-q", "--short", "HEAD"])
            .await?;
        if branch.code != Some(0) {
            return Err(WorktreeError::DetachedHead { dir });
        }
        let prefix = git.run(&["rev-parse", "--show-prefix"]).await?;
        Ok(Base {
            branch: branch.stdout.trim().to_owned(),
            sha: head.stdout.trim().to_owned(),
            prefix: prefix.trim().trim_end_matches('/').to_owned(),
        })
    }

    /// Makes the task's worktree and branch from `base`, copies the configured ignored files
    /// in and runs the setup command. On any failure nothing is left behind.
    pub async fn create(&self, task_id: &str, base: &Base) -> Result<WorktreeInfo, WorktreeError> {
        std::fs::create_dir_all(&self.root).map_err(|source| WorktreeError::Io {
            path: self.root.clone(),
            source,
        })?;
        let path = self.root.join(task_id);
        let path_text = path.to_string_lossy().into_owned();
        let branch = Self::branch_of(task_id);
        {
            // Counted from before the wait for the lock (tasks queued behind it are a burst
            // too) until the checkout is made, not through the setup command.
            let _creating = self.creating();
            let _one = self.lock.lock().await;
            if !self.take_spare_locked(&path, &branch, &base.sha).await {
                self.checkout()
                    .run(&[
                        "worktree", "add", "-q", "-b", &branch, &path_text, &base.sha,
                    ])
                    .await?;
            }
        }
        // The next worktree task should find a checkout ready.
        self.refill();
        let mut info = WorktreeInfo {
            base_ref: base.branch.clone(),
            base_sha: base.sha.clone(),
            ..WorktreeInfo::open(task_id, path_text, branch)
        };
        if let Err(err) = self.fill(&mut info, &base.prefix).await {
            if let Err(cleanup) = self.remove(&info).await {
                tracing::warn!(error = %cleanup, task = task_id, "removing a half-made worktree failed");
            }
            return Err(err);
        }
        Ok(info)
    }

    async fn fill(&self, info: &mut WorktreeInfo, prefix: &str) -> Result<(), WorktreeError> {
        let path = PathBuf::from(&info.path);
        info.copied = self.copy_in(&path, prefix).await?;
        if let Some(command) = &self.settings.setup {
            let setup = run_setup(command, &path).await?;
            let ok = setup.exit_code == Some(0);
            let why = match setup.exit_code {
                Some(code) => format!("exit code {code}: {}", setup.output.trim()),
                None => format!("killed or timed out: {}", setup.output.trim()),
            };
            info.setup = Some(setup);
            if !ok {
                return Err(WorktreeError::Setup {
                    command: command.join(" "),
                    why,
                });
            }
        }
        Ok(())
    }

    /// Copies into the worktree what the checkout has and the branch lacks: the git-ignored
    /// files matching `worktree.copy` (git pathspec globs, relative to the repository's top),
    /// and the project's uncommitted OpenCode config (`opencode.json(c)`, `.opencode/`), so the
    /// worker's OpenCode sees the providers and agents the checkout's does. Returns their paths
    /// (relative to the top); `finish` never commits them.
    async fn copy_in(&self, worktree: &Path, prefix: &str) -> Result<Vec<String>, WorktreeError> {
        let git = self.checkout();
        let top = PathBuf::from(git.run(&["rev-parse", "--show-toplevel"]).await?.trim());
        let top_text = top.to_string_lossy().into_owned();
        let in_project = |name: &str| {
            if prefix.is_empty() {
                name.to_owned()
            } else {
                format!("{prefix}/{name}")
            }
        };
        let mut listed = String::new();
        let mut config = vec![
            "-C",
            &top_text,
            "ls-files",
            "-z",
            "--others",
            "--exclude-standard",
            "--",
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>();
        config.extend(["opencode.json", "opencode.jsonc", ".opencode"].map(in_project));
        listed.push_str(&git.run(&as_refs(&config)).await?);
        if !self.settings.copy.is_empty() {
            let mut ignored = vec![
                "-C",
                &top_text,
                "ls-files",
                "-z",
                "--others",
                "--ignored",
                "--exclude-standard",
                "--",
            ]
            .into_iter()
            .map(str::to_owned)
            .collect::<Vec<_>>();
            ignored.extend(
                self.settings
                    .copy
                    .iter()
                    .map(|glob| format!(":(glob){glob}")),
            );
            listed.push_str(&git.run(&as_refs(&ignored)).await?);
        }
        let mut copied = Vec::new();
        for relative in listed.split('\0').filter(|p| !p.is_empty()) {
            let from = top.join(relative);
            let to = worktree.join(relative);
            // Only regular files: a symlink could point anywhere.
            let is_file = std::fs::symlink_metadata(&from).is_ok_and(|m| m.file_type().is_file());
            if !is_file || copied.iter().any(|c: &String| c == relative) {
                continue;
            }
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|source| WorktreeError::Io {
                    path: parent.to_path_buf(),
                    source,
                })?;
            }
            std::fs::copy(&from, &to).map_err(|source| WorktreeError::Io {
                path: to.clone(),
                source,
            })?;
            copied.push(relative.to_owned());
        }
        Ok(copied)
    }
}

fn as_refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Runs the setup program (no shell) in the worktree, bounded; its result is recorded.
async fn run_setup(command: &[String], dir: &Path) -> Result<WorktreeSetup, WorktreeError> {
    let Some((program, args)) = command.split_first() else {
        return Err(WorktreeError::Setup {
            command: String::new(),
            why: "it is empty".into(),
        });
    };
    let started = Instant::now();
    let child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PWD", dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .output();
    let output = match tokio::time::timeout(SETUP_TIMEOUT, child).await {
        Ok(Ok(output)) => output,
        Ok(Err(err)) => {
            return Err(WorktreeError::Setup {
                command: command.join(" "),
                why: format!("could not start `{program}`: {err}"),
            });
        }
        Err(_) => {
            return Err(WorktreeError::Setup {
                command: command.join(" "),
                why: format!("still running after {} s", SETUP_TIMEOUT.as_secs()),
            });
        }
    };
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let skip = text.chars().count().saturating_sub(SETUP_OUTPUT_CHARS);
    Ok(WorktreeSetup {
        command: command.to_vec(),
        exit_code: output.status.code(),
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        output: text.chars().skip(skip).collect(),
    })
}
