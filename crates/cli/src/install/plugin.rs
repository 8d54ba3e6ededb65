//! The OpenCode plugin `orchestra install` adds: one JavaScript module both OpenCode lines load
//! (embedded in this binary with its version and the binary's path filled in): the V1 plugin
//! (`opencode-plugin-v1.js`) followed by the default export `{ id, server, setup }` that 1.18.29+
//! and 2.x read (`opencode-plugin-v2.js`). It is written beside the install record and named by
//! its absolute path in the config's plugin list: `plugin` for OpenCode 1.x, `plugins` for 2.x.
//! 1.x loads a file; 2.x (2.1.2) refuses a file in `plugins` ("configured plugin path must be a
//! directory") and loads a directory's `index.js`, so for 2.x the module is `index.js` in a
//! folder of its own and the list names the folder.
//!
//! The file lives outside the project (the project's state folder, or OpenCode's global config
//! folder for `--global`), so installing never creates a `.opencode/` folder in the project, and
//! the machine-specific path of the binary never lands in a file a repository would commit.
//! OpenCode only loads it when `OPENCODE_PURE` is unset.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use jsonc_parser::cst::{CstArray, CstInputValue};
use orchestra_state_dir::private;
use serde::{Deserialize, Serialize};

use super::document::{ConfigDocument, write_atomically};
use super::{Change, EntryChange};

const PLUGIN_V1: &str = include_str!("opencode-plugin-v1.js");
const PLUGIN_V2_EXPORT: &str = include_str!("opencode-plugin-v2.js");
/// The plugin file's name for 1.x, beside the install record.
const PLUGIN_FILE_V1: &str = "orchestra-opencode-plugin-v1.js";
/// The plugin folder for 2.x, beside the install record, and the module in it.
const PLUGIN_DIR_V2: &str = "orchestra-opencode-plugin";
const PLUGIN_MODULE_V2: &str = "index.js";
/// OpenCode's config key for plugins: a list of specs or paths, `plugin` in 1.x, `plugins` in 2.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum PluginKey {
    #[default]
    #[serde(rename = "plugin")]
    Plugin,
    #[serde(rename = "plugins")]
    Plugins,
}

impl PluginKey {
    fn as_str(self) -> &'static str {
        match self {
            PluginKey::Plugin => "plugin",
            PluginKey::Plugins => "plugins",
        }
    }
}

/// What the install record says about the plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct OwnedPlugin {
    /// Our element of the config's plugin list: the plugin file's absolute path (1.x), or its
    /// folder's (2.x).
    pub(super) entry: String,
    /// The plugin file we wrote.
    pub(super) file: PathBuf,
    /// We created the list; uninstall removes it again once it is empty.
    pub(super) created_list: bool,
    /// The list we added to (records from before 2.x support have none: `plugin`).
    #[serde(default)]
    pub(super) key: PluginKey,
}

/// The plugin's text for the binary at `orchestra_bin`.
pub(super) fn plugin_text(orchestra_bin: &str) -> String {
    let quoted = serde_json::to_string(orchestra_bin).unwrap_or_else(|_| "\"orchestra\"".into());
    format!("{PLUGIN_V1}{PLUGIN_V2_EXPORT}")
        .replace("__ORCHESTRA_VERSION__", env!("CARGO_PKG_VERSION"))
        .replace("__ORCHESTRA_BIN__", &quoted)
}

/// Where the plugin goes, beside the install record: (the list's element, the file written).
fn plugin_location(manifest_file: &Path, key: PluginKey) -> (String, PathBuf) {
    let dir = manifest_file.parent().unwrap_or(Path::new("."));
    match key {
        PluginKey::Plugin => {
            let file = dir.join(PLUGIN_FILE_V1);
            (file.display().to_string(), file)
        }
        PluginKey::Plugins => {
            let folder = dir.join(PLUGIN_DIR_V2);
            (folder.display().to_string(), folder.join(PLUGIN_MODULE_V2))
        }
    }
}

/// The plugin file to write once the config is edited: (path, text), and the file of an earlier
/// install at another place (the other OpenCode line), to delete once the config is written.
pub(super) struct PendingFile {
    pub(super) path: PathBuf,
    pub(super) text: String,
    pub(super) replaces: Option<OwnedPlugin>,
}

/// Brings the config's `plugin` list in line with what is wanted (`wanted`: the plugin for the
/// binary at this path, or none), taking out an element recorded as ours that is no longer
/// wanted. Returns the record to keep, the changes, and the file to write.
pub(super) fn apply(
    doc: &ConfigDocument,
    wanted: Option<&str>,
    key: PluginKey,
    manifest_file: &Path,
    previous: Option<&OwnedPlugin>,
    changes: &mut Vec<EntryChange>,
) -> anyhow::Result<(Option<OwnedPlugin>, Option<PendingFile>)> {
    let Some(orchestra_bin) = wanted else {
        if let Some(previous) = previous {
            remove_entry(doc, previous, changes)?;
        }
        return Ok((None, None));
    };
    let (entry, file) = plugin_location(manifest_file, key);
    if let Some(previous) = previous.filter(|p| p.entry != entry || p.key != key) {
        remove_entry(doc, previous, changes)?;
    }
    let replaces = previous.filter(|p| p.file != file).cloned();
    let list = plugin_list(doc, key)?;
    let created_list = previous.is_some_and(|p| p.created_list && p.key == key && list.is_some());
    let (change, created_list) = match list {
        Some(list) if position(&list, &entry).is_some() => (Change::Unchanged, created_list),
        Some(list) => {
            list.append(CstInputValue::String(entry.clone()));
            (Change::Added, created_list)
        }
        None => {
            doc.root().append(
                key.as_str(),
                CstInputValue::Array(vec![CstInputValue::String(entry.clone())]),
            );
            (Change::Added, true)
        }
    };
    changes.push(EntryChange {
        entry: label(key, &entry),
        change,
    });
    let text = plugin_text(orchestra_bin);
    let file_change = match fs::read_to_string(&file) {
        Ok(current) if current == text => Change::Unchanged,
        Ok(_) => Change::Updated(vec!["(an older or edited plugin file)".to_owned()]),
        Err(err) if err.kind() == ErrorKind::NotFound => Change::Added,
        Err(err) => return Err(err).with_context(|| format!("cannot read {}", file.display())),
    };
    let pending = (file_change != Change::Unchanged || replaces.is_some()).then(|| PendingFile {
        path: file.clone(),
        text,
        replaces,
    });
    changes.push(EntryChange {
        entry: file.display().to_string(),
        change: file_change,
    });
    Ok((
        Some(OwnedPlugin {
            entry,
            file,
            created_list,
            key,
        }),
        pending,
    ))
}

