//! `orchestrator.json`: discovery, validation, defaults and worker profiles.
//!
//! [`load`] reads the global and project files (JSON with comments), rejects unknown keys and
//! wrong types with the file and key path, warns about keys that do nothing in Orchestra, and
//! returns a [`Config`] with every default applied. [`json_schema`] describes the file format;
//! the committed copy lives at [`SCHEMA_PATH`].

mod checks;
mod error;
mod layer;
mod load;
mod merge;
pub mod model;
mod model_triggers;
mod model_workflows;
mod notify;
mod profiles;
mod provenance;
mod resolved;
mod validate;
mod workflow_checks;
mod workflow_file;

#[cfg(test)]
mod tests;

pub use checks::{BudgetsFile, Check, CheckFile, DEFAULT_CHECK_TIMEOUT_MS, DailyBudget};
pub(crate) use error::closest_match;
pub use error::{ConfigError, ConfigWarning};
pub use layer::{BUILTIN_WORKFLOW_IDS, ConfigOrigin, MAX_AWAIT_CAP_MS, json_kind, jsonc_options};
pub use load::{
    CONFIG_FILE_NAME, LoadOptions, candidate_files, check_file, default_global_dir, discover,
    discover_with_origin, load,
};
pub use model::{
    AgentMode, Isolation, MemoryScope, ModelPolicy, OrchestratorConfigFile, PermissionAction,
    PermissionReply, WorkflowExecution, WorkflowIntervene,
};
pub use notify::{DEFAULT_NOTIFY_EVENTS, NotifyKind, NotifyTarget, NotifyTargetFile};
pub use profiles::{BUILTIN_PROFILE_IDS, MEMORY_PROFILE_ID, Profile, builtin_profiles};
pub use provenance::{KeySource, Provenance};
pub use resolved::{
    AgentConfig, BOOMERANG_STEP_IDS, BoomerangStepOverride, CommandsConfig, Config,
    DEFAULT_STEP_PROMPT, DEFAULT_STEP_WORKER, HubConfig, JobsConfig, LoadedConfig, MemoryConfig,
    MemoryInjectConfig, MemorySummariesConfig, MemoryTrimConfig, RoocodeBoomerangConfig,
    RuntimeConfig, SecurityConfig, TasksConfig, TriggerConfig, TriggersConfig, UiConfig,
    WorkflowDefinition, WorkflowStep, WorkflowUiConfig, WorkflowsConfig, WorktreeConfig,
};
pub use validate::{INERT_KEYS, NOT_YET_EFFECTIVE_KEYS, TRUSTED_ONLY_KEYS};
pub use workflow_checks::{STEP_OUTPUT_PREFIX, step_references};
pub use workflow_file::{
    WORKFLOW_SCHEMA_PATH, parse_workflow_file, workflow_file_warnings, workflow_json_schema,
};

/// Where the generated schema is committed, relative to the workspace root.
pub const SCHEMA_PATH: &str = "schema/orchestrator.schema.json";

/// The JSON Schema (draft 2020-12) of `orchestrator.json`.
pub fn json_schema() -> serde_json::Value {
    titled(
        schemars::schema_for!(OrchestratorConfigFile),
        "Open Orchestra orchestrator.json",
    )
}

/// A generated schema as a value, with a `title` for editors.
pub(crate) fn titled(schema: schemars::Schema, title: &str) -> serde_json::Value {
    let mut value = schema.to_value();
    if let Some(object) = value.as_object_mut() {
        object.insert(
            "title".to_owned(),
            serde_json::Value::String(title.to_owned()),
        );
    }
    value
}
