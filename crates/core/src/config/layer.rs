//! One config file as read — a [`Layer`] and where it came from — and what every reader and
//! checker of config shares: JSONC parsing, serde errors that name the key, `invalid`, id
//! rules and the built-in workflow ids. A leaf of `config` (it uses only `error` and `model`),
//! so `load`, `merge`, `validate`, `provenance` and the workflow checks can all use it.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::{ConfigError, closest_match};
use super::model::OrchestratorConfigFile;

/// Ids of the workflows Orchestra defines itself.
pub const BUILTIN_WORKFLOW_IDS: [&str; 3] = ["roocode-boomerang", "vision", "memory"];

/// The longest `tasks.awaitCapMs` allowed: MCP clients abandon a tool call after 60 s.
pub const MAX_AWAIT_CAP_MS: u64 = 45_000;

/// Where a config file came from, which decides what it may set: a project's own file comes
/// with the repository, so it cannot choose what the hub executes or where it sends secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// `~/.config/opencode/orchestrator.json`: the user's own.
    Global,
    /// `.opencode/orchestrator.json` or `orchestrator.json` in the project: the repository's.
    Project,
    /// `--config FILE`: chosen by the user for this run.
    CommandLine,
}

/// One config file, parsed and checked on its own.
pub(crate) struct Layer {
    pub path: PathBuf,
    pub origin: ConfigOrigin,
    pub raw: Value,
    pub file: OrchestratorConfigFile,
}

/// A JSON-with-comments document that must hold one object, read into `T` with errors that
/// name the file and the key path.
pub(crate) fn parse_document<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigError> {
    let raw = parse_jsonc_object(path, text)?;
    serde_path_to_error::deserialize(&raw).map_err(|e| serde_error(path, e))
}

/// JSONC as OpenCode and editors accept it: JSON plus comments and trailing
/// commas, nothing looser (no single quotes, bare keys or hex numbers), for
/// `orchestrator.json` and for the `opencode.json(c)` files we read or edit.
pub fn jsonc_options() -> jsonc_parser::ParseOptions {
    jsonc_parser::ParseOptions {
        allow_comments: true,
        allow_trailing_commas: true,
        allow_loose_object_property_names: false,
        allow_missing_commas: false,
        allow_single_quoted_strings: false,
        allow_hexadecimal_numbers: false,
        allow_unary_plus_numbers: false,
        allow_bare_decimal_point_numbers: false,
        allow_non_finite_numbers: false,
        allow_extended_string_escapes: false,
    }
}

/// The file's object; an empty file is an empty object.
pub(crate) fn parse_jsonc_object(path: &Path, text: &str) -> Result<Value, ConfigError> {
    let options = jsonc_options();
    let raw: Value =
        jsonc_parser::parse_to_serde_value(text, &options).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            line: e.line_display(),
            column: Some(e.column_display()),
            message: e.kind().to_string(),
        })?;
    let raw = match raw {
        Value::Object(_) => raw,
        // An empty file is an empty config, not an error.
        Value::Null if text.trim().is_empty() => Value::Object(Map::new()),
        other => {
            return Err(invalid(
                path,
                ".",
                format!(
                    "the file must contain a JSON object, found {}",
                    json_kind(&other)
                ),
                None,
            ));
        }
    };
    Ok(raw)
}

/// What kind of JSON value this is, as error messages say it ("an array", "a number", …).
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn invalid(
    path: &Path,
    key_path: &str,
    message: impl Into<String>,
    hint: Option<String>,
) -> ConfigError {
    ConfigError::Invalid {
        path: path.to_path_buf(),
        key_path: key_path.to_owned(),
        message: message.into(),
        hint,
    }
}

/// A serde error as [`ConfigError::Invalid`], naming the key path and JSON's types.
pub(super) fn serde_error(
    path: &Path,
    error: serde_path_to_error::Error<serde_json::Error>,
) -> ConfigError {
    let mut segments: Vec<String> = Vec::new();
    for segment in error.path() {
        match segment {
            serde_path_to_error::Segment::Map { key } => segments.push(format!(".{key}")),
            serde_path_to_error::Segment::Seq { index } => segments.push(format!("[{index}]")),
            serde_path_to_error::Segment::Enum { variant } => segments.push(format!(".{variant}")),
            serde_path_to_error::Segment::Unknown => segments.push(".?".to_owned()),
        }
    }
    let parent = segments.concat().trim_start_matches('.').to_owned();
    let message = error.inner().to_string();
    // serde_json appends " at line 1 column 0"-style positions that mean nothing for a Value.
    let message = match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message,
    };
    let message = readable_type_names(&message);
    if let Some((name, expected)) = parse_unknown(&message, "unknown field `") {
        // serde_path_to_error already ends the path with the unknown key; be robust if not.
        let key_path = if parent == name || parent.ends_with(&format!(".{name}")) {
            parent.clone()
        } else if parent.is_empty() {
            name.clone()
        } else {
            format!("{parent}.{name}")
        };
        let hint = match closest_match(&name, expected.iter().map(String::as_str)) {
            Some(close) => format!("did you mean `{close}`?"),
            None if expected.is_empty() => "this object takes no keys".to_owned(),
            None => format!("known keys here: {}", expected.join(", ")),
        };
        return invalid(path, &key_path, format!("unknown key `{name}`"), Some(hint));
    }
    if let Some((value, expected)) = parse_unknown(&message, "unknown variant `") {
        let hint = closest_match(&value, expected.iter().map(String::as_str))
            .map(|close| format!("did you mean `{close}`?"));
        return invalid(
            path,
            &parent,
            format!(
                "unknown value `{value}`; expected one of: {}",
                expected.join(", ")
            ),
            hint,
        );
    }
    let key_path = if parent.is_empty() {
        ".".to_owned()
    } else {
        parent
    };
    invalid(path, &key_path, message, None)
}

// serde names Rust types ("expected u64"); users write JSON.
fn readable_type_names(message: &str) -> String {
    let mut message = message.to_owned();
    for (rust, json) in [
        ("expected u64", "expected a whole number (0 or more)"),
        ("expected u32", "expected a whole number (0 or more)"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected an array"),
        ("expected a map", "expected an object"),
    ] {
        if message.ends_with(rust) {
            message.truncate(message.len() - rust.len());
            message.push_str(json);
        }
    }
    // "expected struct UiFile" names our Rust type; the user wrote JSON.
    if let Some(at) = message.find("expected struct ") {
        message.truncate(at);
        message.push_str("expected an object");
    }
    message
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" into `x` and `[a, b]`.
fn parse_unknown(message: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix(prefix)?;
    let (name, expected_part) = rest.split_once('`')?;
    let expected = expected_part
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((name.to_owned(), expected))
}

/// A profile or workflow id: 1-40 lowercase letters, digits and dashes, starting with a letter.
pub(super) fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && id.len() <= 40
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}
