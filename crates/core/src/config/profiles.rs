//! Worker profiles: the resolved [`Profile`], the built-in ones, and how user profile objects
//! change them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::model::{Isolation, PermissionAction, PermissionReply, ProfileFile};

/// The profile whose worker curates memory: the only agent that may use the hub's memory tools
/// (the worker MCP endpoint), and whose tasks are neither recorded nor distilled again.
pub const MEMORY_PROFILE_ID: &str = "memory";

/// Ids of the built-in profiles, in the order they are presented.
pub const BUILTIN_PROFILE_IDS: [&str; 6] =
    ["vision", "docs", "coder", "architect", "explorer", "memory"];

const VISION_PROMPT: &str = include_str!("prompts/vision.md");
const DOCS_PROMPT: &str = include_str!("prompts/docs.md");
const CODER_PROMPT: &str = include_str!("prompts/coder.md");
const ARCHITECT_PROMPT: &str = include_str!("prompts/architect.md");
const EXPLORER_PROMPT: &str = include_str!("prompts/explorer.md");
const MEMORY_PROMPT: &str = include_str!("prompts/memory.md");

/// A worker profile with every field decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub id: String,
    pub name: String,
    /// `provider/model` or a tag such as `node:fast`; resolved to a model elsewhere.
    pub model: String,
    pub purpose: String,
    pub when_to_use: String,
    /// The worker's system prompt.
    pub prompt: String,
    pub supports_vision: bool,
    pub supports_web: bool,
    /// OpenCode tool switches, kept for compatibility; permissions are what restrict a worker.
    pub tools: BTreeMap<String, bool>,
    /// OpenCode permissions by key (edit, bash, webfetch, external_directory, …).
    pub permission: BTreeMap<String, PermissionAction>,
    pub temperature: Option<f64>,
    pub tags: Vec<String>,
    /// Overrides `runtime.isolation` for this worker (never `Attach`).
    pub isolation: Option<Isolation>,
    /// Where the worker's tasks edit files; `None` is the default (see `tasks::worktree_ops`).
    pub workspace: Option<orchestra_protocol::WorkspaceMode>,
    pub on_permission_ask: PermissionReply,
    /// Skills the worker's OpenCode must be able to load before a task runs
    /// (`workers::skills::preflight`).
    pub required_skills: Vec<String>,
    /// Caps for every task of this worker (`budget`).
    pub budget: Option<orchestra_protocol::TaskBudget>,
    /// `provider/model` ids tried in order when the model fails with a rate limit, a server
    /// error, an overload or an exhausted quota (`jobs::fallback`).
    pub fallback_models: Vec<String>,
    /// Defined by Orchestra (possibly changed by the user) rather than only by the user.
    pub builtin: bool,
}

impl Profile {
    /// True when the worker can neither change files nor run commands.
    pub fn read_only(&self) -> bool {
        self.permission.get("edit") == Some(&PermissionAction::Deny)
            && self.permission.get("bash") == Some(&PermissionAction::Deny)
    }

    /// Name of the OpenCode agent that carries this profile.
    pub fn agent_name(&self) -> String {
        format!("orchestra-{}", self.id)
    }
}

/// The six built-in profiles, with the original plugin's ids, names, model tags and flags.
pub fn builtin_profiles() -> Vec<Profile> {
    vec![
        Profile {
            supports_vision: true,
            ..base(
                "vision",
                "Vision Analyst",
                "node:vision",
                "Describe images: screenshots, diagrams, UI mock-ups, photos of text",
                "When a task includes images and the agent handling it cannot see them",
                VISION_PROMPT,
            )
        },
        Profile {
            supports_web: true,
            ..read_only(base(
                "docs",
                "Documentation Librarian",
                "node:docs",
                "Find and cite official documentation and examples for libraries and APIs",
                "When you need to know how a library, API or tool is meant to be used",
                DOCS_PROMPT,
            ))
        },
        base(
            "coder",
            "Code Implementer",
            "node",
            "Write, change and test code in the project",
            "When a concrete implementation or bug fix has to be carried out",
            CODER_PROMPT,
        ),
        read_only(base(
            "architect",
            "System Architect",
            "node",
            "Plan changes, weigh designs and review implementations without editing",
            "Before a non-trivial change, or to review one after it is made",
            ARCHITECT_PROMPT,
        )),
        Profile {
            temperature: Some(0.1),
            ..read_only(base(
                "explorer",
                "Code Explorer",
                "node:fast",
                "Locate code, symbols and settings in the project quickly",
                "When you need to know where something is or how it is wired, fast",
                EXPLORER_PROMPT,
            ))
        },
        Profile {
            supports_web: true,
            tags: ["memory", "knowledge", "decisions"]
                .map(str::to_owned)
                .to_vec(),
            ..base(
                "memory",
                "Memory Graph Curator",
                "node",
                "Record and curate durable project knowledge: decisions, conventions, open tasks",
                "When something learnt in this session should be remembered in later ones",
                MEMORY_PROMPT,
            )
        },
    ]
}

fn base(
    id: &str,
    name: &str,
    model: &str,
    purpose: &str,
    when_to_use: &str,
    prompt: &str,
) -> Profile {
    Profile {
        id: id.to_owned(),
        name: name.to_owned(),
        model: model.to_owned(),
        purpose: purpose.to_owned(),
        when_to_use: when_to_use.to_owned(),
        prompt: prompt.trim_end().to_owned(),
        supports_vision: false,
        supports_web: false,
        tools: BTreeMap::new(),
        permission: BTreeMap::new(),
        temperature: None,
        tags: Vec::new(),
        isolation: None,
        workspace: None,
        on_permission_ask: PermissionReply::Reject,
        required_skills: Vec::new(),
        budget: None,
        fallback_models: Vec::new(),
        builtin: true,
    }
}

