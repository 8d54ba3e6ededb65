//! The record of what `orchestra install` added. OpenCode validates its config strictly, so an
//! ownership marker cannot live inside our entries; it lives in this sidecar file instead.

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use anyhow::{Context, anyhow};
use orchestra_state_dir::private;
use serde::{Deserialize, Serialize};

use super::document::write_atomically;
use super::entries::Section;
use super::plugin::OwnedPlugin;

/// Bumped when the layout changes incompatibly.
const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Manifest {
    pub(super) format: u32,
    /// The config file we edited, relative to the scope's directory.
    pub(super) file: String,
    /// We created the file; uninstall deletes it again if nothing else is left in it.
    pub(super) created_file: bool,
    /// Top-level objects we created; uninstall removes each one that is empty again.
    pub(super) created_sections: Vec<Section>,
    /// Every entry we own, by key.
    pub(super) entries: Vec<OwnedEntry>,
    /// The OpenCode plugin: our element of the `plugin` list and the file it names.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) plugin: Option<OwnedPlugin>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OwnedEntry {
    pub(super) section: Section,
    pub(super) name: String,
}

impl Manifest {
    pub(super) fn new(file: String) -> Self {
        Self {
            format: FORMAT,
            file,
            created_file: false,
            created_sections: Vec::new(),
            entries: Vec::new(),
            plugin: None,
        }
    }

    pub(super) fn owns(&self, section: Section, name: &str) -> bool {
        self.entries
            .iter()
            .any(|entry| entry.section == section && entry.name == name)
    }

    pub(super) fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(err) if err.kind() == ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(err).with_context(|| format!("cannot read {}", path.display())),
        };
        let manifest: Manifest = serde_json::from_str(&text).map_err(|err| {
            anyhow!(
                "cannot read Orchestra's install record {}: {err}. Restore it, or delete it and \
                 remove Orchestra's entries (`mcp.orchestra`, the orchestrator agent and its \
                 commands, the orchestra plugin in `plugin`) from the OpenCode config by hand before installing again.",
                path.display()
            )
        })?;
        if manifest.format != FORMAT {
            anyhow::bail!(
                "{} was written by a different version of Orchestra (format {}, this one reads {FORMAT}). \
                 Uninstall with that version, or delete the file and remove Orchestra's entries by hand.",
                path.display(),
                manifest.format
            );
        }
        Ok(Some(manifest))
    }

    pub(super) fn save(&self, path: &Path) -> anyhow::Result<()> {
        if let Some(dir) = path.parent() {
            private::create_private_dir(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let mut text =
            serde_json::to_string_pretty(self).context("cannot encode the install record")?;
        text.push('\n');
        write_atomically(path, &text)?;
        private::narrow(path).with_context(|| format!("cannot make {} private", path.display()))
    }
}
