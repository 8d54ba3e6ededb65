//! Running the pinned OpenCode (1.18.33, `tools/opencode`) isolated from the developer's home and offline.
//!
//! A test spawns `opencode serve` (or `orchestra`) with [`IsolatedHome::env`], `current_dir` and
//! `PWD` both set to a [`TestProject`] (OpenCode reads `$PWD`), in its own process group. The
//! model provider goes where users put theirs: [`write_project_config`] writes
//! [`fake_provider_config`] into the project's `opencode.json`.

use std::path::{Path, PathBuf};

use orchestra_fake_llm::opencode::provider_entry;
use serde_json::{Value, json};

pub use crate::sandbox::{
    FOREIGN_CONFIG_VARS, IsolatedHome, SandboxError, TempDir, TestProject, offline_env,
};

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
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("could not write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
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

/// For the OpenCode 2.x tests: the pinned 2.x binary (`tools/opencode-v2`, `@opencode/cli`),
/// run as the *main* OpenCode the user chats in (workers stay on 1.x). `$ORCHESTRA_OPENCODE_V2_BIN`
/// overrides it. Panics with the fix when it is missing: these tests never skip either.
pub fn require_opencode_v2() -> PathBuf {
    let (path, fix) = match std::env::var_os("ORCHESTRA_OPENCODE_V2_BIN").filter(|v| !v.is_empty())
    {
        Some(from_env) => (
            PathBuf::from(from_env),
            "fix ORCHESTRA_OPENCODE_V2_BIN or unset it to use tools/opencode-v2",
        ),
        None => (
            workspace_root().join("tools/opencode-v2/node_modules/.bin/opencode"),
            "run `scripts/install-opencode` (it installs @opencode/cli from tools/opencode-v2)",
        ),
    };
    assert!(
        path.is_file(),
        "the pinned OpenCode 2.x is not at {}: {fix}",
        path.display()
    );
    path
}

/// A user's OpenCode config whose own provider `provider_id` is served by the fake LLM at
/// `base_url` (e.g. [`orchestra_fake_llm::FakeLlm::base_url`]) with the fake's three models, and
/// `model` / `small_model` pointing at it. Without `api_key` the provider entry has no key, so
/// OpenCode takes it from `auth.json` or the environment.
pub fn user_provider_config(provider_id: &str, base_url: &str, api_key: Option<&str>) -> Value {
    json!({
        "$schema": "https://opencode.ai/config.json",
        "provider": {provider_id: provider_entry(&format!("{provider_id} (test)"), base_url, api_key)},
        "model": format!("{provider_id}/fake-model"),
        "small_model": format!("{provider_id}/fake-mini"),
    })
}

/// The test suite's usual provider: `fake` at `base_url` with key `sk-fake`, the default model
/// `fake/fake-model` (tools + images), plus `fake-text` (tools, text only) and `fake-mini`
/// (the small model that writes titles).
pub fn fake_provider_config(base_url: &str) -> Value {
    user_provider_config("fake", base_url, Some("sk-fake"))
}

/// Writes `config` as the project's `opencode.json`, where users keep their provider.
pub fn write_project_config(
    project: &TestProject,
    config: &Value,
) -> Result<PathBuf, HarnessError> {
    write_json(&project.dir.join("opencode.json"), config)
}

/// Writes `config` as OpenCode's global config (`$XDG_CONFIG_HOME/opencode/opencode.json`).
pub fn write_global_config(home: &IsolatedHome, config: &Value) -> Result<PathBuf, HarnessError> {
    write_json(&home.opencode_config_dir().join("opencode.json"), config)
}

/// Stores an API key for `provider_id` in OpenCode's `auth.json`, as `opencode auth login` does.
pub fn write_auth_key(
    home: &IsolatedHome,
    provider_id: &str,
    key: &str,
) -> Result<PathBuf, HarnessError> {
    write_json(
        &home.opencode_data_dir().join("auth.json"),
        &json!({provider_id: {"type": "api", "key": key}}),
    )
}

/// A models.dev-style catalog entry (for [`IsolatedHome::set_models_catalog`]): an
/// OpenAI-compatible provider at `base_url` that OpenCode offers once `env_var` holds a key (or
/// `auth.json` has one), as it does for the providers it ships with.
pub fn catalog_provider(provider_id: &str, env_var: &str, base_url: &str) -> Value {
    json!({
        "id": provider_id,
        "name": format!("{provider_id} (catalog)"),
        "env": [env_var],
        "npm": "@ai-sdk/openai-compatible",
        "api": base_url,
        "models": {
            "fake-model": {
                "id": "fake-model", "name": "Fake Model",
                "attachment": false, "reasoning": false, "tool_call": true, "temperature": true,
                "release_date": "2025-01-01", "last_updated": "2025-01-01", "open_weights": false,
                "modalities": {"input": ["text"], "output": ["text"]},
                "cost": {"input": 0, "output": 0},
                "limit": {"context": 128000, "output": 4096},
            },
        },
    })
}

fn write_json(path: &Path, value: &Value) -> Result<PathBuf, HarnessError> {
    let write = || {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(path, value.to_string())
    };
    write().map_err(|source| HarnessError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

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
        assert_eq!(config["model"], "fake/fake-model");
        assert_eq!(config["provider"]["fake"]["options"]["apiKey"], "sk-fake");
        // A user's config: nothing that switches their other providers off.
        assert!(config.get("enabled_providers").is_none());
    }

    #[test]
    fn configs_go_where_users_put_them() {
        let home = IsolatedHome::new().unwrap();
        let project = TestProject::new().unwrap();
        let config = fake_provider_config("http://127.0.0.1:1/v1");
        let written = write_project_config(&project, &config).unwrap();
        assert_eq!(written, project.dir.join("opencode.json"));
        let global = write_global_config(&home, &config).unwrap();
        assert!(global.ends_with(".config/opencode/opencode.json"));
        let auth = write_auth_key(&home, "mine", "sk-1").unwrap();
        let stored: Value = serde_json::from_str(&std::fs::read_to_string(auth).unwrap()).unwrap();
        assert_eq!(stored["mine"]["key"], "sk-1");
    }
}
