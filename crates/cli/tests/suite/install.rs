//! `orchestra install` / `uninstall` against real files in temp dirs: what each writes, keeps and
//! removes in the user's config file. What the written entries say, and that the pinned OpenCode
//! accepts them, is in `install_content.rs`.
#![allow(clippy::unwrap_used)]

use std::fs;
use std::path::Path;

use super::cli_install::{
    Action, AgentSpec, Change, FileOutcome, InstallOptions, InstallReport, Scope, config_file_for,
    default_orchestrator_prompt, install, install_dry_run, manifest_path, uninstall,
};
use serde_json::{Value, json};

pub(super) fn options(binary: &str) -> InstallOptions {
    InstallOptions {
        orchestra_command: vec![binary.to_string(), "mcp".to_string()],
        agent: Some(AgentSpec {
            name: "orchestrator".to_string(),
            mode: "primary".to_string(),
            model: None,
            prompt: default_orchestrator_prompt().to_string(),
            color: None,
            tools: Default::default(),
            permission: Default::default(),
        }),
        commands_prefix: Some("orchestrator.".to_string()),
        // The plugin has tests of its own below; these check the config entries.
        plugin: false,
        opencode: super::cli_install::OpenCodeLine::V1,
    }
}

pub(super) const COMMAND_SUFFIXES: [&str; 7] = [
    "status",
    "models",
    "profiles",
    "workers",
    "output",
    "workflows",
    "boomerang",
];

pub(super) fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

pub(super) fn parse_jsonc(text: &str) -> Value {
    jsonc_parser::parse_to_serde_value(text, &Default::default()).unwrap()
}

fn changes_of(report: &InstallReport) -> Vec<(String, Change)> {
    report
        .changes
        .iter()
        .map(|c| (c.entry.clone(), c.change.clone()))
        .collect()
}

pub(super) fn project() -> (tempfile::TempDir, Scope) {
    let dir = tempfile::tempdir().unwrap();
    let scope = Scope::Project {
        dir: dir.path().to_path_buf(),
        state_dir: dir.path().join("state"),
    };
    (dir, scope)
}

/// A user's config in JSONC with comments, trailing commas and their own entries in all three
/// sections we touch.
const USER_JSONC: &str = r#"// my OpenCode setup
{
  "$schema": "https://opencode.ai/config.json",
  /* the model I like */
  "model": "anthropic/claude-sonnet-4",
  "mcp": {
    // search the docs
    "context7": { "type": "remote", "url": "https://mcp.context7.com/mcp" },
  },
  "agent": {
    "reviewer": {
      "description": "Reviews diffs",
      "mode": "subagent", // only as a subagent
    },
  },
  "command": {
    "test": {
      "template": "Run the tests and summarise failures.",
    },
  },
}
"#;

