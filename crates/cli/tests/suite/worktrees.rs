//! Task worktrees through the real binary: `orchestra run` prints the diffstat and how to
//! merge, `--merge` merges on success; a hub SIGKILLed mid-task leaves nothing stray once the
//! next hub has started (the task's changes are committed on its branch, strays removed).
#![allow(clippy::unwrap_used)]

use super::common;

use std::path::Path;
use std::time::Duration;

use common::{World, bounded, hub_info, kill, wait_gone};
use orchestra_testkit::opencode::{FOREIGN_CONFIG_VARS, require_opencode};
use orchestra_testkit::processes;
use serde_json::{Value, json};

pub(super) fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=user", "-c", "user.email=user@localhost"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(super) fn task_branches(dir: &Path) -> Vec<String> {
    git(
        dir,
        &[
            "for-each-ref",
            "--format=%(refname:short)",
            "refs/heads/orchestra/",
        ],
    )
    .lines()
    .map(str::to_owned)
    .collect()
}

/// The checkout and the task worktrees (spares, `<state>/worktrees/spare-*`, not counted).
pub(super) fn worktree_count(dir: &Path) -> usize {
    git(dir, &["worktree", "list", "--porcelain"])
        .lines()
        .filter(|l| l.starts_with("worktree ") && !l.contains("/spare-"))
        .count()
}

/// `orchestra run <args>` on the world's project, config and home: (success, stdout, stderr).
async fn orchestra_run(world: &World, args: &[&str]) -> (bool, String, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestra"));
    for var in FOREIGN_CONFIG_VARS {
        command.env_remove(var);
    }
    let out = command
        .arg("run")
        .args(args)
        .arg("--project")
        .arg(&world.project.dir)
        .arg("--config")
        .arg(&world.config)
        .envs(world.home.env())
        .env("ORCHESTRA_OPENCODE_BIN", require_opencode())
        .env(processes::MARKER_VAR, &world.marker)
        .output()
        .await
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub(super) fn write_call(path: &str, content: &str) -> String {
    format!(
        "CALL_TOOL:write {}",
        json!({"filePath": path, "content": content})
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orchestra_run_prints_the_diffstat_and_merges_with_merge() {
    bounded(async {
        let world = World::new(json!({})).await;
        let dir = world.project.dir.clone();
        let (ok, _, stderr) = orchestra_run(
            &world,
            &["--worker", "coder", &write_call("hello.txt", "hi\n")],
        )
        .await;
        assert!(ok, "{stderr}");
        assert!(stderr.contains("branch orchestra/"), "{stderr}");
        assert!(
            stderr.contains("1 file(s) changed, +1 -0 (from main"),
            "{stderr}"
        );
        assert!(
            stderr.contains("review: git diff main...orchestra/"),
            "{stderr}"
        );
        assert!(!dir.join("hello.txt").exists(), "the checkout changed");

        let (ok, _, stderr) = orchestra_run(
            &world,
            &[
                "--merge",
                "--worker",
                "coder",
                &write_call("two.txt", "two\n"),
            ],
        )
        .await;
        assert!(ok, "{stderr}");
        assert!(stderr.contains("into `main` in your checkout"), "{stderr}");
        assert_eq!(
            std::fs::read_to_string(dir.join("two.txt")).unwrap(),
            "two\n"
        );
        // The first task's worktree waits for a review; the merged one is gone.
        assert_eq!(task_branches(&dir).len(), 1);
        assert_eq!(worktree_count(&dir), 2);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_killed_mid_task_leaves_no_stray_worktree_or_branch_after_a_restart() {
    bounded(async {
        let world = World::new(json!({})).await;
        let dir = world.project.dir.clone();
        let first = world.connect().await;
        let started = first
            .call_json(
                "task_start",
                json!({"kind": "worker", "workerId": "coder", "task": format!(
                    "CALL_TOOL:bash {}",
                    json!({"command": "echo kept > kept.txt && sleep 120", "description": "write, then wait"})
                )}),
            )
            .await;
        let id = started["taskId"].as_str().unwrap().to_owned();
        // Wait until the worker wrote its file in the task's worktree.
        let mut written = false;
        for _ in 0..600 {
            let record = first.call_json("task_peek", json!({"taskId": id})).await;
            if let Some(path) = record["worktree"]["path"].as_str()
                && Path::new(path).join("kept.txt").exists()
            {
                written = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(written, "the worker never wrote its file");
        // A stray branch, as a hub killed between `worktree add` and its first save leaves.
        git(&dir, &["branch", "orchestra/no-record-owns-this"]);
        let opencode_pid = first.worker_pid().await;
        let hub = hub_info(&world.home, &dir).await;
        kill(hub.pid).await;
        wait_gone(opencode_pid).await;
        first.close().await;

        let second = world.connect().await;
        let record: Value = second.call_json("task_peek", json!({"taskId": id})).await;
        assert_eq!(record["status"], "failed", "{record}");
        let worktree = &record["worktree"];
        assert_eq!(worktree["state"], "open", "{record}");
        assert_eq!(worktree["files"], 1, "{record}");
        let branch = worktree["branch"].as_str().unwrap();
        assert_eq!(task_branches(&dir), [branch]);
        assert_eq!(git(&dir, &["show", &format!("{branch}:kept.txt")]), "kept\n");
        assert!(!dir.join("kept.txt").exists());
        assert_eq!(worktree_count(&dir), 2);

        let discarded = second
            .call_json(
                "task_start",
                json!({"kind": "op", "op": "worktree.discard", "worktree": {"taskId": id}}),
            )
            .await;
        let done = second.finish(discarded["taskId"].as_str().unwrap()).await;
        assert_eq!(done["status"], "succeeded", "{done}");
        assert!(task_branches(&dir).is_empty());
        assert_eq!(worktree_count(&dir), 1);
        second.close().await;
    })
    .await;
}
