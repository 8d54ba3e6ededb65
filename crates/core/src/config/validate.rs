//! Checks of one config file that its types alone cannot express, and warnings for keys that
//! are accepted but do nothing.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::Value;

use super::error::{ConfigError, ConfigWarning, closest_match};
use super::layer::{Layer, MAX_AWAIT_CAP_MS, invalid, is_valid_id};
use super::model::{
    OrchestratorConfigFile, ProfileBackend, ProfileEntry, ProfileFile, ProfileKind,
    WorkflowDefinitionFile,
};
use super::resolved::{BOOMERANG_STEP_IDS, MAX_WORKTREE_SPARES};
use super::workflow_checks::{check_limits, check_workflow_definition};

pub(super) fn reject_removed_keys(path: &Path, raw: &Value) -> Result<(), ConfigError> {
    if raw.get("basePort").is_some() {
        return Err(invalid(
            path,
            "basePort",
            "`basePort` was removed: every OpenCode server picks a free port and Orchestra \
             always uses the port OpenCode prints when it starts, so there is nothing to set",
            Some("delete `basePort`".to_owned()),
        ));
    }
    if raw.pointer("/ui/firstRunDemo").is_some() {
        return Err(invalid(
            path,
            "ui.firstRunDemo",
            "`ui.firstRunDemo` was removed: Orchestra has no first-run demo",
            Some("delete `ui.firstRunDemo`".to_owned()),
        ));
    }
    Ok(())
}

/// Keys that choose what the hub executes, where it sends credentials, or where it reads and
/// writes every task's prompts and answers: (key path, what it decides). Only the user's own
/// files (global, `--config`) may set them; a repository's file that does is an error.
pub const TRUSTED_ONLY_KEYS: [(&str, &str); 7] = [
    ("runtime.opencodeBin", "the program the hub runs"),
    (
        "runtime.attachUrl",
        "the server the hub sends its work and a password to",
    ),
    (
        "runtime.attachPasswordEnv",
        "which of your environment variables is sent to a server as a password",
    ),
    (
        "tasks.storePath",
        "where the hub stores, and from where it reads, every task's prompts and answers",
    ),
    (
        "memory.scope",
        "whether what you write to memory reaches every other project's prompts",
    ),
    (
        "worktree.setup",
        "a command the hub runs in every new task worktree",
    ),
    (
        "notify",
        "where the hub sends your events (a URL) and which commands it runs on them",
    ),
];

pub(super) fn reject_untrusted_keys(path: &Path, raw: &Value) -> Result<(), ConfigError> {
    for (key_path, decides) in TRUSTED_ONLY_KEYS {
        let pointer = format!("/{}", key_path.replace('.', "/"));
        if raw.pointer(&pointer).is_some() {
            return Err(invalid(
                path,
                key_path,
                format!(
                    "a project's own config cannot set `{key_path}`: it decides {decides}, and a \
                     repository must not decide that for whoever opens it"
                ),
                Some(format!(
                    "move `{key_path}` to your global ~/.config/opencode/orchestrator.json or to a \
                     file you pass with --config{}",
                    if key_path == "runtime.opencodeBin" {
                        " (or set ORCHESTRA_OPENCODE_BIN)"
                    } else {
                        ""
                    }
                )),
            ));
        }
    }
    Ok(())
}

