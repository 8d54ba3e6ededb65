//! OpenCode 2.x (`@opencode/cli`): the plugin module's shape (node imports it and finds what
//! both lines read), the config `orchestra install --opencode v2` writes and `uninstall` takes
//! back, and an end-to-end check that runs only where a V2 binary is given
//! (`ORCHESTRA_OPENCODE_V2_BIN`; this machine's registry has no `@opencode/*` package).
#![allow(clippy::unwrap_used)]

use super::common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

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
    // What 2.x does with it: import, decode `default` as { id, setup }, call setup(ctx), and
    // later run the `context` hook for a model step. The hook finds the project's hub (the
    // plugin starts it) and must leave only text parts in the system prompt.
    let script = r#"
const m = await import(process.argv[1]);
const hooks = {};
const ctx = { options: { directory: process.argv[2] }, session: { hook: async (name, fn) => { hooks[name] = fn; } } };
await m.default.setup(ctx);
const evt = { sessionID: "ses_doctor", system: [] };
await hooks.context(evt);
console.log(JSON.stringify({
  exports: Object.keys(m).sort(), id: m.default.id, sameServer: m.default.server === m.OpenOrchestra,
  setup: typeof m.default.setup, hooks: Object.keys(hooks), systemTypes: [...new Set(evt.system.map((p) => p.type))],
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
               "setup": "function", "hooks": ["context"], "systemTypes": shape["systemTypes"].clone()})
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

    let report = ok_json(orchestra(
        &home,
        &project.dir,
        &["install", "--json", "--opencode", "v2"],
    ));
    let file = plugin_file_of(&report);
    let config: Value = jsonc_parser::parse_to_serde_value(
        &std::fs::read_to_string(project.dir.join("opencode.json")).unwrap(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(config["plugins"], json!(["./my-plugin.ts", file]));
    assert!(
        config.get("plugin").is_none(),
        "no V1 key for 2.x: {config}"
    );
    assert_eq!(config["mcp"]["orchestra"]["command"][1], "mcp");
    assert_eq!(config["agent"]["orchestrator"]["mode"], "primary");

    // The same project moved back to 1.x: the entry moves from `plugins` to `plugin`.
    ok_json(orchestra(
        &home,
        &project.dir,
        &["install", "--json", "--opencode", "v1"],
    ));
    let config: Value = jsonc_parser::parse_to_serde_value(
        &std::fs::read_to_string(project.dir.join("opencode.json")).unwrap(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(config["plugins"], json!(["./my-plugin.ts"]));
    assert_eq!(config["plugin"], json!([file]));

    ok_json(orchestra(
        &home,
        &project.dir,
        &["install", "--json", "--opencode", "v2"],
    ));
    ok_json(orchestra(&home, &project.dir, &["uninstall", "--json"]));
    assert_eq!(
        std::fs::read_to_string(project.dir.join("opencode.json")).unwrap(),
        original
    );
    assert!(!Path::new(&file).exists());
}

/// Needs an OpenCode 2.x binary: `ORCHESTRA_OPENCODE_V2_BIN=/path/to/opencode`.
#[tokio::test(flavor = "multi_thread")]
async fn opencode_v2_lists_the_installed_plugin() {
    let Some(v2) = std::env::var_os("ORCHESTRA_OPENCODE_V2_BIN").filter(|v| !v.is_empty()) else {
        // Straight to stderr, past the test harness's capture, so the skip shows in every run.
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "DID NOT RUN: opencode_v2_lists_the_installed_plugin needs an OpenCode 2.x binary in \
             ORCHESTRA_OPENCODE_V2_BIN (this machine's registry has no @opencode/cli)"
        );
        return;
    };
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let mut env = home.env_with_plugins();
    let dir = Path::new(&v2).parent().unwrap().display().to_string();
    env.push((
        "PATH".into(),
        format!("{dir}:{}", std::env::var("PATH").unwrap_or_default()),
    ));
    let install = Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args(["install", "--json", "--project"])
        .arg(&project.dir)
        .envs(env.clone())
        .output()
        .unwrap();
    let report = ok_json(install);
    assert!(
        report["changes"].to_string().contains("plugins["),
        "install detected 2.x from `opencode --version`: {report}"
    );
    let mut server = tokio::process::Command::new(&v2)
        .args(["serve", "--hostname", "127.0.0.1", "--port", "0"])
        .current_dir(&project.dir)
        .envs(env)
        .env("OPENCODE_SERVER_PASSWORD", "v2-secret")
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    use tokio::io::AsyncBufReadExt;
    let mut lines = tokio::io::BufReader::new(server.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(at) = line.find("http://") {
                return line[at..].trim().to_owned();
            }
        }
        panic!("opencode serve ended without a URL");
    })
    .await
    .unwrap();
    let plugins = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("{url}/api/plugin"))
        .basic_auth("opencode", Some("v2-secret"))
        .header("x-opencode-directory", project.dir.display().to_string())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = server.kill().await;
    common::stop_hub(&home, &project.dir);
    assert!(plugins.contains("open-orchestra"), "{plugins}");
}
