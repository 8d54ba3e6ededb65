//! Merging the checked files over the defaults into a [`Config`].

use std::path::{Path, PathBuf};

use orchestra_protocol::WorkflowRunLimits;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::error::{ConfigError, closest_match};
use super::layer::{BUILTIN_WORKFLOW_IDS, Layer, invalid};
use super::model::{
    OrchestratorConfigFile, ProfileEntry, WorkflowDefinitionFile, WorkflowLimitsFile,
    WorkflowStepFile, WorkflowsFile,
};
use super::profiles::{apply_override, new_profile, set};
use super::resolved::{
    BoomerangStepOverride, Config, DEFAULT_STEP_PROMPT, DEFAULT_STEP_WORKER, Isolation,
    WorkflowDefinition, WorkflowStep,
};
use super::validate::profile_lists;

/// Objects merge key by key, `null` removes a key, anything else replaces.
fn deep_merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match (base.get_mut(key), value) {
                    (_, Value::Null) => {
                        base.remove(key);
                    }
                    (Some(existing @ Value::Object(_)), Value::Object(_)) => {
                        deep_merge(existing, value);
                    }
                    _ => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

/// The file that decides the value at `pointer`: the last layer that sets it.
fn blame<'a>(layers: &'a [Layer], pointer: &str) -> &'a Path {
    layers
        .iter()
        .rev()
        .find(|l| l.raw.pointer(pointer).is_some_and(|v| !v.is_null()))
        .or(layers.last())
        .map_or(Path::new("<built-in defaults>"), |l| l.path.as_path())
}

pub(super) fn resolve(layers: &[Layer], project_dir: &Path) -> Result<Config, ConfigError> {
    let mut merged = Value::Object(Map::new());
    for layer in layers {
        deep_merge(&mut merged, &layer.raw);
    }
    if let Value::Object(map) = &mut merged {
        map.remove("profiles");
        map.remove("workers");
    }
    let file: OrchestratorConfigFile =
        OrchestratorConfigFile::deserialize(&merged).map_err(|e| {
            invalid(
                blame(layers, ""),
                ".",
                format!("merged config is invalid: {e}"),
                None,
            )
        })?;

    let mut config = Config::builtin();
    // A relative `opencodeBin` is taken from the folder of the (trusted) file that sets it,
    // never from the project: a repository must not be able to supply the binary.
    let bin_base = blame(layers, "/runtime/opencodeBin")
        .parent()
        .map_or_else(|| project_dir.to_path_buf(), Path::to_path_buf);
    apply_file(&mut config, &file, project_dir, &bin_base);
    config.notify = super::notify::resolve_targets(file.notify.as_deref().unwrap_or_default())
        .map_err(|(index, message, fix)| {
            invalid(
                blame(layers, "/notify"),
                &format!("notify[{index}]"),
                message,
                Some(fix),
            )
        })?;

    if config.runtime.isolation == Isolation::Attach && config.runtime.attach_url.is_none() {
        return Err(invalid(
            blame(layers, "/runtime/isolation"),
            "runtime.attachUrl",
            "`runtime.isolation` is attach but no `runtime.attachUrl` says which server to \
             attach to",
            Some(
                "add \"attachUrl\" with the address `opencode serve` prints, e.g. \
                 http://127.0.0.1:4096"
                    .to_owned(),
            ),
        ));
    }

    resolve_profiles(layers, &mut config)?;
    check_workflow_references(layers, &config)?;
    Ok(config)
}

