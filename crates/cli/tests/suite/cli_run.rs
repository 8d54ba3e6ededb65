//! `orchestra run` and the listing commands, as a person would use them:
//! the real binary, a real OpenCode worker, the built-in fake model asked for
//! with `--fake`.
#![allow(clippy::unwrap_used)]

use super::common;

use std::process::Output;
use std::time::Duration;

use orchestra_testkit::opencode::{
    FOREIGN_CONFIG_VARS, IsolatedHome, TestProject, require_opencode,
};
use orchestra_testkit::processes;
use serde_json::Value;

fn orchestra(home: &IsolatedHome, project: &TestProject, args: &[&str]) -> Output {
    orchestra_marked(home, project, args, "")
}

/// `orchestra` with `marker` in its environment (and so in the hub's, and its workers'), so
/// whatever it leaves running can be found.
fn orchestra_marked(
    home: &IsolatedHome,
    project: &TestProject,
    args: &[&str],
    marker: &str,
) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"));
    for var in FOREIGN_CONFIG_VARS {
        command.env_remove(var);
    }
    command
        .args(args)
        .arg("--project")
        .arg(&project.dir)
        .envs(home.env())
        .env("ORCHESTRA_OPENCODE_BIN", require_opencode())
        .env(processes::MARKER_VAR, marker)
        .output()
        .unwrap()
}

/// Every process the commands started — the hub, its workers, their commands, wherever they
/// were re-parented — is gone.
fn assert_nothing_left(marker: &str) {
    let left = processes::wait_all_gone(&processes::with_marker(marker), Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "still running: {:?}",
        left.iter()
            .map(|&pid| format!("{pid} {}", processes::cmdline(pid)))
            .collect::<Vec<_>>()
    );
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Stops the hub the commands started in the background, also when a test fails.
struct StopHub<'a>(&'a IsolatedHome, &'a TestProject);

impl Drop for StopHub<'_> {
    fn drop(&mut self) {
        common::stop_hub(self.0, &self.1.dir);
    }
}

#[test]
fn run_with_fake_says_so_answers_and_the_listings_show_the_task() {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let _hub = StopHub(&home, &project);
    let out = orchestra(
        &home,
        &project,
        &["run", "--fake", "--worker", "coder", "hello", "newcomer"],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout.trim(), "ECHO: hello newcomer");
    assert!(
        stderr.contains("started the project's hub")
            && stderr.contains("on the built-in fake model (--fake)"),
        "{stderr}"
    );
    assert!(
        stderr.contains("succeeded") && stderr.contains("orchestra-fake/fake-model"),
        "{stderr}"
    );

    // The job was recorded and the listing commands show it.
    let out = orchestra(&home, &project, &["tasks", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tasks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let task = &tasks.as_array().unwrap()[0];
    assert_eq!(task["status"], "succeeded");
    assert_eq!(task["workerId"], "coder");
    assert_eq!(task["model"], "orchestra-fake/fake-model");
    let out = orchestra(&home, &project, &["profiles"]);
    let profiles = text(&out.stdout);
    assert!(
        profiles.contains("| architect |") && profiles.contains("read-only"),
        "{profiles}"
    );
    let out = orchestra(&home, &project, &["output"]);
    assert!(text(&out.stdout).contains("succeeded on coder"));
}

#[test]
fn run_json_prints_the_whole_record_and_auto_routing() {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let _hub = StopHub(&home, &project);
    let out = orchestra(
        &home,
        &project,
        &["run", "--fake", "--json", "plan", "the", "refactor"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let record: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(record["status"], "succeeded");
    assert_eq!(record["workerId"], "architect");
    assert_eq!(record["route"]["profile"], "architect");
    assert!(record["usage"]["output"].as_u64().unwrap() > 0);
}

#[test]
fn bad_input_is_refused_with_the_fix_and_nothing_is_left_running() {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let _hub = StopHub(&home, &project);
    let marker = processes::new_marker();
    let run = |args: &[&str]| orchestra_marked(&home, &project, args, &marker);

    let out = run(&["run", "--fake", "--worker", "codr", "x"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("codr") && stderr.contains("coder"),
        "{stderr}"
    );
    let out = run(&[
        "run", "--fake", "--file", "nope.txt", "--worker", "coder", "x",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    // A refused task leaves nothing of its own: only the hub and its worker server run.
    let hub = common::hub_files(&home, &project.dir).read_info().unwrap();
    let mut hub_tree = processes::descendants(hub.pid);
    hub_tree.push(hub.pid);
    let extra: Vec<u32> = processes::with_marker(&marker)
        .into_iter()
        .filter(|pid| !hub_tree.contains(pid))
        .collect();
    assert!(extra.is_empty(), "left running beside the hub: {extra:?}");

    // A malformed project config: the running hub is restarted (its config changed), and the
    // new one refuses to start with the file, the key and the fix.
    std::fs::create_dir_all(project.dir.join(".opencode")).unwrap();
    std::fs::write(
        project.dir.join(".opencode/orchestrator.json"),
        r#"{"autoSpwn": true}"#,
    )
    .unwrap();
    let out = run(&["run", "--fake", "--worker", "coder", "x"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("autoSpwn") && stderr.contains("autoSpawn"),
        "{stderr}"
    );
    // The old hub stopped for the restart and the new one never came up: nothing runs.
    assert_nothing_left(&marker);
}
