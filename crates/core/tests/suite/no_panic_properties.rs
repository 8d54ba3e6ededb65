//! No input makes the engine panic (issue 12 §8): property tests over config parsing and over
//! the task tools' arguments, from the JSON text or value down to what the engine does with it.
//! cargo-fuzz needs a nightly toolchain, so these use proptest on stable.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use orchestra_core::config::{self, Config, ConfigOrigin, LoadOptions};
use orchestra_core::tasks::TaskEngine;
use orchestra_core::workers::{LaunchSettings, WorkerPool};
use orchestra_protocol::{
    TaskAwaitParams, TaskCancelParams, TaskListParams, TaskPeekParams, TaskStartParams,
};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Keys the config and the tools know, so generated documents reach deep into both rather
/// than failing at the first unknown key.
const KEYS: &[&str] = &[
    "autoSpawn",
    "startupTimeout",
    "healthCheckInterval",
    "ui",
    "defaultListFormat",
    "debug",
    "agent",
    "tools",
    "permission",
    "commands",
    "prefix",
    "workflows",
    "definitions",
    "steps",
    "parallel",
    "id",
    "name",
    "title",
    "workerId",
    "prompt",
    "carry",
    "timeoutMs",
    "model",
    "limits",
    "maxSteps",
    "security",
    "memory",
    "tasks",
    "maxTaskChars",
    "jobs",
    "maxCount",
    "runtime",
    "isolation",
    "attachUrl",
    "maxRestarts",
    "restartBackoffMs",
    "keepSessions",
    "profiles",
    "workers",
    "temperature",
    "onPermissionAsk",
    "roocodeBoomerang",
    "triggers",
    "kind",
    "task",
    "attachments",
    "type",
    "path",
    "base64",
    "mimeType",
    "taskId",
    "taskIds",
    "view",
    "limit",
    "after",
    "format",
    "query",
    "scope",
    "providers",
    "runId",
    "reason",
    "op",
    "worker",
    "modelPolicy",
    "continueRunId",
    "workflowId",
    "from",
    "autoSpawn",
    "execution",
];

