//! Spare worktrees (`worktree.spares`) on real git: a task's worktree is made from a spare
//! checked out ahead of time, at the task's base even when the branch moved since; the pool
//! refills in the background; a new hub keeps clean spares within the setting and removes
//! dirty, half-made or extra ones; a spare that cannot be used falls back to a full checkout.
//! Also: a task's commit never starts git's automatic maintenance.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use orchestra_core::worktree::{WorktreeSettings, Worktrees};

use super::worktrees_e2e::git;

struct Repo {
    temp: PathBuf,
    dir: PathBuf,
    root: PathBuf,
}

impl Repo {
    fn new(name: &str) -> Repo {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let temp = std::env::temp_dir().join(format!(
            "orchestra-spares-{name}-{}-{nanos}",
            std::process::id()
        ));
        let dir = temp.join("project");
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q"]);
        for i in 0..50 {
            std::fs::write(dir.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
        }
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-q", "-m", "one"]);
        Repo {
            root: temp.join("worktrees"),
            temp,
            dir,
        }
    }

    fn worktrees(&self, spares: usize) -> Worktrees {
        Worktrees::new(
            &self.dir,
            self.root.clone(),
            WorktreeSettings {
                spares,
                ..WorktreeSettings::default()
            },
        )
    }

    /// Spare folders git lists.
    fn spares(&self) -> Vec<PathBuf> {
        git(&self.dir, &["worktree", "list", "--porcelain"])
            .lines()
            .filter_map(|l| l.strip_prefix("worktree "))
            .map(PathBuf::from)
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("spare-"))
            })
            .collect()
    }
}

impl Drop for Repo {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.temp);
    }
}

fn head(dir: &Path) -> String {
    git(dir, &["rev-parse", "HEAD"]).trim().to_owned()
}

#[tokio::test]
async fn tasks_after_the_first_get_a_spare_at_their_base_and_the_pool_refills() {
    let repo = Repo::new("take");
    let worktrees = repo.worktrees(1);
    assert_eq!(
        WorktreeSettings::default().spares,
        1,
        "the default keeps one"
    );

    // The first worktree task has no spare to take; it starts the pool.
    let base = worktrees.base().await.unwrap();
    let first = worktrees.create("first", &base).await.unwrap();
    worktrees.spares_settled().await;
    assert_eq!(worktrees.spares_ready(), 1);
    let spare = repo.spares();
    assert_eq!(spare.len(), 1, "one spare, detached: {spare:?}");
    assert!(spare[0].starts_with(&repo.root));

    // The branch moves after the spare was made: the next task must still start at the new
    // base, with the new file, and on its own branch.
    std::fs::write(repo.dir.join("moved.txt"), "after the spare\n").unwrap();
    git(&repo.dir, &["add", "moved.txt"]);
    git(&repo.dir, &["commit", "-q", "-m", "two"]);
    let base = worktrees.base().await.unwrap();
    let second = worktrees.create("second", &base).await.unwrap();
    let path = PathBuf::from(&second.path);
    assert_eq!(path, repo.root.join("second"));
    assert!(!spare[0].exists(), "the spare became the task's worktree");
    assert_eq!(head(&path), base.sha);
    assert_eq!(
        git(&path, &["symbolic-ref", "--short", "HEAD"]).trim(),
        "orchestra/second"
    );
    assert!(path.join("moved.txt").exists() && path.join("f49.txt").exists());
    assert!(git(&path, &["status", "--porcelain"]).trim().is_empty());

    // Taken, so replaced in the background, at the new base.
    worktrees.spares_settled().await;
    let refilled = repo.spares();
    assert_eq!(refilled.len(), 1, "{refilled:?}");
    assert_ne!(refilled[0], spare[0]);
    assert_eq!(head(&refilled[0]), base.sha);

    // A task's worktree is still the task's: finish and discard behave as without spares.
    let mut second = second;
    std::fs::write(path.join("work.txt"), "the task's\n").unwrap();
    worktrees.finish(&mut second, "edit").await.unwrap();
    assert_eq!(second.files, 1);
    let mut first = first;
    worktrees.discard(&mut first).await.unwrap();
    worktrees.discard(&mut second).await.unwrap();
    assert!(
        git(&repo.dir, &["branch", "--list", "orchestra/*"])
            .trim()
            .is_empty()
    );
}

#[tokio::test]
async fn with_no_spares_set_none_is_made() {
    let repo = Repo::new("none");
    let worktrees = repo.worktrees(0);
    let base = worktrees.base().await.unwrap();
    let mut info = worktrees.create("only", &base).await.unwrap();
    worktrees.spares_settled().await;
    assert_eq!(worktrees.spares_ready(), 0);
    assert!(repo.spares().is_empty());
    worktrees.discard(&mut info).await.unwrap();
}

