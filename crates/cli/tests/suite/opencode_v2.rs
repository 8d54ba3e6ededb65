//! OpenCode 2.x (`@opencode/cli`): the plugin module's shape (node imports it and finds what
//! both lines read), the config `orchestra install --opencode v2` writes and `uninstall` takes
//! back. The real 2.x as the main OpenCode is `opencode_v2_main.rs`.
#![allow(clippy::unwrap_used)]

use super::common;

use std::path::Path;
use std::process::Command;

use orchestra_testkit::opencode::{IsolatedHome, TestProject};
use serde_json::{Value, json};

fn orchestra(home: &IsolatedHome, project: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(args)
        .arg("--project")
        .arg(project)
        .envs(home.env())
        .output()
        .unwrap()
}

fn ok_json(output: std::process::Output) -> Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

fn plugin_file_of(report: &Value) -> String {
    report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["entry"].as_str().unwrap())
        .find(|entry| entry.ends_with(".js"))
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_plugin_module_loads_in_node_with_the_shape_both_lines_read() {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let report = ok_json(orchestra(
        &home,
        &project.dir,
        &["install", "--json", "--opencode", "v2"],
    ));
    let file = plugin_file_of(&report);
    // What 2.x (2.1.2) does with it: import, decode `default` as { id, setup }, call setup(ctx)
    // (`location.directory` is the project; `options` the config's plugin options) with the
    // hooks 2.1.2 offers, and later run the `context` hook for a model step. The hook finds the
    // project's hub (the plugin starts it) and must leave only text parts in the system prompt.
    let script = r#"
const m = await import(process.argv[1]);
const hooks = {};
const hook = (scope) => async (name, fn) => { hooks[`${scope}.${name}`] = fn; };
const events = { async *[Symbol.asyncIterator]() {} };
const ctx = {
  location: { directory: process.argv[2] }, options: {},
  session: { hook: hook("session"), synthetic: async () => ({}) },
  tool: { hook: hook("tool") },
  event: { subscribe: () => events },
};
await m.default.setup(ctx);
const evt = { sessionID: "ses_doctor", system: [] };
await hooks["session.context"](evt);
console.log(JSON.stringify({
  exports: Object.keys(m).sort(), id: m.default.id, sameServer: m.default.server === m.OpenOrchestra,
  setup: typeof m.default.setup, hooks: Object.keys(hooks).sort(), systemTypes: [...new Set(evt.system.map((p) => p.type))],
}));
process.exit(0);
"#;
    let output = tokio::task::spawn_blocking({
        let env = home.env();
        let dir = project.dir.clone();
        move || {
            Command::new("node")
                .args(["--input-type=module", "-e", script, &file])
                .arg(&dir)
                .envs(env)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    common::stop_hub(&home, &project.dir);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shape: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        shape,
        json!({"exports": ["OpenOrchestra", "default"], "id": "open-orchestra", "sameServer": true,
               "setup": "function",
               "hooks": ["session.compaction", "session.context", "session.prompt",
                         "tool.execute.after", "tool.execute.before"],
               "systemTypes": shape["systemTypes"].clone()})
    );
    assert!(
        shape["systemTypes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t == "text"),
        "{shape}"
    );
}

#[test]
fn install_for_v2_writes_plugins_and_uninstall_takes_exactly_that_back() {
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let original = "{\n  // mine\n  \"plugins\": [\"./my-plugin.ts\"]\n}\n";
    project.write("opencode.json", original).unwrap();
    let config = || -> Value {
        jsonc_parser::parse_to_serde_value(
            &std::fs::read_to_string(project.dir.join("opencode.json")).unwrap(),
            &Default::default(),
        )
        .unwrap()
    };

    let report = ok_json(orchestra(
        &home,
        &project.dir,
        &["install", "--json", "--opencode", "v2"],
    ));
    // 2.1.2 refuses a file in `plugins` ("configured plugin path must be a directory") and
    // loads a folder's index.js.
    let v2_file = plugin_file_of(&report);
    let v2_folder = Path::new(&v2_file).parent().unwrap().to_owned();
    assert!(v2_file.ends_with("/index.js"), "{v2_file}");
    let config_v2 = config();
    assert_eq!(
        config_v2["plugins"],
        json!(["./my-plugin.ts", v2_folder.display().to_string()])
    );
    assert!(
        config_v2.get("plugin").is_none(),
        "no V1 key for 2.x: {config_v2}"
    );
    assert_eq!(config_v2["mcp"]["orchestra"]["command"][1], "mcp");
    assert_eq!(config_v2["agent"]["orchestrator"]["mode"], "primary");

    // The same project moved back to 1.x: the entry moves from `plugins` to `plugin`, as a
    // file, and 2.x's folder goes.
    let report = ok_json(orchestra(
        &home,
        &project.dir,
        &["install", "--json", "--opencode", "v1"],
    ));
    let v1_file = plugin_file_of(&report);
    let config_v1 = config();
    assert_eq!(config_v1["plugins"], json!(["./my-plugin.ts"]));
    assert_eq!(config_v1["plugin"], json!([v1_file]));
    assert!(Path::new(&v1_file).is_file());
    assert!(!v2_folder.exists(), "the 2.x folder was left behind");

    ok_json(orchestra(
        &home,
        &project.dir,
        &["install", "--json", "--opencode", "v2"],
    ));
    assert!(
        !Path::new(&v1_file).exists(),
        "the 1.x file was left behind"
    );
    ok_json(orchestra(&home, &project.dir, &["uninstall", "--json"]));
    assert_eq!(
        std::fs::read_to_string(project.dir.join("opencode.json")).unwrap(),
        original
    );
    assert!(!v2_folder.exists());
}
