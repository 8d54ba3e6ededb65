//! Issue 11: the OpenCode plugin, with the real pinned OpenCode as the main agent, configured as
//! users do (their provider in the project's `opencode.json`, then `orchestra install`), and
//! loading plugins (`OPENCODE_PURE` unset, npm offline). One OpenCode for the whole story, so CI
//! starts it once:
//!
//! 1. an image pasted with a prompt is described by the vision worker, which receives the image,
//!    and the main model gets the description instead; a main model that reads images gets
//!    the image itself;
//! 2. the main model's system prompt has the memory block (a pinned record) and, while a task
//!    the main agent started runs, a line naming it; a compaction keeps both;
//! 3. when it finishes while the session is idle, its result shows up in the session's
//!    messages, and the idle notification runs `notify-send`;
//! 4. with the hub frozen (SIGSTOP) and then stopped, prompts still complete, without waiting
//!    for the hub (which cannot answer) and without what it would have added.
#![allow(clippy::unwrap_used)]

use super::common;

use std::path::Path;
use std::time::{Duration, Instant};

use orchestra_core::opencode::{
    MessageWithParts, ModelRef, OpenCodeClient, PartInput, PromptRequest,
};
use orchestra_core::supervisor::ServerProcess;
use orchestra_testkit::fake_llm::{ChatRequest, FakeLlm, RecordedRequest, Script};
use orchestra_testkit::opencode::{
    IsolatedHome, TestProject, fake_provider_config, require_opencode, write_project_config,
};
use serde_json::{Value, json};

/// A 1x1 PNG, as OpenCode hands a pasted screenshot to the model: a `data:` URL.
const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
/// The pinned memory record's body.
const PINNED: &str = "Tests drive the real OpenCode, never a mock of it (pinned-marker-7q)";
/// How long the main agent's background task runs on its worker.
const SLOW_TASK_MS: u64 = 6000;

/// The main agent (it sees the orchestra tools): `START_SLOW` starts a background task and the
/// turn ends as soon as the tool answers. Workers and the title generator get the default
/// (echo, with `DELAYMS:` honoured).
fn main_agent(request: &ChatRequest) -> Option<Script> {
    if !request
        .tool_names
        .iter()
        .any(|t| t == "orchestra_task_start")
    {
        return None;
    }
    if let Some(result) = &request.last_tool_result {
        let id = serde_json::from_str::<Value>(result).ok()?["taskId"].clone();
        return Some(Script::text(format!("STARTED {}", id.as_str()?)));
    }
    if request.last_user_text.contains("START_SLOW") {
        return Some(Script::tool_call(
            "orchestra_task_start",
            json!({"kind": "worker", "workerId": "coder", "task": format!("DELAYMS:{SLOW_TASK_MS} slow job")}),
        ));
    }
    None
}

fn mentions(request: &RecordedRequest, text: &str) -> bool {
    serde_json::to_string(&request.messages)
        .unwrap()
        .contains(text)
}

fn user_texts(messages: &[MessageWithParts]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.info.role == "user")
        .map(MessageWithParts::text)
        .collect()
}

async fn timed_prompt(client: &OpenCodeClient, session: &str, text: &str) -> Duration {
    let began = Instant::now();
    let reply = client
        .prompt(session, &PromptRequest::text(text))
        .await
        .unwrap();
    let took = began.elapsed();
    assert!(reply.text().contains(text), "{}", reply.text());
    took
}