// The permissions are what OpenCode enforces (`edit` covers write, edit and patch); the tool
// switches mirror the original plugin's profiles for anyone reading the resolved config.
fn read_only(mut profile: Profile) -> Profile {
    for tool in ["write", "edit", "bash"] {
        profile.tools.insert(tool.to_owned(), false);
    }
    for key in ["edit", "bash"] {
        profile
            .permission
            .insert(key.to_owned(), PermissionAction::Deny);
    }
    profile
}

/// Fields a profile with a new id must set.
const REQUIRED_FOR_NEW: [&str; 4] = ["name", "model", "purpose", "whenToUse"];

/// Builds a new profile from a user object, or names the required fields it lacks.
pub(crate) fn new_profile(object: &ProfileFile) -> Result<Profile, Vec<&'static str>> {
    let present = [
        object.name.is_some(),
        object.model.is_some(),
        object.purpose.is_some(),
        object.when_to_use.is_some(),
    ];
    let missing: Vec<&'static str> = REQUIRED_FOR_NEW
        .iter()
        .zip(present)
        .filter(|(_, present)| !present)
        .map(|(name, _)| *name)
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    let mut profile = base(&object.id, "", "", "", "", "");
    profile.builtin = false;
    apply_override(&mut profile, object);
    if profile.prompt.is_empty() {
        profile.prompt = default_prompt(&profile);
    }
    Ok(profile)
}

// A user-defined worker without a prompt still needs to know what it is for.
fn default_prompt(profile: &Profile) -> String {
    format!(
        "You are {name}, a worker of Open Orchestra.\n\nYour job: {purpose}\n\n\
         You are called on {when}. Do the task you are given, stay within it, and finish \
         with a direct, complete answer.",
        name = profile.name,
        purpose = profile.purpose,
        when = lowercase_first(&profile.when_to_use),
    )
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Changes only the fields the object sets; `tools` and `permission` merge key by key so that
/// overriding one permission of a read-only profile keeps the others.
pub(crate) fn apply_override(profile: &mut Profile, object: &ProfileFile) {
    set(&mut profile.name, object.name.clone());
    set(&mut profile.model, object.model.clone());
    set(&mut profile.purpose, object.purpose.clone());
    set(&mut profile.when_to_use, object.when_to_use.clone());
    set(
        &mut profile.prompt,
        object
            .prompt
            .clone()
            .or_else(|| object.system_prompt.clone()),
    );
    set(&mut profile.supports_vision, object.supports_vision);
    set(&mut profile.supports_web, object.supports_web);
    if let Some(tools) = &object.tools {
        profile.tools.extend(tools.clone());
    }
    if let Some(permission) = &object.permission {
        profile.permission.extend(permission.clone());
    }
    if object.temperature.is_some() {
        profile.temperature = object.temperature;
    }
    set(&mut profile.tags, object.tags.clone());
    if let Some(isolation) = object.isolation {
        profile.isolation = Some(isolation.into());
    }
    set(&mut profile.on_permission_ask, object.on_permission_ask);
    set(&mut profile.required_skills, object.required_skills.clone());
    if object.workspace.is_some() {
        profile.workspace = object.workspace;
    }
    if object.budget.is_some() {
        profile.budget = object.budget;
    }
    set(&mut profile.fallback_models, object.fallback_models.clone());
}

pub(crate) fn set<T>(slot: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *slot = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_match_the_original_table() {
        let profiles = builtin_profiles();
        let ids: Vec<&str> = profiles.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, BUILTIN_PROFILE_IDS);
        let by_id = |id: &str| profiles.iter().find(|p| p.id == id);
        let models: Vec<(&str, &str)> = profiles
            .iter()
            .map(|p| (p.id.as_str(), p.model.as_str()))
            .collect();
        assert_eq!(
            models,
            [
                ("vision", "node:vision"),
                ("docs", "node:docs"),
                ("coder", "node"),
                ("architect", "node"),
                ("explorer", "node:fast"),
                ("memory", "node"),
            ]
        );
        let vision = by_id("vision").map(|p| (p.supports_vision, p.read_only()));
        assert_eq!(vision, Some((true, false)));
        for id in ["docs", "architect", "explorer"] {
            assert_eq!(by_id(id).map(Profile::read_only), Some(true), "{id}");
        }
        for id in ["vision", "coder", "memory"] {
            assert_eq!(by_id(id).map(Profile::read_only), Some(false), "{id}");
        }
        assert_eq!(by_id("docs").map(|p| p.supports_web), Some(true));
        assert_eq!(by_id("memory").map(|p| p.supports_web), Some(true));
        assert_eq!(by_id("explorer").and_then(|p| p.temperature), Some(0.1));
        assert_eq!(
            by_id("coder").map(|p| p.name.as_str()),
            Some("Code Implementer")
        );
        assert!(profiles.iter().all(|p| p.builtin && !p.prompt.is_empty()));
        assert!(
            profiles
                .iter()
                .all(|p| p.on_permission_ask == PermissionReply::Reject)
        );
        assert_eq!(
            by_id("explorer").map(Profile::agent_name).as_deref(),
            Some("orchestra-explorer")
        );
    }
}
