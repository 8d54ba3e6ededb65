//! `orchestra doctor` against the real pinned OpenCode: a project whose `opencode.json` has a
//! provider (the fake LLM) and the plugin installed, then a project with no provider at all.
#![allow(clippy::unwrap_used)]

use super::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::{
    IsolatedHome, TestProject, catalog_provider, fake_provider_config, require_opencode,
    write_project_config,
};
use serde_json::Value;

fn orchestra(home_env: &[(String, String)], project: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(args)
        .arg("--project")
        .arg(project)
        .current_dir(project)
        .env("PWD", project)
        .envs(home_env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap()
}

/// `opencode` on PATH is the pinned one, as the user's main OpenCode.
fn env_with_main_opencode(
    mut env: Vec<(String, String)>,
    opencode: &Path,
) -> Vec<(String, String)> {
    let dir: PathBuf = opencode.parent().unwrap().to_path_buf();
    env.push((
        "PATH".into(),
        format!(
            "{}:{}",
            dir.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    ));
    env.push((
        "ORCHESTRA_OPENCODE_BIN".into(),
        opencode.display().to_string(),
    ));
    env
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn with_a_provider_and_the_plugin_everything_is_ok() {
    let opencode = require_opencode();
    let fake = FakeLlm::start_echo().await.unwrap();
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    write_project_config(&project, &fake_provider_config(&fake.base_url())).unwrap();
    let env = env_with_main_opencode(home.env_with_plugins(), &opencode);
    let install = orchestra(&env, &project.dir, &["install"]);
    assert!(
        install.status.success(),
        "{}",
        String::from_utf8_lossy(&install.stderr)
    );
    assert!(
        String::from_utf8_lossy(&install.stderr).contains("for OpenCode V1"),
        "install says which OpenCode it wrote for: {}",
        String::from_utf8_lossy(&install.stderr)
    );

    let doctor = orchestra(&env, &project.dir, &["doctor", "--json"]);
    common::stop_hub(&home, &project.dir);
    let report: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert!(doctor.status.success(), "{report:#}");
    assert_eq!(report["ok"], true);
    let worker = check(&report, "opencode");
    assert_eq!(worker["status"], "ok", "{worker}");
    assert_eq!(worker["details"]["version"], "1.18.33");
    assert_eq!(worker["details"]["line"], "v1");
    assert_eq!(check(&report, "main-opencode")["status"], "ok");
    let providers = check(&report, "providers");
    assert!(
        providers["details"]["providers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "fake"),
        "{providers}"
    );
    assert_eq!(check(&report, "answer")["status"], "ok", "{report:#}");
    let plugin = check(&report, "plugin");
    assert_eq!(plugin["status"], "ok", "{plugin}");
    assert!(
        plugin["summary"].as_str().unwrap().contains("loaded by"),
        "{plugin}"
    );
    assert_eq!(check(&report, "state-folder")["status"], "ok");
}

#[tokio::test(flavor = "multi_thread")]
async fn with_no_provider_it_fails_and_says_the_fix() {
    let opencode = require_opencode();
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let env = env_with_main_opencode(home.env(), &opencode);

    let doctor = orchestra(&env, &project.dir, &["doctor", "--json"]);
    let text = orchestra(&env, &project.dir, &["doctor", "--no-prompt"]);
    common::stop_hub(&home, &project.dir);
    let report: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(doctor.status.code(), Some(1), "{report:#}");
    assert_eq!(report["ok"], false);
    let broken: Vec<&Value> = ["providers", "answer"]
        .iter()
        .filter_map(|id| {
            report["checks"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["id"] == *id)
        })
        .filter(|c| c["status"] == "fail")
        .collect();
    assert_eq!(broken.len(), 1, "providers or answer fails: {report:#}");
    assert!(
        broken[0]["fix"]
            .as_str()
            .unwrap()
            .contains("opencode auth login"),
        "{report:#}"
    );
    assert_eq!(
        check(&report, "plugin")["status"],
        "warn",
        "not installed: {report:#}"
    );
    assert_eq!(
        check(&report, "hub")["details"]["startedByDoctor"],
        true,
        "{report:#}"
    );
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("warn plugin") && text.contains("fix: `orchestra install`"),
        "{text}"
    );
}

/// An empty HOME where OpenCode offers only its built-in OpenCode Zen (`opencode`, free models,
/// no key): the catalog stands for models.dev's Zen entry, with its API on a dead port of
/// 127.0.0.1 as Zen is to a machine offline. The providers line says so at warn level with the
/// fix; the answer fails; the hub line names the hub doctor started for its check.
#[tokio::test(flavor = "multi_thread")]
async fn with_only_opencode_zen_offered_it_says_so_and_names_the_hub_it_started() {
    let opencode = require_opencode();
    let home = IsolatedHome::new().unwrap();
    home.set_models_catalog(&serde_json::json!({
        "opencode": catalog_provider("opencode", "OPENCODE_API_KEY", "http://127.0.0.1:9/zen/v1"),
    }))
    .unwrap();
    let project = TestProject::new().unwrap();
    let env = env_with_main_opencode(home.env(), &opencode);

    let doctor = orchestra(&env, &project.dir, &["doctor", "--json"]);
    let running = common::hub_info(&home, &project.dir).await;
    let again = orchestra(&env, &project.dir, &["doctor", "--no-prompt"]);
    common::stop_hub(&home, &project.dir);
    let report: Value = serde_json::from_slice(&doctor.stdout).unwrap();
    assert_eq!(doctor.status.code(), Some(1), "{report:#}");

    let providers = check(&report, "providers");
    assert_eq!(providers["status"], "warn", "{report:#}");
    let summary = providers["summary"].as_str().unwrap();
    for words in [
        "no provider has a key or config",
        "OpenCode Zen",
        "opencode/fake-model",
        "needs internet",
    ] {
        assert!(summary.contains(words), "`{words}` in: {summary}");
    }
    assert!(
        providers["fix"]
            .as_str()
            .unwrap()
            .contains("opencode auth login"),
        "{providers}"
    );
    assert_eq!(providers["details"]["origins"]["opencode"], "zenFree");
    let answer = check(&report, "answer");
    assert_eq!(answer["status"], "fail", "{report:#}");
    assert!(
        answer["summary"]
            .as_str()
            .unwrap()
            .starts_with("opencode/fake-model did not answer"),
        "{answer}"
    );

    // No "not running" beside the hub doctor itself started: the line names it.
    let hub = check(&report, "hub");
    assert_eq!(hub["status"], "ok", "{hub}");
    assert_eq!(hub["details"]["startedByDoctor"], true, "{hub}");
    assert_eq!(hub["details"]["pid"], running.pid, "{hub}");
    assert_eq!(hub["details"]["url"], running.url.as_str(), "{hub}");
    let hub_summary = hub["summary"].as_str().unwrap();
    assert!(
        hub_summary.contains("doctor started it")
            && hub_summary.contains("stops by itself after 10 min")
            && !hub_summary.contains("not running (commands"),
        "{hub_summary}"
    );
    // The folder the hub made is reported as it is now, not "does not exist yet".
    let state = check(&report, "state-folder");
    assert!(
        state["summary"].as_str().unwrap().contains("is writable"),
        "{state}"
    );
    // The next doctor finds that hub running.
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains(&format!(
            "ok   hub             running (pid {}",
            running.pid
        )) && text.contains("warn providers"),
        "{text}"
    );
}
