//! Workflow definitions as written: the checks their types cannot express, shared by
//! `workflows.definitions[]` in `orchestrator.json` and `.opencode/workflows/*.json` files.

use std::collections::BTreeSet;
use std::path::Path;

use super::error::ConfigError;
use super::layer::{invalid, is_valid_id};
use super::model::{WorkflowDefinitionFile, WorkflowLimitsFile, WorkflowStepFile};

/// The placeholder that stands for an earlier step's output in a prompt: `{steps.<id>}`.
pub const STEP_OUTPUT_PREFIX: &str = "{steps.";

/// Ids named by `{steps.<id>}` placeholders in a prompt template, in order.
pub fn step_references(template: &str) -> Vec<&str> {
    template
        .match_indices(STEP_OUTPUT_PREFIX)
        .filter_map(|(at, _)| {
            let rest = &template[at + STEP_OUTPUT_PREFIX.len()..];
            rest.find('}').map(|end| &rest[..end])
        })
        .collect()
}

/// Checks one definition; `key` prefixes key paths (`workflows.definitions[0]`, or empty for
/// a workflow file).
pub(crate) fn check_workflow_definition(
    path: &Path,
    key: &str,
    definition: &WorkflowDefinitionFile,
) -> Result<(), ConfigError> {
    let at = |rest: &str| {
        if key.is_empty() {
            rest.to_owned()
        } else {
            format!("{key}.{rest}")
        }
    };
    if !is_valid_id(&definition.id) {
        return Err(invalid(
            path,
            &at("id"),
            format!("`{}` is not a valid workflow id", definition.id),
            Some("use 1-40 lowercase letters, digits and dashes, starting with a letter".into()),
        ));
    }
    if definition.steps.is_empty() {
        return Err(invalid(
            path,
            &at("steps"),
            "a workflow needs at least one step",
            None,
        ));
    }
    if let Some(limits) = &definition.limits {
        check_limits(path, &at("limits"), limits)?;
    }
    // Ids of the steps (and groups) before the one being checked.
    let mut earlier: BTreeSet<&str> = BTreeSet::new();
    for (j, step) in definition.steps.iter().enumerate() {
        let step_key = at(&format!("steps[{j}]"));
        let members = step.parallel.as_deref().unwrap_or_default();
        if step.parallel.is_some() {
            check_group(path, &step_key, step)?;
        } else {
            check_step(path, &step_key, step, &earlier)?;
        }
        for (k, member) in members.iter().enumerate() {
            let member_key = format!("{step_key}.parallel[{k}]");
            if member.parallel.is_some() {
                return Err(invalid(
                    path,
                    &format!("{member_key}.parallel"),
                    format!(
                        "step `{}` in group `{}` is a group itself; groups do not nest",
                        member.id, step.id
                    ),
                    Some("list the steps of the inner group in the outer group".into()),
                ));
            }
            // Members of one group run at once, so they cannot see each other.
            check_step(path, &member_key, member, &earlier)?;
        }
        for id in std::iter::once(&step.id).chain(members.iter().map(|m| &m.id)) {
            if !earlier.insert(id.as_str()) {
                return Err(invalid(
                    path,
                    &format!("{step_key}.id"),
                    format!(
                        "step `{id}` appears twice in workflow `{}`; step ids must be unique, \
                         group members included",
                        definition.id
                    ),
                    None,
                ));
            }
        }
    }
    Ok(())
}

fn check_group(path: &Path, key: &str, group: &WorkflowStepFile) -> Result<(), ConfigError> {
    let members = group.parallel.as_deref().unwrap_or_default();
    if members.len() < 2 {
        return Err(invalid(
            path,
            &format!("{key}.parallel"),
            format!(
                "group `{}` has {} step(s); a parallel group needs at least two",
                group.id,
                members.len()
            ),
            Some("make a single step an ordinary step".into()),
        ));
    }
    let unused = [
        ("workerId", group.worker_id.is_some()),
        ("prompt", group.prompt.is_some()),
        ("carry", group.carry.is_some()),
        ("timeoutMs", group.timeout_ms.is_some()),
        ("model", group.model.is_some()),
        ("requiredSkills", group.required_skills.is_some()),
    ];
    if let Some((field, _)) = unused.iter().find(|(_, set)| *set) {
        return Err(invalid(
            path,
            &format!("{key}.{field}"),
            format!(
                "group `{}` runs its `parallel` steps; `{field}` belongs on those steps",
                group.id
            ),
            Some(format!("move `{field}` into the steps of `parallel`")),
        ));
    }
    Ok(())
}

fn check_step(
    path: &Path,
    key: &str,
    step: &WorkflowStepFile,
    earlier: &BTreeSet<&str>,
) -> Result<(), ConfigError> {
    if step.timeout_ms == Some(0) {
        return Err(invalid(
            path,
            &format!("{key}.timeoutMs"),
            format!("step `{}`: must be at least 1", step.id),
            None,
        ));
    }
    for reference in step_references(step.prompt.as_deref().unwrap_or_default()) {
        if !earlier.contains(reference) {
            let known: Vec<&str> = earlier.iter().copied().collect();
            return Err(invalid(
                path,
                &format!("{key}.prompt"),
                format!(
                    "step `{}` uses `{{steps.{reference}}}`, but no earlier step has id \
                     `{reference}`; earlier steps: {}",
                    step.id,
                    if known.is_empty() {
                        "(none)".to_owned()
                    } else {
                        known.join(", ")
                    }
                ),
                Some(
                    "a step can use the output of steps before it (not of itself, later \
                     steps or members of its own group)"
                        .into(),
                ),
            ));
        }
    }
    Ok(())
}

/// Each limit that is set is at least 1; `key` is where the limits sit in the file.
pub(super) fn check_limits(
    path: &Path,
    key: &str,
    limits: &WorkflowLimitsFile,
) -> Result<(), ConfigError> {
    for (name, value) in [
        ("maxSteps", limits.max_steps),
        ("maxTaskChars", limits.max_task_chars),
        ("maxCarryChars", limits.max_carry_chars),
        ("perStepTimeoutMs", limits.per_step_timeout_ms),
        ("maxRunMs", limits.max_run_ms),
        ("maxRunTokens", limits.max_run_tokens),
    ] {
        if value == Some(0) {
            return Err(invalid(
                path,
                &format!("{key}.{name}"),
                "must be at least 1",
                None,
            ));
        }
    }
    Ok(())
}
