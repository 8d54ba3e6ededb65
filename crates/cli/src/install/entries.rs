//! The entries `orchestra install` puts into OpenCode's config: the MCP server, the orchestrator
//! agent and the slash commands. Everything here is data; editing the file is `document.rs`.

use jsonc_parser::cst::CstInputValue;
use serde::{Deserialize, Serialize};

use super::InstallOptions;

/// OpenCode exposes tool `t` of MCP server `s` to the model as `s_t`, so this name is also the
/// prefix of every tool name in the prompt and the command templates below.
pub(super) const MCP_SERVER_NAME: &str = "orchestra";

const ORCHESTRATOR_PROMPT: &str = include_str!("orchestrator_prompt.md");

pub(super) fn orchestrator_prompt() -> &'static str {
    ORCHESTRATOR_PROMPT
}

/// A top-level object of OpenCode's config that we add entries to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(super) enum Section {
    Mcp,
    Agent,
    Command,
}

impl Section {
    pub(super) const ALL: [Section; 3] = [Section::Mcp, Section::Agent, Section::Command];

    pub(super) fn key(self) -> &'static str {
        match self {
            Section::Mcp => "mcp",
            Section::Agent => "agent",
            Section::Command => "command",
        }
    }

    /// Fields of an entry that install writes. On an update, one of these that is no longer
    /// wanted (say `model` after the model setting was dropped) is removed; any other field the
    /// user put into the entry is left alone.
    pub(super) fn managed_fields(self) -> &'static [&'static str] {
        match self {
            Section::Mcp => &["type", "command", "enabled"],
            Section::Agent => &[
                "description",
                "mode",
                "model",
                "color",
                "prompt",
                "tools",
                "permission",
            ],
            Section::Command => &["template", "description", "agent"],
        }
    }
}

/// One entry we want at `<section>.<name>`, its fields in the order they are written.
#[derive(Debug, Clone)]
pub(super) struct DesiredEntry {
    pub(super) section: Section,
    pub(super) name: String,
    pub(super) fields: Vec<(String, CstInputValue)>,
}

impl DesiredEntry {
    pub(super) fn value(&self) -> CstInputValue {
        CstInputValue::Object(self.fields.clone())
    }
}

pub(super) fn desired_entries(opts: &InstallOptions) -> Vec<DesiredEntry> {
    let mut entries = vec![DesiredEntry {
        section: Section::Mcp,
        name: MCP_SERVER_NAME.to_string(),
        fields: vec![
            field("type", "local"),
            field(
                "command",
                CstInputValue::from(opts.orchestra_command.clone()),
            ),
            field("enabled", true),
        ],
    }];
    if let Some(agent) = &opts.agent {
        let mut fields = vec![
            field(
                "description",
                "Plans the work and delegates it to Open Orchestra workers (coder, architect, \
                 explorer, docs, vision, memory); does not edit files itself.",
            ),
            field("mode", agent.mode.as_str()),
        ];
        if let Some(model) = &agent.model {
            fields.push(field("model", model.as_str()));
        }
        if let Some(color) = &agent.color {
            fields.push(field("color", color.as_str()));
        }
        fields.push(field("prompt", agent.prompt.as_str()));
        // The orchestrator delegates: the tool switches hide the editing tools from the model,
        // and the permissions still refuse them if another config turns a switch back on.
        // `agent.tools` and `agent.permission` change these key by key.
        let mut tools: Vec<(String, CstInputValue)> = vec![
            field(&format!("{MCP_SERVER_NAME}_*"), true),
            field("bash", false),
            field("edit", false),
            field("write", false),
        ];
        for (name, on) in &agent.tools {
            set_field(&mut tools, name, CstInputValue::Bool(*on));
        }
        fields.push(field("tools", object(tools)));
        let mut permission = vec![field("edit", "deny"), field("bash", "deny")];
        for (name, value) in &agent.permission {
            set_field(&mut permission, name, json_input(value));
        }
        fields.push(field("permission", object(permission)));
        entries.push(DesiredEntry {
            section: Section::Agent,
            name: agent.name.clone(),
            fields,
        });
    }
    if let Some(prefix) = &opts.commands_prefix {
        let agent_name = opts.agent.as_ref().map(|agent| agent.name.as_str());
        for command in COMMANDS {
            let mut fields = vec![
                field("template", command.template()),
                field("description", command.description),
            ];
            // Without our agent the command runs in whichever agent is active; OpenCode's
            // default agents see every MCP tool, so the templates still work there.
            if let Some(name) = agent_name {
                fields.push(field("agent", name));
            }
            entries.push(DesiredEntry {
                section: Section::Command,
                name: format!("{prefix}{}", command.suffix),
                fields,
            });
        }
    }
    entries
}

struct SlashCommand {
    suffix: &'static str,
    description: &'static str,
    action: CommandAction,
}

