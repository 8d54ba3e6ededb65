//! Finding the `orchestrator.json` files and reading them, layer by layer, into one
//! [`LoadedConfig`].

use std::path::{Path, PathBuf};

use super::error::ConfigError;
use super::layer::{ConfigOrigin, Layer, parse_jsonc_object, serde_error};
use super::merge::resolve;
use super::resolved::LoadedConfig;
use super::validate::{
    check_layer, inert_key_warnings, reject_removed_keys, reject_untrusted_keys,
};

/// The file name looked for in every config location.
pub const CONFIG_FILE_NAME: &str = "orchestrator.json";

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
