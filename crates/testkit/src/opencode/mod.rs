//! Running the pinned OpenCode (1.18.33, `tools/opencode`) isolated from the developer's home and offline.
//!
//! A test spawns `opencode serve` with [`IsolatedHome::env`], `OPENCODE_CONFIG_CONTENT` =
//! [`fake_provider_config`], `current_dir` and `PWD` both set to a [`TestProject`] (OpenCode reads `$PWD`),
//! in its own process group.

mod temp_dir;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

pub use temp_dir::TempDir;

#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error(
        "pinned OpenCode not found at {}; run `scripts/install-opencode` in {} \
         (or point ORCHESTRA_OPENCODE_BIN at an opencode 1.18.33 binary)",
        path.display(), root.display()
    )]
    OpencodeMissing { path: PathBuf, root: PathBuf },
    #[error(
        "ORCHESTRA_OPENCODE_BIN points at {}, which is not a file; fix the variable or unset it to use \
         tools/opencode (installed by `scripts/install-opencode`)",
        path.display()
    )]
    OpencodeEnvMissing { path: PathBuf },
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

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> HarnessError {
    let what = what.into();
    move |source| HarnessError::Io { what, source }
}

/// The repository root, fixed at compile time from this crate's manifest dir (`crates/testkit/../..`).
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .nth(2)
        .unwrap_or(manifest)
        .to_path_buf()
}

/// `$ORCHESTRA_OPENCODE_BIN` when set, else `<root>/tools/opencode/node_modules/.bin/opencode`.
pub fn pinned_opencode_bin() -> Result<PathBuf, HarnessError> {
    if let Some(from_env) = std::env::var_os("ORCHESTRA_OPENCODE_BIN").filter(|v| !v.is_empty()) {
        let path = PathBuf::from(from_env);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(HarnessError::OpencodeEnvMissing { path })
        };
    }
    let root = workspace_root();
    let path = root.join("tools/opencode/node_modules/.bin/opencode");
    if path.is_file() {
        Ok(path)
    } else {
        Err(HarnessError::OpencodeMissing { path, root })
    }
}

/// For tests: the pinned binary, or a panic that says how to install it. Tests never skip for a
/// missing OpenCode, locally or in CI.
pub fn require_opencode() -> PathBuf {
    match pinned_opencode_bin() {
        Ok(bin) => bin,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI: OpenCode is required and missing, this is a test failure, not a skip: {e}")
        }
        Err(e) => panic!("this test needs the pinned OpenCode: {e}"),
    }
}

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

/// A throwaway HOME with the XDG dirs OpenCode writes to (config, data incl. its DB, cache, state).
#[derive(Debug)]
pub struct IsolatedHome {
    pub root: PathBuf,
    _dir: TempDir,
}

impl IsolatedHome {
    pub fn new() -> Result<Self, HarnessError> {
        let dir = TempDir::new("orchestra-home").map_err(io_error("create a temp dir for HOME"))?;
        let root = dir.path().to_path_buf();
        let home = IsolatedHome { root, _dir: dir };
        for sub in [".config", ".local/share", ".cache", ".local/state"] {
            let path = home.home().join(sub);
            std::fs::create_dir_all(&path)
                .map_err(io_error(format!("create {}", path.display())))?;
        }
        Ok(home)
    }

    /// `<root>/home`.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }

    /// HOME and XDG_* pointing inside this dir, plus [`offline_env`].
    pub fn env(&self) -> Vec<(String, String)> {
        let home = self.home();
        let at = |sub: &str| home.join(sub).to_string_lossy().into_owned();
        let mut env = vec![
            ("HOME".to_owned(), home.to_string_lossy().into_owned()),
            ("XDG_CONFIG_HOME".to_owned(), at(".config")),
            ("XDG_DATA_HOME".to_owned(), at(".local/share")),
            ("XDG_CACHE_HOME".to_owned(), at(".cache")),
            ("XDG_STATE_HOME".to_owned(), at(".local/state")),
        ];
        env.extend(offline_env());
        env
    }
}

/// Config for `OPENCODE_CONFIG_CONTENT`: only provider `fake` (at `base_url`, e.g. [`crate::fake_llm::FakeLlm::base_url`])
/// with `fake-model` (tools + images), `fake-text` (tools, text only) and `fake-mini` (tools, text; the small model
/// that writes titles).
pub fn fake_provider_config(base_url: &str) -> Value {
    let limit = json!({"context": 128000, "output": 4096});
    json!({
        "$schema": "https://opencode.ai/config.json",
        "provider": {
            "fake": {
                "npm": "@ai-sdk/openai-compatible",
                "name": "Fake Provider",
                "options": {"baseURL": base_url, "apiKey": "sk-fake"},
                "models": {
                    "fake-model": {
                        "name": "Fake Model", "tool_call": true, "attachment": true,
                        "modalities": {"input": ["text", "image"], "output": ["text"]},
                        "limit": limit,
                    },
                    "fake-text": {
                        "name": "Fake Text-only", "tool_call": true, "attachment": false,
                        "modalities": {"input": ["text"], "output": ["text"]},
                        "limit": limit,
                    },
                    "fake-mini": {
                        "name": "Fake Mini", "tool_call": true, "attachment": false,
                        "modalities": {"input": ["text"], "output": ["text"]},
                        "limit": limit,
                    },
                },
            },
        },
        "enabled_providers": ["fake"],
        "model": "fake/fake-model",
        "small_model": "fake/fake-mini",
        "autoupdate": false,
        "share": "disabled",
    })
}

/// A temp git repository (OpenCode wants one) with a committed `README.md`; removed on drop.
#[derive(Debug)]
pub struct TestProject {
    pub dir: PathBuf,
    _temp: TempDir,
}

impl TestProject {
    pub fn new() -> Result<Self, HarnessError> {
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
}

/// Runs git with a fixed identity and without the user's or system's config (signing hooks, templates).
fn git(dir: &Path, args: &[&str]) -> Result<(), HarnessError> {
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
        Err(HarnessError::Git {
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
    fn isolated_home_has_xdg_dirs_and_offline_switches() {
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
    }

    #[test]
    fn workspace_root_holds_the_pin() {
        assert!(
            workspace_root()
                .join("tools/opencode/package.json")
                .is_file()
        );
    }

    #[test]
    fn provider_config_points_at_base_url() {
        let config = fake_provider_config("http://127.0.0.1:1/v1");
        assert_eq!(
            config["provider"]["fake"]["options"]["baseURL"],
            "http://127.0.0.1:1/v1"
        );
        assert_eq!(config["small_model"], "fake/fake-mini");
        assert_eq!(
            config["provider"]["fake"]["models"]["fake-model"]["attachment"],
            true
        );
    }
}