fn apply_file(
    config: &mut Config,
    file: &OrchestratorConfigFile,
    project_dir: &Path,
    bin_base: &Path,
) {
    set(&mut config.auto_spawn, file.auto_spawn);
    if let Some(checks) = &file.checks {
        config.checks = super::checks::resolve(checks);
    }
    if let Some(per_day) = file.budgets.as_ref().and_then(|b| b.per_day) {
        config.daily_budget = Some(per_day);
    }
    set(&mut config.startup_timeout_ms, file.startup_timeout);
    set(
        &mut config.health_check_interval_ms,
        file.health_check_interval,
    );
    if let Some(ui) = &file.ui {
        set(&mut config.ui.default_list_format, ui.default_list_format);
        set(&mut config.ui.debug, ui.debug);
        set(&mut config.ui.wakeup_injection, ui.wakeup_injection);
        set(&mut config.ui.vision_timeout_ms, ui.vision_timeout_ms);
    }
    if let Some(idle) = file.notifications.as_ref().and_then(|n| n.idle.as_ref()) {
        let target = &mut config.notifications.idle;
        set(&mut target.enabled, idle.enabled);
        set(&mut target.title, idle.title.clone());
        set(&mut target.message, idle.message.clone());
        set(&mut target.delay_ms, idle.delay_ms);
    }
    if let Some(agent) = &file.agent {
        let target = &mut config.agent;
        set(&mut target.enabled, agent.enabled);
        set(&mut target.name, agent.name.clone());
        target.model.clone_from(&agent.model);
        target.prompt.clone_from(&agent.prompt);
        set(&mut target.mode, agent.mode);
        target.color.clone_from(&agent.color);
        target.tools.clone_from(&agent.tools);
        target.permission.clone_from(&agent.permission);
    }
    if let Some(commands) = &file.commands {
        set(&mut config.commands.enabled, commands.enabled);
        set(&mut config.commands.prefix, commands.prefix.clone());
    }
    if let Some(tasks) = &file.tasks {
        let target = &mut config.tasks;
        set(&mut target.default_timeout_ms, tasks.default_timeout_ms);
        set(&mut target.default_auto_spawn, tasks.default_auto_spawn);
        set(&mut target.default_model_policy, tasks.default_model_policy);
        set(&mut target.await_cap_ms, tasks.await_cap_ms);
        set(&mut target.max_task_chars, tasks.max_task_chars);
        set(&mut target.max_attachment_bytes, tasks.max_attachment_bytes);
        set(&mut target.max_attachments, tasks.max_attachments);
        set(
            &mut target.max_attachments_bytes,
            tasks.max_attachments_bytes,
        );
        set(&mut target.provider_retry_limit, tasks.provider_retry_limit);
        set(
            &mut target.permission_ask_timeout_ms,
            tasks.permission_ask_timeout_ms,
        );
        if let Some(jobs) = &tasks.jobs {
            set(&mut target.jobs.max_age_ms, jobs.max_age_ms);
            set(&mut target.jobs.max_count, jobs.max_count);
        }
        target.store_path = tasks.store_path.as_ref().map(|p| project_dir.join(p));
    }
    if let Some(runtime) = &file.runtime {
        let target = &mut config.runtime;
        set(&mut target.isolation, runtime.isolation);
        target.attach_url.clone_from(&runtime.attach_url);
        target
            .attach_password_env
            .clone_from(&runtime.attach_password_env);
        // A bare name is looked up on PATH; anything with a separator is a path.
        target.opencode_bin = runtime.opencode_bin.as_ref().map(|bin| {
            if bin.contains(std::path::MAIN_SEPARATOR) || bin.contains('/') {
                bin_base.join(bin)
            } else {
                PathBuf::from(bin)
            }
        });
        set(&mut target.max_restarts, runtime.max_restarts);
        set(&mut target.restart_backoff_ms, runtime.restart_backoff_ms);
        set(&mut target.keep_sessions, runtime.keep_sessions);
        set(&mut target.snapshots, runtime.snapshots);
    }
    if let Some(worktree) = &file.worktree {
        if let Some(copy) = &worktree.copy {
            config.worktree.copy.clone_from(copy);
        }
        if worktree.setup.is_some() {
            config.worktree.setup.clone_from(&worktree.setup);
        }
        if let Some(spares) = worktree.spares {
            // `check_layer` refused anything above MAX_WORKTREE_SPARES.
            config.worktree.spares = usize::try_from(spares).unwrap_or(0);
        }
    }
    if let Some(hub) = &file.hub {
        set(&mut config.hub.idle_stop_ms, hub.idle_stop_ms);
        set(&mut config.hub.port, hub.port);
    }
    if let Some(workflows) = &file.workflows {
        apply_workflows(config, workflows);
    }
    if let Some(limits) = file.security.as_ref().and_then(|s| s.workflows.as_ref()) {
        apply_limits(&mut config.security.workflows, limits);
    }
    if let Some(memory) = &file.memory {
        let target = &mut config.memory;
        set(&mut target.enabled, memory.enabled);
        set(&mut target.auto_spawn, memory.auto_spawn);
        set(&mut target.auto_record, memory.auto_record);
        set(&mut target.auto_inject, memory.auto_inject);
        if let Some(auto_records) = &memory.auto_records {
            set(&mut target.auto_records.max_count, auto_records.max_count);
            set(
                &mut target.auto_records.max_age_days,
                auto_records.max_age_days,
            );
        }
        set(&mut target.scope, memory.scope);
        set(&mut target.max_chars, memory.max_chars);
        if let Some(summaries) = &memory.summaries {
            set(&mut target.summaries.enabled, summaries.enabled);
            set(
                &mut target.summaries.session_max_chars,
                summaries.session_max_chars,
            );
            set(
                &mut target.summaries.project_max_chars,
                summaries.project_max_chars,
            );
        }
        if let Some(trim) = &memory.trim {
            let t = &mut target.trim;
            set(
                &mut t.max_messages_per_session,
                trim.max_messages_per_session,
            );
            set(
                &mut t.max_messages_per_project,
                trim.max_messages_per_project,
            );
            set(&mut t.max_messages_global, trim.max_messages_global);
            set(&mut t.max_projects_global, trim.max_projects_global);
        }
        if let Some(inject) = &memory.inject {
            let t = &mut target.inject;
            set(&mut t.max_chars, inject.max_chars);
            set(&mut t.max_entries, inject.max_entries);
            set(&mut t.include_messages, inject.include_messages);
            set(
                &mut t.include_session_summary,
                inject.include_session_summary,
            );
            set(
                &mut t.include_project_summary,
                inject.include_project_summary,
            );
            set(&mut t.include_global, inject.include_global);
            set(&mut t.max_global_entries, inject.max_global_entries);
        }
    }
}

