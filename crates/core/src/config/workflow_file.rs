//! Workflow files (`.opencode/workflows/*.json`): the parser, its warnings and the files' JSON
//! Schema. The checks shared with `workflows.definitions[]` are in `workflow_checks`.

use std::path::Path;

use super::error::{ConfigError, ConfigWarning};
use super::layer::{parse_document, parse_jsonc_object};
use super::merge::resolve_definition;
use super::model::WorkflowDefinitionFile;
use super::resolved::WorkflowDefinition;
use super::validate::no_effect_warnings;
use super::workflow_checks::check_workflow_definition;

/// Where the generated schema of workflow files is committed, relative to the workspace root.
pub const WORKFLOW_SCHEMA_PATH: &str = "schema/workflow.schema.json";

/// The JSON Schema (draft 2020-12) of one `.opencode/workflows/<name>.json` file.
pub fn workflow_json_schema() -> serde_json::Value {
    super::titled(
        schemars::schema_for!(WorkflowDefinitionFile),
        "Open Orchestra workflow",
    )
}

/// Parses and checks one workflow file (JSON with comments). Errors name the file, the key
/// path (`steps[1].timeoutMs`) and, once the steps are readable, the step id.
pub fn parse_workflow_file(path: &Path, text: &str) -> Result<WorkflowDefinition, ConfigError> {
    let file: WorkflowDefinitionFile =
        parse_document(path, text).map_err(|error| name_the_step(path, text, error))?;
    check_workflow_definition(path, "", &file)?;
    for warning in workflow_file_warnings(path, text) {
        tracing::warn!("{warning}");
    }
    Ok(resolve_definition(&file))
}

/// Keys of a workflow file that have no effect (yet).
pub fn workflow_file_warnings(path: &Path, text: &str) -> Vec<ConfigWarning> {
    match parse_jsonc_object(path, text) {
        Ok(raw) => no_effect_warnings(path, &raw, "workflows.definitions[]."),
        Err(_) => Vec::new(),
    }
}

/// Adds the step's id to a type error at `steps[N]…`, so the message names the step even when
/// the file could not be read into steps.
fn name_the_step(path: &Path, text: &str, error: ConfigError) -> ConfigError {
    let ConfigError::Invalid {
        path: file,
        key_path,
        message,
        hint,
    } = error
    else {
        return error;
    };
    let id = key_path
        .strip_prefix("steps[")
        .and_then(|rest| rest.split_once(']'))
        .and_then(|(index, _)| index.parse::<usize>().ok())
        .and_then(|index| {
            let raw = parse_jsonc_object(path, text).ok()?;
            raw.pointer(&format!("/steps/{index}/id"))?
                .as_str()
                .map(str::to_owned)
        });
    let message = match id {
        Some(id) => format!("step `{id}`: {message}"),
        None => message,
    };
    ConfigError::Invalid {
        path: file,
        key_path,
        message,
        hint,
    }
}
