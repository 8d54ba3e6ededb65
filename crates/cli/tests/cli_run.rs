//! `orchestra run` and the listing commands, as a person would use them:
//! the real binary, a real OpenCode worker, no provider configured.
#![allow(clippy::unwrap_used)]

use std::process::Output;
use std::time::Duration;

use orchestra_testkit::opencode::{IsolatedHome, TestProject, require_opencode};
use orchestra_testkit::processes;
use serde_json::Value;

fn orchestra(home: &IsolatedHome, project: &TestProject, args: &[&str]) -> Output {
    orchestra_marked(home, project, args, &processes::new_marker())
}

/// `orchestra` with `marker` in its environment, so whatever it leaves running can be found.
fn orchestra_marked(
    home: &IsolatedHome,
    project: &TestProject,
    args: &[&str],
    marker: &str,
) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(args)
        .arg("--project")
        .arg(&project.dir)
        .envs(home.env())
        .env("ORCHESTRA_OPENCODE_BIN", require_opencode())
        .env_remove("OPENCODE_CONFIG_CONTENT")
        // No provider may leak in from the environment: these tests are about
        // the machine of someone who has none.
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENROUTER_API_KEY")
        .env_remove("GEMINI_API_KEY")
        .env_remove("GROQ_API_KEY")
        .env(processes::MARKER_VAR, marker)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn run_without_a_provider_uses_the_fake_model_and_says_so() {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let out = orchestra(
        &home,
        &project,
        &["run", "--worker", "coder", "hello", "newcomer"],
    );
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(stdout.trim(), "ECHO: hello newcomer");
    assert!(stderr.contains("built-in fake model"), "{stderr}");
    assert!(stderr.contains("succeeded"), "{stderr}");

    // The job was recorded and the listing commands show it.
    let out = orchestra(&home, &project, &["tasks", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tasks: Value = serde_json::from_slice(&out.stdout).unwrap();
    let task = &tasks.as_array().unwrap()[0];
    assert_eq!(task["status"], "succeeded");
    assert_eq!(task["workerId"], "coder");
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

/// Every process the run started (and their descendants, wherever they were re-parented) is
/// gone once `orchestra` has exited.
fn assert_nothing_left(marker: &str, case: &str) {
    let left = processes::wait_all_gone(&processes::with_marker(marker), Duration::from_secs(2));
    assert!(
        left.is_empty(),
        "{case}: still running after orchestra exited: {:?}",
        left.iter()
            .map(|&pid| format!("{pid} {}", processes::cmdline(pid)))
            .collect::<Vec<_>>()
    );
}

#[test]
fn bad_input_is_refused_with_the_fix_and_nothing_is_left_running() {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let marker = processes::new_marker();
    let run = |args: &[&str]| orchestra_marked(&home, &project, args, &marker);

    let out = run(&["run", "--fake", "--worker", "codr", "x"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("codr") && stderr.contains("coder"),
        "{stderr}"
    );
    assert_nothing_left(&marker, "unknown worker");

    // The same refusal while the hub is starting a worker server (the spawn list): that server
    // must not outlive the refused run.
    let spawning = home.root.join("spawn-coder.json");
    std::fs::write(&spawning, r#"{"workers": ["coder"]}"#).unwrap();
    let config = spawning.display().to_string();
    let out = run(&[
        "run", "--fake", "--config", &config, "--worker", "codr", "x",
    ]);
    assert!(!out.status.success(), "{}", text(&out.stderr));
    assert_nothing_left(&marker, "unknown worker while a server starts");

    let out = run(&[
        "run", "--fake", "--file", "nope.txt", "--worker", "coder", "x",
    ]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );
    assert_nothing_left(&marker, "missing attachment");

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
    assert_nothing_left(&marker, "malformed config");
}
