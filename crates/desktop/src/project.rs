//! Which project the window opens: the one given on the command line, else the last one opened,
//! remembered in `$XDG_STATE_HOME/orchestra/desktop.json` (beside the projects' state folders).

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Where the last project is remembered.
pub struct Memory {
    file: PathBuf,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Remembered {
    last_project: PathBuf,
}

impl Memory {
    /// `$XDG_STATE_HOME/orchestra/desktop.json`: the user-level state folder is
    /// `…/orchestra/global`, so its sibling file.
    pub fn in_state_dir() -> Memory {
        Memory::at(orchestra_state_dir::global_state_dir().with_file_name("desktop.json"))
    }

    pub fn at(file: PathBuf) -> Memory {
        Memory { file }
    }

    fn last(&self) -> Option<PathBuf> {
        let text = std::fs::read_to_string(&self.file).ok()?;
        match serde_json::from_str::<Remembered>(&text) {
            Ok(remembered) => Some(remembered.last_project),
            Err(err) => {
                tracing::warn!(file = %self.file.display(), "ignoring an unreadable desktop state file: {err}");
                None
            }
        }
    }

    pub fn remember(&self, project_dir: &Path) -> anyhow::Result<()> {
        let dir = self.file.parent().unwrap_or(Path::new("."));
        orchestra_state_dir::private::create_private_dir(dir)
            .with_context(|| format!("cannot create {} to remember the project", dir.display()))?;
        let text = serde_json::to_string_pretty(&Remembered {
            last_project: project_dir.to_path_buf(),
        })?;
        // Through a temporary file, so two windows never leave half a file.
        let temp = self
            .file
            .with_extension(format!("json.{}", std::process::id()));
        std::fs::write(&temp, text)
            .and_then(|()| std::fs::rename(&temp, &self.file))
            .with_context(|| {
                format!(
                    "cannot remember the project in {}; check the folder's permissions",
                    self.file.display()
                )
            })
    }
}

/// The project to open: `given` (made absolute), else the remembered one.
pub fn choose(given: Option<PathBuf>, memory: &Memory) -> anyhow::Result<PathBuf> {
    let (dir, remembered) = match given {
        Some(dir) => (dir, false),
        None => match memory.last() {
            Some(dir) => (dir, true),
            None => anyhow::bail!(
                "no project to open: run `orchestra-desktop <project directory>` once; the window \
                 remembers it for the next start"
            ),
        },
    };
    let canonical = dir.canonicalize().ok().filter(|d| d.is_dir());
    match (canonical, remembered) {
        (Some(dir), _) => Ok(dir),
        (None, false) => anyhow::bail!(
            "the project directory {} does not exist or is not a directory",
            dir.display()
        ),
        (None, true) => anyhow::bail!(
            "the last project opened, {}, is gone; name one: `orchestra-desktop <project directory>`",
            dir.display()
        ),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_last_project_is_remembered_and_a_gone_one_is_named() {
        let root = std::env::temp_dir().join(format!("orchestra-desktop-{}", std::process::id()));
        let project = root.join("app");
        std::fs::create_dir_all(&project).unwrap();
        let memory = Memory::at(root.join("state/orchestra/desktop.json"));

        let none = choose(None, &memory).unwrap_err().to_string();
        assert!(
            none.contains("orchestra-desktop <project directory>"),
            "{none}"
        );

        let chosen = choose(Some(project.clone()), &memory).unwrap();
        assert_eq!(chosen, project.canonicalize().unwrap());
        memory.remember(&chosen).unwrap();
        assert_eq!(choose(None, &memory).unwrap(), chosen);

        std::fs::remove_dir_all(&project).unwrap();
        let gone = choose(None, &memory).unwrap_err().to_string();
        assert!(gone.contains("is gone") && gone.contains("app"), "{gone}");
        let missing = choose(Some(project), &memory).unwrap_err().to_string();
        assert!(missing.contains("does not exist"), "{missing}");
        std::fs::remove_dir_all(&root).unwrap();
    }
}
