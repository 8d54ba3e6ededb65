//! Profiles become OpenCode agents.
//!
//! A profile is enforced by OpenCode itself, never by prompt wording: its
//! permission map becomes the agent's `permission` block (so a read-only
//! profile's `write`/`edit`/`bash` calls are refused by OpenCode), and the same
//! rules are also pinned on every session we create, which is what enforces
//! them on an attached server whose config we cannot change.

use serde_json::{Map, Value, json};

use crate::config::{MEMORY_PROFILE_ID, PermissionAction, Profile};
use crate::opencode::{PermissionAction as RuleAction, PermissionRule};

/// The `agent` block entry for one profile, for `OPENCODE_CONFIG_CONTENT`.
pub fn agent_definition(profile: &Profile) -> Value {
    let mut agent = Map::new();
    agent.insert(
        "description".into(),
        Value::String(format!("Open Orchestra worker: {}", profile.purpose)),
    );
    // `primary` so a session can be prompted with this agent directly.
    agent.insert("mode".into(), Value::String("primary".into()));
    agent.insert("prompt".into(), Value::String(profile.prompt.clone()));
    // No `model` here: the model is resolved from the running server's catalog and sent with
    // every prompt (see `crate::models`). OpenCode passes `temperature` to the provider only
    // when the model's catalog entry says it takes one.
    if let Some(temperature) = profile.temperature {
        agent.insert("temperature".into(), json!(temperature));
    }
    let permission: Map<String, Value> = profile
        .permission
        .iter()
        .map(|(key, action)| (key.clone(), Value::String(action_word(*action).into())))
        .collect();
    if !permission.is_empty() {
        agent.insert("permission".into(), Value::Object(permission));
    }
    if !profile.tools.is_empty() {
        let tools: Map<String, Value> = profile
            .tools
            .iter()
            .map(|(k, v)| (k.clone(), Value::Bool(*v)))
            .collect();
        agent.insert("tools".into(), Value::Object(tools));
    }
    Value::Object(agent)
}

/// The hub's MCP tools as OpenCode names them (`<server>_<tool>`); a glob in `tools` maps.
pub const MEMORY_TOOLS: &str = "orchestra_*";

/// Lets the memory profile's agent (if hosted) use the hub's MCP tools, which the config's
/// top-level `tools` denies every other agent — so no other worker can reach them, and the
/// tools themselves take only memory ops.
pub fn allow_memory_tools(agents: &mut Value, hosted: &[Profile]) {
    for profile in hosted.iter().filter(|p| p.id == MEMORY_PROFILE_ID) {
        if let Some(agent) = agents.get_mut(profile.agent_name()) {
            merge_json(agent, &json!({"tools": {MEMORY_TOOLS: true}}));
        }
    }
}

/// The `agent` block for a set of profiles.
pub fn agents_block<'a>(profiles: impl IntoIterator<Item = &'a Profile>) -> Value {
    let agents: Map<String, Value> = profiles
        .into_iter()
        .map(|p| (p.agent_name(), agent_definition(p)))
        .collect();
    Value::Object(agents)
}

/// Session-level permission rules (`POST /session {permission: [...]}`).
pub fn session_permission_rules(profile: &Profile) -> Vec<PermissionRule> {
    profile
        .permission
        .iter()
        .map(|(key, action)| PermissionRule {
            permission: key.clone(),
            pattern: "*".into(),
            action: match action {
                PermissionAction::Allow => RuleAction::Allow,
                PermissionAction::Ask => RuleAction::Ask,
                PermissionAction::Deny => RuleAction::Deny,
            },
        })
        .collect()
}

fn action_word(action: PermissionAction) -> &'static str {
    match action {
        PermissionAction::Allow => "allow",
        PermissionAction::Ask => "ask",
        PermissionAction::Deny => "deny",
    }
}

/// Deep-merges `overlay` into `base`; objects merge, everything else replaces.
pub fn merge_json(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Object(base_map), Value::Object(overlay_map)) => {
            for (key, value) in overlay_map {
                match base_map.get_mut(key) {
                    Some(existing) => merge_json(existing, value),
                    None => {
                        base_map.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (base, overlay) => *base = overlay.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_is_deep_for_objects_and_replaces_the_rest() {
        let mut base = json!({"a": {"b": 1, "c": [1]}, "d": 1});
        merge_json(&mut base, &json!({"a": {"c": [2], "e": 3}, "d": 2}));
        assert_eq!(base, json!({"a": {"b": 1, "c": [2], "e": 3}, "d": 2}));
    }
}