#[tokio::test]
async fn a_spare_that_cannot_be_used_gives_way_to_a_full_checkout() {
    let repo = Repo::new("broken");
    let worktrees = repo.worktrees(1);
    let base = worktrees.base().await.unwrap();
    let mut first = worktrees.create("first", &base).await.unwrap();
    worktrees.spares_settled().await;
    let spare = repo.spares().pop().unwrap();
    // Somebody deleted it behind the hub's back.
    std::fs::remove_dir_all(&spare).unwrap();

    let mut second = worktrees.create("second", &base).await.unwrap();
    let path = PathBuf::from(&second.path);
    assert_eq!(head(&path), base.sha);
    assert!(path.join("f0.txt").exists());
    worktrees.spares_settled().await;
    let spares = repo.spares();
    assert_eq!(
        spares.len(),
        1,
        "the broken one is gone, a new one made: {spares:?}"
    );
    assert!(spares[0].exists());
    worktrees.discard(&mut first).await.unwrap();
    worktrees.discard(&mut second).await.unwrap();
}

#[tokio::test]
async fn a_new_hub_keeps_clean_spares_within_the_setting_and_removes_the_rest() {
    let repo = Repo::new("reconcile");
    let earlier = repo.worktrees(2);
    let base = earlier.base().await.unwrap();
    let mut first = earlier.create("first", &base).await.unwrap();
    earlier.discard(&mut first).await.unwrap();
    earlier.spares_settled().await;
    assert_eq!(repo.spares().len(), 2);
    // A half-made spare a killed hub left: a folder git does not list.
    let half = repo.root.join("spare-6f1c2d3e-0000-4000-8000-000000000000");
    std::fs::create_dir_all(&half).unwrap();
    std::fs::write(half.join("partial.txt"), "x").unwrap();

    // The next hub wants one: one clean spare is kept, the other and the half-made go.
    let next = repo.worktrees(1);
    let report = next.reconcile(&BTreeMap::new()).await.unwrap();
    assert_eq!((report.spares_kept, report.spares_removed), (1, 2));
    assert_eq!(next.spares_ready(), 1);
    assert_eq!(repo.spares().len(), 1);
    assert!(!half.exists());

    // A spare something wrote into is not clean: it is removed, never handed to a task.
    let kept = repo.spares().pop().unwrap();
    std::fs::write(kept.join("stray.txt"), "not from the branch").unwrap();
    let after = repo.worktrees(1);
    let report = after.reconcile(&BTreeMap::new()).await.unwrap();
    assert_eq!((report.spares_kept, report.spares_removed), (0, 1));
    assert!(repo.spares().is_empty() && !kept.exists());

    // Turned off: every spare goes.
    let mut third = after.create("third", &base).await.unwrap();
    after.discard(&mut third).await.unwrap();
    after.spares_settled().await;
    assert_eq!(repo.spares().len(), 1);
    let off = repo.worktrees(0);
    let report = off.reconcile(&BTreeMap::new()).await.unwrap();
    assert_eq!((report.spares_kept, report.spares_removed), (0, 1));
    assert!(repo.spares().is_empty());
}

/// A task's commit must not start git's automatic maintenance: detached, it would outlive the
/// hub outside its process group. The repository asks for it after every commit, in the
/// foreground so the test can see it.
#[tokio::test]
async fn a_task_commit_never_starts_gits_automatic_maintenance() {
    let repo = Repo::new("maintenance");
    for (key, value) in [
        ("maintenance.autoDetach", "false"),
        ("maintenance.gc.enabled", "false"),
        ("maintenance.loose-objects.enabled", "true"),
        ("maintenance.loose-objects.auto", "1"),
    ] {
        git(&repo.dir, &["config", key, value]);
    }
    let packs = || {
        std::fs::read_dir(repo.dir.join(".git/objects/pack"))
            .map(|entries| entries.count())
            .unwrap_or(0)
    };
    assert_eq!(packs(), 0);
    let worktrees = repo.worktrees(0);
    let base = worktrees.base().await.unwrap();
    let mut info = worktrees.create("task", &base).await.unwrap();
    std::fs::write(PathBuf::from(&info.path).join("new.txt"), "work\n").unwrap();
    worktrees.finish(&mut info, "edit").await.unwrap();
    assert_eq!(info.files, 1);
    assert_eq!(packs(), 0, "git maintenance ran for the task's commit");
    worktrees.discard(&mut info).await.unwrap();
}