/// A `notify-send` that writes its arguments to `notified.log` beside it.
fn fake_notify_send(dir: &Path) {
    let script = dir.join("notify-send");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$@\" >> '{}'\n",
            dir.join("notified.log").display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_brings_the_hub_into_the_main_agents_chat() {
    assert!(
        std::env::var_os("OPENCODE_PURE").is_none(),
        "OpenCode loads no plugins with OPENCODE_PURE set; unset it to run this test"
    );
    let home = IsolatedHome::new().unwrap();
    let project = TestProject::new().unwrap();
    let _stop = common::StopHubOnDrop(&home, &project.dir);
    tokio::time::timeout(Duration::from_secs(240), story(&home, &project))
        .await
        .expect("the plugin story took longer than 240 s");
}

async fn story(home: &IsolatedHome, project: &TestProject) {
    let fake = FakeLlm::start_scripted().await.unwrap();
    fake.set_responder(main_agent);
    let opencode = require_opencode();
    // The main model reads no images, so a pasted image goes to the vision worker.
    let mut config = fake_provider_config(&fake.base_url());
    config["model"] = json!("fake/fake-text");
    write_project_config(project, &config).unwrap();
    project
        .write(
            "orchestrator.json",
            &json!({"notifications": {"idle": {"enabled": true, "title": "Orchestra test", "delayMs": 100}}})
                .to_string(),
        )
        .unwrap();
    let report = common::install(home, &project.dir);
    assert!(
        report["changes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["entry"].as_str().unwrap().starts_with("plugin[")),
        "{report}"
    );

    let bin = tempfile::tempdir().unwrap();
    fake_notify_send(bin.path());
    let mut env = home.env_with_plugins();
    env.push((
        "ORCHESTRA_OPENCODE_BIN".into(),
        opencode.display().to_string(),
    ));
    env.push((
        "PATH".into(),
        format!(
            "{}:{}",
            bin.path().display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    ));
    let (main, client, session) =
        common::main_opencode(opencode, &project.dir, env, Duration::from_secs(90)).await;

    // The plugin starts the hub when OpenCode loads it; until it has found it, hooks fail open.
    common::plugin_connected(home, &project.dir).await;
    // A pinned record: in every memory block, and kept by a compaction.
    let put = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
        .args([
            "memory",
            "put",
            "--pin",
            "--kind",
            "convention",
            "--key",
            "tests",
        ])
        .args(["--title", "Tests", "--project"])
        .arg(&project.dir)
        .arg(PINNED)
        .envs(home.env())
        .output()
        .unwrap();
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );

    // 1. A pasted image.
    let mut prompt = PromptRequest::text("What does this screenshot show?");
    prompt.parts.push(PartInput::File {
        mime: "image/png".into(),
        filename: "shot.png".into(),
        url: PNG.into(),
    });
    let reply = client.prompt(&session, &prompt).await.unwrap();
    assert!(reply.text().contains("What does this screenshot show?"));
    let requests = fake.requests();
    let vision = requests
        .iter()
        .find(|r| r.model == "fake-model" && r.image_parts == 1)
        .unwrap_or_else(|| panic!("the vision worker never got the image: {requests:#?}"));
    assert!(mentions(vision, "What does this screenshot show?"));
    let main_request = requests
        .iter()
        .rev()
        .find(|r| {
            r.last_user_text.contains("What does this screenshot show?") && r.model == "fake-text"
        })
        .unwrap();
    assert_eq!(main_request.image_parts, 0, "the main model gets no image");
    assert!(
        main_request
            .system_prompt
            .contains("## Project memory (orchestra)")
            && main_request.system_prompt.contains("pinned-marker-7q"),
        "no memory block in the main model's system prompt:\n{}\nhub log:\n{}",
        main_request.system_prompt,
        hub_log(home, &project.dir)
    );
    assert!(
        mentions(main_request, "was described by the vision worker")
            && mentions(main_request, "IMAGES=1"),
        "the main model's request lacks the description: {:?}",
        main_request.messages
    );

    // A main model that reads images itself gets the image, and no vision task runs.
    let mut prompt = PromptRequest::text("Look at this one yourself");
    prompt.parts.push(PartInput::File {
        mime: "image/png".into(),
        filename: "own.png".into(),
        url: PNG.into(),
    });
    prompt.model = Some(ModelRef {
        provider_id: "fake".into(),
        model_id: "fake-model".into(),
    });
    client.prompt(&session, &prompt).await.unwrap();
    let requests = fake.requests();
    let is_main = |r: &&RecordedRequest| r.tool_names.iter().any(|t| t == "orchestra_task_start");
    let own = requests
        .iter()
        .filter(is_main)
        .rfind(|r| r.last_user_text.contains("Look at this one yourself"))
        .unwrap();
    assert_eq!(own.image_parts, 1, "the image model gets the image itself");
    assert!(
        !requests
            .iter()
            .any(|r| !is_main(&r) && mentions(r, "Look at this one yourself")),
        "a vision task ran for a model that reads images"
    );

    // 2. A background task: named in the system prompt while it runs, kept by a compaction.
    let reply = client
        .prompt(&session, &PromptRequest::text("START_SLOW please"))
        .await
        .unwrap();
    let task_id = reply
        .text()
        .trim()
        .strip_prefix("STARTED ")
        .unwrap()
        .to_owned();
    let after_tool = fake
        .requests()
        .into_iter()
        .rev()
        .find(|r| r.tool_names.iter().any(|t| t == "orchestra_task_start"))
        .unwrap();
    assert!(
        after_tool.system_prompt.contains(&format!(
            "Tasks you started in this session are still running: `{task_id}` (coder"
        )),
        "no running-task line in the main model's system prompt:\n{}",
        after_tool.system_prompt
    );
    let record = common::hub_files(home, &project.dir);
    let store = orchestra_store::Store::open(&record.dir.join("orchestra.db")).unwrap();
    let job = store.get_job(&task_id).unwrap().unwrap();
    assert_eq!(job.caller_session_id.as_deref(), Some(session.as_str()));
    summarize(&main, &project.dir, &session).await;
    let compaction = fake
        .requests()
        .into_iter()
        .find(|r| mentions(r, "Keep these task ids"))
        .expect("the compaction request kept no running task");
    assert!(mentions(&compaction, &task_id));
    assert!(
        mentions(&compaction, "pinned-marker-7q"),
        "the compaction dropped the pinned memory: {:?}",
        compaction.messages
    );

    // 3. It finishes while the session is idle: the result arrives in the session.
    let delivered = common::eventually("the result in the session", async || {
        let messages = client.messages(&session).await.ok()?;
        user_texts(&messages)
            .into_iter()
            .find(|t| t.contains(&format!("Task `{task_id}` (coder) finished")))
    })
    .await;
    assert!(delivered.contains("ECHO: slow job"), "{delivered}");
    let notified = common::eventually("notify-send", async || {
        std::fs::read_to_string(bin.path().join("notified.log")).ok()
    })
    .await;
    assert!(
        notified.contains("Orchestra test")
            && notified.contains(&format!("task {task_id} finished")),
        "{notified}"
    );
    // The vision task's result went into the message: it is not announced on its own.
    assert_eq!(notified.matches("--app-name").count(), 1, "{notified}");
    // The title is the project's to set: after `--` it cannot be an option.
    assert!(
        notified.contains("--app-name=Open Orchestra\n--\nOrchestra test\n"),
        "{notified}"
    );

    // 4. Fail open: the hub frozen (it accepts connections and never answers), then gone.
    // What is asserted is the behaviour, not a speed (the figures are printed, for the record):
    // each prompt completes while the hub cannot answer, without what the hub would have added
    // (the memory block), so the plugin gave up on its own instead of waiting; a hook that
    // waited for the hub would hang until the hub thaws, which the test does only afterwards.
    // `prompt_not_blocked` turns such a hang into a clear failure after two hundred times the
    // plugin's own per-hook limit, which no load on the machine reaches.
    let hub = common::hub_info(home, &project.dir).await;
    let pid = nix::unistd::Pid::from_raw(i32::try_from(hub.pid).unwrap());
    timed_prompt(&client, &session, "warm-up").await;
    let (mut healthy, mut frozen) = (Vec::new(), Vec::new());
    for n in 0..6 {
        healthy.push(timed_prompt(&client, &session, &format!("healthy {n}")).await);
        let frozen_hub = FrozenHub::freeze(pid);
        let text = format!("frozen {n}");
        frozen.push(prompt_not_blocked(&client, &session, &text, "the hub frozen").await);
        went_on_without_the_hub(&fake, &text);
        drop(frozen_hub);
        // The plugin's search for the hub, stuck on the frozen one, completes now.
        hooks_reach_the_hub_again(&client, &session, &fake, n).await;
    }
    common::stop_hub(home, &project.dir);
    let mut stopped = Vec::new();
    for n in 0..6 {
        let text = format!("stopped {n}");
        stopped.push(prompt_not_blocked(&client, &session, &text, "the hub stopped").await);
        went_on_without_the_hub(&fake, &text);
    }
    let slowest = |d: &[Duration]| d.iter().max().copied().unwrap();
    eprintln!(
        "fail-open: slowest prompt {:?} with the hub frozen, {:?} with it stopped, {:?} healthy \
         (the plugin gives up on a hook after {:?}); frozen {frozen:?}, stopped {stopped:?}, \
         healthy {healthy:?}",
        slowest(&frozen),
        slowest(&stopped),
        slowest(&healthy),
        plugin_hook_limit()
    );
    main.stop(Duration::from_secs(5)).await.unwrap();
    // OpenCode loaded the plugin from outside the project and made no `.opencode/` in it.
    assert!(!project.dir.join(".opencode").exists());
}

/// The hub stopped with SIGSTOP until this is dropped (SIGCONT), also when an assertion fails
/// meanwhile: a hub left frozen would never stop by itself.
struct FrozenHub(nix::unistd::Pid);

impl FrozenHub {
    fn freeze(pid: nix::unistd::Pid) -> FrozenHub {
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
        FrozenHub(pid)
    }
}

impl Drop for FrozenHub {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(self.0, nix::sys::signal::Signal::SIGCONT);
    }
}

/// The plugin's own limit on one hook's call to the hub (`QUICK_MS` in the plugin), read from
/// the plugin this build installs.
fn plugin_hook_limit() -> Duration {
    let source = include_str!("../../src/install/opencode-plugin-v1.js");
    let ms: u64 = source
        .split_once("const QUICK_MS = ")
        .and_then(|(_, rest)| rest.split(';').next())
        .and_then(|value| value.trim().parse().ok())
        .expect("the plugin declares `const QUICK_MS = <ms>;`");
    Duration::from_millis(ms)
}

/// A prompt that must complete although the hub cannot answer: how long it took.
async fn prompt_not_blocked(
    client: &OpenCodeClient,
    session: &str,
    text: &str,
    hub: &str,
) -> Duration {
    // Far beyond anything the plugin's own limit allows (see the fail-open step).
    let not_blocked = plugin_hook_limit() * 200;
    tokio::time::timeout(not_blocked, timed_prompt(client, session, text))
        .await
        .unwrap_or_else(|_| {
            panic!(
                "with {hub}, prompt `{text}` waited more than {not_blocked:?}: the plugin \
                 blocked on the hub instead of giving up after {:?}",
                plugin_hook_limit()
            )
        })
}

/// The model got the prompt without the hub's memory block: the hooks gave up on the hub.
fn went_on_without_the_hub(fake: &FakeLlm, text: &str) {
    let requests = fake.requests();
    let request = requests
        .iter()
        .rev()
        .find(|r| r.last_user_text.contains(text))
        .unwrap_or_else(|| panic!("prompt `{text}` never reached the model"));
    assert!(
        !request.system_prompt.contains("pinned-marker-7q"),
        "prompt `{text}` carried the hub's memory block, so the hub answered it"
    );
}

/// Prompts (untimed) until one's hooks reach the hub again, seen as the memory block in the
/// main model's system prompt: the plugin has found the thawed hub.
async fn hooks_reach_the_hub_again(
    client: &OpenCodeClient,
    session: &str,
    fake: &FakeLlm,
    round: usize,
) {
    let mut attempt = 0;
    common::eventually("the plugin's hooks to reach the thawed hub", async || {
        attempt += 1;
        let text = format!("thawed {round}.{attempt}");
        timed_prompt(client, session, &text).await;
        fake.requests()
            .iter()
            .any(|r| {
                r.last_user_text.contains(&text) && r.system_prompt.contains("pinned-marker-7q")
            })
            .then_some(())
    })
    .await;
}

fn hub_log(home: &IsolatedHome, project: &Path) -> String {
    std::fs::read_to_string(common::hub_files(home, project).log).unwrap_or_default()
}

/// `POST /session/{id}/summarize`: OpenCode's compaction, which runs the compacting hook.
async fn summarize(main: &ServerProcess, project: &Path, session: &str) {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/session/{session}/summarize", main.url()))
        .basic_auth("opencode", Some(main.password()))
        .header("x-opencode-directory", project.display().to_string())
        .json(&json!({"providerID": "fake", "modelID": "fake-text"}))
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{}",
        response.text().await.unwrap()
    );
}
