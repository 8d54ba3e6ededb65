//! The fake model as an OpenCode provider. One definition of its models serves the product's
//! `--fake` mode (provider [`PROVIDER_ID`]) and the tests, which play a user's own provider
//! with it.

use serde_json::{Value, json};

/// The provider id of `--fake` mode: a name no user would pick, so it can never shadow or
/// merge with a user's provider (one called `fake`, say).
pub const PROVIDER_ID: &str = "orchestra-fake";

/// The model `--fake` mode runs tasks on (`provider/model`).
pub const MODEL: &str = "orchestra-fake/fake-model";

/// The small model of `--fake` mode (`provider/model`), which OpenCode uses for titles.
pub const SMALL_MODEL: &str = "orchestra-fake/fake-mini";

/// An OpenCode `provider.<id>` entry for an OpenAI-compatible server at `base_url` with the
/// fake's three models: `fake-model` (tools and images), `fake-text` (tools, text only) and
/// `fake-mini` (tools, text only; a small model for titles). Without `api_key` the entry has no
/// key, so OpenCode takes it from wherever the user keeps it (`auth.json`, an environment
/// variable).
pub fn provider_entry(name: &str, base_url: &str, api_key: Option<&str>) -> Value {
    let limit = json!({"context": 128000, "output": 4096});
    let mut options = json!({"baseURL": base_url});
    if let Some(key) = api_key {
        options["apiKey"] = json!(key);
    }
    json!({
        "npm": "@ai-sdk/openai-compatible",
        "name": name,
        "options": options,
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
    })
}

/// What `--fake` mode adds to OpenCode's config: the provider [`PROVIDER_ID`] at `base_url`,
/// and [`MODEL`] / [`SMALL_MODEL`] as the defaults. Nothing else: the user's own providers stay
/// configured and listed (`enabled_providers` and `disabled_providers` are left alone).
pub fn fake_mode_config(base_url: &str) -> Value {
    json!({
        "provider": {
            PROVIDER_ID: provider_entry(
                "Orchestra built-in fake model (echoes prompts)",
                base_url,
                Some("sk-orchestra-fake"),
            ),
        },
        "model": MODEL,
        "small_model": SMALL_MODEL,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_mode_names_only_its_own_provider() {
        let config = fake_mode_config("http://127.0.0.1:1/v1");
        let providers: Vec<&String> = config["provider"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(providers, [PROVIDER_ID]);
        assert_eq!(
            config["provider"][PROVIDER_ID]["options"]["baseURL"],
            "http://127.0.0.1:1/v1"
        );
        assert!(config.get("enabled_providers").is_none());
        assert!(config.get("disabled_providers").is_none());
        assert!(MODEL.starts_with(&format!("{PROVIDER_ID}/")));
        assert!(SMALL_MODEL.starts_with(&format!("{PROVIDER_ID}/")));
    }

    #[test]
    fn a_provider_entry_without_a_key_has_none() {
        let entry = provider_entry("Mine", "http://127.0.0.1:1/v1", None);
        assert!(entry["options"].get("apiKey").is_none());
        assert_eq!(entry["models"]["fake-model"]["attachment"], true);
    }
}
