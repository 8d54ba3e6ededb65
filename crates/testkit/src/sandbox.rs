//! OpenCode isolated from the user's home and offline, for the test kit and the benchmarks.
//!
//! An [`IsolatedHome`] gives HOME and XDG directories of its own, the switches that keep
//! OpenCode offline, and a models catalog of its own (`OPENCODE_MODELS_PATH`, empty unless a
//! test writes one): without it OpenCode's built-in catalog offers OpenCode Zen's free models,
//! which would reach the internet. A [`TestProject`] is a throw-away git repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

pub use crate::temp_dir::TempDir;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("could not {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("`git {args}` failed in {}: {stderr}; is git installed and working?", dir.display())]
    Git {
        args: String,
        dir: PathBuf,
        stderr: String,
    },
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// Variables through which the developer's own OpenCode setup would reach a test's OpenCode
/// (HOME and XDG are replaced by [`IsolatedHome::env`]; these must be removed).
pub const FOREIGN_CONFIG_VARS: [&str; 5] = [
    "OPENCODE_CONFIG",
    "OPENCODE_CONFIG_CONTENT",
    "OPENCODE_CONFIG_DIR",
    "OPENCODE_DISABLE_PROJECT_CONFIG",
    "OPENCODE_MODELS_URL",
];

/// Environment switches that keep OpenCode offline and free of plugins, updates and foreign config.
pub fn offline_env() -> Vec<(String, String)> {
    [
        ("OPENCODE_DISABLE_MODELS_FETCH", "1"),
        ("OPENCODE_DISABLE_AUTOUPDATE", "1"),
        ("OPENCODE_DISABLE_LSP_DOWNLOAD", "1"),
        ("OPENCODE_DISABLE_SHARE", "1"),
        ("OPENCODE_DISABLE_CLAUDE_CODE", "1"),
        ("OPENCODE_DISABLE_EXTERNAL_SKILLS", "1"),
        ("OPENCODE_DISABLE_DEFAULT_PLUGINS", "1"),
        ("OPENCODE_PURE", "1"),
        // A dead port: any npm install OpenCode attempts fails fast instead of downloading.
        ("npm_config_registry", "http://127.0.0.1:9/"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// A throwaway HOME with the XDG dirs OpenCode writes to (config, data incl. its DB, cache,
/// state) and a models catalog of its own.
#[derive(Debug)]
pub struct IsolatedHome {
    pub root: PathBuf,
    _dir: TempDir,
}

impl IsolatedHome {
    pub fn new() -> Result<Self, SandboxError> {
        let dir = TempDir::new("orchestra-home").map_err(io_error("create a temp dir for HOME"))?;
        let root = dir.path().to_path_buf();
        let home = IsolatedHome { root, _dir: dir };
        for sub in [".config", ".local/share", ".cache", ".local/state"] {
            let path = home.home().join(sub);
            std::fs::create_dir_all(&path)
                .map_err(io_error(format!("create {}", path.display())))?;
        }
        home.set_models_catalog(&Value::Object(Default::default()))?;
        Ok(home)
    }

    /// `<root>/home`.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// `$XDG_CONFIG_HOME/opencode`: OpenCode's global config directory.
    pub fn opencode_config_dir(&self) -> PathBuf {
        self.home().join(".config/opencode")
    }

    /// `$XDG_DATA_HOME/opencode`: where OpenCode keeps `auth.json` and its database.
    pub fn opencode_data_dir(&self) -> PathBuf {
        self.home().join(".local/share/opencode")
    }

    /// The models catalog OpenCode reads instead of models.dev (`OPENCODE_MODELS_PATH`).
    pub fn models_catalog_path(&self) -> PathBuf {
        self.root.join("models.json")
    }

    /// Replaces the models catalog: `{"<provider>": {"id", "name", "env", "npm", "api",
    /// "models": {…}}}`, the shape of models.dev's `api.json`.
    pub fn set_models_catalog(&self, catalog: &Value) -> Result<(), SandboxError> {
        let path = self.models_catalog_path();
        std::fs::write(&path, catalog.to_string())
            .map_err(io_error(format!("write {}", path.display())))
    }

    /// HOME and XDG_* pointing inside this dir, the models catalog, plus [`offline_env`].
    pub fn env(&self) -> Vec<(String, String)> {
        let home = self.home();
        let at = |sub: &str| home.join(sub).to_string_lossy().into_owned();
        let mut env = vec![
            ("HOME".to_owned(), home.to_string_lossy().into_owned()),
            ("XDG_CONFIG_HOME".to_owned(), at(".config")),
            ("XDG_DATA_HOME".to_owned(), at(".local/share")),
            ("XDG_CACHE_HOME".to_owned(), at(".cache")),
            ("XDG_STATE_HOME".to_owned(), at(".local/state")),
            (
                "OPENCODE_MODELS_PATH".to_owned(),
                self.models_catalog_path().to_string_lossy().into_owned(),
            ),
        ];
        env.extend(offline_env());
        env
    }

    /// [`IsolatedHome::env`] for an OpenCode that loads plugins (`OPENCODE_PURE` unset), still
    /// offline: with any plugin configured, OpenCode installs `@opencode-ai/plugin` into its
    /// config folders before it loads them, and npm's offline mode makes that fail at once
    /// instead of retrying the dead registry for a minute.
    pub fn env_with_plugins(&self) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = self
            .env()
            .into_iter()
            .filter(|(key, _)| key != "OPENCODE_PURE")
            .collect();
        env.push(("npm_config_offline".to_owned(), "true".to_owned()));
        env
    }
}

/// A temp git repository (OpenCode wants one) with a committed `README.md`; removed on drop.
#[derive(Debug)]
pub struct TestProject {
    pub dir: PathBuf,
    _temp: TempDir,
}

impl TestProject {
    pub fn new() -> Result<Self, SandboxError> {
        let temp =
            TempDir::new("orchestra-project").map_err(io_error("create a temp project dir"))?;
        let dir = temp.path().to_path_buf();
        std::fs::write(dir.join("README.md"), "# test project\n")
            .map_err(io_error(format!("write README.md in {}", dir.display())))?;
        git(&dir, &["init", "-q"])?;
        git(&dir, &["add", "README.md"])?;
        git(&dir, &["commit", "-q", "-m", "initial commit"])?;
        Ok(TestProject { dir, _temp: temp })
    }

    /// Writes `text` to `relative` inside the project, creating folders (`.opencode/…`).
    pub fn write(&self, relative: &str, text: &str) -> Result<PathBuf, SandboxError> {
        let path = self.dir.join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(io_error(format!("create {}", parent.display())))?;
        }
        std::fs::write(&path, text).map_err(io_error(format!("write {}", path.display())))?;
        Ok(path)
    }
}

/// Runs git with a fixed identity and without the user's or system's config (signing hooks, templates).
fn git(dir: &Path, args: &[&str]) -> Result<(), SandboxError> {
    let output = Command::new("git")
        .args([
            "-c",
            "user.name=orchestra-testkit",
            "-c",
            "user.email=testkit@localhost",
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .map_err(io_error("run git (is it installed?)"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(SandboxError::Git {
            args: args.join(" "),
            dir: dir.to_path_buf(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn isolated_home_has_xdg_dirs_offline_switches_and_an_empty_catalog() {
        let home = IsolatedHome::new().unwrap();
        let env: std::collections::HashMap<_, _> = home.env().into_iter().collect();
        for key in [
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_CACHE_HOME",
            "XDG_STATE_HOME",
        ] {
            let path = Path::new(&env[key]);
            assert!(path.is_dir(), "{key}");
            assert!(path.starts_with(&home.root));
        }
        assert_eq!(env["OPENCODE_PURE"], "1");
        assert_eq!(env["npm_config_registry"], "http://127.0.0.1:9/");
        let catalog = std::fs::read_to_string(&env["OPENCODE_MODELS_PATH"]).unwrap();
        assert_eq!(catalog, "{}");
        let root = home.root.clone();
        drop(home);
        assert!(!root.exists());
    }

    #[test]
    fn test_project_is_a_git_repo_with_a_commit() {
        let project = TestProject::new().unwrap();
        assert!(project.dir.join(".git").is_dir());
        assert!(project.dir.join("README.md").is_file());
        git(&project.dir, &["rev-parse", "HEAD"]).unwrap();
        let written = project.write(".opencode/opencode.json", "{}").unwrap();
        assert_eq!(std::fs::read_to_string(written).unwrap(), "{}");
    }
}