/// Writes the plugin file (before the config names it, so OpenCode never loads a missing file).
pub(super) fn write_file(pending: &PendingFile) -> anyhow::Result<()> {
    if let Some(dir) = pending.path.parent() {
        private::create_private_dir(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    write_atomically(&pending.path, &pending.text)?;
    private::narrow(&pending.path)
        .with_context(|| format!("cannot make {} private", pending.path.display()))
}

/// Uninstall: our element out of the list (and the list, if we created it and it is empty).
pub(super) fn remove(
    doc: &ConfigDocument,
    owned: &OwnedPlugin,
    changes: &mut Vec<EntryChange>,
) -> anyhow::Result<()> {
    remove_entry(doc, owned, changes)
}

/// Uninstall, or a move to the other line's place: the plugin file (and 2.x's folder for it),
/// once the config no longer names it.
pub(super) fn delete_file(
    owned: &OwnedPlugin,
    changes: &mut Vec<EntryChange>,
) -> anyhow::Result<()> {
    let change = match fs::remove_file(&owned.file) {
        Ok(()) => Change::Removed,
        Err(err) if err.kind() == ErrorKind::NotFound => Change::AlreadyGone,
        Err(err) => {
            return Err(err).with_context(|| format!("cannot delete {}", owned.file.display()));
        }
    };
    changes.push(EntryChange {
        entry: owned.file.display().to_string(),
        change,
    });
    // Only our own folder, and only when empty: anything else in it is not ours to delete.
    if let Some(folder) = owned.file.parent()
        && folder.file_name().is_some_and(|name| name == PLUGIN_DIR_V2)
    {
        let _ = fs::remove_dir(folder);
    }
    Ok(())
}

fn remove_entry(
    doc: &ConfigDocument,
    owned: &OwnedPlugin,
    changes: &mut Vec<EntryChange>,
) -> anyhow::Result<()> {
    let list = plugin_list(doc, owned.key)?;
    let found = list
        .as_ref()
        .and_then(|list| position(list, &owned.entry).map(|at| (list, at)));
    let change = match found {
        Some((list, at)) => {
            if let Some(element) = list.elements().into_iter().nth(at) {
                element.remove();
            }
            if owned.created_list
                && list.elements().is_empty()
                && let Some(prop) = doc.root().get(owned.key.as_str())
            {
                prop.remove();
            }
            Change::Removed
        }
        None => Change::AlreadyGone,
    };
    changes.push(EntryChange {
        entry: label(owned.key, &owned.entry),
        change,
    });
    Ok(())
}

fn plugin_list(doc: &ConfigDocument, key: PluginKey) -> anyhow::Result<Option<CstArray>> {
    let key = key.as_str();
    let Some(prop) = doc.root().get(key) else {
        return Ok(None);
    };
    match prop.value().and_then(|value| value.as_array()) {
        Some(list) => Ok(Some(list)),
        None => bail!(
            "`{key}` in OpenCode's config is not a list, but OpenCode expects one there \
             (plugin specs or paths). Fix it and run the command again; the file was not changed."
        ),
    }
}

/// Where `entry` is in the list, as a plain string element.
fn position(list: &CstArray, entry: &str) -> Option<usize> {
    list.elements().iter().position(|element| {
        element
            .as_string_lit()
            .and_then(|lit| lit.decoded_value().ok())
            .is_some_and(|value| value == entry)
    })
}

fn label(key: PluginKey, entry: &str) -> String {
    format!("{}[{entry:?}]", key.as_str())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_plugin_carries_the_version_and_the_binary_and_nothing_secret() {
        let text = plugin_text("/opt/bin/orch\"estra");
        assert!(text.contains(&format!("orchestra {}", env!("CARGO_PKG_VERSION"))));
        assert!(text.contains(r#"const ORCHESTRA = "/opt/bin/orch\"estra";"#));
        assert!(!text.contains("__ORCHESTRA"));
        assert!(
            !text.to_lowercase().contains("token\":"),
            "no token in the file"
        );
        // The V1 factory (1.x before 1.18.29 loads every export as a plugin, so there is no
        // other named export) and the default export 1.18.29+ and 2.x read.
        assert_eq!(text.lines().filter(|l| l.starts_with("export ")).count(), 2);
        assert!(text.contains("export const OpenOrchestra = "));
        assert!(
            text.contains(
                "export default { id: \"open-orchestra\", server: OpenOrchestra, setup };"
            )
        );
    }
}