pub(super) fn check_layer(layer: &Layer) -> Result<(), ConfigError> {
    let path = layer.path.as_path();
    let file = &layer.file;
    let at_least_one = |key: &str, value: Option<u64>| match value {
        Some(0) => Err(invalid(path, key, "must be at least 1", None)),
        _ => Ok(()),
    };
    at_least_one("startupTimeout", file.startup_timeout)?;
    at_least_one("healthCheckInterval", file.health_check_interval)?;
    if let Some(auto_records) = file.memory.as_ref().and_then(|m| m.auto_records.as_ref()) {
        check_auto_records(path, auto_records)?;
    }
    if let Some(spares) = file.worktree.as_ref().and_then(|w| w.spares)
        && spares > MAX_WORKTREE_SPARES
    {
        return Err(invalid(
            path,
            "worktree.spares",
            format!(
                "{spares} is above the limit of {MAX_WORKTREE_SPARES}: each spare is a whole checkout on disk"
            ),
            Some(format!("use at most {MAX_WORKTREE_SPARES}, or 0 for none")),
        ));
    }
    if let Some(tasks) = &file.tasks {
        at_least_one("tasks.defaultTimeoutMs", tasks.default_timeout_ms)?;
        at_least_one("tasks.maxTaskChars", tasks.max_task_chars)?;
        at_least_one("tasks.maxAttachmentBytes", tasks.max_attachment_bytes)?;
        at_least_one("tasks.maxAttachments", tasks.max_attachments)?;
        at_least_one("tasks.maxAttachmentsBytes", tasks.max_attachments_bytes)?;
        at_least_one(
            "tasks.permissionAskTimeoutMs",
            tasks.permission_ask_timeout_ms,
        )?;
        match tasks.await_cap_ms {
            Some(0) => {
                return Err(invalid(
                    path,
                    "tasks.awaitCapMs",
                    "must be at least 1",
                    None,
                ));
            }
            Some(cap) if cap > MAX_AWAIT_CAP_MS => {
                return Err(invalid(
                    path,
                    "tasks.awaitCapMs",
                    format!(
                        "{cap} is above the limit of {MAX_AWAIT_CAP_MS}: MCP clients abandon a \
                         tool call after 60 s, so a longer `task_await` would be cut off and its \
                         result lost"
                    ),
                    Some(format!(
                        "use at most {MAX_AWAIT_CAP_MS}; callers simply call `task_await` again"
                    )),
                ));
            }
            _ => {}
        }
        if let Some(jobs) = &tasks.jobs {
            at_least_one("tasks.jobs.maxAgeMs", jobs.max_age_ms)?;
            at_least_one("tasks.jobs.maxCount", jobs.max_count)?;
        }
    }
    if let Some(security) = file.security.as_ref().and_then(|s| s.workflows.as_ref()) {
        check_limits(path, "security.workflows", security)?;
    }
    if let Some(workflows) = &file.workflows {
        if let Some(triggers) = &workflows.triggers {
            let vision = triggers.vision_on_image.as_ref().map(|t| t.max_tokens);
            let memory = triggers.memory_on_turn_end.as_ref().map(|t| t.max_tokens);
            for (name, max_tokens) in [("visionOnImage", vision), ("memoryOnTurnEnd", memory)] {
                if let Some(max_tokens) = max_tokens {
                    at_least_one(&format!("workflows.triggers.{name}.maxTokens"), max_tokens)?;
                }
            }
        }
        if let Some(boomerang) = &workflows.roocode_boomerang {
            let key = |k: &str| format!("workflows.roocodeBoomerang.{k}");
            check_limits(path, "workflows.roocodeBoomerang", &boomerang.limits())?;
            for (i, step) in boomerang.steps.iter().flatten().enumerate() {
                if !BOOMERANG_STEP_IDS.contains(&step.id.as_str()) {
                    return Err(invalid(
                        path,
                        &key(&format!("steps[{i}].id")),
                        format!(
                            "`{}` is not a step of roocode-boomerang; its steps are: {}",
                            step.id,
                            BOOMERANG_STEP_IDS.join(", ")
                        ),
                        closest_match(&step.id, BOOMERANG_STEP_IDS)
                            .map(|c| format!("did you mean `{c}`?")),
                    ));
                }
            }
        }
        if let Some(definitions) = &workflows.definitions {
            check_workflow_definitions(path, definitions)?;
        }
    }
    if let Some(runtime) = &file.runtime {
        if let Some(url) = &runtime.attach_url {
            let host = url.strip_prefix("http://").unwrap_or_default();
            if host.is_empty() || host.starts_with('/') {
                return Err(invalid(
                    path,
                    "runtime.attachUrl",
                    format!("`{url}` is not an http:// URL of an OpenCode server"),
                    Some("write it like http://127.0.0.1:4096".to_owned()),
                ));
            }
        }
        if let Some(name) = &runtime.attach_password_env
            && !is_env_var_name(name)
        {
            return Err(invalid(
                path,
                "runtime.attachPasswordEnv",
                format!("`{name}` is not an environment variable name"),
                Some(
                    "give the variable's name (e.g. OPENCODE_SERVER_PASSWORD), not the password"
                        .to_owned(),
                ),
            ));
        }
    }
    for (list, entries) in profile_lists(file) {
        for (i, entry) in entries.iter().enumerate() {
            if let ProfileEntry::Object(object) = entry {
                check_profile_object(path, &format!("{list}[{i}]"), object)?;
            }
        }
    }
    Ok(())
}

fn is_env_var_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn check_workflow_definitions(
    path: &Path,
    definitions: &[WorkflowDefinitionFile],
) -> Result<(), ConfigError> {
    let mut ids = BTreeSet::new();
    for (i, definition) in definitions.iter().enumerate() {
        let key = format!("workflows.definitions[{i}]");
        check_workflow_definition(path, &key, definition)?;
        if !ids.insert(definition.id.as_str()) {
            return Err(invalid(
                path,
                &format!("{key}.id"),
                format!("workflow `{}` is defined twice", definition.id),
                None,
            ));
        }
    }
    Ok(())
}