#[test]
fn fresh_project_gets_a_new_opencode_json_with_the_three_blocks() {
    let (dir, scope) = project();
    let report = install(&scope, &options("/opt/orchestra/bin/orchestra")).unwrap();

    let file = dir.path().join("opencode.json");
    assert_eq!(report.file, file);
    assert_eq!(report.outcome, FileOutcome::Created);
    assert!(
        report.changes.iter().all(|c| c.change == Change::Added),
        "{report}"
    );
    assert_eq!(report.changes.len(), 2 + COMMAND_SUFFIXES.len());

    // Plain JSON, not only JSONC: a new file must load anywhere.
    let config: Value = serde_json::from_str(&read(&file)).unwrap();
    assert_eq!(
        config["mcp"]["orchestra"],
        json!({"type": "local", "command": ["/opt/orchestra/bin/orchestra", "mcp"], "enabled": true})
    );
    let agent = &config["agent"]["orchestrator"];
    assert_eq!(agent["mode"], "primary");
    assert_eq!(agent["prompt"], default_orchestrator_prompt());
    assert_eq!(
        agent["tools"],
        json!({"orchestra_*": true, "bash": false, "edit": false, "write": false})
    );
    assert_eq!(agent["permission"], json!({"edit": "deny", "bash": "deny"}));
    assert!(agent.get("model").is_none() && agent.get("color").is_none());
    for suffix in COMMAND_SUFFIXES {
        let command = &config["command"][format!("orchestrator.{suffix}")];
        assert_eq!(command["agent"], "orchestrator", "{suffix}");
        assert!(
            command["template"]
                .as_str()
                .unwrap()
                .contains("orchestra_task_"),
            "{suffix}"
        );
        assert!(command["description"].is_string(), "{suffix}");
    }

    let manifest: Value = serde_json::from_str(&read(&manifest_path(&scope))).unwrap();
    assert_eq!(
        manifest_path(&scope),
        dir.path().join("state/installed.json")
    );
    assert_eq!(manifest["file"], "opencode.json");
    assert_eq!(manifest["createdFile"], true);
    assert_eq!(
        manifest["createdSections"],
        json!(["mcp", "agent", "command"])
    );
    assert_eq!(
        manifest["entries"].as_array().unwrap().len(),
        2 + COMMAND_SUFFIXES.len()
    );
}

#[test]
fn jsonc_file_keeps_comments_and_trailing_commas() {
    let (dir, scope) = project();
    let file = dir.path().join("opencode.jsonc");
    fs::write(&file, USER_JSONC).unwrap();
    // A plain opencode.json beside it loses to the .jsonc.
    fs::write(dir.path().join("opencode.json"), "{}\n").unwrap();
    assert_eq!(config_file_for(&scope), file);

    let report = install(&scope, &options("/usr/local/bin/orchestra")).unwrap();
    assert_eq!(report.outcome, FileOutcome::Updated);
    let text = read(&file);
    for kept in [
        "// my OpenCode setup\n",
        "  /* the model I like */\n",
        "    // search the docs\n",
        "    \"context7\": { \"type\": \"remote\", \"url\": \"https://mcp.context7.com/mcp\" },\n",
        "      \"mode\": \"subagent\", // only as a subagent\n",
    ] {
        assert!(text.contains(kept), "lost {kept:?} in:\n{text}");
    }
    // Our entries follow the file's trailing-comma habit.
    assert!(text.contains("\"enabled\": true,\n"), "{text}");
    assert_eq!(read(&dir.path().join("opencode.json")), "{}\n");

    let config = parse_jsonc(&text);
    assert_eq!(config["model"], "anthropic/claude-sonnet-4");
    assert_eq!(config["mcp"]["context7"]["type"], "remote");
    assert_eq!(
        config["mcp"]["orchestra"]["command"],
        json!(["/usr/local/bin/orchestra", "mcp"])
    );
    assert_eq!(config["agent"]["reviewer"]["mode"], "subagent");
    assert_eq!(config["agent"]["orchestrator"]["mode"], "primary");
    assert_eq!(
        config["command"]["test"]["template"],
        "Run the tests and summarise failures."
    );
    assert!(config["command"]["orchestrator.boomerang"].is_object());
    // Key order: the user's keys first, as they were.
    let keys: Vec<&String> = config["mcp"].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 2);
}

#[test]
fn installing_twice_leaves_the_file_byte_identical() {
    let (dir, scope) = project();
    let file = dir.path().join("opencode.jsonc");
    fs::write(&file, USER_JSONC).unwrap();
    install(&scope, &options("/bin/orchestra")).unwrap();
    let first = fs::read(&file).unwrap();
    let first_manifest = fs::read(manifest_path(&scope)).unwrap();

    let again = install(&scope, &options("/bin/orchestra")).unwrap();
    assert_eq!(again.outcome, FileOutcome::Unchanged);
    assert!(
        again.changes.iter().all(|c| c.change == Change::Unchanged),
        "{again}"
    );
    assert_eq!(fs::read(&file).unwrap(), first);
    assert_eq!(fs::read(manifest_path(&scope)).unwrap(), first_manifest);
    assert!(again.to_string().contains("already up to date"));
}

