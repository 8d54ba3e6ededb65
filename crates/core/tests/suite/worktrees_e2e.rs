//! Task worktrees on real git, the real pinned OpenCode and the fake LLM: coders in parallel
//! each in their own worktree, the user's checkout byte-identical meanwhile, changes committed
//! on `orchestra/<taskId>`, diff / merge (clean into the checkout, conflict changing nothing)
//! / discard, a follow-up resolving a conflict in the task's worktree, refusals naming the fix,
//! and a restarted hub removing what no open record owns.
#![allow(clippy::unwrap_used)]

use super::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use common::{World, bounded};
use orchestra_core::worktree::{WorktreeSettings, Worktrees};
use orchestra_protocol::{
    JobRecord, JobStatus, OpKind, TaskKind, TaskStartParams, WorkspaceMode, WorktreePayload,
    WorktreeState,
};
use serde_json::{Value, json};

/// git as a user runs it, with a fixed identity and no global config.
pub(super) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=user", "-c", "user.email=user@localhost"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
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

/// Every file of the checkout (not `.git`): content and mtime, plus `git status`.
fn snapshot(dir: &Path) -> (BTreeMap<PathBuf, (Vec<u8>, SystemTime)>, String) {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<PathBuf, (Vec<u8>, SystemTime)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            if entry.file_name() == ".git" {
                continue;
            }
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                let meta = std::fs::metadata(&path).unwrap();
                out.insert(
                    path.strip_prefix(root).unwrap().to_path_buf(),
                    (std::fs::read(&path).unwrap(), meta.modified().unwrap()),
                );
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(dir, dir, &mut files);
    (
        files,
        git(dir, &["status", "--porcelain", "--untracked-files=all"]),
    )
}

fn write_call(path: &str, content: &str) -> String {
    format!(
        "CALL_TOOL:write {}",
        json!({"filePath": path, "content": content})
    )
}

async fn start(world: &World, params: TaskStartParams) -> String {
    world.engine().start(params, None).await.unwrap().task_id
}

fn coder(task: &str) -> TaskStartParams {
    TaskStartParams {
        kind: TaskKind::Worker,
        worker_id: Some("coder".into()),
        task: task.into(),
        ..TaskStartParams::default()
    }
}

async fn op(world: &World, op: OpKind, task_id: &str) -> JobRecord {
    let id = start(
        world,
        TaskStartParams {
            kind: TaskKind::Op,
            op: Some(op),
            worktree: Some(WorktreePayload {
                task_id: task_id.into(),
            }),
            ..TaskStartParams::default()
        },
    )
    .await;
    world.finish(&id).await
}

fn stored(world: &World, id: &str) -> JobRecord {
    world.engine().store().get_job(id).unwrap().unwrap()
}

