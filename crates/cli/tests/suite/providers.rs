//! Issue 8: the workers use the model providers exactly as OpenCode sees them.
//!
//! One test per place users put a provider, each with the provider only there: the real
//! `orchestra` binary (`orchestra run --json`, or `orchestra mcp` with an MCP client) in a test
//! project with an isolated HOME, the real pinned OpenCode, and a fake LLM on 127.0.0.1 as the
//! user's provider. Each proves from that fake's request log that it got the task, with the key
//! from where the user keeps it, and that the job's `model` names the provider. Then: no provider
//! anywhere is refused with the fix before any model is called, and `--fake` never collides with
//! a user's provider called `fake`.
#![allow(clippy::unwrap_used)]

use super::common;

use std::process::Output;

use common::{World, bounded};
use orchestra_testkit::fake_llm::{FakeLlm, RecordedRequest};
use orchestra_testkit::opencode::{
    FOREIGN_CONFIG_VARS, IsolatedHome, TestProject, catalog_provider, require_opencode,
    user_provider_config, write_auth_key, write_global_config, write_project_config,
};
use serde_json::{Value, json};

/// A user's machine: a home, a project, and the server behind the user's provider.
struct Machine {
    home: IsolatedHome,
    project: TestProject,
    llm: FakeLlm,
    env: Vec<(String, String)>,
}

/// The commands start the project's hub in the background; it goes with the machine.
impl Drop for Machine {
    fn drop(&mut self) {
        common::stop_hub(&self.home, &self.project.dir);
    }
}

impl Machine {
    async fn new() -> Machine {
        Machine {
            home: IsolatedHome::new().unwrap(),
            project: TestProject::new().unwrap(),
            llm: FakeLlm::start_scripted().await.unwrap(),
            env: Vec::new(),
        }
    }

    /// The user's OpenCode config for provider `id` on this machine's LLM.
    fn config(&self, id: &str, key: Option<&str>) -> Value {
        user_provider_config(id, &self.llm.base_url(), key)
    }

    async fn orchestra(&self, args: &[&str]) -> Output {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestra"));
        for var in FOREIGN_CONFIG_VARS {
            command.env_remove(var);
        }
        command
            .args(args)
            .arg("--project")
            .arg(&self.project.dir)
            .envs(self.home.env())
            .envs(self.env.iter().cloned())
            .env("ORCHESTRA_OPENCODE_BIN", require_opencode())
            .output()
            .await
            .unwrap()
    }

    /// `orchestra run --json --worker coder <marker> …`: the exit status, the record, stderr.
    async fn run(&self, marker: &str) -> (bool, Value, String) {
        let task = format!("{marker} please answer");
        let out = self
            .orchestra(&["run", "--json", "--worker", "coder", &task])
            .await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let record = serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
            panic!(
                "no JSON record ({err}); stdout: {}\nstderr: {stderr}",
                String::from_utf8_lossy(&out.stdout)
            )
        });
        (out.status.success(), record, stderr)
    }

    /// Runs one task and proves it went to the user's provider `provider` with `key`.
    async fn assert_runs_on(&self, provider: &str, key: &str) {
        let marker = format!("MARK-{provider}");
        let (ok, record, stderr) = self.run(&marker).await;
        assert!(ok, "{record}\n{stderr}");
        assert_eq!(record["status"], "succeeded", "{record}\n{stderr}");
        assert_eq!(
            record["model"],
            format!("{provider}/fake-model"),
            "{record}"
        );
        assert_eq!(
            record["responseText"],
            format!("ECHO: {marker} please answer")
        );
        let request = request_for(&self.llm, &marker);
        assert_eq!(request.model, "fake-model");
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {key}").as_str()),
            "the key must come from where the user keeps it"
        );
    }
}

fn request_for(llm: &FakeLlm, marker: &str) -> RecordedRequest {
    llm.requests()
        .into_iter()
        .find(|r| r.last_user_text.contains(marker))
        .unwrap_or_else(|| {
            panic!(
                "the user's provider never got {marker:?}: {:?}",
                llm.requests()
            )
        })
}

