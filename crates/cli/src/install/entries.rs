//! The entries `orchestra install` puts into OpenCode's config: the MCP server, the orchestrator
//! agent and the slash commands. Everything here is data; editing the file is `document.rs`.

use jsonc_parser::cst::CstInputValue;
use serde::{Deserialize, Serialize};

use super::{InstallOptions, OpenCodeLine};

/// OpenCode exposes tool `t` of MCP server `s` to the model as `s_t`, so this name is also the
/// prefix of every tool name in the prompt and the command templates below.
pub(super) const MCP_SERVER_NAME: &str = "orchestra";

const ORCHESTRATOR_PROMPT: &str = include_str!("orchestrator_prompt.md");

pub(super) fn orchestrator_prompt() -> &'static str {
    ORCHESTRATOR_PROMPT
}

/// What 2.x tells the model about our tools, under the prompt's tools heading.
const V2_TOOLS_NOTE: &str = "OpenCode offers these tools inside its `execute` tool: call them from \
its code, as in\n`return await tools.orchestra.task_start({kind: \"worker\", workerId: \"explorer\", \
task: \"…\"})`,\nand return what you need from their answers.\n";

/// The prompt as the OpenCode line needs it. 2.x offers MCP tools inside its `execute` tool
/// ("code mode") as `tools.orchestra.<tool>`, not as `orchestra_<tool>`, so our prompt names
/// them that way there. A prompt of the user's own (`agent.prompt`) is written as it is.
fn prompt_for(prompt: &str, line: OpenCodeLine) -> String {
    if line == OpenCodeLine::V1 || prompt != ORCHESTRATOR_PROMPT {
        return prompt.to_owned();
    }
    let mut out = String::with_capacity(prompt.len() + V2_TOOLS_NOTE.len());
    for text in prompt.lines() {
        out.push_str(&text.replace("`orchestra_task_", "`tools.orchestra.task_"));
        out.push('\n');
        if text.starts_with("## Tools") {
            out.push_str(V2_TOOLS_NOTE);
        }
    }
    out
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
        fields.push(field(
            "prompt",
            prompt_for(&agent.prompt, opts.opencode).as_str(),
        ));
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
                field("template", command.template(opts.opencode)),
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
    /// The command's text for the OpenCode line: 1.x names the tool `orchestra_task_list`, 2.x
    /// offers it in code mode as `tools.orchestra.task_list` (see [`prompt_for`]).
    fn template(&self, line: OpenCodeLine) -> String {
        let tool = |name: &str| match line {
            OpenCodeLine::V1 => format!("the `{MCP_SERVER_NAME}_{name}` tool"),
            OpenCodeLine::V2 => {
                format!("`tools.{MCP_SERVER_NAME}.{name}` from the `execute` tool's code")
            }
        };
        let (list, start, wait) = (tool("task_list"), tool("task_start"), tool("task_await"));
        match self.action {
            CommandAction::List {
                view,
                argument_hint: "",
            } => format!(
                "Call {list} with {{\"view\": \"{view}\"}} and show its answer as it is. \
                 Do not start any task."
            ),
            CommandAction::List {
                view,
                argument_hint,
            } => format!(
                "Call {list} with {{\"view\": \"{view}\"}} and show its answer as it is. \
                 Do not start any task. {argument_hint} $ARGUMENTS"
            ),
            CommandAction::Workflow { workflow_id } => format!(
                "Call {start} with {{\"kind\": \"workflow\", \"workflowId\": \"{workflow_id}\", \
                 \"task\": \"$ARGUMENTS\"}}. Then call {wait} with the `taskId` it returns; while the \
                 task comes back with status \"running\", call it again with the same id. When it \
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
mod tests {
    use super::*;

    #[test]
    fn for_2x_our_prompt_names_the_tools_as_code_mode_offers_them() {
        assert_eq!(
            prompt_for(ORCHESTRATOR_PROMPT, OpenCodeLine::V1),
            ORCHESTRATOR_PROMPT
        );
        let v2 = prompt_for(ORCHESTRATOR_PROMPT, OpenCodeLine::V2);
        assert!(!v2.contains("orchestra_task_"), "{v2}");
        assert!(v2.contains("op \"passthrough.set\""), "{v2}");
        for tool in ["start", "await", "peek", "cancel", "list"] {
            assert!(
                v2.contains(&format!("`tools.orchestra.task_{tool}`")),
                "{tool}"
            );
        }
        assert!(v2.contains("inside its `execute` tool"));
        // Nothing else changed: every line is there, and the note.
        assert!(v2.contains("\n## How to work\n"));
        assert_eq!(
            v2.lines().count(),
            ORCHESTRATOR_PROMPT.lines().count() + V2_TOOLS_NOTE.lines().count()
        );
        // A prompt of the user's own is theirs, on either line.
        assert_eq!(prompt_for("mine", OpenCodeLine::V2), "mine");
    }

    #[test]
    fn command_templates_name_the_tools_the_way_each_line_offers_them() {
        for command in &COMMANDS {
            let v1 = command.template(OpenCodeLine::V1);
            let v2 = command.template(OpenCodeLine::V2);
            assert!(v1.contains("`orchestra_task_"), "{v1}");
            assert!(!v2.contains("orchestra_task_"), "{v2}");
            assert!(v2.contains("`tools.orchestra.task_"), "{v2}");
            assert!(v2.contains("`execute`"), "{v2}");
        }
    }
}