fn apply_workflows(config: &mut Config, workflows: &WorkflowsFile) {
    let target = &mut config.workflows;
    set(&mut target.enabled, workflows.enabled);
    if let Some(ui) = &workflows.ui {
        set(&mut target.ui.execution, ui.execution);
        set(&mut target.ui.intervene, ui.intervene);
    }
    if let Some(definitions) = &workflows.definitions {
        target.definitions = definitions.iter().map(resolve_definition).collect();
    }
    if let Some(triggers) = &workflows.triggers {
        if let Some(file) = &triggers.vision_on_image {
            let vision = &mut target.triggers.vision_on_image;
            let trigger = &mut vision.trigger;
            set(&mut trigger.enabled, file.enabled);
            set(&mut trigger.workflow_id, file.workflow_id.clone());
            set(&mut trigger.auto_spawn, file.auto_spawn);
            set(&mut trigger.blocking, file.blocking);
            set(&mut trigger.max_tokens, file.max_tokens);
            set(
                &mut vision.skip_when_model_sees_images,
                file.skip_when_model_sees_images,
            );
        }
        if let Some(file) = &triggers.memory_on_turn_end {
            let trigger = &mut target.triggers.memory_on_turn_end;
            set(&mut trigger.enabled, file.enabled);
            set(&mut trigger.workflow_id, file.workflow_id.clone());
            set(&mut trigger.auto_spawn, file.auto_spawn);
            set(&mut trigger.blocking, file.blocking);
            set(&mut trigger.max_tokens, file.max_tokens);
        }
    }
    if let Some(boomerang) = &workflows.roocode_boomerang {
        let t = &mut target.roocode_boomerang;
        set(&mut t.enabled, boomerang.enabled);
        if let Some(steps) = &boomerang.steps {
            t.steps = steps
                .iter()
                .map(|s| BoomerangStepOverride {
                    id: s.id.clone(),
                    title: s.title.clone(),
                    worker_id: s.worker_id.clone(),
                    prompt: s.prompt.clone(),
                    carry: s.carry,
                    timeout_ms: s.timeout_ms,
                    model: s.model.clone(),
                    required_skills: s.required_skills.clone(),
                })
                .collect();
        }
        apply_limits(&mut t.limits, &boomerang.limits());
    }
}

/// The limits a file sets replace those below it; the others stay.
fn apply_limits(target: &mut WorkflowRunLimits, limits: &WorkflowLimitsFile) {
    set(&mut target.max_steps, limits.max_steps);
    set(&mut target.max_task_chars, limits.max_task_chars);
    set(&mut target.max_carry_chars, limits.max_carry_chars);
    set(&mut target.per_step_timeout_ms, limits.per_step_timeout_ms);
    set(&mut target.max_run_ms, limits.max_run_ms);
    set(&mut target.max_run_tokens, limits.max_run_tokens);
}

/// A workflow as written (in `orchestrator.json` or a workflow file) with defaults applied.
pub(crate) fn resolve_definition(d: &WorkflowDefinitionFile) -> WorkflowDefinition {
    WorkflowDefinition {
        id: d.id.clone(),
        name: d.name.clone(),
        description: d.description.clone(),
        steps: d.steps.iter().map(resolve_step).collect(),
        limits: d.limits.clone().unwrap_or_default(),
    }
}

fn resolve_step(s: &WorkflowStepFile) -> WorkflowStep {
    WorkflowStep {
        id: s.id.clone(),
        title: s.title.clone(),
        worker_id: s
            .worker_id
            .clone()
            .unwrap_or_else(|| DEFAULT_STEP_WORKER.to_owned()),
        prompt: s
            .prompt
            .clone()
            .unwrap_or_else(|| DEFAULT_STEP_PROMPT.to_owned()),
        carry: s.carry.unwrap_or(false),
        timeout_ms: s.timeout_ms,
        model: s.model.clone(),
        required_skills: s.required_skills.clone().unwrap_or_default(),
        until: s.until.clone(),
        parallel: s.parallel.iter().flatten().map(resolve_step).collect(),
    }
}

