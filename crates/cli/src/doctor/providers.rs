//! The doctor's "providers" line: which providers OpenCode offers and where each one's setup
//! comes from, as OpenCode itself reports it (each provider's `source`). OpenCode's list is
//! taken as it is; the line only says plainly what it means, above all when the only provider
//! is the one OpenCode builds in (OpenCode Zen), which cannot answer without internet.

use serde_json::Value;

use super::{Check, Status, check};

/// OpenCode's own hosted provider, offered with no setup at all.
const ZEN: &str = "opencode";

/// Where a provider's setup comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    /// `opencode.json` (the project's or the user's).
    Config,
    /// A key in the environment (`ANTHROPIC_API_KEY`, …).
    Environment,
    /// A key stored with `opencode auth login`.
    StoredKey,
    /// OpenCode Zen with no key: only its free models are offered.
    ZenFree,
    /// OpenCode Zen offering paid models too, which it does only with a key.
    ZenWithKey,
    /// Set up by OpenCode itself or a plugin (`custom`), or a source this build does not know.
    OpenCodeOrPlugin,
}

impl Origin {
    fn of(provider: &str, source: Option<&str>, paid_models: bool) -> Origin {
        match source {
            Some("config") => Origin::Config,
            Some("env") => Origin::Environment,
            Some("api") => Origin::StoredKey,
            _ if provider == ZEN && paid_models => Origin::ZenWithKey,
            _ if provider == ZEN => Origin::ZenFree,
            _ => Origin::OpenCodeOrPlugin,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Origin::Config => "opencode.json",
            Origin::Environment => "a key in the environment",
            Origin::StoredKey => "a key stored with `opencode auth login`",
            Origin::ZenFree => "OpenCode Zen, built into OpenCode, free models, needs internet",
            Origin::ZenWithKey => "OpenCode Zen with a key, needs internet",
            Origin::OpenCodeOrPlugin => "set up by OpenCode or a plugin",
        }
    }

    fn id(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Environment => "environment",
            Origin::StoredKey => "storedKey",
            Origin::ZenFree => "zenFree",
            Origin::ZenWithKey => "zenWithKey",
            Origin::OpenCodeOrPlugin => "openCodeOrPlugin",
        }
    }

    /// The person set this provider up (a config entry or a key of theirs).
    fn is_users(self) -> bool {
        match self {
            Origin::Config | Origin::Environment | Origin::StoredKey | Origin::ZenWithKey => true,
            Origin::ZenFree | Origin::OpenCodeOrPlugin => false,
        }
    }
}

struct Offered {
    id: String,
    origin: Origin,
    /// One of its models, to name in the line (`opencode/big-pickle`).
    example: String,
}

/// The check from the hub's models listing (`view: models`, JSON).
pub(super) fn provider_check(models: &Value) -> Check {
    let rows: &[Value] = models["models"].as_array().map_or(&[], Vec::as_slice);
    let mut offered: Vec<Offered> = Vec::new();
    for row in rows {
        let Some(id) = row["providerId"].as_str() else {
            continue;
        };
        if offered.iter().any(|o| o.id == id) {
            continue;
        }
        let of_provider = || rows.iter().filter(|r| r["providerId"] == id);
        let paid = of_provider().any(|r| {
            r["costInput"].as_f64().unwrap_or(0.0) > 0.0
                || r["costOutput"].as_f64().unwrap_or(0.0) > 0.0
        });
        offered.push(Offered {
            id: id.to_owned(),
            origin: Origin::of(id, row["source"].as_str(), paid),
            example: format!("{id}/{}", row["modelId"].as_str().unwrap_or("?")),
        });
    }
    offered.sort_by(|a, b| a.id.cmp(&b.id));
    let default_model = models["defaultModel"].as_str().map(str::to_owned);
    if offered.is_empty() {
        let note = models["note"]
            .as_str()
            .unwrap_or("OpenCode offers no usable model");
        return check("providers", Status::Fail, format!("none: {note}"))
            .fix(crate::quickstart::NO_PROVIDER_FIX)
            .details(models.clone());
    }
    let details = serde_json::json!({
        "providers": offered.iter().map(|o| o.id.as_str()).collect::<Vec<_>>(),
        "origins": offered
            .iter()
            .map(|o| (o.id.clone(), Value::from(o.origin.id())))
            .collect::<serde_json::Map<_, _>>(),
        "defaultModel": default_model,
    });
    let only_free_zen = offered.iter().all(|o| o.origin == Origin::ZenFree);
    if only_free_zen {
        let example = offered.first().map_or("", |o| o.example.as_str());
        return check(
            "providers",
            Status::Warn,
            format!(
                "no provider has a key or config here (none in opencode.json, the environment \
                 or `opencode auth login`); the only one OpenCode offers is its built-in OpenCode \
                 Zen (`{ZEN}`, free models such as {example}), which needs internet"
            ),
        )
        .fix(crate::quickstart::NO_PROVIDER_FIX)
        .details(details);
    }
    let listed: Vec<String> = offered
        .iter()
        .map(|o| format!("{} ({})", o.id, o.origin.words()))
        .collect();
    let yours = offered.iter().filter(|o| o.origin.is_users()).count();
    let summary = format!(
        "OpenCode offers {}; {yours} with your key or config; default model {}",
        listed.join(", "),
        default_model.as_deref().unwrap_or("not set")
    );
    check("providers", Status::Ok, summary).details(details)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn model(provider: &str, model: &str, source: &str, cost: f64) -> Value {
        serde_json::json!({"providerId": provider, "modelId": model, "source": source,
                           "costInput": cost, "costOutput": cost})
    }

    #[test]
    fn only_zen_without_a_key_is_a_warning_that_names_it() {
        let models = serde_json::json!({"models": [
            model("opencode", "big-pickle", "custom", 0.0),
            model("opencode", "other-free", "custom", 0.0),
        ]});
        let check = provider_check(&models);
        assert_eq!(check.status, Status::Warn, "{check:?}");
        assert!(
            check.summary.contains("OpenCode Zen")
                && check.summary.contains("opencode/big-pickle")
                && check.summary.contains("needs internet"),
            "{}",
            check.summary
        );
        assert!(check.fix.unwrap().contains("opencode auth login"));
    }

    #[test]
    fn a_configured_provider_beside_zen_is_ok_and_each_says_where_it_comes_from() {
        let models = serde_json::json!({"defaultModel": "fake/fake-text", "models": [
            model("fake", "fake-text", "config", 0.0),
            model("opencode", "big-pickle", "custom", 0.0),
        ]});
        let check = provider_check(&models);
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(
            check.summary.contains("fake (opencode.json)")
                && check
                    .summary
                    .contains("opencode (OpenCode Zen, built into OpenCode")
                && check.summary.contains("1 with your key or config"),
            "{}",
            check.summary
        );
        assert_eq!(check.details["origins"]["fake"], "config");
    }

    #[test]
    fn zen_offering_paid_models_has_a_key() {
        let models = serde_json::json!({"models": [
            model("opencode", "big-pickle", "custom", 0.0),
            model("opencode", "paid-one", "custom", 3.0),
        ]});
        let check = provider_check(&models);
        assert_eq!(check.status, Status::Ok, "{check:?}");
        assert!(check.summary.contains("with a key"), "{}", check.summary);
    }

    #[test]
    fn no_model_at_all_fails_with_the_note() {
        let check = provider_check(&serde_json::json!({"models": [], "note": "no server"}));
        assert_eq!(check.status, Status::Fail);
        assert!(check.summary.contains("no server"), "{}", check.summary);
    }
}
