//! `orchestra run` and the listing commands, as a person would use them:
//! the real binary, a real OpenCode worker, no provider configured.
#![allow(clippy::unwrap_used)]

use std::process::Output;

use orchestra_testkit::opencode::{IsolatedHome, TestProject, require_opencode};
use serde_json::Value;

fn orchestra(home: &IsolatedHome, project: &TestProject, args: &[&str]) -> Output {
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

#[test]
fn bad_input_is_refused_with_the_fix_and_nothing_is_left_running() {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let out = orchestra(&home, &project, &["run", "--fake", "--worker", "codr", "x"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("codr") && stderr.contains("coder"),
        "{stderr}"
    );

    let out = orchestra(
        &home,
        &project,
        &[
            "run", "--fake", "--file", "nope.txt", "--worker", "coder", "x",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("does not exist"),
        "{}",
        text(&out.stderr)
    );

    std::fs::create_dir_all(project.dir.join(".opencode")).unwrap();
    std::fs::write(
        project.dir.join(".opencode/orchestrator.json"),
        r#"{"autoSpwn": true}"#,
    )
    .unwrap();
    let out = orchestra(
        &home,
        &project,
        &["run", "--fake", "--worker", "coder", "x"],
    );
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("autoSpwn") && stderr.contains("autoSpawn"),
        "{stderr}"
    );
}
