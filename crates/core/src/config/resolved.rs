//! The configuration the engine runs with: every default applied, every value checked.

use std::collections::BTreeMap;
use std::path::PathBuf;

use orchestra_protocol::WorkflowRunLimits;
use orchestra_protocol::tools::ListFormat;
use serde::{Deserialize, Serialize};

use super::error::{ConfigError, ConfigWarning, closest_match};
pub use super::model::Isolation;
use super::model::{
    AgentMode, MemoryScope, ModelPolicy, WorkflowExecution, WorkflowIntervene, WorkflowLimitsFile,
};
use super::profiles::{Profile, builtin_profiles};

/// The result of [`super::load`].
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedConfig {
    pub config: Config,
    /// The files that were read, lowest priority first.
    pub sources: Vec<PathBuf>,
    pub warnings: Vec<ConfigWarning>,
    /// The top-level keys the project's own file sets (what the repository decided).
    pub project_keys: Vec<String>,
    /// Which file decides each key that a file sets.
    pub provenance: super::Provenance,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub auto_spawn: bool,
    pub startup_timeout_ms: u64,
    pub health_check_interval_ms: u64,
    pub ui: UiConfig,
    pub notifications: NotificationsConfig,
    pub agent: AgentConfig,
    pub commands: CommandsConfig,
    pub tasks: TasksConfig,
    pub runtime: RuntimeConfig,
    pub hub: HubConfig,
    pub worktree: WorktreeConfig,
    pub workflows: WorkflowsConfig,
    pub security: SecurityConfig,
    pub memory: MemoryConfig,
    /// Built-in profiles plus the user's, by id.
    pub profiles: BTreeMap<String, Profile>,
    /// Ids of the profiles listed in `workers`, in order: the workers started at launch.
    pub spawn: Vec<String>,
    /// Named done-checks (`checks`), by name.
    pub checks: BTreeMap<String, super::checks::Check>,
    /// The project's per-day caps (`budgets.perDay`).
    pub daily_budget: Option<super::checks::DailyBudget>,
    /// Where the hub sends its events (`notify`, from the user's own files only).
    pub notify: Vec<super::notify::NotifyTarget>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorktreeConfig {
    /// Git-ignored files to copy into each new worktree (git pathspec globs).
    pub copy: Vec<String>,
    /// A program and its arguments run in each new worktree (the user's config only).
    pub setup: Option<Vec<String>>,
    /// Worktrees kept checked out ahead of time (`worktree.spares`).
    pub spares: usize,
}

/// `worktree.spares` when unset: one, so every worktree task after the first starts from a
/// ready checkout; more only pay off when several start at once.
pub const DEFAULT_WORKTREE_SPARES: usize = 1;
/// `worktree.spares` above this is refused: each spare is a whole checkout on disk.
pub const MAX_WORKTREE_SPARES: u64 = 8;

impl Default for WorktreeConfig {
    fn default() -> Self {
        WorktreeConfig {
            copy: Vec::new(),
            setup: None,
            spares: DEFAULT_WORKTREE_SPARES,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UiConfig {
    pub default_list_format: ListFormat,
    pub debug: bool,
    /// Results of tasks started from an OpenCode session are delivered into it.
    pub wakeup_injection: bool,
    /// How long a pasted image's analysis may hold the message.
    pub vision_timeout_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NotificationsConfig {
    pub idle: IdleNotificationConfig,
}

/// `notifications.idle`: a session is idle and a task it started finished or needs an answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IdleNotificationConfig {
    pub enabled: bool,
    pub title: String,
    pub message: String,
    pub delay_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentConfig {
    pub enabled: bool,
    pub name: String,
    pub model: Option<String>,
    pub prompt: Option<String>,
    pub mode: AgentMode,
    pub color: Option<String>,
    pub tools: Option<BTreeMap<String, bool>>,
    pub permission: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CommandsConfig {
    pub enabled: bool,
    pub prefix: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TasksConfig {
    pub default_timeout_ms: u64,
    pub default_auto_spawn: bool,
    pub default_model_policy: ModelPolicy,
    /// Longest a single `task_await` blocks; always within 1..=45000.
    pub await_cap_ms: u64,
    pub max_task_chars: u64,
    /// Largest single attachment.
    pub max_attachment_bytes: u64,
    /// Most attachments per task.
    pub max_attachments: u64,
    /// Most bytes of all attachments of one task together.
    pub max_attachments_bytes: u64,
    /// Abort a task after OpenCode reports this many provider retries.
    pub provider_retry_limit: u32,
    /// How long a question for a profile with `onPermissionAsk: ask` waits for a person.
    pub permission_ask_timeout_ms: u64,
    pub jobs: JobsConfig,
    /// Absolute, or `None` for the store's default location.
    pub store_path: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JobsConfig {
    pub max_age_ms: u64,
    pub max_count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HubConfig {
    pub idle_stop_ms: u64,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuntimeConfig {
    pub isolation: Isolation,
    /// Base URL of the server to attach to; always set (and `http://…`) when `isolation` is
    /// `Attach`.
    pub attach_url: Option<String>,
    pub attach_password_env: Option<String>,
    /// Absolute path, or a bare command name looked up on `PATH`.
    pub opencode_bin: Option<PathBuf>,
    pub max_restarts: u32,
    pub restart_backoff_ms: u64,
    /// Finished worker sessions kept in OpenCode; older ones are deleted (0: delete each).
    pub keep_sessions: u64,
    /// OpenCode's `snapshot` setting for the servers we start.
    pub snapshots: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowsConfig {
    pub enabled: bool,
    pub ui: WorkflowUiConfig,
    pub definitions: Vec<WorkflowDefinition>,
    pub triggers: TriggersConfig,
    pub roocode_boomerang: RoocodeBoomerangConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WorkflowUiConfig {
    pub execution: WorkflowExecution,
    pub intervene: WorkflowIntervene,
}

/// Deserialize too: a run keeps the definition it started with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowDefinition {
    pub id: String,
    pub name: String,
    pub description: Option<String>,
    pub steps: Vec<WorkflowStep>,
    /// As written; each may only lower its `security.workflows` cap.
    pub limits: WorkflowLimitsFile,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStep {
    pub id: String,
    pub title: String,
    pub worker_id: String,
    /// Template; `{task}` and `{carry}` are replaced.
    pub prompt: String,
    pub carry: bool,
    pub timeout_ms: Option<u64>,
    pub model: Option<String>,
    pub required_skills: Vec<String>,
    /// Repeat until this configured check passes (`until`).
    pub until: Option<orchestra_protocol::UntilCheck>,
    /// Non-empty for a parallel group: these steps run at the same time and the group's own
    /// worker, prompt, carry, timeout and model are unused.
    pub parallel: Vec<WorkflowStep>,
}

impl WorkflowStep {
    /// The worker steps this step runs: itself, or its group's members.
    pub fn members(&self) -> Vec<&WorkflowStep> {
        if self.parallel.is_empty() {
            vec![self]
        } else {
            self.parallel.iter().collect()
        }
    }
}

impl WorkflowDefinition {
    /// Every worker step (group members, not groups) with its key path: `steps[1]`,
    /// `steps[2].parallel[0]`.
    pub fn leaves(&self) -> Vec<(String, &WorkflowStep)> {
        let mut out = Vec::new();
        for (j, step) in self.steps.iter().enumerate() {
            if step.parallel.is_empty() {
                out.push((format!("steps[{j}]"), step));
            }
            for (k, member) in step.parallel.iter().enumerate() {
                out.push((format!("steps[{j}].parallel[{k}]"), member));
            }
        }
        out
    }
}

pub const DEFAULT_STEP_WORKER: &str = "coder";
pub const DEFAULT_STEP_PROMPT: &str = "Task:\n{task}";

/// A triggered run's token budget: room for OpenCode's own system prompt and tool list
/// (~10k tokens a request) over a handful of tool calls.
pub const DEFAULT_TRIGGER_MAX_TOKENS: u64 = 60_000;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggersConfig {
    pub vision_on_image: VisionTriggerConfig,
    pub memory_on_turn_end: TriggerConfig,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TriggerConfig {
    pub enabled: bool,
    pub workflow_id: String,
    pub auto_spawn: bool,
    pub blocking: bool,
    /// Tokens (input + output + reasoning) one triggered run may use.
    pub max_tokens: u64,
}

/// `workflows.triggers.visionOnImage`: the trigger, and whether a model that reads images
/// itself is left alone.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VisionTriggerConfig {
    pub trigger: TriggerConfig,
    pub skip_when_model_sees_images: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RoocodeBoomerangConfig {
    pub enabled: bool,
    /// Changes to the built-in steps, matched by step id (plan, implement, review, fix).
    pub steps: Vec<BoomerangStepOverride>,
    /// As written; use [`RoocodeBoomerangConfig::effective_limits`] to apply the caps.
    pub limits: WorkflowRunLimits,
}

impl RoocodeBoomerangConfig {
    /// This workflow's limits, which can only lower the `security.workflows` caps.
    pub fn effective_limits(&self, caps: &WorkflowRunLimits) -> WorkflowRunLimits {
        self.limits.capped_by(caps)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BoomerangStepOverride {
    pub id: String,
    pub title: Option<String>,
    pub worker_id: Option<String>,
    pub prompt: Option<String>,
    pub carry: Option<bool>,
    pub timeout_ms: Option<u64>,
    pub model: Option<String>,
    pub required_skills: Option<Vec<String>>,
}

/// Ids of the steps of the built-in `roocode-boomerang` workflow.
pub const BOOMERANG_STEP_IDS: [&str; 4] = ["plan", "implement", "review", "fix"];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SecurityConfig {
    /// Caps for every workflow.
    pub workflows: WorkflowRunLimits,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryConfig {
    pub enabled: bool,
    pub auto_spawn: bool,
    pub auto_record: bool,
    pub auto_inject: bool,
    pub auto_records: MemoryAutoRecordsConfig,
    pub scope: MemoryScope,
    pub max_chars: u64,
    pub summaries: MemorySummariesConfig,
    pub trim: MemoryTrimConfig,
    pub inject: MemoryInjectConfig,
}

/// `memory.autoRecords`: the age-out policy of automatic records.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryAutoRecordsConfig {
    pub max_count: u64,
    pub max_age_days: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemorySummariesConfig {
    pub enabled: bool,
    pub session_max_chars: u64,
    pub project_max_chars: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryTrimConfig {
    pub max_messages_per_session: u64,
    pub max_messages_per_project: u64,
    pub max_messages_global: u64,
    pub max_projects_global: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryInjectConfig {
    pub max_chars: u64,
    pub max_entries: u64,
    pub include_messages: bool,
    pub include_session_summary: bool,
    pub include_project_summary: bool,
    pub include_global: bool,
    pub max_global_entries: u64,
}

impl Config {
    /// The configuration with no files at all: defaults and built-in profiles.
    pub fn builtin() -> Config {
        Config {
            auto_spawn: true,
            startup_timeout_ms: 30_000,
            health_check_interval_ms: 30_000,
            ui: UiConfig {
                default_list_format: ListFormat::Markdown,
                debug: false,
                wakeup_injection: true,
                vision_timeout_ms: 300_000,
            },
            notifications: NotificationsConfig {
                idle: IdleNotificationConfig {
                    enabled: false,
                    title: "OpenCode".to_owned(),
                    message: "Session is idle".to_owned(),
                    delay_ms: 1500,
                },
            },
            agent: AgentConfig {
                enabled: true,
                name: "orchestrator".to_owned(),
                model: None,
                prompt: None,
                mode: AgentMode::Primary,
                color: None,
                tools: None,
                permission: None,
            },
            commands: CommandsConfig {
                enabled: true,
                prefix: "orchestrator.".to_owned(),
            },
            tasks: TasksConfig {
                default_timeout_ms: 600_000,
                default_auto_spawn: true,
                default_model_policy: ModelPolicy::Dynamic,
                await_cap_ms: 45_000,
                max_task_chars: 100_000,
                max_attachment_bytes: 10 * 1024 * 1024,
                max_attachments: 10,
                max_attachments_bytes: 20 * 1024 * 1024,
                provider_retry_limit: 3,
                permission_ask_timeout_ms: 300_000,
                jobs: JobsConfig {
                    max_age_ms: 86_400_000,
                    max_count: 200,
                },
                store_path: None,
            },
            runtime: RuntimeConfig {
                isolation: Isolation::Shared,
                attach_url: None,
                attach_password_env: None,
                opencode_bin: None,
                max_restarts: 5,
                restart_backoff_ms: 500,
                keep_sessions: 0,
                snapshots: false,
            },
            hub: HubConfig {
                idle_stop_ms: 600_000,
                port: 0,
            },
            worktree: WorktreeConfig::default(),
            workflows: WorkflowsConfig {
                enabled: true,
                ui: WorkflowUiConfig {
                    execution: WorkflowExecution::Auto,
                    intervene: WorkflowIntervene::OnError,
                },
                definitions: Vec::new(),
                triggers: TriggersConfig {
                    // Blocking, unlike the original's default: the description must reach the
                    // message before the main model sees it.
                    vision_on_image: VisionTriggerConfig {
                        trigger: TriggerConfig {
                            enabled: true,
                            workflow_id: "vision".to_owned(),
                            auto_spawn: true,
                            blocking: true,
                            max_tokens: DEFAULT_TRIGGER_MAX_TOKENS,
                        },
                        skip_when_model_sees_images: true,
                    },
                    // Off (the original ran it after every turn): an LLM call per task is
                    // opt-in; automatic records cost nothing (`memory.autoRecord`).
                    memory_on_turn_end: TriggerConfig {
                        enabled: false,
                        workflow_id: "memory".to_owned(),
                        auto_spawn: true,
                        blocking: false,
                        max_tokens: DEFAULT_TRIGGER_MAX_TOKENS,
                    },
                },
                roocode_boomerang: RoocodeBoomerangConfig {
                    enabled: true,
                    steps: Vec::new(),
                    limits: WorkflowRunLimits::default(),
                },
            },
            security: SecurityConfig {
                workflows: WorkflowRunLimits::default(),
            },
            memory: MemoryConfig {
                enabled: true,
                auto_spawn: true,
                auto_record: true,
                auto_inject: true,
                auto_records: MemoryAutoRecordsConfig {
                    max_count: 2_000,
                    max_age_days: 90,
                },
                scope: MemoryScope::Project,
                max_chars: 2000,
                summaries: MemorySummariesConfig {
                    enabled: true,
                    session_max_chars: 2000,
                    project_max_chars: 2000,
                },
                trim: MemoryTrimConfig {
                    max_messages_per_session: 60,
                    max_messages_per_project: 400,
                    max_messages_global: 2000,
                    max_projects_global: 25,
                },
                inject: MemoryInjectConfig {
                    // About 800 tokens (issue 9); the original's 2000 characters was ~500.
                    max_chars: 3200,
                    max_entries: 8,
                    include_messages: false,
                    include_session_summary: true,
                    include_project_summary: true,
                    include_global: true,
                    max_global_entries: 3,
                },
            },
            profiles: builtin_profiles()
                .into_iter()
                .map(|p| (p.id.clone(), p))
                .collect(),
            spawn: Vec::new(),
            checks: BTreeMap::new(),
            daily_budget: None,
            notify: Vec::new(),
        }
    }

    /// The profile with this id, or an error that lists the known ids and the closest one.
    pub fn profile(&self, id: &str) -> Result<&Profile, ConfigError> {
        self.profiles
            .get(id)
            .ok_or_else(|| unknown_profile(id, self.profiles.keys().map(String::as_str)))
    }
}

pub(crate) fn unknown_profile<'a>(
    id: &str,
    known: impl Iterator<Item = &'a str> + Clone,
) -> ConfigError {
    ConfigError::UnknownProfile {
        id: id.to_owned(),
        known: known.clone().map(str::to_owned).collect(),
        suggestion: closest_match(id, known).map(str::to_owned),
    }
}
