//! Which workflows exist: the built-ins, `workflows.definitions` and the files in
//! `.opencode/workflows/`, read afresh on every use so a new file needs no restart.

use std::path::{Path, PathBuf};

use crate::config::{Config, ConfigError, WorkflowDefinition, parse_workflow_file};

use super::WorkflowError;
use super::builtin;

/// Where a workflow was defined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Builtin,
    Config,
    File(PathBuf),
}

impl Source {
    pub fn label(&self) -> String {
        match self {
            Source::Builtin => "built-in".into(),
            Source::Config => "orchestrator.json".into(),
            Source::File(path) => path.display().to_string(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub definition: WorkflowDefinition,
    pub source: Source,
}

/// Every usable workflow, plus the files that could not be used and why.
#[derive(Debug, Default)]
pub struct Catalog {
    pub entries: Vec<Entry>,
    pub problems: Vec<ConfigError>,
}

/// `<project>/.opencode/workflows`.
pub fn workflows_dir(project_dir: &Path) -> PathBuf {
    project_dir.join(".opencode").join("workflows")
}

impl Catalog {
    pub fn load(config: &Config, project_dir: &Path) -> Catalog {
        let mut catalog = Catalog::default();
        let tagged = |source: Source| {
            move |definition: WorkflowDefinition| Entry {
                definition,
                source: source.clone(),
            }
        };
        catalog.entries.extend(
            builtin::builtins(config)
                .into_iter()
                .map(tagged(Source::Builtin)),
        );
        catalog.entries.extend(
            config
                .workflows
                .definitions
                .iter()
                .cloned()
                .map(tagged(Source::Config)),
        );
        for path in workflow_files(&workflows_dir(project_dir)) {
            match read_file(config, &path, &catalog.entries) {
                Ok(definition) => catalog.entries.push(Entry {
                    definition,
                    source: Source::File(path),
                }),
                Err(problem) => catalog.problems.push(problem),
            }
        }
        catalog
    }

    pub fn find(&self, id: &str) -> Result<&Entry, WorkflowError> {
        if let Some(entry) = self.entries.iter().find(|e| e.definition.id == id) {
            return Ok(entry);
        }
        let known: Vec<String> = self
            .entries
            .iter()
            .map(|e| e.definition.id.clone())
            .collect();
        let suggestion =
            crate::config::closest_match(id, known.iter().map(String::as_str)).map(str::to_owned);
        Err(WorkflowError::UnknownWorkflow {
            id: id.to_owned(),
            known,
            suggestion,
            problems: self.problems.iter().map(ToString::to_string).collect(),
        })
    }
}

fn workflow_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .is_some_and(|ext| ext == "json" || ext == "jsonc")
        })
        .collect();
    files.sort();
    files
}

fn read_file(
    config: &Config,
    path: &Path,
    earlier: &[Entry],
) -> Result<WorkflowDefinition, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_owned(),
        source,
    })?;
    let definition = parse_workflow_file(path, &text)?;
    let invalid = |key_path: String, message: String, hint: Option<String>| ConfigError::Invalid {
        path: path.to_owned(),
        key_path,
        message,
        hint,
    };
    if let Some(other) = earlier.iter().find(|e| e.definition.id == definition.id) {
        return Err(invalid(
            "id".into(),
            format!(
                "workflow `{}` is already defined ({})",
                definition.id,
                other.source.label()
            ),
            Some("give this workflow another id".into()),
        ));
    }
    for (key, step) in definition.leaves() {
        if !config.profiles.contains_key(&step.worker_id) {
            let known: Vec<&str> = config.profiles.keys().map(String::as_str).collect();
            return Err(invalid(
                format!("{key}.workerId"),
                format!(
                    "step `{}`: unknown worker `{}`; known profiles: {}",
                    step.id,
                    step.worker_id,
                    known.join(", ")
                ),
                crate::config::closest_match(&step.worker_id, known.iter().copied())
                    .map(|c| format!("did you mean `{c}`?")),
            ));
        }
    }
    Ok(definition)
}