fn resolve_profiles(layers: &[Layer], config: &mut Config) -> Result<(), ConfigError> {
    let mut references: Vec<(&Path, String, &str)> = Vec::new();
    for layer in layers {
        for (list, entries) in profile_lists(&layer.file) {
            for (i, entry) in entries.iter().enumerate() {
                let key = format!("{list}[{i}]");
                match entry {
                    ProfileEntry::Id(id) => references.push((&layer.path, key, id)),
                    ProfileEntry::Object(object) => {
                        if let Some(existing) = config.profiles.get_mut(&object.id) {
                            apply_override(existing, object);
                        } else {
                            let profile = new_profile(object).map_err(|missing| {
                                invalid(
                                    &layer.path,
                                    &key,
                                    format!(
                                        "`{}` is not a known profile, so it defines a new one and \
                                         must also set: {}",
                                        object.id,
                                        missing.join(", ")
                                    ),
                                    closest_match(
                                        &object.id,
                                        config.profiles.keys().map(String::as_str),
                                    )
                                    .map(|c| {
                                        format!("to change the existing profile, use id `{c}`")
                                    }),
                                )
                            })?;
                            config.profiles.insert(profile.id.clone(), profile);
                        }
                    }
                }
            }
        }
    }
    for (path, key, id) in references {
        if !config.profiles.contains_key(id) {
            let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
            return Err(invalid(
                path,
                &key,
                format!(
                    "unknown profile `{id}`; known profiles: {}",
                    known.join(", ")
                ),
                closest_match(id, known.iter().copied()).map(|c| format!("did you mean `{c}`?")),
            ));
        }
    }
    if let Some(workers) = layers.iter().rev().find_map(|l| l.file.workers.as_ref()) {
        let mut spawn: Vec<String> = Vec::new();
        for entry in workers {
            let id = match entry {
                ProfileEntry::Id(id) => id,
                ProfileEntry::Object(object) => &object.id,
            };
            if !spawn.contains(id) {
                spawn.push(id.clone());
            }
        }
        config.spawn = spawn;
    }
    Ok(())
}

fn check_workflow_references(layers: &[Layer], config: &Config) -> Result<(), ConfigError> {
    let unknown_worker = |pointer: &str, key: &str, id: &str| {
        let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
        invalid(
            blame(layers, pointer),
            key,
            format!(
                "unknown worker `{id}`; known profiles: {}",
                known.join(", ")
            ),
            closest_match(id, known.iter().copied()).map(|c| format!("did you mean `{c}`?")),
        )
    };
    for (i, definition) in config.workflows.definitions.iter().enumerate() {
        for (key, leaf) in definition.leaves() {
            if !config.profiles.contains_key(&leaf.worker_id) {
                return Err(unknown_worker(
                    "/workflows/definitions",
                    &format!("workflows.definitions[{i}].{key}.workerId"),
                    &leaf.worker_id,
                ));
            }
        }
    }
    for (i, step) in config.workflows.roocode_boomerang.steps.iter().enumerate() {
        if let Some(worker) = &step.worker_id
            && !config.profiles.contains_key(worker)
        {
            return Err(unknown_worker(
                "/workflows/roocodeBoomerang/steps",
                &format!("workflows.roocodeBoomerang.steps[{i}].workerId"),
                worker,
            ));
        }
    }
    let triggers = &config.workflows.triggers;
    for (name, trigger) in [
        ("visionOnImage", &triggers.vision_on_image.trigger),
        ("memoryOnTurnEnd", &triggers.memory_on_turn_end),
    ] {
        let known: Vec<&str> = BUILTIN_WORKFLOW_IDS
            .into_iter()
            .chain(config.workflows.definitions.iter().map(|d| d.id.as_str()))
            .collect();
        if trigger.enabled && !known.contains(&trigger.workflow_id.as_str()) {
            return Err(invalid(
                blame(layers, &format!("/workflows/triggers/{name}/workflowId")),
                &format!("workflows.triggers.{name}.workflowId"),
                format!(
                    "unknown workflow `{}`; known workflows: {}",
                    trigger.workflow_id,
                    known.join(", ")
                ),
                closest_match(&trigger.workflow_id, known.iter().copied())
                    .map(|c| format!("did you mean `{c}`?")),
            ));
        }
    }
    Ok(())
}
