//! `orchestra install` / `orchestra uninstall`: register Orchestra in OpenCode's config.
//!
//! Install adds four things to `opencode.json(c)`, editing the file in place so the user's
//! comments and formatting survive: the MCP server `mcp.orchestra` that runs `orchestra mcp`,
//! the orchestrator agent `agent.<name>`, the slash commands `command.<prefix>status`, …, and
//! the OpenCode plugin (`plugin.rs`): a file beside the install record, named in `plugin`
//! (OpenCode 1.x) or `plugins` (2.x, which migrates the other V1-format keys on load).
//!
//! What we add is recorded in a sidecar manifest (`manifest_path`); OpenCode rejects unknown
//! keys, so no marker can go into the entries themselves. Ownership is by key: uninstall removes
//! every recorded entry even if the user has edited it since, and leaves every other entry under
//! `mcp`, `agent` and `command` alone.
//!
//! Uninstall gives back the original bytes when the user has not touched the file in between,
//! with one exception: a one-line object we added to (`"mcp": {"x": …}`) was spread over several
//! lines by the insert and stays that way; the content is the same.

mod document;
mod entries;
mod line;
mod manifest;
mod plugin;

use std::collections::BTreeSet;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use jsonc_parser::cst::CstObjectProp;

use document::{ConfigDocument, input_json, node_json, object_is_empty, write_atomically};
use entries::{DesiredEntry, Section, desired_entries};
use manifest::{Manifest, OwnedEntry};

pub use line::OpenCodeLine;

/// What to install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstallOptions {
    /// The command OpenCode runs for the MCP server, e.g. `["/abs/path/orchestra", "mcp"]`.
    pub orchestra_command: Vec<String>,
    /// The orchestrator agent; `None` when `agent.enabled` is false.
    pub agent: Option<AgentSpec>,
    /// Prefix of the slash commands (default `orchestrator.`); `None` when `commands.enabled` is false.
    pub commands_prefix: Option<String>,
    /// Add the OpenCode plugin (chat hooks); false for `--no-plugin`.
    pub plugin: bool,
    /// The OpenCode line the config is for: it decides the plugin list's key.
    pub opencode: OpenCodeLine,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentSpec {
    /// Default `orchestrator`.
    pub name: String,
    /// OpenCode agent mode: `primary`, `subagent` or `all`.
    pub mode: String,
    pub model: Option<String>,
    /// Usually `default_orchestrator_prompt()`.
    pub prompt: String,
    pub color: Option<String>,
    /// `agent.tools`: switches merged key by key over the defaults (the `orchestra_*` tools
    /// on; bash, edit and write off).
    pub tools: std::collections::BTreeMap<String, bool>,
    /// `agent.permission`: OpenCode permissions merged key by key over the defaults (edit and
    /// bash denied).
    pub permission: serde_json::Map<String, serde_json::Value>,
}

/// Where OpenCode's config lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The project directory; the config is `<dir>/opencode.json(c)`. The
    /// install record goes in `state_dir` (the project's Orchestra state
    /// folder, outside the project), so installing never creates a
    /// `.opencode/` folder, which OpenCode would treat as a config directory.
    Project { dir: PathBuf, state_dir: PathBuf },
    /// OpenCode's global config directory, e.g. `~/.config/opencode`.
    Global(PathBuf),
}

impl Scope {
    fn dir(&self) -> &Path {
        match self {
            Scope::Project { dir, .. } | Scope::Global(dir) => dir,
        }
    }
}

/// The config file install edits: an existing `opencode.jsonc`, else an existing
/// `opencode.json`, else a new `opencode.json`, in the scope's directory.
pub fn config_file_for(scope: &Scope) -> PathBuf {
    let dir = scope.dir();
    let jsonc = dir.join("opencode.jsonc");
    if jsonc.is_file() {
        return jsonc;
    }
    dir.join("opencode.json")
}

/// The install record: `<state dir>/installed.json` for a project,
/// `<global dir>/orchestra-installed.json` for the global config.
pub fn manifest_path(scope: &Scope) -> PathBuf {
    match scope {
        Scope::Project { state_dir, .. } => state_dir.join("installed.json"),
        Scope::Global(dir) => dir.join("orchestra-installed.json"),
    }
}

