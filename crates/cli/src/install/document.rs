//! Reading, editing and writing OpenCode's config file through jsonc-parser's CST, so that every
//! comment, blank line, key order and trailing-comma habit outside our entries stays as it was.

use std::fs;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow, bail};
use jsonc_parser::cst::{CstInputValue, CstNode, CstObject, CstRootNode, TrailingCommaMode};
use orchestra_state_dir::private;
use serde_json::Value;

use super::entries::Section;

pub(super) struct ConfigDocument {
    path: PathBuf,
    /// The file's text as read; empty when the file did not exist.
    original: String,
    existed: bool,
    /// The file ends its multi-line objects and arrays with a comma, judged before our edits.
    trailing_commas: bool,
    // Every CST node refers to its ancestors weakly, so the root must outlive all edits.
    root: CstRootNode,
    object: CstObject,
}

impl ConfigDocument {
    /// Reads and parses `path`; a missing file is an empty config. A file that cannot be parsed
    /// is an error naming the line, and nothing is ever written over it.
    pub(super) fn load(path: &Path) -> anyhow::Result<Self> {
        let (original, existed) = match fs::read_to_string(path) {
            Ok(text) => (text, true),
            Err(err) if err.kind() == ErrorKind::NotFound => (String::new(), false),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        let root = CstRootNode::parse(&original, &orchestra_core::config::jsonc_options()).map_err(|err| {
            anyhow!(
                "cannot parse {} (line {}, column {}): {}. OpenCode cannot load it either. Fix the \
                 file there, or move it aside, and run the command again; the file was not changed.",
                path.display(),
                err.line_display(),
                err.column_display(),
                err.kind(),
            )
        })?;
        let object = match root.value() {
            None => root.object_value_or_set(),
            Some(value) => match value.as_object() {
                Some(object) => object,
                None => bail!(
                    "{} must hold a JSON object ({{ … }}) at the top level, as OpenCode expects; \
                     it holds `{}`. Fix the file and run the command again; it was not changed.",
                    path.display(),
                    abbreviate(&value.to_string()),
                ),
            },
        };
        let trailing_commas = object.uses_trailing_commas();
        Ok(Self {
            path: path.to_path_buf(),
            original,
            existed,
            trailing_commas,
            root,
            object,
        })
    }

    pub(super) fn existed(&self) -> bool {
        self.existed
    }

    pub(super) fn root(&self) -> &CstObject {
        &self.object
    }

    /// The top-level object `section`, if present. Present but not an object is an error,
    /// since OpenCode would reject the file as well.
    pub(super) fn section(&self, section: Section) -> anyhow::Result<Option<CstObject>> {
        let Some(prop) = self.object.get(section.key()) else {
            return Ok(None);
        };
        match prop.value().and_then(|value| value.as_object()) {
            Some(object) => Ok(Some(object)),
            None => bail!(
                "`{}` in {} is not an object, but OpenCode expects one there. Fix it and run the \
                 command again; the file was not changed.",
                section.key(),
                self.path.display(),
            ),
        }
    }

    /// The section object, appended to the top level when missing. The flag says whether we
    /// created it.
    pub(super) fn section_or_create(&self, section: Section) -> anyhow::Result<(CstObject, bool)> {
        if let Some(object) = self.section(section)? {
            return Ok((object, false));
        }
        let prop = self
            .object
            .append(section.key(), CstInputValue::Object(Vec::new()));
        let object = prop.object_value().ok_or_else(|| {
            anyhow!(
                "internal error: new `{}` object not found in the CST",
                section.key()
            )
        })?;
        Ok((object, true))
    }

    /// Gives an object we created the file's trailing-comma habit. Entries added to an existing
    /// object pick the habit up from their neighbours; a new, empty object has none to copy.
    pub(super) fn match_trailing_commas(&self, object: &CstObject) {
        if self.trailing_commas {
            object.set_trailing_commas(TrailingCommaMode::IfMultiline);
        }
    }

    /// The text as it stands after the edits. A file we create ends with a newline.
    pub(super) fn text(&self) -> String {
        let mut text = self.root.to_string();
        if !self.existed && !text.ends_with('\n') {
            text.push('\n');
        }
        text
    }

    pub(super) fn is_changed(&self) -> bool {
        !self.existed || self.text() != self.original
    }

    /// True when nothing but an empty object is left: no properties and no comments.
    pub(super) fn is_empty(&self) -> bool {
        self.object.properties().is_empty() && !contains_comment(&self.root.clone().into())
    }
}

pub(super) fn object_is_empty(object: &CstObject) -> bool {
    object.properties().is_empty() && !contains_comment(&object.clone().into())
}

fn contains_comment(node: &CstNode) -> bool {
    node.is_comment() || node.children().iter().any(contains_comment)
}

/// The JSON value of a CST node, for comparing what is in the file with what we would write.
pub(super) fn node_json(node: &CstNode) -> Option<Value> {
    jsonc_parser::parse_to_serde_value(&node.to_string(), &orchestra_core::config::jsonc_options())
        .ok()
}

pub(super) fn input_json(value: &CstInputValue) -> Value {
    match value {
        CstInputValue::Null => Value::Null,
        CstInputValue::Bool(flag) => Value::Bool(*flag),
        CstInputValue::Number(text) => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()))
        }
        CstInputValue::String(text) => Value::String(text.clone()),
        CstInputValue::Array(items) => Value::Array(items.iter().map(input_json).collect()),
        CstInputValue::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, value)| (name.clone(), input_json(value)))
                .collect(),
        ),
    }
}