/// JSONC as users write it: comments and a trailing comma.
fn jsonc(config: &Value) -> String {
    let pretty = serde_json::to_string_pretty(config).unwrap();
    let body = pretty.trim_end().strip_suffix('}').unwrap().trim_end();
    format!("// my OpenCode setup\n{body}, /* trailing comma */\n}}\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_opencode_json_over_mcp_and_the_models_view() {
    bounded(async {
        // The project's opencode.json has provider `fake` (common::World puts it there).
        let world = World::new(json!({})).await;
        let client = world.connect().await;
        let record = client.run("coder", "MARK-project hi").await;
        assert_eq!(record["status"], "succeeded", "{record}");
        assert_eq!(record["model"], "fake/fake-model");
        let request = request_for(&world.fake, "MARK-project");
        assert_eq!(request.header("authorization"), Some("Bearer sk-fake"));

        // The models view lists only what OpenCode offers this project, and says which
        // model each profile's task would get and why.
        let models = client
            .call_json("task_list", json!({"view": "models", "format": "json"}))
            .await;
        let ids: Vec<&str> = models["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["providerId"].as_str().unwrap())
            .collect();
        assert!(
            !ids.is_empty() && ids.iter().all(|p| *p == "fake"),
            "{models}"
        );
        let plans = models["wouldRunOn"].as_array().unwrap();
        assert_eq!(plans.len(), 6, "one per profile: {models}");
        for plan in plans {
            assert!(
                plan["model"].as_str().unwrap().starts_with("fake/"),
                "{plan}"
            );
            assert!(!plan["reason"].as_str().unwrap().is_empty(), "{plan}");
        }
        let (_, text) = client.call("task_list", json!({"view": "models"})).await;
        assert!(
            text.contains(
                "- `coder` (`node`) would run on fake/fake-model: fallback to default model"
            ),
            "{text}"
        );
        client.service.cancel().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_opencode_jsonc() {
    bounded(async {
        let machine = Machine::new().await;
        let config = machine.config("jsoncprov", Some("sk-jsonc"));
        machine
            .project
            .write("opencode.jsonc", &jsonc(&config))
            .unwrap();
        machine.assert_runs_on("jsoncprov", "sk-jsonc").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_opencode_opencode_json() {
    bounded(async {
        let machine = Machine::new().await;
        let config = machine.config("dotprov", Some("sk-dot"));
        machine
            .project
            .write(".opencode/opencode.json", &config.to_string())
            .unwrap();
        machine.assert_runs_on("dotprov", "sk-dot").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dot_opencode_opencode_jsonc() {
    bounded(async {
        let machine = Machine::new().await;
        let config = machine.config("dotcprov", Some("sk-dotc"));
        machine
            .project
            .write(".opencode/opencode.jsonc", &jsonc(&config))
            .unwrap();
        machine.assert_runs_on("dotcprov", "sk-dotc").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn global_opencode_json() {
    bounded(async {
        let machine = Machine::new().await;
        let config = machine.config("globalprov", Some("sk-global"));
        write_global_config(&machine.home, &config).unwrap();
        machine.assert_runs_on("globalprov", "sk-global").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opencode_config_file() {
    bounded(async {
        let mut machine = Machine::new().await;
        let path = machine.home.root.join("elsewhere/my-opencode.json");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let config = machine.config("fileprov", Some("sk-file"));
        std::fs::write(&path, config.to_string()).unwrap();
        machine
            .env
            .push(("OPENCODE_CONFIG".into(), path.display().to_string()));
        machine.assert_runs_on("fileprov", "sk-file").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opencode_config_content_is_kept_under_orchestras_agents() {
    bounded(async {
        let mut machine = Machine::new().await;
        let config = machine.config("contentprov", Some("sk-content"));
        machine
            .env
            .push(("OPENCODE_CONFIG_CONTENT".into(), config.to_string()));
        machine.assert_runs_on("contentprov", "sk-content").await;
        // Merged, not replaced: the worker ran as Orchestra's coder agent.
        let coder = orchestra_core::config::Config::builtin();
        let first_line = coder
            .profile("coder")
            .unwrap()
            .prompt
            .lines()
            .next()
            .unwrap()
            .to_owned();
        let request = request_for(&machine.llm, "MARK-contentprov");
        assert!(
            request.system_prompt.contains(&first_line),
            "{}",
            request.system_prompt
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_in_auth_json() {
    bounded(async {
        let machine = Machine::new().await;
        // A custom provider without a key in the config; `opencode auth login` stored it.
        let config = machine.config("authprov", None);
        write_project_config(&machine.project, &config).unwrap();
        write_auth_key(&machine.home, "authprov", "sk-from-auth-json").unwrap();
        machine
            .assert_runs_on("authprov", "sk-from-auth-json")
            .await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_key_in_the_environment() {
    bounded(async {
        let mut machine = Machine::new().await;
        // A provider OpenCode ships in its catalog, usable once its variable holds a key; no
        // config file anywhere.
        let entry = catalog_provider("envprov", "ENVPROV_API_KEY", &machine.llm.base_url());
        machine
            .home
            .set_models_catalog(&json!({"envprov": entry}))
            .unwrap();
        machine
            .env
            .push(("ENVPROV_API_KEY".into(), "sk-from-env".into()));
        machine.assert_runs_on("envprov", "sk-from-env").await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_provider_anywhere_is_refused_with_the_fix_before_any_model_is_called() {
    bounded(async {
        let machine = Machine::new().await;
        // OpenCode knows a provider, but its key is nowhere: nothing is usable.
        let entry = catalog_provider("envprov", "ENVPROV_API_KEY", &machine.llm.base_url());
        machine
            .home
            .set_models_catalog(&json!({"envprov": entry}))
            .unwrap();
        let (ok, record, stderr) = machine.run("MARK-none").await;
        assert!(!ok, "must exit non-zero: {record}");
        assert_eq!(record["status"], "failed", "{record}");
        let error = record["error"].as_str().unwrap();
        for fix in ["opencode auth login", "opencode.json", "--fake"] {
            assert!(
                error.contains(fix),
                "the error should name `{fix}`: {error}"
            );
            assert!(stderr.contains(fix), "stderr should say `{fix}`: {stderr}");
        }
        assert!(record["sessionId"].is_null(), "no session: {record}");
        assert!(record["model"].is_null(), "{record}");
        // Once the hub and its workers are gone, nothing is left that could call the model.
        common::stop_hub(&machine.home, &machine.project.dir);
        assert!(
            machine.llm.requests().is_empty(),
            "{:?}",
            machine.llm.requests()
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fake_mode_never_collides_with_a_users_provider_called_fake() {
    bounded(async {
        // The project's own provider is called `fake` (common::World) and served by world.fake.
        let world = World::new(json!({})).await;
        let client = world.connect_with(&["--fake"], &[]).await;
        let record = client.run("coder", "COLLIDE hello").await;
        assert_eq!(record["status"], "succeeded", "{record}");
        assert_eq!(record["model"], "orchestra-fake/fake-model");
        assert_eq!(record["responseText"], "ECHO: COLLIDE hello");

        // The product's fake echoes directives: text in a task never runs a tool.
        let target = world.project.dir.join("pwned.txt");
        let call = format!(
            "CALL_TOOL:write {}",
            json!({"filePath": target.display().to_string(), "content": "x"})
        );
        let record = client.run("coder", &call).await;
        assert_eq!(record["status"], "succeeded", "{record}");
        assert_eq!(record["responseText"], format!("ECHO: {call}"));
        assert_eq!(record["progress"]["toolCalls"], 0, "{record}");
        assert!(!target.exists());

        // The user's provider is still listed by OpenCode; every profile is pinned to the fake.
        let models = client
            .call_json("task_list", json!({"view": "models", "format": "json"}))
            .await;
        let listed: Vec<String> = models["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                format!(
                    "{}/{}",
                    m["providerId"].as_str().unwrap(),
                    m["modelId"].as_str().unwrap()
                )
            })
            .collect();
        assert!(listed.contains(&"fake/fake-model".to_owned()), "{listed:?}");
        assert!(
            listed.contains(&"orchestra-fake/fake-model".to_owned()),
            "{listed:?}"
        );
        assert_eq!(models["providerPin"], "orchestra-fake");
        for plan in models["wouldRunOn"].as_array().unwrap() {
            assert!(
                plan["model"]
                    .as_str()
                    .unwrap()
                    .starts_with("orchestra-fake/"),
                "{plan}"
            );
        }
        // The user's provider's server got nothing.
        assert!(
            world.fake.requests().is_empty(),
            "{:?}",
            world.fake.requests()
        );
        client.service.cancel().await.unwrap();
    })
    .await;
}