/// Our own system prompt for the orchestrator agent.
pub fn default_orchestrator_prompt() -> &'static str {
    entries::orchestrator_prompt()
}

/// What install or uninstall did (`--json` prints it as is).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InstallReport {
    /// The OpenCode config file.
    pub file: PathBuf,
    /// The install record.
    pub manifest: PathBuf,
    pub outcome: FileOutcome,
    /// One line per entry we touched or checked, in file order of sections.
    pub changes: Vec<EntryChange>,
    pub action: Action,
}

/// Which call produced a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    Install,
    /// `install_dry_run`: the outcome and changes are what install would do; nothing was written.
    InstallDryRun,
    Uninstall,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FileOutcome {
    Created,
    Updated,
    /// Nothing to do: the file is byte-for-byte what it was.
    Unchanged,
    /// Uninstall deleted the file because we had created it and nothing else was left in it.
    Deleted,
    /// Uninstall found no install record for this scope, so it changed nothing.
    NotInstalled,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntryChange {
    /// The entry's path, e.g. `mcp.orchestra` or `command["orchestrator.status"]`.
    pub entry: String,
    pub change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "fields")]
pub enum Change {
    Added,
    /// These fields were rewritten, added or removed.
    Updated(Vec<String>),
    Unchanged,
    Removed,
    /// Recorded as ours, but no longer in the file (the user removed it).
    AlreadyGone,
}

impl fmt::Display for InstallReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file.display();
        let dry_run = "dry run, nothing written:";
        let planned_only = self.action == Action::InstallDryRun;
        match self.outcome {
            FileOutcome::Created if planned_only => writeln!(f, "{dry_run} would create {file}")?,
            FileOutcome::Created => writeln!(f, "created {file}")?,
            FileOutcome::Updated if planned_only => writeln!(f, "{dry_run} would update {file}")?,
            FileOutcome::Updated => writeln!(f, "updated {file}")?,
            FileOutcome::Unchanged => writeln!(f, "{file} is already up to date")?,
            FileOutcome::Deleted => writeln!(
                f,
                "deleted {file} (Orchestra had created it and nothing else was in it)"
            )?,
            FileOutcome::NotInstalled => {
                return writeln!(
                    f,
                    "nothing to uninstall: there is no install record at {}",
                    self.manifest.display()
                );
            }
        }
        for EntryChange { entry, change } in &self.changes {
            let (done, planned) = match change {
                Change::Added => ("added", "add"),
                Change::Updated(_) => ("updated", "update"),
                Change::Unchanged => ("unchanged", "keep"),
                Change::Removed => ("removed", "remove"),
                Change::AlreadyGone => ("was gone", "was gone"),
            };
            let verb = if planned_only { planned } else { done };
            match change {
                Change::Updated(fields) => {
                    writeln!(f, "  {verb:<10} {entry} ({})", fields.join(", "))?
                }
                Change::Added | Change::Unchanged | Change::Removed | Change::AlreadyGone => {
                    writeln!(f, "  {verb:<10} {entry}")?
                }
            }
        }
        let record = self.manifest.display();
        match self.action {
            Action::Install => write!(f, "install record: {record}"),
            Action::InstallDryRun => write!(f, "install record (not written): {record}"),
            Action::Uninstall => write!(f, "install record removed: {record}"),
        }
    }
}

fn entry_label(section: Section, name: &str) -> String {
    if name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        format!("{}.{name}", section.key())
    } else {
        format!("{}[{name:?}]", section.key())
    }
}

/// Adds or updates our entries in the scope's OpenCode config and records them as ours.
///
/// Running it again with the same options leaves the file byte-for-byte unchanged. An entry
/// recorded as ours but no longer wanted (another agent name or command prefix, agent or commands
/// switched off) is removed. An entry under one of our keys that we did not add is refused,
/// unless it already equals what we would write; then it is adopted as ours.
pub fn install(scope: &Scope, opts: &InstallOptions) -> anyhow::Result<InstallReport> {
    run_install(scope, opts, WriteMode::Files)
}