fn branches(dir: &Path) -> Vec<String> {
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

/// The project as a user has it: OpenCode config committed, a modified tracked file and an
/// untracked one (the user's work in progress), and an ignored `.env` to copy in.
async fn world() -> World {
    world_with(json!({"worktree": {"copy": [".env"]}})).await
}

async fn world_with(orchestrator: Value) -> World {
    let world = World::start(orchestrator).await;
    let dir = &world.project.dir;
    std::fs::write(dir.join(".gitignore"), ".env\n*.out\n").unwrap();
    std::fs::write(dir.join("notes.txt"), "notes v1\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "project"]);
    std::fs::write(dir.join("notes.txt"), "notes: my uncommitted edit\n").unwrap();
    std::fs::write(dir.join("scratch.txt"), "untracked\n").unwrap();
    std::fs::write(dir.join(".env"), "SECRET=1\n").unwrap();
    world
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_coders_work_in_their_own_worktrees_and_merge_back_without_surprises() {
    bounded(async {
        let world = world().await;
        let dir = world.project.dir.clone();
        let before = snapshot(&dir);
        let base_sha = git(&dir, &["rev-parse", "HEAD"]).trim().to_owned();

        // Three coders at once: two edit README.md differently, one changes nothing.
        let a = start(&world, coder(&write_call("README.md", "readme by A\n"))).await;
        let b = start(&world, coder(&write_call("README.md", "readme by B\n"))).await;
        let idle = start(&world, coder("just answer")).await;
        let (a, b, idle) = (
            world.finish(&a).await,
            world.finish(&b).await,
            world.finish(&idle).await,
        );
        for record in [&a, &b, &idle] {
            assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        }
        assert_eq!(
            snapshot(&dir),
            before,
            "the checkout changed while tasks ran"
        );

        let wa = a.worktree.clone().unwrap();
        assert_eq!(wa.state, WorktreeState::Open);
        assert_eq!(wa.branch, format!("orchestra/{}", a.id));
        assert_eq!(wa.base_ref, "main");
        assert_eq!(wa.base_sha, base_sha);
        assert_eq!((wa.files, wa.insertions, wa.deletions), (1, 1, 1), "{wa:?}");
        assert_eq!(wa.copied, [".env"]);
        assert!(!Path::new(&wa.path).starts_with(&dir), "{}", wa.path);
        let head = wa.head_sha.clone().unwrap();
        let commit = git(&dir, &["log", "-1", "--format=%an|%s", &head]);
        assert!(
            commit.starts_with("Open Orchestra|orchestra task "),
            "{commit}"
        );
        assert!(commit.contains(&a.id), "{commit}");
        assert_eq!(
            git(&dir, &["show", &format!("{head}:README.md")]),
            "readme by A\n"
        );
        // Copied-in files are not part of the task's commit.
        assert!(!git(&dir, &["ls-tree", "-r", "--name-only", &head]).contains(".env"));

        // A task that changed nothing leaves no worktree and no branch.
        let wi = idle.worktree.clone().unwrap();
        assert_eq!(wi.state, WorktreeState::Discarded);
        assert!(!Path::new(&wi.path).exists());
        let mut open = branches(&dir);
        open.sort();
        let mut expected = vec![wa.branch.clone(), b.worktree.clone().unwrap().branch];
        expected.sort();
        assert_eq!(open, expected);

        // The views show the worktree.
        let listed = world
            .engine()
            .list(&orchestra_protocol::TaskListParams::default())
            .await
            .unwrap();
        assert!(
            listed.json.to_string().contains(&wa.branch),
            "{}",
            listed.json
        );
        assert!(
            listed
                .text
                .contains(&format!("open {} (+1 -1, 1 files)", wa.branch)),
            "{}",
            listed.text
        );

        let diff = op(&world, OpKind::WorktreeDiff, &a.id).await;
        assert_eq!(diff.status, JobStatus::Succeeded, "{diff:?}");
        let diff: Value = serde_json::from_str(diff.response_text.as_deref().unwrap()).unwrap();
        assert_eq!(diff["files"][0]["path"], "README.md");
        assert!(diff["patch"].as_str().unwrap().contains("+readme by A"));

        // A merges cleanly into the checkout (on main; the user's edit is in another file).
        let merged = op(&world, OpKind::WorktreeMerge, &a.id).await;
        assert_eq!(merged.status, JobStatus::Succeeded, "{merged:?}");
        let reply: Value = serde_json::from_str(merged.response_text.as_deref().unwrap()).unwrap();
        assert_eq!(reply["mergedInto"], "checkout", "{reply}");
        assert_eq!(
            std::fs::read_to_string(dir.join("README.md")).unwrap(),
            "readme by A\n"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("notes.txt")).unwrap(),
            "notes: my uncommitted edit\n"
        );
        assert_eq!(
            stored(&world, &a.id).worktree.unwrap().state,
            WorktreeState::Merged
        );
        assert!(!Path::new(&wa.path).exists());

        // B now conflicts: nothing changes, no merge is left in progress, the files are named.
        let after_a = snapshot(&dir);
        let main_before = git(&dir, &["rev-parse", "main"]);
        let refused = op(&world, OpKind::WorktreeMerge, &b.id).await;
        assert_eq!(refused.status, JobStatus::Succeeded, "{refused:?}");
        let reply: Value = serde_json::from_str(refused.response_text.as_deref().unwrap()).unwrap();
        assert_eq!(reply["state"], "conflict", "{reply}");
        assert_eq!(reply["conflicts"], json!(["README.md"]));
        assert_eq!(snapshot(&dir), after_a);
        assert_eq!(git(&dir, &["rev-parse", "main"]), main_before);
        assert!(!dir.join(".git/MERGE_HEAD").exists());
        let wb = stored(&world, &b.id).worktree.unwrap();
        assert_eq!(wb.state, WorktreeState::Conflict);
        assert_eq!(wb.conflicts, ["README.md"]);

        // A follow-up in B's worktree resolves it; then B merges.
        let mut follow = coder(&write_call("README.md", "readme by A and B\n"));
        follow.worktree = Some(WorktreePayload {
            task_id: b.id.clone(),
        });
        let follow = start(&world, follow).await;
        // While it runs there, the worktree is neither merged nor discarded.
        let busy = world
            .engine()
            .start(
                TaskStartParams {
                    kind: TaskKind::Op,
                    op: Some(OpKind::WorktreeMerge),
                    worktree: Some(WorktreePayload {
                        task_id: b.id.clone(),
                    }),
                    ..TaskStartParams::default()
                },
                None,
            )
            .await
            .unwrap_err();
        assert_eq!(busy.kind(), orchestra_protocol::ErrorKind::Conflict);
        assert!(
            busy.to_string().contains("still running in that worktree"),
            "{busy}"
        );
        let follow = world.finish(&follow).await;
        assert_eq!(follow.status, JobStatus::Succeeded, "{follow:?}");
        assert_eq!(follow.worktree.as_ref().unwrap().task_id, b.id);
        assert_eq!(
            stored(&world, &b.id).worktree.unwrap().state,
            WorktreeState::Open
        );
        let merged = op(&world, OpKind::WorktreeMerge, &b.id).await;
        assert_eq!(merged.status, JobStatus::Succeeded, "{merged:?}");
        assert_eq!(
            std::fs::read_to_string(dir.join("README.md")).unwrap(),
            "readme by A and B\n"
        );
        assert!(branches(&dir).is_empty(), "{:?}", branches(&dir));

        // Discard throws a task's work away; a second discard says it is gone.
        let c = start(&world, coder(&write_call("new.txt", "c\n"))).await;
        let c = world.finish(&c).await;
        let wc = c.worktree.clone().unwrap();
        assert_eq!(wc.state, WorktreeState::Open);
        let gone = op(&world, OpKind::WorktreeDiscard, &c.id).await;
        assert_eq!(gone.status, JobStatus::Succeeded, "{gone:?}");
        assert!(!Path::new(&wc.path).exists());
        assert!(branches(&dir).is_empty());
        let again = op(&world, OpKind::WorktreeDiscard, &c.id).await;
        assert_eq!(again.status, JobStatus::Failed);
        assert!(again.error.unwrap().contains("discarded already"));
        assert!(!dir.join("new.txt").exists());
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkout_tasks_and_read_only_workers_stay_in_the_checkout() {
    bounded(async {
        let world = world().await;
        let mut task = coder(&write_call("here.txt", "in the checkout\n"));
        task.workspace = Some(WorkspaceMode::Checkout);
        let id = start(&world, task).await;
        let record = world.finish(&id).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert!(record.worktree.is_none());
        assert!(world.project.dir.join("here.txt").exists());

        let id = start(
            &world,
            TaskStartParams {
                kind: TaskKind::Worker,
                worker_id: Some("architect".into()),
                task: "look around".into(),
                ..TaskStartParams::default()
            },
        )
        .await;
        assert!(world.finish(&id).await.worktree.is_none());
        assert!(branches(&world.project.dir).is_empty());
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_hub_removes_worktrees_and_branches_no_open_record_owns() {
    bounded(async {
        let world = world().await;
        let dir = world.project.dir.clone();
        let kept = start(&world, coder(&write_call("kept.txt", "k\n"))).await;
        let kept = world.finish(&kept).await;
        let kept_path = kept.worktree.clone().unwrap().path;
        // Strays: a branch and a worktree no record owns, as a SIGKILLed hub may leave.
        git(&dir, &["branch", "orchestra/no-such-task"]);
        let root = Path::new(&kept_path).parent().unwrap().to_path_buf();
        let stray = root.join("stray-task");
        git(
            &dir,
            &[
                "worktree",
                "add",
                "-q",
                "-b",
                "orchestra/stray-task",
                stray.to_str().unwrap(),
            ],
        );
        world.hub.shutdown().await;

        let hub = world.another_hub().await;
        assert!(Path::new(&kept_path).exists());
        assert!(!stray.exists());
        assert_eq!(branches(&dir), [format!("orchestra/{}", kept.id)]);
        let listed = git(&dir, &["worktree", "list", "--porcelain"]);
        assert!(!listed.contains("stray-task"), "{listed}");
        hub.shutdown().await;
    })
    .await;
}

#[tokio::test]
async fn worktrees_are_refused_where_none_can_be_made_naming_the_fix() {
    // Outside any repository (a TestProject is one).
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let temp = std::env::temp_dir().join(format!(
        "orchestra-wt-refuse-{}-{nanos}",
        std::process::id()
    ));
    let base = temp.as_path();
    let worktrees = |dir: &Path| Worktrees::new(dir, base.join("wt"), WorktreeSettings::default());

    let plain = base.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let err = worktrees(&plain).base().await.unwrap_err();
    assert_eq!(err.kind(), orchestra_protocol::ErrorKind::BadRequest);
    assert!(
        err.to_string().contains("not inside a git repository"),
        "{err}"
    );
    assert!(err.to_string().contains("git init"), "{err}");

    let empty = base.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    git(&empty, &["init", "-q"]);
    let err = worktrees(&empty).base().await.unwrap_err();
    assert!(err.to_string().contains("no commit yet"), "{err}");

    let bare = base.join("bare.git");
    std::fs::create_dir_all(&bare).unwrap();
    git(&bare, &["init", "-q", "--bare"]);
    let err = worktrees(&bare).base().await.unwrap_err();
    assert!(err.to_string().contains("bare git repository"), "{err}");

    let detached = base.join("detached");
    std::fs::create_dir_all(&detached).unwrap();
    git(&detached, &["init", "-q"]);
    git(&detached, &["commit", "-q", "--allow-empty", "-m", "one"]);
    git(&detached, &["checkout", "-q", "--detach"]);
    let err = worktrees(&detached).base().await.unwrap_err();
    assert!(err.to_string().contains("HEAD is detached"), "{err}");
    assert!(err.to_string().contains("git switch"), "{err}");
    std::fs::remove_dir_all(&temp).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workflow_runs_steps_share_the_runs_worktree() {
    bounded(async {
        let steps = json!([
            {"id": "one", "title": "One", "workerId": "coder", "prompt": write_call("one.txt", "1\n")},
            {"id": "two", "title": "Two", "workerId": "coder", "prompt": write_call("two.txt", "2\n")}
        ]);
        let world = World::start(json!({"workflows": {"definitions": [
            {"id": "pair", "name": "Pair", "steps": steps}
        ]}}))
        .await;
        let dir = world.project.dir.clone();
        let before = snapshot(&dir);
        let started = world
            .engine()
            .start(
                TaskStartParams {
                    kind: TaskKind::Workflow,
                    workflow_id: Some("pair".into()),
                    task: "two files".into(),
                    ..TaskStartParams::default()
                },
                None,
            )
            .await
            .unwrap();
        let run = world.finish(&started.task_id).await;
        assert_eq!(run.status, JobStatus::Succeeded, "{run:?}");
        assert_eq!(snapshot(&dir), before, "the checkout changed during the run");
        let tree = run.worktree.clone().unwrap();
        assert_eq!(tree.task_id, run.id);
        assert_eq!(tree.state, WorktreeState::Open);
        assert_eq!(tree.files, 2, "{tree:?}");
        let files = git(&dir, &["ls-tree", "-r", "--name-only", &tree.branch]);
        assert!(files.contains("one.txt") && files.contains("two.txt"), "{files}");
        // Two commits: one per step, on the run's branch.
        let log = git(&dir, &["log", "--format=%an", &format!("{}..{}", tree.base_sha, tree.branch)]);
        assert_eq!(log.lines().collect::<Vec<_>>(), ["Open Orchestra", "Open Orchestra"]);
        let merged = op(&world, OpKind::WorktreeMerge, &run.id).await;
        assert_eq!(merged.status, JobStatus::Succeeded, "{merged:?}");
        assert!(dir.join("one.txt").exists() && dir.join("two.txt").exists());
        world.shutdown().await;
    })
    .await;
}

/// A run paused by a failed step and resumed goes on in the worktree its first part left:
/// the step after the pause sees the step before it, and one branch holds both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_run_goes_on_in_the_worktree_it_left() {
    bounded(async {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, Ordering};
        let steps = json!([
            {"id": "one", "title": "One", "workerId": "coder", "prompt": write_call("one.txt", "1\n")},
            {"id": "two", "title": "Two", "workerId": "coder", "prompt": write_call("two.txt", "2\n")}
        ]);
        let world = world_with(json!({"workflows": {"definitions": [
            {"id": "pair", "name": "Pair", "steps": steps}
        ]}}))
        .await;
        let failing = Arc::new(AtomicBool::new(true));
        let flag = failing.clone();
        world.fake.set_responder(move |req| {
            (req.last_user_text.contains("two.txt") && flag.load(Ordering::SeqCst))
                .then(|| orchestra_testkit::fake_llm::Script::http_error(400, "scripted failure"))
        });
        let dir = world.project.dir.clone();
        let start_run = |continue_run_id: Option<String>, workflow_id: Option<String>| TaskStartParams {
            kind: TaskKind::Workflow,
            workflow_id,
            continue_run_id,
            task: "two files".into(),
            ..TaskStartParams::default()
        };
        let started = world
            .engine()
            .start(start_run(None, Some("pair".into())), None)
            .await
            .unwrap();
        let run_id = started.continue_run_id.clone().unwrap();
        let first = world.finish(&started.task_id).await;
        assert_eq!(first.status, JobStatus::Failed, "{first:?}");
        let tree = first.worktree.clone().unwrap();
        assert!(Path::new(&tree.path).join("one.txt").exists(), "{tree:?}");

        failing.store(false, Ordering::SeqCst);
        let resumed = world
            .engine()
            .start(start_run(Some(run_id), None), None)
            .await
            .unwrap();
        let second = world.finish(&resumed.task_id).await;
        assert_eq!(second.status, JobStatus::Succeeded, "{second:?}");
        let carried = second.worktree.clone().unwrap();
        assert_eq!(carried.task_id, first.id, "the resumed run made a new worktree");
        assert_eq!(carried.path, tree.path);
        let files = git(&dir, &["ls-tree", "-r", "--name-only", &tree.branch]);
        assert!(files.contains("one.txt") && files.contains("two.txt"), "{files}");
        // The job that made the worktree learns the run's whole diffstat.
        assert_eq!(stored(&world, &first.id).worktree.unwrap().files, 2);
        let merged = op(&world, OpKind::WorktreeMerge, &second.id).await;
        assert_eq!(merged.status, JobStatus::Succeeded, "{merged:?}");
        assert!(dir.join("one.txt").exists() && dir.join("two.txt").exists());
        assert!(branches(&dir).is_empty(), "{:?}", branches(&dir));
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_users_setup_command_runs_in_each_new_worktree_and_is_recorded() {
    bounded(async {
        let world = world_with(json!({"worktree": {
            "copy": [".env"],
            "setup": ["sh", "-c", "cp .env setup.out && echo setup done"]
        }}))
        .await;
        let id = start(&world, coder(&write_call("made.txt", "m\n"))).await;
        let record = world.finish(&id).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        let tree = record.worktree.unwrap();
        let setup = tree.setup.clone().unwrap();
        assert_eq!(setup.exit_code, Some(0));
        assert_eq!(
            setup.command,
            ["sh", "-c", "cp .env setup.out && echo setup done"]
        );
        assert!(setup.output.contains("setup done"), "{setup:?}");
        // It ran in the worktree, after the copy-in; what it made (ignored) is not committed.
        assert_eq!(
            std::fs::read_to_string(Path::new(&tree.path).join("setup.out")).unwrap(),
            "SECRET=1\n"
        );
        assert!(!world.project.dir.join("setup.out").exists());
        let files = git(
            &world.project.dir,
            &["ls-tree", "-r", "--name-only", &tree.branch],
        );
        assert!(!files.contains("setup.out"), "{files}");
        world.shutdown().await;

        // A failing setup fails the task before any worker runs, and leaves nothing.
        let world =
            world_with(json!({"worktree": {"setup": ["sh", "-c", "echo broken >&2; exit 3"]}}))
                .await;
        let id = start(&world, coder("never runs")).await;
        let record = world.finish(&id).await;
        assert_eq!(record.status, JobStatus::Failed);
        let error = record.error.unwrap();
        assert!(
            error.contains(
                "worktree.setup `sh -c echo broken >&2; exit 3` failed (exit code 3: broken)"
            ),
            "{error}"
        );
        assert!(branches(&world.project.dir).is_empty());
        assert!(world.fake.requests().is_empty());
        world.shutdown().await;
    })
    .await;
}
