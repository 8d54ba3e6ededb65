//! OpenCode provider configs with several fake providers, shared by the model tests: the
//! catalog fixtures are captured from real OpenCode started with these.

use serde_json::{Value, json};

/// One model entry of an OpenCode provider config.
fn model(name: &str, extra: Value) -> Value {
    let mut entry = json!({
        "name": name, "tool_call": true, "attachment": false,
        "modalities": {"input": ["text"], "output": ["text"]},
        "limit": {"context": 128000, "output": 4096},
    });
    orchestra_core::workers::agents::merge_json(&mut entry, &extra);
    entry
}

fn image_model(name: &str, extra: Value) -> Value {
    let mut entry = model(
        name,
        json!({"attachment": true, "modalities": {"input": ["text", "image"], "output": ["text"]}}),
    );
    orchestra_core::workers::agents::merge_json(&mut entry, &extra);
    entry
}

fn provider(name: &str, base_url: &str, models: Value) -> Value {
    json!({
        "npm": "@ai-sdk/openai-compatible", "name": name,
        "options": {"baseURL": base_url, "apiKey": "sk-fake"},
        "models": models,
    })
}

fn opencode_config(providers: Value, model: Option<&str>, small_model: Option<&str>) -> Value {
    let enabled: Vec<String> = providers
        .as_object()
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default();
    let mut config = json!({
        "$schema": "https://opencode.ai/config.json",
        "provider": providers, "enabled_providers": enabled,
        "autoupdate": false, "share": "disabled",
    });
    if let Some(model) = model {
        config["model"] = json!(model);
    }
    if let Some(small) = small_model {
        config["small_model"] = json!(small);
    }
    config
}

/// `vis` (an image model with a date suffix), `glm` (an image model named like GLM's vision
/// line), `cheap` (a cheap "mini", a reasoning model, a long-context MiniMax, a deprecated one).
pub fn several_providers(base_url: &str) -> Value {
    opencode_config(
        json!({
            "vis": provider("Vision Co", base_url, json!({
                "seer-pro-20250101": image_model("Seer Pro", json!({
                    "temperature": true, "cost": {"input": 3, "output": 15},
                    "limit": {"context": 200000, "output": 8192}})),
            })),
            "glm": provider("GLM Lab", base_url, json!({
                "glm-4.6v": image_model("GLM 4.6V", json!({"cost": {"input": 0.6, "output": 1.8}})),
            })),
            "cheap": provider("Cheap Models", base_url, json!({
                "tiny-mini": model("Tiny Mini", json!({"cost": {"input": 0.1, "output": 0.4},
                    "limit": {"context": 64000, "output": 4096}})),
                "thinker": model("Thinker", json!({"reasoning": true, "cost": {"input": 1, "output": 4}})),
                "minimax-m2": model("MiniMax M2", json!({"reasoning": true,
                    "cost": {"input": 0.3, "output": 1.2}, "limit": {"context": 1000000, "output": 8192}})),
                "old-v1": model("Old", json!({"status": "deprecated"})),
                "thinker-thinking": model("Thinker Thinking", json!({"reasoning": true})),
            })),
        }),
        Some("cheap/thinker"),
        Some("cheap/tiny-mini"),
    )
}

/// One provider with text-only models and no `model` / `small_model` configured.
pub fn text_only(base_url: &str) -> Value {
    opencode_config(
        json!({
            "plain": provider("Plain Text", base_url, json!({
                "writer-large": model("Writer Large", json!({"cost": {"input": 2, "output": 8}})),
                "writer-small": model("Writer Small", json!({"cost": {"input": 0.2, "output": 0.8}})),
            })),
        }),
        None,
        None,
    )
}

/// Two providers on one fake LLM: `textco/plain-text` (the default) and `visco/seer-vision`
/// (image input, takes a temperature).
pub fn two_providers(base_url: &str) -> Value {
    opencode_config(
        json!({
            "textco": provider("Text Co", base_url, json!({
                "plain-text": model("Plain Text", json!({})),
            })),
            "visco": provider("Vision Co", base_url, json!({
                "seer-vision": image_model("Seer Vision", json!({"temperature": true})),
            })),
        }),
        Some("textco/plain-text"),
        Some("textco/plain-text"),
    )
}