enum CommandAction {
    /// Show one view of `task_list`; `argument_hint` says what the command's arguments mean.
    List {
        view: &'static str,
        argument_hint: &'static str,
    },
    /// Run a workflow on the command's arguments and wait for it.
    Workflow { workflow_id: &'static str },
}

/// `task_list` views and the workflow id are the protocol's (`ListView`, built-in workflows);
/// a test reads the views back out of the installed templates and checks them against `ListView`.
const COMMANDS: [SlashCommand; 7] = [
    SlashCommand {
        suffix: "status",
        description: "Open Orchestra: workers, running tasks and recent results",
        action: CommandAction::List {
            view: "status",
            argument_hint: "",
        },
    },
    SlashCommand {
        suffix: "models",
        description: "Open Orchestra: models the workers can use",
        action: CommandAction::List {
            view: "models",
            argument_hint: "If these words name a provider or a model, pass them as `query`:",
        },
    },
    SlashCommand {
        suffix: "profiles",
        description: "Open Orchestra: worker profiles with model, access and purpose",
        action: CommandAction::List {
            view: "profiles",
            argument_hint: "",
        },
    },
    SlashCommand {
        suffix: "workers",
        description: "Open Orchestra: running workers and their state",
        action: CommandAction::List {
            view: "workers",
            argument_hint: "",
        },
    },
    SlashCommand {
        suffix: "output",
        description: "Open Orchestra: recent output of the workers",
        action: CommandAction::List {
            view: "output",
            argument_hint: "If this names a worker, pass it as `workerId`:",
        },
    },
    SlashCommand {
        suffix: "workflows",
        description: "Open Orchestra: available workflows and their steps",
        action: CommandAction::List {
            view: "workflows",
            argument_hint: "",
        },
    },
    SlashCommand {
        suffix: "boomerang",
        description: "Open Orchestra: plan, implement and review a task with the boomerang workflow",
        action: CommandAction::Workflow {
            workflow_id: "roocode-boomerang",
        },
    },
];

impl SlashCommand {
    fn template(&self) -> String {
        let list = format!("{MCP_SERVER_NAME}_task_list");
        let start = format!("{MCP_SERVER_NAME}_task_start");
        let wait = format!("{MCP_SERVER_NAME}_task_await");
        match self.action {
            CommandAction::List {
                view,
                argument_hint: "",
            } => format!(
                "Call the `{list}` tool with {{\"view\": \"{view}\"}} and show its answer as it is. \
                 Do not start any task."
            ),
            CommandAction::List {
                view,
                argument_hint,
            } => format!(
                "Call the `{list}` tool with {{\"view\": \"{view}\"}} and show its answer as it is. \
                 Do not start any task. {argument_hint} $ARGUMENTS"
            ),
            CommandAction::Workflow { workflow_id } => format!(
                "Call the `{start}` tool with {{\"kind\": \"workflow\", \"workflowId\": \"{workflow_id}\", \
                 \"task\": \"$ARGUMENTS\"}}. Then call `{wait}` with the `taskId` it returns; while the \
                 task comes back with status \"running\", call `{wait}` again with the same id. When it \
                 has finished, report what each step did and the final result."
            ),
        }
    }
}

/// Replaces the field `name` in place, or appends it.
fn set_field(fields: &mut Vec<(String, CstInputValue)>, name: &str, value: CstInputValue) {
    match fields.iter_mut().find(|(existing, _)| existing == name) {
        Some((_, slot)) => *slot = value,
        None => fields.push((name.to_owned(), value)),
    }
}

/// A JSON value as something the CST editor can write.
fn json_input(value: &serde_json::Value) -> CstInputValue {
    match value {
        serde_json::Value::Null => CstInputValue::Null,
        serde_json::Value::Bool(flag) => CstInputValue::Bool(*flag),
        serde_json::Value::Number(number) => CstInputValue::Number(number.to_string()),
        serde_json::Value::String(text) => CstInputValue::String(text.clone()),
        serde_json::Value::Array(items) => {
            CstInputValue::Array(items.iter().map(json_input).collect())
        }
        serde_json::Value::Object(fields) => CstInputValue::Object(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), json_input(value)))
                .collect(),
        ),
    }
}

fn field(name: &str, value: impl Into<CstInputValue>) -> (String, CstInputValue) {
    (name.to_string(), value.into())
}

fn object(fields: Vec<(String, CstInputValue)>) -> CstInputValue {
    CstInputValue::Object(fields)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{AgentSpec, InstallOptions};
    use super::*;

    /// `agent.tools` and `agent.permission` from orchestrator.json change what install writes
    /// for the orchestrator agent, key by key over the defaults.
    #[test]
    fn agent_tools_and_permission_reach_the_written_agent() {
        let mut tools = std::collections::BTreeMap::new();
        tools.insert("webfetch".to_owned(), false);
        tools.insert("bash".to_owned(), true);
        let permission = serde_json::json!({"webfetch": "deny", "bash": {"git status": "allow"}});
        let opts = InstallOptions {
            orchestra_command: vec!["orchestra".into(), "mcp".into()],
            agent: Some(AgentSpec {
                name: "orchestrator".into(),
                mode: "primary".into(),
                model: None,
                prompt: "p".into(),
                color: None,
                tools,
                permission: permission.as_object().unwrap().clone(),
            }),
            commands_prefix: None,
            plugin: false,
            opencode: super::super::OpenCodeLine::V1,
        };
        let agent = desired_entries(&opts)
            .into_iter()
            .find(|e| e.section == Section::Agent)
            .unwrap();
        let value = super::super::document::input_json(&agent.value());
        assert_eq!(
            value["tools"],
            serde_json::json!({"orchestra_*": true, "bash": true, "edit": false, "write": false, "webfetch": false})
        );
        assert_eq!(
            value["permission"],
            serde_json::json!({"edit": "deny", "bash": {"git status": "allow"}, "webfetch": "deny"})
        );
    }
}