/// Strings that are values somewhere: enum names, ids, and troublemakers.
const WORDS: &[&str] = &[
    "",
    "worker",
    "auto",
    "workflow",
    "op",
    "coder",
    "architect",
    "codr",
    "tasks",
    "workers",
    "models",
    "status",
    "output",
    "json",
    "markdown",
    "shared",
    "process",
    "attach",
    "http://127.0.0.1:4096",
    "allow",
    "deny",
    "ask",
    "worker.model.set",
    "memory.put",
    "memory.search",
    "decision:db",
    "mem_0123456789abcdef",
    "roocode-boomerang",
    "image",
    "file",
    "é",
    "aé1234567890",
    "\u{0}",
    "../../etc/passwd",
    "data:image/png;base64,@@",
    "{task}",
    "{steps.x}",
    "🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀🦀",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(WORDS).prop_map(Value::from),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        proptest::sample::select(KEYS).prop_map(str::to_owned),
                        ".{0,8}"
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Value> {
    proptest::collection::vec(
        (
            proptest::sample::select(KEYS).prop_map(str::to_owned),
            json_value(),
        ),
        0..6,
    )
    .prop_map(|fields| Value::Object(fields.into_iter().collect()))
}

/// Every error a config file gets names the file, and where there is one, the key.
fn check_config_text(text: &str) {
    let path = Path::new("/p/.opencode/orchestrator.json");
    for origin in [ConfigOrigin::Project, ConfigOrigin::Global] {
        if let Err(error) = config::check_file(path, origin, text) {
            let message = error.to_string();
            assert!(message.contains("orchestrator.json"), "{message}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn any_text_as_a_config_file_is_an_error_or_a_config(text in ".{0,200}") {
        check_config_text(&text);
    }

    #[test]
    fn any_json_as_a_config_file_is_an_error_or_a_config(value in json_object()) {
        check_config_text(&value.to_string());
    }

    /// The whole load (every file, merged, profiles and workflows resolved), not just one file.
    #[test]
    fn any_layered_config_loads_or_names_its_problem(global in json_object(), project in json_object()) {
        let dir = tempfile::tempdir().unwrap();
        let global_dir = dir.path().join("global");
        let project_dir = dir.path().join("project");
        std::fs::create_dir_all(&global_dir).unwrap();
        std::fs::create_dir_all(&project_dir).unwrap();
        std::fs::write(global_dir.join("orchestrator.json"), global.to_string()).unwrap();
        std::fs::write(project_dir.join("orchestrator.json"), project.to_string()).unwrap();
        let loaded = config::load(&LoadOptions {
            project_dir,
            global_dir: Some(global_dir),
            extra_file: None,
        });
        if let Err(error) = loaded {
            prop_assert!(!error.to_string().is_empty());
        }
    }

    #[test]
    fn any_workflow_file_is_an_error_or_a_definition(value in json_object()) {
        let path = Path::new("/p/.opencode/workflows/w.json");
        if let Err(error) = config::parse_workflow_file(path, &value.to_string()) {
            prop_assert!(error.to_string().contains("w.json"));
        }
    }
}

/// An engine whose pool can never start OpenCode (the binary does not exist), so tasks that
/// pass validation fail fast instead of starting anything. Memory is on (its stores in `dir`),
/// so the memory ops and the memory view run for real.
async fn engine(dir: &Path) -> TaskEngine {
    let config = Arc::new(Config {
        tasks: orchestra_core::config::TasksConfig {
            await_cap_ms: 1,
            ..Config::builtin().tasks
        },
        ..Config::builtin()
    });
    let store = Arc::new(orchestra_store::Store::open(&dir.join("orchestra.db")).unwrap());
    let bus = orchestra_core::events::EventBus::in_memory();
    let pool = WorkerPool::new(
        config.clone(),
        LaunchSettings {
            supervisor: None,
            binary: PathBuf::from("/nonexistent/opencode"),
            project_dir: dir.to_path_buf(),
            env: Vec::new(),
            config_overlay: Value::Null,
            provider_pin: None,
        },
        bus.clone(),
    );
    let memory = orchestra_core::memory::HubMemory::open(
        &config,
        store.clone(),
        dir,
        orchestra_core::memory::GlobalStore::At(dir.join("global").join("memory.db")),
        bus.clone(),
    )
    .await
    .unwrap();
    let runtime = orchestra_core::jobs::JobRuntime::new(store, bus, pool, "prop-hub".into());
    TaskEngine::new(runtime, config, dir.to_path_buf(), memory)
}

fn parse<T: serde::de::DeserializeOwned>(args: &Value) -> Option<T> {
    serde_path_to_error::deserialize(args.clone()).ok()
}

/// A word, or any value at all: mostly well-typed, sometimes not.
fn word_or_any() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => proptest::sample::select(WORDS).prop_map(Value::from),
        2 => ".{0,60}".prop_map(Value::String),
        1 => json_value(),
    ]
    .boxed()
}

/// Numbers at the edges of every integer type the tools use, where arithmetic overflows.
const EDGES: &[i128] = &[
    0,
    1,
    -1,
    2,
    4_294_967_295,
    4_294_967_294,
    858_993_460,
    9_223_372_036_854_775_807,
    -9_223_372_036_854_775_808,
    18_446_744_073_709_551_615,
    86_400_000,
    45_001,
];

fn number_or_any() -> BoxedStrategy<Value> {
    prop_oneof![
        4 => proptest::sample::select(EDGES).prop_map(|n| {
            i64::try_from(n).map(Value::from).unwrap_or_else(|_| Value::from(u64::try_from(n).unwrap_or(0)))
        }),
        2 => any::<u32>().prop_map(Value::from),
        1 => any::<u64>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => json_value(),
    ]
    .boxed()
}

/// One of an enum's values (or, now and then, anything).
fn one_of(values: &'static [&'static str]) -> BoxedStrategy<Value> {
    prop_oneof![
        6 => proptest::sample::select(values).prop_map(Value::from),
        1 => word_or_any(),
    ]
    .boxed()
}

const KINDS: &[&str] = &["auto", "worker", "workflow", "op"];
const VIEWS: &[&str] = &[
    "tasks",
    "workers",
    "profiles",
    "models",
    "workflows",
    "workflow",
    "status",
    "output",
    "memory",
];

/// An object with some of `fields`, each from its strategy.
fn object_of(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let parts: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .into_iter()
        .map(|(name, strategy)| {
            proptest::option::of(strategy.prop_map(move |v| (name.to_owned(), v))).boxed()
        })
        .collect();
    parts
        .prop_map(|fields| Value::Object(fields.into_iter().flatten().collect()))
        .boxed()
}

fn attachment() -> BoxedStrategy<Value> {
    object_of(vec![
        ("type", one_of(&["image", "file"])),
        ("path", word_or_any()),
        ("base64", word_or_any()),
        ("mimeType", word_or_any()),
    ])
}

