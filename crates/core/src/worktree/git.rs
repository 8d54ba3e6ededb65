//! Runs git as a child process: no shell, stdin closed, killed if the caller is dropped, in a
//! fixed locale, with hooks turned off (an automated step must not run a repository's
//! scripts: `worktree add` would run `post-checkout`, a commit `pre-commit`) and with automatic
//! maintenance off (it would leave a detached process behind).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use super::WorktreeError;

/// Who commits for a task (the worker's changes, merge commits), and no signing: a prompt
/// for a key would hang an automated step.
pub(crate) const IDENTITY: [&str; 6] = [
    "-c",
    "user.name=Open Orchestra",
    "-c",
    "user.email=orchestra@localhost",
    "-c",
    "commit.gpgsign=false",
];

/// `args` run as [`IDENTITY`].
pub(crate) fn as_orchestra<'a>(args: &[&'a str]) -> Vec<&'a str> {
    IDENTITY
        .iter()
        .copied()
        .chain(args.iter().copied())
        .collect()
}

/// A command's result when a non-zero exit is an answer, not a failure (`merge-tree`).
pub(crate) struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// git run in one directory.
#[derive(Debug, Clone)]
pub(crate) struct Git {
    dir: PathBuf,
}

impl Git {
    pub fn new(dir: &Path) -> Git {
        Git {
            dir: dir.to_path_buf(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `git args…`; its stdout when it exits 0, else an error quoting its stderr.
    pub async fn run(&self, args: &[&str]) -> Result<String, WorktreeError> {
        let done = self.finish(args).await?;
        match done.code {
            Some(0) => Ok(done.stdout),
            _ => Err(WorktreeError::Git {
                command: format!("git {}", args.join(" ")),
                dir: self.dir.clone(),
                stderr: tail(&done.stderr, &done.stdout),
            }),
        }
    }

    /// Runs `git args…` and returns how it ended, whatever the exit code.
    pub async fn finish(&self, args: &[&str]) -> Result<Finished, WorktreeError> {
        let mut command = tokio::process::Command::new("git");
        command
            .args([
                "-c",
                "core.hooksPath=/dev/null",
                "-c",
                "core.quotePath=false",
                // A commit or checkout may start `git maintenance run --auto --detach`, which
                // daemonizes out of the hub's process group and outlives it; the user's own git
                // commands keep the repository maintained.
                "-c",
                "maintenance.auto=false",
                "-c",
                "gc.auto=0",
            ])
            .args(args)
            .current_dir(&self.dir)
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            // A hub started from inside a git hook must still address the project's repo.
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = command
            .output()
            .await
            .map_err(|source| WorktreeError::GitMissing { source })?;
        Ok(Finished {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        })
    }
}

/// The last lines of what git said, for an error message.
fn tail(stderr: &str, stdout: &str) -> String {
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let lines: Vec<&str> = text.trim().lines().collect();
    lines[lines.len().saturating_sub(6)..].join("\n")
}