fn check_profile_object(path: &Path, key: &str, object: &ProfileFile) -> Result<(), ConfigError> {
    if !is_valid_id(&object.id) {
        return Err(invalid(
            path,
            &format!("{key}.id"),
            format!("`{}` is not a valid profile id", object.id),
            Some(
                "use 1-40 lowercase letters, digits and dashes, starting with a letter".to_owned(),
            ),
        ));
    }
    for (field, value) in [("name", &object.name), ("model", &object.model)] {
        if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
            return Err(invalid(
                path,
                &format!("{key}.{field}"),
                "must not be empty",
                None,
            ));
        }
    }
    if let (Some(prompt), Some(system_prompt)) = (&object.prompt, &object.system_prompt)
        && prompt != system_prompt
    {
        return Err(invalid(
            path,
            &format!("{key}.systemPrompt"),
            "both `prompt` and `systemPrompt` are set; they are the same setting",
            Some("keep only `prompt`".to_owned()),
        ));
    }
    if let Some(temperature) = object.temperature
        && !(0.0..=2.0).contains(&temperature)
    {
        return Err(invalid(
            path,
            &format!("{key}.temperature"),
            format!("{temperature} is outside 0..=2"),
            None,
        ));
    }
    if let (Some(kind), Some(backend)) = (object.kind, object.backend) {
        let agree = match (kind, backend) {
            (ProfileKind::Server, ProfileBackend::Server)
            | (ProfileKind::Agent, ProfileBackend::Agent) => true,
            (ProfileKind::Server, ProfileBackend::Agent)
            | (ProfileKind::Agent, ProfileBackend::Server)
            | (ProfileKind::Subagent, ProfileBackend::Server | ProfileBackend::Agent) => false,
        };
        if !agree {
            return Err(invalid(
                path,
                &format!("{key}.backend"),
                format!(
                    "`kind` is {} but `backend` is {}; `backend` is the old name of `kind`, so \
                     they must agree",
                    enum_name(&kind),
                    enum_name(&backend)
                ),
                Some("remove `backend` (both have no effect in Orchestra)".to_owned()),
            ));
        }
    }
    Ok(())
}

fn enum_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

pub(super) fn profile_lists(file: &OrchestratorConfigFile) -> [(&'static str, &[ProfileEntry]); 2] {
    [
        ("profiles", file.profiles.as_deref().unwrap_or_default()),
        ("workers", file.workers.as_deref().unwrap_or_default()),
    ]
}

/// (key path, reason) of keys of the original plugin that are accepted for compatibility but
/// will never do anything here.
pub const INERT_KEYS: [(&str, &str); 14] = [
    ("ui.toasts", "it shows no OpenCode toasts"),
    (
        "ui.injectSystemContext",
        "workers are described to the orchestrator by its tools, not in its system prompt",
    ),
    (
        "ui.systemContextMaxWorkers",
        "workers are described to the orchestrator by its tools, not in its system prompt",
    ),
    (
        "ui.logToConsole",
        "it never logs to the console (stdout carries the MCP protocol); use `ui.debug`",
    ),
    ("pruning", "it does not rewrite OpenCode's chat history"),
    ("telemetry", "it collects no telemetry"),
    (
        "tasks.persist",
        "tasks are always stored; see `tasks.storePath`",
    ),
    (
        "agent.applyToBuild",
        "it does not change OpenCode's build agent",
    ),
    (
        "memory.autoSpawn",
        "the memory worker starts when a memory task or workflow first needs it",
    ),
    (
        "memory.summaries",
        "no rolling session or project summaries are written; a record keyed `summary:project` opens the memory block (`memory.inject.includeProjectSummary`)",
    ),
    (
        "memory.trim",
        "only automatic memory records are trimmed (`memory.autoRecords`); superseded and retracted records are hidden from search, and `orchestra memory forget` removes records",
    ),
    (
        "memory.inject.includeMessages",
        "no per-message memory records are kept",
    ),
    (
        "memory.inject.includeSessionSummary",
        "there are no session summaries",
    ),
    (
        "workflows.triggers.memoryOnTurnEnd.blocking",
        "the memory run starts after the task is final, so it never holds anything up",
    ),
];

const WORKER_KIND_REASON: &str = "every worker is an agent on an OpenCode server; \
    use `isolation` to choose between a shared server and one per worker";

const INERT_PROFILE_KEYS: [(&str, &str); 7] = [
    ("kind", WORKER_KIND_REASON),
    ("backend", WORKER_KIND_REASON),
    (
        "execution",
        "every task runs in the background and is collected with `task_await`",
    ),
    (
        "promptFile",
        "it names a prompt file of the original plugin; put the text in `prompt`",
    ),
    (
        "port",
        "the port is always the one OpenCode prints when it starts",
    ),
    (
        "injectRepoContext",
        "workers read the repository themselves with their tools",
    ),
    (
        "providerID",
        "write the provider in `model` as `provider/model`",
    ),
];

/// Keys that are read and checked but do nothing yet, because the work that uses them has not
/// landed: (key path, what is missing). `[]` stands for every element of an array. Later work
/// removes an entry when it makes its key take effect.
/// (Steps' `requiredSkills` left this list when the skills preflight landed.)
pub const NOT_YET_EFFECTIVE_KEYS: [(&str, &str); 0] = [];

/// The concrete key paths in `raw` that match `pattern` (dotted, `[]` for every array element).
fn matching_paths(raw: &Value, pattern: &str) -> Vec<String> {
    let mut found = vec![(String::new(), raw)];
    for segment in pattern.split('.') {
        let (name, every) = match segment.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (segment, false),
        };
        let mut next = Vec::new();
        for (path, value) in found {
            let Some(child) = value.get(name).filter(|v| !v.is_null()) else {
                continue;
            };
            let path = if path.is_empty() {
                name.to_owned()
            } else {
                format!("{path}.{name}")
            };
            if every {
                for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                    next.push((format!("{path}[{i}]"), item));
                }
            } else {
                next.push((path, child));
            }
        }
        found = next;
    }
    found.into_iter().map(|(path, _)| path).collect()
}

