//! How this `orchestra` process starts OpenCode: which binary, which environment, and which
//! models the workers may use.
//!
//! OpenCode is the authority on model providers. It already merges `auth.json` credentials,
//! provider environment variables, the global config, `OPENCODE_CONFIG`, the project's
//! `opencode.json(c)`, `.opencode/` and `OPENCODE_CONFIG_CONTENT`, so in real mode the hub adds
//! nothing about providers: no `enabled_providers`, `disabled_providers`, `model` or
//! `small_model`, and none of OpenCode's offline switches. The workers inherit this process's
//! environment, and the models a task may use are the ones the worker's own OpenCode reports
//! for the project. The built-in fake model enters only through an explicit `--fake`.
//!
//! [`prepare`] is the one place that decides this; every command that starts a hub calls it.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use orchestra_core::config::Config;
use orchestra_core::workers::LaunchSettings;
use orchestra_core::workers::agents::merge_json;
use orchestra_fake_llm::{Directives, FakeLlm, FakeLlmConfig};
use serde_json::Value;

/// The settings a hub starts OpenCode with, and in `--fake` mode the fake model they point at
/// (it stops when this is dropped, so keep it as long as the hub).
pub struct Launch {
    pub settings: LaunchSettings,
    pub fake: Option<FakeLlm>,
}

impl Launch {
    /// One line for people: where the answers will come from.
    pub fn describe(&self) -> String {
        match &self.fake {
            Some(fake) => format!(
                "--fake: the workers run on the built-in fake model at {} (`{}`; it echoes prompts), \
                 not on your own providers",
                fake.base_url(),
                orchestra_fake_llm::opencode::MODEL
            ),
            None => "the workers use the model providers your OpenCode configuration offers for this project"
                .to_owned(),
        }
    }
}

/// Launch settings from the config and an explicit `fake` switch: real mode passes the user's
/// OpenCode configuration through untouched; `fake` starts the echo-only fake model and adds it
/// as provider `orchestra-fake`.
pub async fn prepare(config: &Config, project_dir: &Path, fake: bool) -> anyhow::Result<Launch> {
    let binary = find_opencode(config)?;
    let user_content = std::env::var("OPENCODE_CONFIG_CONTENT").ok();
    let fake = if fake {
        let started = FakeLlm::start_with(FakeLlmConfig {
            // Text in a task must never make a worker run a tool.
            directives: Directives::Off,
            // Nothing in the product reads the request log, so it keeps none.
            log_capacity: 0,
            ..FakeLlmConfig::default()
        })
        .await
        .context("starting the built-in fake model")?;
        Some(started)
    } else {
        None
    };
    let settings = launch_settings(
        binary,
        project_dir,
        user_content.as_deref(),
        fake.as_ref().map(FakeLlm::base_url).as_deref(),
    )?;
    Ok(Launch { settings, fake })
}

/// The settings themselves. `user_content` is the user's `OPENCODE_CONFIG_CONTENT`: our
/// `OPENCODE_CONFIG_CONTENT` replaces it in the workers' environment, so it is kept as the base
/// our additions (agents, and the fake provider with `fake_base_url`) are merged over.
pub fn launch_settings(
    binary: PathBuf,
    project_dir: &Path,
    user_content: Option<&str>,
    fake_base_url: Option<&str>,
) -> anyhow::Result<LaunchSettings> {
    let mut overlay = match user_content.map(str::trim).filter(|text| !text.is_empty()) {
        Some(text) => {
            let value = jsonc_parser::parse_to_serde_value::<Value>(
                text,
                &orchestra_core::config::jsonc_options(),
            )
            .context(
                "OPENCODE_CONFIG_CONTENT is set but is not valid JSON; fix it or unset it \
                 (OpenCode would refuse it too)",
            )?;
            if !value.is_object() {
                bail!(
                    "OPENCODE_CONFIG_CONTENT is set but is not a JSON object; fix it or unset it"
                );
            }
            value
        }
        None => Value::Object(Default::default()),
    };
    let provider_pin = match fake_base_url {
        Some(base_url) => {
            merge_json(
                &mut overlay,
                &orchestra_fake_llm::opencode::fake_mode_config(base_url),
            );
            // Tags such as `auto:vision` pick by score among the usable models; pinned, they can
            // only pick the fake, never one of the user's providers.
            Some(orchestra_fake_llm::opencode::PROVIDER_ID.to_owned())
        }
        None => None,
    };
    Ok(LaunchSettings {
        // This very binary runs each OpenCode server under `orchestra __supervise`, so nothing
        // a worker starts outlives the hub. A binary replaced on disk since it started cannot
        // be run again: then OpenCode runs directly, as before.
        supervisor: std::env::current_exe().ok().filter(|exe| exe.is_file()),
        binary,
        project_dir: project_dir.to_path_buf(),
        env: Vec::new(),
        config_overlay: overlay,
        provider_pin,
    })
}

