//! Finding and parsing `orchestrator.json` files, and turning serde errors into messages that
//! name the key.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::error::{ConfigError, closest_match};
use super::merge::resolve;
use super::model::OrchestratorConfigFile;
use super::resolved::LoadedConfig;
use super::validate::{
    check_layer, inert_key_warnings, reject_removed_keys, reject_untrusted_keys,
};

/// The file name looked for in every config location.
pub const CONFIG_FILE_NAME: &str = "orchestrator.json";

/// Ids of the workflows Orchestra defines itself.
pub const BUILTIN_WORKFLOW_IDS: [&str; 3] = ["roocode-boomerang", "vision", "memory"];

/// The longest `tasks.awaitCapMs` allowed: MCP clients abandon a tool call after 60 s.
pub const MAX_AWAIT_CAP_MS: u64 = 45_000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadOptions {
    pub project_dir: PathBuf,
    /// Directory holding the global `orchestrator.json`; `None` means [`default_global_dir`].
    pub global_dir: Option<PathBuf>,
    /// A file given with `--config`; it must exist and wins over every other file.
    pub extra_file: Option<PathBuf>,
}

impl LoadOptions {
    pub fn new(project_dir: impl Into<PathBuf>) -> LoadOptions {
        LoadOptions {
            project_dir: project_dir.into(),
            global_dir: None,
            extra_file: None,
        }
    }
}

/// `$XDG_CONFIG_HOME/opencode`, else `~/.config/opencode` — where OpenCode keeps its own config.
pub fn default_global_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let config_home = non_empty("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| non_empty("HOME").map(|home| PathBuf::from(home).join(".config")))?;
    Some(config_home.join("opencode"))
}

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

/// The files [`load`] reads, lowest priority first: global, then the first existing project
/// file (`.opencode/orchestrator.json` before `orchestrator.json`), then `extra_file`.
pub fn discover(opts: &LoadOptions) -> Vec<PathBuf> {
    discover_with_origin(opts)
        .into_iter()
        .map(|(path, _)| path)
        .collect()
}

/// [`discover`], with where each file came from.
pub fn discover_with_origin(opts: &LoadOptions) -> Vec<(PathBuf, ConfigOrigin)> {
    let mut files = Vec::new();
    if let Some(global_dir) = opts.global_dir.clone().or_else(default_global_dir) {
        let global = global_dir.join(CONFIG_FILE_NAME);
        if global.is_file() {
            files.push((global, ConfigOrigin::Global));
        }
    }
    let project_candidates = [
        opts.project_dir.join(".opencode").join(CONFIG_FILE_NAME),
        opts.project_dir.join(CONFIG_FILE_NAME),
    ];
    if let Some(project) = project_candidates.into_iter().find(|p| p.is_file()) {
        files.push((project, ConfigOrigin::Project));
    }
    if let Some(extra) = &opts.extra_file {
        files.push((extra.clone(), ConfigOrigin::CommandLine));
    }
    files
}

/// Every file [`load`] would read if it existed, in [`discover`]'s order: what a long-lived hub
/// watches to tell its clients that its configuration changed.
pub fn candidate_files(opts: &LoadOptions) -> Vec<PathBuf> {
    let mut files = Vec::new();
    if let Some(global_dir) = opts.global_dir.clone().or_else(default_global_dir) {
        files.push(global_dir.join(CONFIG_FILE_NAME));
    }
    files.push(opts.project_dir.join(".opencode").join(CONFIG_FILE_NAME));
    files.push(opts.project_dir.join(CONFIG_FILE_NAME));
    if let Some(extra) = &opts.extra_file {
        files.push(extra.clone());
    }
    files
}

/// Loads the configuration: built-in defaults < global file < project file < `extra_file`.
///
/// Objects merge key by key and arrays replace, except profiles: the `profiles` and `workers`
/// entries of every file are applied in order, so a global custom profile can be changed field
/// by field in the project. The spawn list is the `workers` array of the last file that has one.
/// A `null` value resets a key to its default.
pub fn load(opts: &LoadOptions) -> Result<LoadedConfig, ConfigError> {
    let mut layers = Vec::new();
    let mut warnings = Vec::new();
    for (path, origin) in discover_with_origin(opts) {
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        let layer = parse_layer(path, origin, &text)?;
        warnings.extend(inert_key_warnings(&layer));
        layers.push(layer);
    }
    let config = resolve(&layers, &opts.project_dir)?;
    let project_keys = layers
        .iter()
        .filter(|l| l.origin == ConfigOrigin::Project)
        .flat_map(|l| {
            l.raw
                .as_object()
                .into_iter()
                .flat_map(|o| o.keys().cloned())
        })
        .collect();
    let provenance = super::provenance::of_layers(&layers);
    Ok(LoadedConfig {
        provenance,
        config,
        sources: layers.into_iter().map(|l| l.path).collect(),
        warnings,
        project_keys,
    })
}

/// One config file, parsed and checked on its own.
pub(crate) struct Layer {
    pub path: PathBuf,
    pub origin: ConfigOrigin,
    pub raw: Value,
    pub file: OrchestratorConfigFile,
}

/// Parses and checks one config file's text. Public for the malformed-config corpus and the
/// property tests, which drive exactly what [`load`] does with each file.
pub fn check_file(path: &Path, origin: ConfigOrigin, text: &str) -> Result<(), ConfigError> {
    parse_layer(path.to_path_buf(), origin, text).map(|_| ())
}

pub(crate) fn parse_layer(
    path: PathBuf,
    origin: ConfigOrigin,
    text: &str,
) -> Result<Layer, ConfigError> {
    let raw = parse_jsonc_object(&path, text)?;
    reject_removed_keys(&path, &raw)?;
    if origin == ConfigOrigin::Project {
        reject_untrusted_keys(&path, &raw)?;
    }
    let file = serde_path_to_error::deserialize(&raw).map_err(|e| serde_error(&path, e))?;
    let layer = Layer {
        path,
        origin,
        raw,
        file,
    };
    check_layer(&layer)?;
    Ok(layer)
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

/// Keys of the original plugin that Orchestra dropped on purpose; silently ignoring them would
/// hide that they no longer do anything.
fn serde_error(path: &Path, error: serde_path_to_error::Error<serde_json::Error>) -> ConfigError {
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