/// Replaces `path` with `contents` so that a reader sees either the old file or the new one,
/// never a half-written one: write a temporary file beside it, flush it to disk, rename it over.
/// A symlinked config (dotfile managers do this) is written through to its target.
pub(super) fn write_atomically(path: &Path, contents: &str) -> anyhow::Result<()> {
    let target = match fs::canonicalize(path) {
        Ok(resolved) => resolved,
        Err(err) if err.kind() == ErrorKind::NotFound => path.to_path_buf(),
        Err(err) => return Err(err).with_context(|| format!("cannot resolve {}", path.display())),
    };
    let dir = match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        Some(_) | None => PathBuf::from("."),
    };
    let file_name = target
        .file_name()
        .ok_or_else(|| anyhow!("{} does not name a file", target.display()))?
        .to_string_lossy()
        .into_owned();
    let (temp, file) = create_temp(&dir, &file_name)?;
    let written = write_temp(file, &temp, &target, contents).and_then(|()| {
        fs::rename(&temp, &target)
            .with_context(|| format!("cannot move {} over {}", temp.display(), target.display()))
    });
    if written.is_err() {
        // Best effort: the temporary file is ours and useless now; the error that matters is
        // the one being returned.
        let _ = fs::remove_file(&temp);
    }
    written?;
    // Make the rename itself durable; not every platform can open a directory, so best effort.
    if let Ok(dir_handle) = fs::File::open(&dir) {
        let _ = dir_handle.sync_all();
    }
    Ok(())
}

/// A new temporary file beside the target, under a name nobody can guess, created with
/// `create_new` (O_EXCL): it never opens a file or follows a symlink someone put there first.
fn create_temp(dir: &Path, file_name: &str) -> anyhow::Result<(PathBuf, fs::File)> {
    use std::hash::{BuildHasher, Hasher};
    let mut last_error = None;
    for _ in 0..16 {
        // RandomState is seeded from the OS's randomness: enough for a name that cannot be
        // predicted; create_new is what makes it safe.
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_u32(std::process::id());
        let temp = dir.join(format!(
            ".{file_name}.orchestra-{:016x}.tmp",
            hasher.finish()
        ));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(err) if err.kind() == ErrorKind::AlreadyExists => last_error = Some(err),
            Err(err) => {
                return Err(err).with_context(|| format!("cannot create {}", temp.display()));
            }
        }
    }
    Err(anyhow!(
        "cannot create a temporary file in {}: {}",
        dir.display(),
        last_error.map_or_else(String::new, |err| err.to_string())
    ))
}

fn write_temp(
    mut file: fs::File,
    temp: &Path,
    target: &Path,
    contents: &str,
) -> anyhow::Result<()> {
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", temp.display()))?;
    // Keep the permissions the user gave the file (a config may hold API keys and be 0600); a
    // new file gets what the user's umask gives, not Orchestra's private one.
    let permissions = match fs::metadata(target) {
        Ok(metadata) => metadata.permissions(),
        Err(_) => fs::Permissions::from_mode(0o666 & !private::user_umask()),
    };
    fs::set_permissions(temp, permissions)
        .with_context(|| format!("cannot set permissions on {}", temp.display()))?;
    Ok(())
}

fn abbreviate(text: &str) -> String {
    const LIMIT: usize = 40;
    let trimmed = text.trim();
    match trimmed.char_indices().nth(LIMIT) {
        Some((cut, _)) => format!("{}…", &trimmed[..cut]),
        None => trimmed.to_string(),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::entries::{Section, desired_entries};
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
        let value = input_json(&agent.value());
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
