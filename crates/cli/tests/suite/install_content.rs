//! What `orchestra install` writes, as its readers see it: the command templates name real
//! tools, views and the boomerang workflow; the orchestrator prompt explains the async contract;
//! and the pinned OpenCode loads the installed config (agent, commands and MCP entry in its API).
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::cli_install::{Scope, default_orchestrator_prompt, install};
use super::install::{COMMAND_SUFFIXES, options, parse_jsonc, project, read};
use orchestra_protocol::ListView;
use serde_json::{Value, json};

#[test]
fn command_templates_name_real_tools_views_and_the_boomerang_workflow() {
    let (dir, scope) = project();
    install(&scope, &options("/bin/orchestra")).unwrap();
    let config = parse_jsonc(&read(&dir.path().join("opencode.json")));
    for suffix in COMMAND_SUFFIXES {
        let template = config["command"][format!("orchestrator.{suffix}")]["template"]
            .as_str()
            .unwrap();
        if suffix == "boomerang" {
            for needed in [
                "`orchestra_task_start`",
                "\"kind\": \"workflow\"",
                "\"workflowId\": \"roocode-boomerang\"",
                "\"task\": \"$ARGUMENTS\"",
                "`orchestra_task_await`",
                "\"running\"",
            ] {
                assert!(
                    template.contains(needed),
                    "{needed} missing from {template}"
                );
            }
            continue;
        }
        assert!(template.contains("`orchestra_task_list`"), "{template}");
        let view = template
            .split("\"view\": \"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert_eq!(view, suffix);
        let parsed: ListView = serde_json::from_value(json!(view)).unwrap();
        assert_eq!(serde_json::to_value(parsed).unwrap(), json!(suffix));
    }
}

#[test]
fn the_orchestrator_prompt_explains_the_async_contract_and_the_workers() {
    let prompt = default_orchestrator_prompt();
    for tool in [
        "task_start",
        "task_await",
        "task_peek",
        "task_cancel",
        "task_list",
    ] {
        assert!(prompt.contains(&format!("`orchestra_{tool}`")), "{tool}");
    }
    for worker in ["coder", "architect", "explorer", "docs", "vision", "memory"] {
        assert!(prompt.contains(&format!("- {worker}:")), "{worker}");
    }
    assert!(prompt.contains("45"));
    assert!(prompt.contains("\"running\""));
}

/// The pinned OpenCode loads a project config written by install: the agent, the commands and
/// the MCP entry all appear in its API.
#[tokio::test]
async fn opencode_accepts_the_installed_config() {
    let opencode = orchestra_testkit::opencode::require_opencode();
    let home = orchestra_testkit::opencode::IsolatedHome::new().unwrap();
    let project = orchestra_testkit::opencode::TestProject::new().unwrap();
    let scope = Scope::Project {
        dir: project.dir.clone(),
        state_dir: project.dir.join("orchestra-state"),
    };
    // `false` exits at once: OpenCode records the MCP server as failed, which is enough here
    // and starts nothing of ours.
    let mut opts = options("false");
    opts.orchestra_command.truncate(1);
    install(&scope, &opts).unwrap();

    let provider = orchestra_testkit::opencode::fake_provider_config("http://127.0.0.1:9/v1");
    let server = Server::start(&opencode, &project.dir, &home.env(), &provider.to_string()).await;
    let agents = server.get("/agent").await;
    let orchestrator = agents
        .as_array()
        .unwrap()
        .iter()
        .find(|agent| agent["name"] == "orchestrator")
        .unwrap_or_else(|| panic!("no orchestrator agent in {agents}"));
    assert_eq!(orchestrator["mode"], "primary");
    let commands = server.get("/command").await;
    for suffix in COMMAND_SUFFIXES {
        let name = format!("orchestrator.{suffix}");
        let found = commands
            .as_array()
            .unwrap()
            .iter()
            .any(|command| command["name"] == name.as_str());
        assert!(found, "{name} missing from /command");
    }
    let config = server.get("/config").await;
    assert_eq!(config["mcp"]["orchestra"]["type"], "local");
    assert_eq!(
        config["agent"]["orchestrator"]["tools"]["orchestra_*"],
        true
    );
}

const PASSWORD: &str = "install-test";

/// `opencode serve` in its own process group, killed by that group's id on drop.
struct Server {
    child: std::process::Child,
    base: String,
    http: reqwest::Client,
}

impl Server {
    async fn start(opencode: &Path, dir: &Path, env: &[(String, String)], config: &str) -> Server {
        use std::os::unix::process::CommandExt;
        let mut child = Command::new(opencode)
            .args(["serve", "--port", "0", "--hostname", "127.0.0.1"])
            .current_dir(dir)
            .env("PWD", dir)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("OPENCODE_CONFIG_CONTENT", config)
            .env("OPENCODE_SERVER_PASSWORD", PASSWORD)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Owned from here on, so that a failed assertion below still kills the group.
        let mut server = Server {
            child,
            base: String::new(),
            http: reqwest::Client::new(),
        };
        let (sender, receiver) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(at) = line.find("http://127.0.0.1:") {
                    let url = line[at..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = sender.send(url);
                }
            }
        });
        server.base =
            tokio::task::spawn_blocking(move || receiver.recv_timeout(Duration::from_secs(30)))
                .await
                .unwrap()
                .expect("opencode serve printed no listening line within 30 s");
        // A request in the first moments can hang (opencode-server.md §5): poll with short timeouts.
        let deadline = Instant::now() + Duration::from_secs(20);
        while server
            .fetch("/global/health", Duration::from_millis(500))
            .await
            .is_none()
        {
            assert!(Instant::now() < deadline, "opencode never became healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        server
    }

    async fn fetch(&self, path: &str, timeout: Duration) -> Option<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.base.trim_end_matches('/')))
            .basic_auth("opencode", Some(PASSWORD))
            .timeout(timeout)
            .send()
            .await
            .ok()?;
        response.error_for_status().ok()?.json().await.ok()
    }

    async fn get(&self, path: &str) -> Value {
        let answer = self.fetch(path, Duration::from_secs(20)).await;
        answer.unwrap_or_else(|| panic!("GET {path} failed"))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // The group id is the child's pid (`process_group(0)`); the group also holds the MCP
        // child OpenCode started, which a signal to OpenCode alone would orphan.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}