#[test]
fn a_new_binary_path_updates_only_the_mcp_command() {
    let (dir, scope) = project();
    install(&scope, &options("/old/orchestra")).unwrap();
    let file = dir.path().join("opencode.json");
    let before = read(&file);

    let report = install(&scope, &options("/new/orchestra")).unwrap();
    assert_eq!(report.outcome, FileOutcome::Updated);
    for (entry, change) in changes_of(&report) {
        if entry == "mcp.orchestra" {
            assert_eq!(change, Change::Updated(vec!["command".to_string()]));
        } else {
            assert_eq!(change, Change::Unchanged, "{entry}");
        }
    }
    let after = read(&file);
    let differing: Vec<(&str, &str)> = before
        .lines()
        .zip(after.lines())
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(
        differing,
        [(
            "      \"command\": [\"/old/orchestra\", \"mcp\"],",
            "      \"command\": [\"/new/orchestra\", \"mcp\"],"
        )]
    );
    assert_eq!(before.lines().count(), after.lines().count());
}

#[test]
fn uninstall_restores_the_original_bytes_when_all_sections_existed() {
    let (dir, scope) = project();
    let file = dir.path().join("opencode.jsonc");
    fs::write(&file, USER_JSONC).unwrap();
    install(&scope, &options("/bin/orchestra")).unwrap();

    let report = uninstall(&scope).unwrap();
    assert_eq!(report.outcome, FileOutcome::Updated);
    assert!(
        report.changes.iter().all(|c| c.change == Change::Removed),
        "{report}"
    );
    assert_eq!(read(&file), USER_JSONC);
    assert!(!manifest_path(&scope).exists());
    assert!(!dir.path().join(".opencode").exists());

    let again = uninstall(&scope).unwrap();
    assert_eq!(again.outcome, FileOutcome::NotInstalled);
    assert!(again.to_string().contains("nothing to uninstall"));
}

#[test]
fn uninstall_removes_the_sections_it_created_and_keeps_user_entries_added_later() {
    let (dir, scope) = project();
    let file = dir.path().join("opencode.json");
    let original = "{\n  // mine\n  \"$schema\": \"https://opencode.ai/config.json\"\n}\n";
    fs::write(&file, original).unwrap();
    install(&scope, &options("/bin/orchestra")).unwrap();

    // Without later edits, taking out what we created gives the original back.
    uninstall(&scope).unwrap();
    assert_eq!(read(&file), original);

    // The user adds their own entries to the objects we created.
    install(&scope, &options("/bin/orchestra")).unwrap();
    let edited = read(&file)
        .replacen(
            "\"mcp\": {\n",
            "\"mcp\": {\n    \"mine\": { \"type\": \"local\", \"command\": [\"mine\"] },\n",
            1,
        )
        .replacen(
            "\"agent\": {\n",
            "\"agent\": {\n    \"helper\": { \"mode\": \"subagent\" },\n",
            1,
        )
        .replacen(
            "\"command\": {\n",
            "\"command\": {\n    \"hello\": { \"template\": \"hi\" },\n",
            1,
        );
    fs::write(&file, &edited).unwrap();

    uninstall(&scope).unwrap();
    let config = parse_jsonc(&read(&file));
    assert_eq!(
        config,
        json!({
            "$schema": "https://opencode.ai/config.json",
            "mcp": {"mine": {"type": "local", "command": ["mine"]}},
            "agent": {"helper": {"mode": "subagent"}},
            "command": {"hello": {"template": "hi"}},
        })
    );
    assert!(read(&file).contains("// mine"));
}