/// The OpenCode binary: config `runtime.opencodeBin`, then `$ORCHESTRA_OPENCODE_BIN`, then the
/// pinned copy beside this executable (the npm package tree, or the repository's
/// `tools/opencode` for a source build: `opencode_bin::pinned_beside`), then `opencode` on PATH.
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
    if let Some(pinned) = std::env::current_exe()
        .ok()
        .and_then(|exe| crate::opencode_bin::pinned_beside(&exe.canonicalize().unwrap_or(exe)))
    {
        return Ok(pinned);
    }
    if let Some(on_path) = crate::opencode_bin::on_path() {
        return Ok(on_path);
    }
    bail!(
        "OpenCode was not found. Install it (`scripts/install-opencode` in the Open Orchestra repo, \
         or `npm install -g opencode-ai`), or set runtime.opencodeBin / ORCHESTRA_OPENCODE_BIN"
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    const OVERRIDES: [&str; 4] = [
        "enabled_providers",
        "disabled_providers",
        "model",
        "small_model",
    ];

    fn settings(user: Option<&str>, fake: Option<&str>) -> LaunchSettings {
        launch_settings("opencode".into(), Path::new("/p"), user, fake).unwrap()
    }

    #[test]
    fn real_mode_adds_nothing_about_providers_and_no_switches() {
        let real = settings(None, None);
        assert_eq!(real.config_overlay, json!({}));
        assert!(real.env.is_empty(), "{:?}", real.env);
        assert_eq!(real.provider_pin, None);
    }

    #[test]
    fn a_users_config_content_is_kept_as_it_is() {
        let user = r#"{"provider": {"mine": {"options": {"baseURL": "http://x"}}},
                       "model": "mine/a", "enabled_providers": ["mine"], // JSONC, as OpenCode takes it
                       "small_model": "mine/b"}"#;
        let real = settings(Some(user), None);
        assert_eq!(real.config_overlay["model"], "mine/a");
        assert_eq!(real.config_overlay["small_model"], "mine/b");
        assert_eq!(real.config_overlay["enabled_providers"], json!(["mine"]));
        assert_eq!(
            real.config_overlay["provider"]["mine"]["options"]["baseURL"],
            "http://x"
        );
    }

    #[test]
    fn fake_mode_adds_its_own_provider_and_pins_it_without_disabling_the_users() {
        let fake = settings(
            Some(r#"{"provider": {"fake": {"name": "the user's own"}}}"#),
            Some("http://127.0.0.1:1/v1"),
        );
        let overlay = &fake.config_overlay;
        assert_eq!(overlay["provider"]["fake"]["name"], "the user's own");
        assert_eq!(
            overlay["provider"]["orchestra-fake"]["options"]["baseURL"],
            "http://127.0.0.1:1/v1"
        );
        assert_eq!(overlay["model"], "orchestra-fake/fake-model");
        assert!(overlay.get("enabled_providers").is_none());
        assert!(overlay.get("disabled_providers").is_none());
        assert_eq!(fake.provider_pin.as_deref(), Some("orchestra-fake"));
        assert!(fake.env.is_empty());
        for key in OVERRIDES {
            assert!(
                settings(None, None).config_overlay.get(key).is_none(),
                "{key}"
            );
        }
    }

    #[test]
    fn bad_config_content_is_refused_with_the_fix() {
        for bad in ["{not json", "[1, 2]"] {
            let err =
                launch_settings("opencode".into(), Path::new("/p"), Some(bad), None).unwrap_err();
            assert!(
                format!("{err:#}").contains("OPENCODE_CONFIG_CONTENT"),
                "{err:#}"
            );
        }
        assert_eq!(settings(Some("  "), None).config_overlay, json!({}));
    }
}
