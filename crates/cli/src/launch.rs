//! How this `orchestra` process starts OpenCode: which binary, which
//! environment, and which model provider (the user's, or the built-in fake).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use orchestra_core::config::Config;
use orchestra_core::workers::LaunchSettings;
use orchestra_testkit::fake_llm::FakeLlm;
use serde_json::Value;

/// Where the model answers come from for this run.
pub enum ProviderChoice {
    /// The user's own OpenCode configuration; the text says what was found.
    User(String),
    /// The built-in fake LLM on 127.0.0.1 (kept alive by this handle);
    /// `asked` when `--fake` chose it rather than the lack of a provider.
    Fake { fake: FakeLlm, asked: bool },
}

impl ProviderChoice {
    pub fn describe(&self) -> String {
        match self {
            ProviderChoice::User(why) => format!("using your OpenCode provider ({why})"),
            ProviderChoice::Fake { fake, asked: true } => format!(
                "using the built-in fake model at {} (--fake; it echoes prompts)",
                fake.base_url()
            ),
            ProviderChoice::Fake { fake, asked: false } => format!(
                "no OpenCode provider is configured, so this runs against the built-in fake model at {} \
                 (it echoes prompts; configure a provider in OpenCode to use a real model)",
                fake.base_url()
            ),
        }
    }
}

/// The OpenCode binary: config `runtime.opencodeBin`, then
/// `$ORCHESTRA_OPENCODE_BIN`, then the repo's pinned copy next to this
/// executable, then `opencode` on PATH.
pub fn find_opencode(config: &Config) -> anyhow::Result<PathBuf> {
    if let Some(bin) = &config.runtime.opencode_bin {
        if bin.exists() {
            return Ok(bin.clone());
        }
        bail!(
            "runtime.opencodeBin is {} but no file is there",
            bin.display()
        );
    }
    if let Ok(bin) = std::env::var("ORCHESTRA_OPENCODE_BIN") {
        let bin = PathBuf::from(bin);
        if bin.exists() {
            return Ok(bin);
        }
        bail!(
            "ORCHESTRA_OPENCODE_BIN is {} but no file is there",
            bin.display()
        );
    }
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            let candidate = dir.join("tools/opencode/node_modules/.bin/opencode");
            if candidate.exists() {
                return Ok(candidate);
            }
        }
    }
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("opencode");
            if candidate.is_file() {
                return Ok(candidate);
            }
        }
    }
    bail!(
        "OpenCode was not found. Install it (`scripts/install-opencode` in the Open Orchestra repo, \
         or `npm install -g opencode-ai`), or set runtime.opencodeBin / ORCHESTRA_OPENCODE_BIN"
    )
}

/// Finds a provider the user configured for OpenCode, if any.
pub fn detect_user_provider() -> Option<String> {
    if let Ok(content) = std::env::var("OPENCODE_CONFIG_CONTENT")
        && let Ok(value) = serde_json::from_str::<Value>(&content)
        && (value.get("provider").is_some() || value.get("model").is_some())
    {
        return Some("OPENCODE_CONFIG_CONTENT names a provider or model".into());
    }
    let home = std::env::var_os("HOME").map(PathBuf::from)?;
    let data =
        std::env::var_os("XDG_DATA_HOME").map_or_else(|| home.join(".local/share"), PathBuf::from);
    let auth = data.join("opencode/auth.json");
    if std::fs::read_to_string(&auth).is_ok_and(|text| text.trim().len() > 2) {
        return Some(format!("credentials in {}", auth.display()));
    }
    let config_dir = std::env::var_os("XDG_CONFIG_HOME")
        .map_or_else(|| home.join(".config"), PathBuf::from)
        .join("opencode");
    for name in ["opencode.json", "opencode.jsonc", "config.json"] {
        let path = config_dir.join(name);
        if let Ok(text) = std::fs::read_to_string(&path)
            && let Ok(value) = jsonc_parser::parse_to_serde_value::<Value>(
                &text,
                &orchestra_core::config::jsonc_options(),
            )
            && (value.get("provider").is_some() || value.get("model").is_some())
        {
            return Some(format!("provider or model set in {}", path.display()));
        }
    }
    for var in [
        "ANTHROPIC_API_KEY",
        "OPENAI_API_KEY",
        "OPENROUTER_API_KEY",
        "GEMINI_API_KEY",
        "GROQ_API_KEY",
    ] {
        if std::env::var_os(var).is_some() {
            return Some(format!("{var} is set"));
        }
    }
    None
}

/// Launch settings for this process. OpenCode children inherit our
/// environment (so a test's isolated HOME reaches them), and an inherited
/// `OPENCODE_CONFIG_CONTENT` is kept under our agent definitions.
pub fn launch_settings(
    config: &Config,
    project_dir: &Path,
    provider: &ProviderChoice,
) -> anyhow::Result<LaunchSettings> {
    let binary = find_opencode(config)?;
    let mut overlay = match std::env::var("OPENCODE_CONFIG_CONTENT") {
        Ok(text) => serde_json::from_str(&text)
            .context("OPENCODE_CONFIG_CONTENT is set but is not valid JSON")?,
        Err(_) => Value::Object(Default::default()),
    };
    let mut env = Vec::new();
    if let ProviderChoice::Fake { fake, .. } = provider {
        orchestra_core::workers::agents::merge_json(
            &mut overlay,
            &orchestra_testkit::opencode::fake_provider_config(&fake.base_url()),
        );
        env.extend(orchestra_testkit::opencode::offline_env());
    }
    Ok(LaunchSettings {
        binary,
        project_dir: project_dir.to_path_buf(),
        env,
        config_overlay: overlay,
    })
}