fn start_args() -> BoxedStrategy<Value> {
    object_of(vec![
        ("kind", one_of(KINDS)),
        ("task", word_or_any()),
        ("workerId", word_or_any()),
        ("model", word_or_any()),
        ("modelPolicy", one_of(&["dynamic", "sticky"])),
        ("workflowId", word_or_any()),
        ("continueRunId", word_or_any()),
        (
            "op",
            one_of(&[
                "worker.model.set",
                "worker.model.reset",
                "passthrough.set",
                "passthrough.clear",
                "memory.put",
                "memory.link",
                "memory.done",
                "memory.search",
                "memory.get",
                "memory.forget",
            ]),
        ),
        (
            "memory",
            object_of(vec![
                ("key", word_or_any()),
                ("value", word_or_any()),
                ("id", word_or_any()),
                ("scope", one_of(&["project", "global", "everywhere"])),
                ("kind", word_or_any()),
                ("title", word_or_any()),
                ("supersedes", word_or_any()),
                ("fromKey", word_or_any()),
                ("toKey", word_or_any()),
                ("relation", word_or_any()),
                ("taskId", word_or_any()),
                ("query", word_or_any()),
                ("limit", number_or_any()),
                ("budgetTokens", number_or_any()),
                ("cursor", word_or_any()),
                ("mode", one_of(&["retract", "delete", "erase"])),
            ]),
        ),
        (
            "worker",
            object_of(vec![("workerId", word_or_any()), ("model", word_or_any())]),
        ),
        (
            "attachments",
            proptest::collection::vec(attachment(), 0..4)
                .prop_map(Value::Array)
                .boxed(),
        ),
        ("autoSpawn", any::<bool>().prop_map(Value::Bool).boxed()),
        ("timeoutMs", number_or_any()),
        ("from", word_or_any()),
    ])
}

fn ids_args(extra: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let mut fields = vec![
        ("taskId", word_or_any()),
        (
            "taskIds",
            proptest::collection::vec(word_or_any(), 0..4)
                .prop_map(Value::Array)
                .boxed(),
        ),
    ];
    fields.extend(extra);
    object_of(fields)
}

fn list_args() -> BoxedStrategy<Value> {
    object_of(vec![
        ("view", one_of(VIEWS)),
        ("workerId", word_or_any()),
        ("limit", number_or_any()),
        ("after", number_or_any()),
        (
            "scope",
            one_of(&["all", "configured", "usable", "project", "global"]),
        ),
        (
            "providers",
            proptest::collection::vec(word_or_any(), 0..3)
                .prop_map(Value::Array)
                .boxed(),
        ),
        ("query", word_or_any()),
        ("format", one_of(&["markdown", "json"])),
        ("runId", word_or_any()),
        ("budgetTokens", number_or_any()),
        ("cursor", word_or_any()),
    ])
}

/// Panics anywhere in the process, spawned tasks included (tokio would otherwise swallow them).
static PANICS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn count_panics() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            default(info);
        }));
    });
}

fn answered(start: Value, wait: Value, list: Value, cancel: Value) {
    count_panics();
    let before = PANICS.load(std::sync::atomic::Ordering::SeqCst);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let engine = engine(dir.path()).await;
        let mut started = Vec::new();
        if let Some(params) = parse::<TaskStartParams>(&start) {
            match engine.start(params, None).await {
                Ok(result) => started.push(result.task_id),
                Err(error) => assert!(!error.to_string().is_empty()),
            }
        }
        if let Some(params) = parse::<TaskAwaitParams>(&wait) {
            let _ = engine.await_tasks(&params).await;
        }
        if let Some(params) = parse::<TaskPeekParams>(&wait) {
            let _ = engine.peek(&params);
        }
        if let Some(params) = parse::<TaskListParams>(&list) {
            let _ = engine.list(&params).await;
        }
        if let Some(params) = parse::<TaskCancelParams>(&cancel) {
            let _ = engine.cancel(&params).await;
        }
        // Let what was started run to its end (it cannot start OpenCode, so that is quick).
        for _ in 0..200 {
            if engine.running_count() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        engine.pool().shutdown().await;
    });
    drop(runtime);
    let after = PANICS.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        after, before,
        "a panic for start={start} wait={wait} list={list} cancel={cancel}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, failure_persistence: None, ..ProptestConfig::default() })]

    /// Arguments of every tool, parsed as the MCP adapter parses them and, when they parse,
    /// handed to the engine (and what it starts run to the end): an answer or an error, never
    /// a panic, in the call or in any task it spawned.
    #[test]
    fn any_tool_arguments_are_answered(
        start in start_args(),
        wait in ids_args(vec![("timeoutMs", number_or_any())]),
        list in list_args(),
        cancel in ids_args(vec![("reason", word_or_any())]),
    ) {
        answered(start, wait, list, cancel);
    }

    /// The same with any JSON at all as the arguments.
    #[test]
    fn any_json_as_tool_arguments_is_answered(args in json_object()) {
        answered(args.clone(), args.clone(), args.clone(), args);
    }
}