#[test]
fn uninstall_after_a_fresh_install_deletes_the_created_file() {
    let (dir, scope) = project();
    install(&scope, &options("/bin/orchestra")).unwrap();
    let report = uninstall(&scope).unwrap();
    assert_eq!(report.outcome, FileOutcome::Deleted);
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn uninstall_removes_our_entries_even_after_the_user_edited_them() {
    let (dir, scope) = project();
    let file = dir.path().join("opencode.jsonc");
    fs::write(&file, USER_JSONC).unwrap();
    install(&scope, &options("/bin/orchestra")).unwrap();
    let edited = read(&file).replace(
        "\"enabled\": true,",
        "\"enabled\": false, \"timeout\": 5000,",
    );
    fs::write(&file, edited).unwrap();

    uninstall(&scope).unwrap();
    let config = parse_jsonc(&read(&file));
    assert!(config["mcp"].get("orchestra").is_none());
    assert!(config["agent"].get("orchestrator").is_none());
    assert_eq!(config["command"].as_object().unwrap().len(), 1);
}

#[test]
fn reinstall_keeps_fields_the_user_added_to_our_entry() {
    let (dir, scope) = project();
    install(&scope, &options("/bin/orchestra")).unwrap();
    let file = dir.path().join("opencode.json");
    fs::write(
        &file,
        read(&file).replace(
            "\"enabled\": true",
            "\"enabled\": true,\n      \"timeout\": 5000",
        ),
    )
    .unwrap();
    let edited = read(&file);

    let report = install(&scope, &options("/bin/orchestra")).unwrap();
    assert_eq!(report.outcome, FileOutcome::Unchanged);
    assert_eq!(read(&file), edited);
}

#[test]
fn switching_agent_and_commands_off_removes_them() {
    let (dir, scope) = project();
    install(&scope, &options("/bin/orchestra")).unwrap();
    let mut opts = options("/bin/orchestra");
    opts.agent = None;
    opts.commands_prefix = None;

    let report = install(&scope, &opts).unwrap();
    let removed = changes_of(&report)
        .into_iter()
        .filter(|(_, c)| *c == Change::Removed)
        .count();
    assert_eq!(removed, 1 + COMMAND_SUFFIXES.len());
    let config = parse_jsonc(&read(&dir.path().join("opencode.json")));
    assert_eq!(
        config,
        json!({"mcp": {"orchestra": {"type": "local", "command": ["/bin/orchestra", "mcp"], "enabled": true}}})
    );
    let manifest: Value = serde_json::from_str(&read(&manifest_path(&scope))).unwrap();
    assert_eq!(manifest["createdSections"], json!(["mcp"]));
}

#[test]
fn a_new_prefix_and_model_replace_the_old_entries() {
    let (dir, scope) = project();
    install(&scope, &options("/bin/orchestra")).unwrap();
    let mut opts = options("/bin/orchestra");
    opts.commands_prefix = Some("orch-".to_string());
    if let Some(agent) = opts.agent.as_mut() {
        agent.model = Some("anthropic/claude-opus-4".to_string());
        agent.color = Some("#ff8800".to_string());
    }
    let report = install(&scope, &opts).unwrap();
    assert!(changes_of(&report).contains(&(
        "agent.orchestrator".to_string(),
        Change::Updated(vec!["model".to_string(), "color".to_string()])
    )));
    let config = parse_jsonc(&read(&dir.path().join("opencode.json")));
    let names: Vec<&String> = config["command"].as_object().unwrap().keys().collect();
    assert_eq!(names.len(), COMMAND_SUFFIXES.len());
    assert!(
        names.iter().all(|name| name.starts_with("orch-")),
        "{names:?}"
    );
    assert_eq!(
        config["agent"]["orchestrator"]["model"],
        "anthropic/claude-opus-4"
    );

    // And back: the managed fields that are no longer wanted go.
    install(&scope, &options("/bin/orchestra")).unwrap();
    let config = parse_jsonc(&read(&dir.path().join("opencode.json")));
    assert!(config["agent"]["orchestrator"].get("model").is_none());
    assert!(config["agent"]["orchestrator"].get("color").is_none());
}

#[test]
fn an_unparseable_file_is_an_error_and_stays_untouched() {
    let (dir, scope) = project();
    let file = dir.path().join("opencode.json");
    let broken = "{\n  \"model\": \"a/b\"\n  \"mcp\": {}\n}\n";
    fs::write(&file, broken).unwrap();

    let err = install(&scope, &options("/bin/orchestra"))
        .unwrap_err()
        .to_string();
    assert!(err.contains(&file.display().to_string()), "{err}");
    // The missing comma is noticed at the end of line 2.
    assert!(
        err.contains("line 2") && err.contains("Expected comma"),
        "{err}"
    );
    assert!(err.contains("not changed"), "{err}");
    assert_eq!(read(&file), broken);
    assert!(!manifest_path(&scope).exists());

    // Things OpenCode would not load either are refused too, rather than edited.
    fs::write(&file, "{ 'model': 'a/b' }").unwrap();
    assert!(install(&scope, &options("/bin/orchestra")).is_err());
    fs::write(&file, "[1, 2]").unwrap();
    let err = install(&scope, &options("/bin/orchestra"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("top level"), "{err}");
    assert_eq!(read(&file), "[1, 2]");
}

#[test]
fn uninstall_refuses_to_touch_a_file_that_no_longer_parses() {
    let (dir, scope) = project();
    install(&scope, &options("/bin/orchestra")).unwrap();
    let file = dir.path().join("opencode.json");
    let broken = read(&file).replacen('{', "{ oops", 1);
    fs::write(&file, &broken).unwrap();
    assert!(uninstall(&scope).is_err());
    assert_eq!(read(&file), broken);
    assert!(
        manifest_path(&scope).exists(),
        "the record is kept for a later uninstall"
    );
}

#[test]
fn a_foreign_mcp_orchestra_is_refused() {
    let (dir, scope) = project();
    let file = dir.path().join("opencode.json");
    let foreign = "{\n  \"mcp\": {\n    \"orchestra\": { \"type\": \"remote\", \"url\": \"https://example.test\" }\n  }\n}\n";
    fs::write(&file, foreign).unwrap();

    let err = install(&scope, &options("/bin/orchestra"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("`mcp.orchestra`"), "{err}");
    assert!(err.contains("Nothing was changed"), "{err}");
    assert_eq!(read(&file), foreign);
    assert!(!manifest_path(&scope).exists());
}

#[test]
fn a_foreign_entry_equal_to_ours_is_adopted() {
    let (dir, scope) = project();
    install(&scope, &options("/bin/orchestra")).unwrap();
    // The record is lost, the entries stay.
    fs::remove_file(manifest_path(&scope)).unwrap();
    let file = dir.path().join("opencode.json");
    let before = read(&file);

    let report = install(&scope, &options("/bin/orchestra")).unwrap();
    assert_eq!(report.outcome, FileOutcome::Unchanged);
    assert_eq!(read(&file), before);
    assert!(manifest_path(&scope).exists());

    // A differing agent of the same name is someone else's.
    fs::remove_file(manifest_path(&scope)).unwrap();
    let mut opts = options("/bin/orchestra");
    if let Some(agent) = opts.agent.as_mut() {
        agent.prompt = "something else".to_string();
    }
    let err = install(&scope, &opts).unwrap_err().to_string();
    assert!(
        err.contains("`agent.orchestrator`") && err.contains("agent.name"),
        "{err}"
    );
}

#[test]
fn global_scope_keeps_its_record_beside_the_config() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join(".config/opencode");
    let scope = Scope::Global(dir.clone());
    let report = install(&scope, &options("/bin/orchestra")).unwrap();
    assert_eq!(report.file, dir.join("opencode.json"));
    assert_eq!(report.manifest, dir.join("orchestra-installed.json"));
    assert!(report.manifest.exists());
    assert_eq!(uninstall(&scope).unwrap().outcome, FileOutcome::Deleted);
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
}

#[test]
fn windows_line_endings_and_tabs_are_kept() {
    let (dir, scope) = project();
    let file = dir.path().join("opencode.json");
    let original = "{\r\n\t\"mcp\": {\r\n\t\t\"a\": { \"type\": \"local\", \"command\": [\"a\"] }\r\n\t}\r\n}\r\n";
    fs::write(&file, original).unwrap();
    install(&scope, &options("/bin/orchestra")).unwrap();
    let text = read(&file);
    assert!(
        !text.replace("\r\n", "").contains('\n'),
        "a bare LF slipped in"
    );
    assert!(
        text.contains("\r\n\t\t\"orchestra\": {\r\n\t\t\t\"type\": \"local\","),
        "{text}"
    );
    uninstall(&scope).unwrap();
    assert_eq!(read(&file), original);
}

#[cfg(unix)]
#[test]
fn file_permissions_survive_the_atomic_write() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, scope) = project();
    let file = dir.path().join("opencode.json");
    fs::write(&file, "{}\n").unwrap();
    fs::set_permissions(&file, fs::Permissions::from_mode(0o600)).unwrap();
    install(&scope, &options("/bin/orchestra")).unwrap();
    assert_eq!(
        fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_dry_run_reports_the_same_changes_and_writes_nothing() {
    let (dir, scope) = project();
    let file = dir.path().join("opencode.jsonc");
    fs::write(&file, USER_JSONC).unwrap();
    let planned = install_dry_run(&scope, &options("/bin/orchestra")).unwrap();
    assert_eq!(planned.action, Action::InstallDryRun);
    assert_eq!(planned.outcome, FileOutcome::Updated);
    assert!(
        planned
            .to_string()
            .starts_with("dry run, nothing written: would update"),
        "{planned}"
    );
    assert!(
        planned.to_string().contains("  add        mcp.orchestra\n"),
        "{planned}"
    );
    assert_eq!(read(&file), USER_JSONC);
    assert!(!dir.path().join(".opencode").exists());

    let done = install(&scope, &options("/bin/orchestra")).unwrap();
    assert_eq!(done.action, Action::Install);
    assert_eq!(done.changes, planned.changes);
    assert!(
        done.to_string().contains("  added      mcp.orchestra\n"),
        "{done}"
    );

    // Nothing is created for a global dir that does not exist yet either.
    let home = tempfile::tempdir().unwrap();
    let global = Scope::Global(home.path().join("opencode"));
    assert_eq!(
        install_dry_run(&global, &options("/bin/orchestra"))
            .unwrap()
            .outcome,
        FileOutcome::Created
    );
    assert!(!home.path().join("opencode").exists());
}

#[test]
fn sections_we_create_follow_the_files_trailing_comma_habit() {
    let (dir, scope) = project();
    let file = dir.path().join("opencode.jsonc");
    fs::write(&file, "{\n  \"model\": \"a/b\",\n}\n").unwrap();
    install(&scope, &options("/bin/orchestra")).unwrap();
    let text = read(&file);
    // Every multi-line object closes after a comma; `{` lines and one-line arrays are exempt.
    let lines: Vec<&str> = text.lines().collect();
    for pair in lines.windows(2) {
        if pair[1].trim_start().starts_with('}') {
            assert!(
                pair[0].ends_with(',') || pair[0].ends_with('{'),
                "no trailing comma before {:?} in:\n{text}",
                pair[1]
            );
        }
    }
    assert_eq!(uninstall(&scope).unwrap().action, Action::Uninstall);
    assert_eq!(read(&file), "{\n  \"model\": \"a/b\",\n}\n");
}

#[test]
fn an_empty_command_is_refused() {
    let (_dir, scope) = project();
    let mut opts = options("x");
    opts.orchestra_command.clear();
    assert!(install(&scope, &opts).is_err());
}