/// What `install` would do, computed the same way, without writing or creating anything.
pub fn install_dry_run(scope: &Scope, opts: &InstallOptions) -> anyhow::Result<InstallReport> {
    run_install(scope, opts, WriteMode::Nothing)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WriteMode {
    Files,
    Nothing,
}

fn run_install(
    scope: &Scope,
    opts: &InstallOptions,
    write: WriteMode,
) -> anyhow::Result<InstallReport> {
    if opts.orchestra_command.is_empty() {
        bail!(
            "the MCP command for OpenCode is empty; pass the path of the `orchestra` binary and `mcp`"
        );
    }
    let dir = scope.dir();
    match scope {
        Scope::Project { .. } if !dir.is_dir() => {
            bail!(
                "project directory {} does not exist; pass an existing directory",
                dir.display()
            )
        }
        Scope::Project { .. } => {}
        Scope::Global(_) if write == WriteMode::Nothing => {}
        Scope::Global(_) => {
            fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?
        }
    }
    let file = config_file_for(scope);
    let manifest_file = manifest_path(scope);
    let previous = Manifest::load(&manifest_file)?;
    if let Some(previous) = &previous {
        let recorded = dir.join(&previous.file);
        if recorded != file && recorded.exists() {
            bail!(
                "Orchestra was installed into {} but OpenCode's config is now {}. Run `orchestra \
                 uninstall` first so the old entries are removed, then install again.",
                recorded.display(),
                file.display()
            );
        }
    }
    let doc = ConfigDocument::load(&file)?;
    let wanted = desired_entries(opts);
    refuse_foreign_entries(&doc, &wanted, previous.as_ref(), &file, &manifest_file)?;

    let mut created_sections: BTreeSet<Section> = BTreeSet::new();
    if let Some(previous) = &previous {
        for &section in &previous.created_sections {
            if doc.existed() && doc.section(section)?.is_some() {
                created_sections.insert(section);
            }
        }
    }

    let mut changes = Vec::new();
    for section in Section::ALL {
        let section_entries: Vec<&DesiredEntry> = wanted
            .iter()
            .filter(|entry| entry.section == section)
            .collect();
        if !section_entries.is_empty() {
            let (object, created) = doc.section_or_create(section)?;
            if created {
                created_sections.insert(section);
            }
            for entry in section_entries {
                let change = match object.get(&entry.name) {
                    None => {
                        object.append(&entry.name, entry.value());
                        Change::Added
                    }
                    Some(prop) => update_entry(&prop, entry),
                };
                changes.push(EntryChange {
                    entry: entry_label(section, &entry.name),
                    change,
                });
            }
            if created {
                doc.match_trailing_commas(&object);
            }
        }
        // Entries recorded as ours that the options no longer ask for.
        let stale = previous.iter().flat_map(|m| &m.entries).filter(|owned| {
            owned.section == section
                && !wanted
                    .iter()
                    .any(|w| w.section == section && w.name == owned.name)
        });
        for owned in stale {
            if let Some(prop) = doc
                .section(section)?
                .and_then(|object| object.get(&owned.name))
            {
                prop.remove();
                changes.push(EntryChange {
                    entry: entry_label(section, &owned.name),
                    change: Change::Removed,
                });
            }
        }
        remove_section_if_ours_and_empty(&doc, section, &mut created_sections)?;
    }

    let (owned_plugin, plugin_file) = plugin::apply(
        &doc,
        opts.plugin.then(|| opts.orchestra_command[0].as_str()),
        match opts.opencode {
            OpenCodeLine::V1 => plugin::PluginKey::Plugin,
            OpenCodeLine::V2 => plugin::PluginKey::Plugins,
        },
        &manifest_file,
        previous.as_ref().and_then(|m| m.plugin.as_ref()),
        &mut changes,
    )?;
    let manifest = Manifest {
        created_file: !doc.existed() || previous.as_ref().is_some_and(|m| m.created_file),
        created_sections: created_sections.into_iter().collect(),
        entries: wanted
            .iter()
            .map(|w| OwnedEntry {
                section: w.section,
                name: w.name.clone(),
            })
            .collect(),
        plugin: owned_plugin,
        ..Manifest::new(file_name(&file))
    };
    let outcome = match (doc.existed(), doc.is_changed() || plugin_file.is_some()) {
        (false, _) => FileOutcome::Created,
        (true, true) => FileOutcome::Updated,
        (true, false) => FileOutcome::Unchanged,
    };
    let report = InstallReport {
        file: file.clone(),
        manifest: manifest_file.clone(),
        outcome,
        changes,
        action: match write {
            WriteMode::Files => Action::Install,
            WriteMode::Nothing => Action::InstallDryRun,
        },
    };
    if write == WriteMode::Nothing {
        return Ok(report);
    }
    if let Some(pending) = &plugin_file {
        plugin::write_file(pending)?;
    }
    // The record goes first: if writing the config then fails, the record claims entries that
    // are not there (harmless), rather than the config holding entries nobody owns.
    if previous.as_ref() != Some(&manifest) {
        manifest.save(&manifest_file)?;
    }
    if doc.is_changed()
        && let Err(err) = write_atomically(&file, &doc.text())
    {
        restore_manifest(previous.as_ref(), &manifest_file);
        return Err(err);
    }
    // The config now names the new place, so the earlier install's file can go.
    if let Some(old) = plugin_file.as_ref().and_then(|p| p.replaces.as_ref()) {
        let mut ignored = Vec::new();
        plugin::delete_file(old, &mut ignored)?;
    }
    Ok(report)
}

/// Removes exactly the entries the install record lists, whatever they hold now (an entry the
/// user edited after install is still ours by key and is removed), then the top-level objects
/// we created if they are empty again, then the record. If install created the config file and
/// nothing else is left in it, the file is deleted. Without a record, nothing is touched.
pub fn uninstall(scope: &Scope) -> anyhow::Result<InstallReport> {
    let manifest_file = manifest_path(scope);
    let Some(manifest) = Manifest::load(&manifest_file)? else {
        return Ok(InstallReport {
            file: config_file_for(scope),
            manifest: manifest_file,
            outcome: FileOutcome::NotInstalled,
            changes: Vec::new(),
            action: Action::Uninstall,
        });
    };
    let file = scope.dir().join(&manifest.file);
    let doc = ConfigDocument::load(&file)?;
    let mut changes = Vec::new();
    let mut created_sections: BTreeSet<Section> =
        manifest.created_sections.iter().copied().collect();
    for section in Section::ALL {
        for owned in manifest
            .entries
            .iter()
            .filter(|owned| owned.section == section)
        {
            let label = entry_label(section, &owned.name);
            match doc
                .section(section)?
                .and_then(|object| object.get(&owned.name))
            {
                Some(prop) => {
                    prop.remove();
                    changes.push(EntryChange {
                        entry: label,
                        change: Change::Removed,
                    });
                }
                None => changes.push(EntryChange {
                    entry: label,
                    change: Change::AlreadyGone,
                }),
            }
        }
        remove_section_if_ours_and_empty(&doc, section, &mut created_sections)?;
    }
    if let Some(owned) = &manifest.plugin {
        plugin::remove(&doc, owned, &mut changes)?;
    }

    let outcome = if !doc.existed() {
        FileOutcome::Unchanged
    } else if manifest.created_file && doc.is_empty() {
        fs::remove_file(&file).with_context(|| format!("cannot delete {}", file.display()))?;
        FileOutcome::Deleted
    } else if doc.is_changed() {
        write_atomically(&file, &doc.text())?;
        FileOutcome::Updated
    } else {
        FileOutcome::Unchanged
    };
    // The config no longer names the plugin file, so it can go.
    if let Some(owned) = &manifest.plugin {
        plugin::delete_file(owned, &mut changes)?;
    }
    fs::remove_file(&manifest_file)
        .with_context(|| format!("cannot delete {}", manifest_file.display()))?;
    if let (Scope::Project { .. }, Some(state_dir)) = (scope, manifest_file.parent()) {
        // Succeeds only when the folder is empty, the only case we want.
        let _ = fs::remove_dir(state_dir);
    }
    Ok(InstallReport {
        file,
        manifest: manifest_file,
        outcome,
        changes,
        action: Action::Uninstall,
    })
}

/// Refuses, before anything is written, when one of our keys holds an entry we did not add.
fn refuse_foreign_entries(
    doc: &ConfigDocument,
    wanted: &[DesiredEntry],
    previous: Option<&Manifest>,
    file: &Path,
    manifest_file: &Path,
) -> anyhow::Result<()> {
    let mut conflicts = Vec::new();
    for entry in wanted {
        let Some(object) = doc.section(entry.section)? else {
            continue;
        };
        let Some(prop) = object.get(&entry.name) else {
            continue;
        };
        if previous.is_some_and(|m| m.owns(entry.section, &entry.name)) {
            continue;
        }
        let current = prop.value().and_then(|value| node_json(&value));
        if current.as_ref() == Some(&input_json(&entry.value())) {
            continue;
        }
        let how_to_avoid = match entry.section {
            Section::Mcp => "",
            Section::Agent => {
                ", or give Orchestra's agent another name with `agent.name` in orchestrator.json"
            }
            Section::Command => {
                ", or give Orchestra's commands another `commands.prefix` in orchestrator.json"
            }
        };
        conflicts.push(format!(
            "`{}`{how_to_avoid}",
            entry_label(entry.section, &entry.name)
        ));
    }
    if conflicts.is_empty() {
        return Ok(());
    }
    bail!(
        "{} already has entries under keys Orchestra uses, and Orchestra did not add them (they are \
         not in {}): {}. Nothing was changed. Remove or rename them in the file and run `orchestra \
         install` again; if they are left over from an earlier install, removing them is safe.",
        file.display(),
        manifest_file.display(),
        conflicts.join("; ")
    )
}

/// Brings one of our entries up to date field by field, so that fields the user added to it
/// survive and an unchanged entry is not rewritten at all.
fn update_entry(prop: &CstObjectProp, entry: &DesiredEntry) -> Change {
    let Some(object) = prop.object_value() else {
        prop.set_value(entry.value());
        return Change::Updated(vec!["(whole entry)".to_string()]);
    };
    let mut updated = Vec::new();
    for (name, value) in &entry.fields {
        match object.get(name) {
            None => {
                object.append(name, value.clone());
                updated.push(name.clone());
            }
            Some(field) => {
                if field.value().and_then(|node| node_json(&node)) != Some(input_json(value)) {
                    field.set_value(value.clone());
                    updated.push(name.clone());
                }
            }
        }
    }
    for &managed in entry.section.managed_fields() {
        if entry.fields.iter().any(|(name, _)| name == managed) {
            continue;
        }
        if let Some(field) = object.get(managed) {
            field.remove();
            updated.push(managed.to_string());
        }
    }
    if updated.is_empty() {
        Change::Unchanged
    } else {
        Change::Updated(updated)
    }
}

/// A top-level object we created goes again once it is empty; one the user had stays.
fn remove_section_if_ours_and_empty(
    doc: &ConfigDocument,
    section: Section,
    created_sections: &mut BTreeSet<Section>,
) -> anyhow::Result<()> {
    if !created_sections.contains(&section) {
        return Ok(());
    }
    let Some(object) = doc.section(section)? else {
        created_sections.remove(&section);
        return Ok(());
    };
    if object_is_empty(&object)
        && let Some(prop) = doc.root().get(section.key())
    {
        prop.remove();
        created_sections.remove(&section);
    }
    Ok(())
}

fn restore_manifest(previous: Option<&Manifest>, path: &Path) {
    // Best effort while another error is already on its way to the user.
    let _ = match previous {
        Some(previous) => previous.save(path),
        None => fs::remove_file(path).map_err(anyhow::Error::from),
    };
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_default()
}