/// Warnings for keys of `raw` that have no effect. `prefix` is where `raw` sits in a config
/// file: "" for `orchestrator.json`, `workflows.definitions[].` for a workflow file (whose key
/// paths are then reported from the file's own top).
pub(crate) fn no_effect_warnings(path: &Path, raw: &Value, prefix: &str) -> Vec<ConfigWarning> {
    let warn = |key_path: String, reason: &str, not_yet: bool| ConfigWarning {
        path: path.to_path_buf(),
        message: if not_yet {
            format!("`{key_path}` has no effect yet: {reason}")
        } else {
            format!("`{key_path}` has no effect in Orchestra: {reason}")
        },
        key_path,
    };
    let mut warnings = Vec::new();
    let tables = [
        (&INERT_KEYS[..], false),
        (&NOT_YET_EFFECTIVE_KEYS[..], true),
    ];
    for (table, not_yet) in tables {
        for (pattern, reason) in table {
            let Some(pattern) = pattern.strip_prefix(prefix) else {
                continue;
            };
            for key_path in matching_paths(raw, pattern) {
                warnings.push(warn(key_path, reason, not_yet));
            }
        }
    }
    warnings
}

pub(super) fn inert_key_warnings(layer: &Layer) -> Vec<ConfigWarning> {
    let warn = |key_path: String, reason: &str| ConfigWarning {
        path: layer.path.clone(),
        message: format!("`{key_path}` has no effect in Orchestra: {reason}"),
        key_path,
    };
    let mut warnings = no_effect_warnings(&layer.path, &layer.raw, "");
    for list in ["profiles", "workers"] {
        let entries = layer.raw.get(list).and_then(Value::as_array);
        for (i, entry) in entries.into_iter().flatten().enumerate() {
            for (key, reason) in INERT_PROFILE_KEYS {
                if entry.get(key).is_some_and(|v| !v.is_null()) {
                    warnings.push(warn(format!("{list}[{i}].{key}"), reason));
                }
            }
        }
    }
    warnings
}

/// `memory.autoRecords`: both limits between 1 and `u32::MAX` (0 would delete every automatic
/// record as soon as it is written; turn them off with `memory.autoRecord: false` instead).
fn check_auto_records(
    path: &Path,
    auto_records: &super::model::MemoryAutoRecordsFile,
) -> Result<(), ConfigError> {
    for (key, value) in [
        ("memory.autoRecords.maxCount", auto_records.max_count),
        ("memory.autoRecords.maxAgeDays", auto_records.max_age_days),
    ] {
        match value {
            Some(0) => {
                return Err(invalid(
                    path,
                    key,
                    "must be at least 1",
                    Some(
                        "to keep no automatic records, set `memory.autoRecord` to false".to_owned(),
                    ),
                ));
            }
            Some(big) if big > u64::from(u32::MAX) => {
                return Err(invalid(
                    path,
                    key,
                    format!("{big} is above the limit of {}", u32::MAX),
                    Some(format!("use at most {}", u32::MAX)),
                ));
            }
            Some(_) | None => {}
        }
    }
    Ok(())
}
