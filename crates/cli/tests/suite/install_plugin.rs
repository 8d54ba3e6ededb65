//! `orchestra install` / `uninstall` and the OpenCode plugin, against real files in temp dirs:
//! the plugin file goes beside the install record (outside the project), its absolute path
//! into the config's `plugin` list, and uninstall takes out exactly those two. That the pinned
//! OpenCode loads what install writes is shown by `suite/plugin.rs`, whose OpenCode is set up
//! by `orchestra install` alone.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::{Path, PathBuf};

use super::cli_install::{
    Change, FileOutcome, InstallOptions, InstallReport, Scope, install, install_dry_run,
    manifest_path, uninstall,
};
use serde_json::Value;

fn options(binary: &str, plugin: bool) -> InstallOptions {
    InstallOptions {
        orchestra_command: vec![binary.to_string(), "mcp".to_string()],
        agent: None,
        commands_prefix: None,
        plugin,
        opencode: super::cli_install::OpenCodeLine::V1,
    }
}

fn project() -> (tempfile::TempDir, Scope) {
    let dir = tempfile::tempdir().unwrap();
    let scope = Scope::Project {
        dir: dir.path().join("repo"),
        state_dir: dir.path().join("state"),
    };
    fs::create_dir_all(dir.path().join("repo")).unwrap();
    (dir, scope)
}

fn config(dir: &Path) -> Value {
    let text = fs::read_to_string(dir.join("repo/opencode.json")).unwrap();
    jsonc_parser::parse_to_serde_value::<Value>(&text, &Default::default()).unwrap()
}

fn plugin_file(scope: &Scope) -> PathBuf {
    manifest_path(scope)
        .parent()
        .unwrap()
        .join("orchestra-opencode-plugin-v1.js")
}

fn change_of(report: &InstallReport, entry_prefix: &str) -> Change {
    report
        .changes
        .iter()
        .find(|c| c.entry.starts_with(entry_prefix))
        .unwrap_or_else(|| panic!("no change for {entry_prefix}: {:?}", report.changes))
        .change
        .clone()
}

#[test]
fn install_writes_the_plugin_outside_the_project_and_names_it_in_the_plugin_list() {
    let (dir, scope) = project();
    let report = install(&scope, &options("/opt/orchestra/bin/orchestra", true)).unwrap();
    let file = plugin_file(&scope);
    assert!(file.starts_with(dir.path().join("state")), "{file:?}");
    assert_eq!(change_of(&report, "plugin["), Change::Added);
    let text = fs::read_to_string(&file).unwrap();
    assert!(text.contains(r#"const ORCHESTRA = "/opt/orchestra/bin/orchestra";"#));
    assert!(text.contains(&format!("orchestra {}", env!("CARGO_PKG_VERSION"))));
    let config = config(dir.path());
    assert_eq!(
        config["plugin"],
        serde_json::json!([file.display().to_string()])
    );
    // Nothing under the project but the config: no `.opencode/` folder.
    let names: Vec<String> = fs::read_dir(dir.path().join("repo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["opencode.json"]);

    // Twice: nothing changes, byte for byte.
    let before = fs::read_to_string(dir.path().join("repo/opencode.json")).unwrap();
    let again = install(&scope, &options("/opt/orchestra/bin/orchestra", true)).unwrap();
    assert_eq!(again.outcome, FileOutcome::Unchanged, "{:?}", again.changes);
    assert_eq!(
        fs::read_to_string(dir.path().join("repo/opencode.json")).unwrap(),
        before
    );
}

#[test]
fn uninstall_removes_exactly_our_plugin_and_keeps_the_users() {
    let (dir, scope) = project();
    fs::write(
        dir.path().join("repo/opencode.json"),
        "{\n  // mine\n  \"plugin\": [\"opencode-wakatime\"],\n}\n",
    )
    .unwrap();
    install(&scope, &options("/bin/orchestra", true)).unwrap();
    let file = plugin_file(&scope);
    assert_eq!(
        config(dir.path())["plugin"],
        serde_json::json!(["opencode-wakatime", file.display().to_string()])
    );
    let report = uninstall(&scope).unwrap();
    assert_eq!(change_of(&report, "plugin["), Change::Removed);
    assert!(!file.exists(), "the plugin file is gone");
    assert_eq!(
        fs::read_to_string(dir.path().join("repo/opencode.json")).unwrap(),
        "{\n  // mine\n  \"plugin\": [\"opencode-wakatime\"],\n}\n"
    );
}

#[test]
fn a_list_we_created_goes_with_our_plugin_and_no_plugin_takes_it_out() {
    let (dir, scope) = project();
    fs::write(dir.path().join("repo/opencode.json"), "{}\n").unwrap();
    install(&scope, &options("/bin/orchestra", true)).unwrap();
    assert!(plugin_file(&scope).exists());

    // `install --no-plugin` after an install: our entry (and the list we made) goes.
    let dry = install_dry_run(&scope, &options("/bin/orchestra", false)).unwrap();
    assert_eq!(change_of(&dry, "plugin["), Change::Removed);
    install(&scope, &options("/bin/orchestra", false)).unwrap();
    assert!(config(dir.path()).get("plugin").is_none());

    install(&scope, &options("/bin/orchestra", true)).unwrap();
    uninstall(&scope).unwrap();
    assert!(!plugin_file(&scope).exists());
    assert_eq!(
        fs::read_to_string(dir.path().join("repo/opencode.json")).unwrap(),
        "{}\n"
    );
}

#[test]
fn a_plugin_key_that_is_not_a_list_is_refused_untouched() {
    let (dir, scope) = project();
    let original = "{\"plugin\": \"oops\"}\n";
    fs::write(dir.path().join("repo/opencode.json"), original).unwrap();
    let err = install(&scope, &options("/bin/orchestra", true)).unwrap_err();
    assert!(err.to_string().contains("not a list"), "{err:#}");
    assert_eq!(
        fs::read_to_string(dir.path().join("repo/opencode.json")).unwrap(),
        original
    );
    assert!(!plugin_file(&scope).exists());
}

#[test]
fn a_new_binary_rewrites_the_plugin_file() {
    let (_dir, scope) = project();
    install(&scope, &options("/old/orchestra", true)).unwrap();
    let report = install(&scope, &options("/new/orchestra", true)).unwrap();
    assert!(
        matches!(change_of(&report, "/"), Change::Updated(_)),
        "{:?}",
        report.changes
    );
    let text = fs::read_to_string(plugin_file(&scope)).unwrap();
    assert!(text.contains("\"/new/orchestra\"") && !text.contains("/old/"));
}
