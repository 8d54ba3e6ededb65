#![allow(clippy::unwrap_used)]
//! Table-driven resolution over catalogs captured from real OpenCode (see `models_catalog.rs`).

use orchestra_core::models::{Catalog, CatalogFilter, ModelNeeds, resolve};
use orchestra_core::opencode::ProvidersResponse;
use orchestra_core::tasks::views::models_listing;
use orchestra_protocol::ModelScope;
use serde_json::Value;

/// The captured `/config/providers` body and the `/config` defaults.
fn captured(name: &str) -> (ProvidersResponse, Value) {
    let path = format!(
        "{}/tests/fixtures/catalogs/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let captured: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let providers = serde_json::from_value(captured["providers"].clone()).unwrap();
    (providers, captured["config"].clone())
}

fn load(name: &str) -> Catalog {
    let (providers, config) = captured(name);
    Catalog::from_configured(&providers, &config)
}

/// `Ok((model, words in the reason))` or `Err(words in the error)`.
type Expect = Result<(&'static str, &'static [&'static str]), &'static [&'static str]>;

struct Case {
    catalog: &'static str,
    reference: &'static str,
    image: bool,
    expect: Expect,
}

const fn case(catalog: &'static str, reference: &'static str, image: bool, expect: Expect) -> Case {
    Case {
        catalog,
        reference,
        image,
        expect,
    }
}

const SEVERAL: &str = "several-providers";
const TEXT: &str = "text-only";

const CASES: &[Case] = &[
    // Plain tags fall back to OpenCode's `model`.
    case(
        SEVERAL,
        "auto",
        false,
        Ok(("cheap/thinker", &["fallback to default model"])),
    ),
    case(
        SEVERAL,
        "node",
        false,
        Ok(("cheap/thinker", &["fallback to default model"])),
    ),
    // :fast prefers small_model.
    case(
        SEVERAL,
        "auto:fast",
        false,
        Ok(("cheap/tiny-mini", &["auto-selected from small_model"])),
    ),
    case(
        SEVERAL,
        "node:fast",
        false,
        Ok(("cheap/tiny-mini", &["small_model"])),
    ),
    // :vision scores image models only; the GLM-style "4.6v" name now counts.
    case(
        SEVERAL,
        "auto:vision",
        false,
        Ok(("glm/glm-4.6v", &["auto:vision", "image input"])),
    ),
    case(
        SEVERAL,
        "node:vision",
        false,
        Ok(("glm/glm-4.6v", &["best score"])),
    ),
    // :docs: tools, reasoning, MiniMax, long context.
    case(
        SEVERAL,
        "auto:docs",
        false,
        Ok(("cheap/minimax-m2", &["auto:docs"])),
    ),
    // Images need image input: tags switch to an image model, explicit models fail.
    case(
        SEVERAL,
        "auto",
        true,
        Ok(("glm/glm-4.6v", &["default model cheap/thinker has none"])),
    ),
    case(
        SEVERAL,
        "auto:fast",
        true,
        Ok(("glm/glm-4.6v", &["auto:fast", "image input"])),
    ),
    case(
        SEVERAL,
        "cheap/tiny-mini",
        true,
        Err(&[
            "`cheap/tiny-mini` does not take image input",
            "glm/glm-4.6v",
            "vis/seer-pro-20250101",
        ]),
    ),
    case(
        SEVERAL,
        "vis/seer-pro-20250101",
        true,
        Ok(("vis/seer-pro-20250101", &["explicit model"])),
    ),
    // Explicit references: exact, then fuzzy (case, date and version suffixes, prefixes).
    case(
        SEVERAL,
        "vis/seer-pro-20250101",
        false,
        Ok(("vis/seer-pro-20250101", &["explicit model"])),
    ),
    case(
        SEVERAL,
        "vis/Seer-Pro",
        false,
        Ok(("vis/seer-pro-20250101", &["fuzzy", "within provider `vis`"])),
    ),
    case(
        SEVERAL,
        "seer-pro-v2",
        false,
        Ok(("vis/seer-pro-20250101", &["across providers"])),
    ),
    case(
        SEVERAL,
        "openrouter:tiny-mini",
        false,
        Ok(("cheap/tiny-mini", &["fuzzy"])),
    ),
    case(
        SEVERAL,
        "cheap/thinker-2025-01-01",
        false,
        Ok(("cheap/thinker", &["fuzzy"])),
    ),
    // A "thinking" twin loses a tie against the plain model.
    case(
        SEVERAL,
        "cheap/think",
        false,
        Ok(("cheap/thinker", &["fuzzy"])),
    ),
    // Misses name the problem and the closest models.
    case(
        SEVERAL,
        "openai/gpt-5",
        false,
        Err(&[
            "`openai/gpt-5` is not among",
            "provider `openai` is not configured",
            "usable providers: cheap, glm, vis",
            "closest:",
        ]),
    ),
    case(
        SEVERAL,
        "cheap/tiny-maxi",
        false,
        Err(&["closest: cheap/tiny-mini"]),
    ),
    case(
        SEVERAL,
        "auto:bogus",
        false,
        Err(&["unknown model tag `auto:bogus`", "auto:vision"]),
    ),
    case(SEVERAL, "  ", false, Err(&["the model is empty"])),
    // Nothing with image input: a clear error listing what is configured.
    case(
        TEXT,
        "auto:vision",
        false,
        Err(&[
            "no configured model takes image input",
            "plain/writer-large (tools)",
            "plain/writer-small (tools)",
        ]),
    ),
    case(
        TEXT,
        "auto",
        true,
        Err(&["no configured model takes image input"]),
    ),
    // No `model` configured: the provider's own default.
    case(
        TEXT,
        "auto",
        false,
        Ok(("plain/writer-small", &["provider `plain`'s default"])),
    ),
    // No `small_model`: fast scoring (tools, "small" name, cheap).
    case(
        TEXT,
        "auto:fast",
        false,
        Ok(("plain/writer-small", &["auto:fast", "best score"])),
    ),
];

#[test]
fn tags_and_references_resolve_as_the_table_says() {
    let several = load(SEVERAL);
    let text = load(TEXT);
    let mut failures = Vec::new();
    for case in CASES {
        let catalog = if case.catalog == SEVERAL {
            &several
        } else {
            &text
        };
        let needs = ModelNeeds {
            image_input: case.image,
        };
        let got = resolve(catalog, case.reference, needs);
        let ok = match (&case.expect, &got) {
            (Ok((model, words)), Ok(resolution)) => {
                resolution.full_id() == *model
                    && words.iter().all(|w| resolution.reason.contains(w))
            }
            (Err(words), Err(err)) => {
                let message = err.to_string();
                words.iter().all(|w| message.contains(w))
            }
            (Ok(_), Err(_)) | (Err(_), Ok(_)) => false,
        };
        if !ok {
            failures.push(format!(
                "{} {:?} image={}: got {got:?}",
                case.catalog, case.reference, case.image
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn deprecated_models_lose_and_unkeyed_api_providers_are_not_usable() {
    // OpenCode drops deprecated models from connected providers, but its catalog-wide list
    // keeps them; a deprecated image model must lose to an active one.
    let mut catalog = load(SEVERAL);
    for model in &mut catalog.models {
        if model.model_id == "glm-4.6v" {
            model.status = Some("deprecated".into());
        }
    }
    let picked = resolve(&catalog, "auto:vision", ModelNeeds::default()).unwrap();
    assert_eq!(picked.full_id(), "vis/seer-pro-20250101");

    let (mut providers, _) = captured(TEXT);
    providers.providers[0].source = Some("api".into());
    providers.providers[0].has_key = false;
    let catalog = Catalog::from_configured(&providers, &Value::Null);
    assert_eq!(catalog.usable().count(), 0);
    let err = resolve(&catalog, "auto", ModelNeeds::default()).unwrap_err();
    assert!(err.to_string().contains("no usable model"), "{err}");
}

#[test]
fn the_models_view_filters_by_scope_provider_and_query() {
    let catalog = load(SEVERAL);
    let filter = |providers: &[&str], query: Option<&str>| CatalogFilter {
        scope: ModelScope::Configured,
        providers: providers.iter().map(|p| (*p).to_owned()).collect(),
        query: query.map(str::to_owned),
    };
    let ids = |f: &CatalogFilter| -> Vec<String> {
        catalog.filter(f).iter().map(|m| m.full_id()).collect()
    };
    assert_eq!(ids(&filter(&["vis"], None)), ["vis/seer-pro-20250101"]);
    assert_eq!(
        ids(&filter(&[], Some("MINI"))),
        ["cheap/minimax-m2", "cheap/tiny-mini"]
    );
    assert_eq!(
        ids(&filter(&[], Some("Seer Pro"))),
        ["vis/seer-pro-20250101"]
    );
    let (json, text) = models_listing(&catalog, &filter(&[], None), 2);
    assert_eq!(json["total"], 6);
    assert_eq!(json["models"].as_array().unwrap().len(), 2);
    assert!(
        text.contains(
            "2 of 6 model(s). Default model: cheap/thinker. Small model: cheap/tiny-mini."
        ),
        "{text}"
    );
    assert!(text.contains("| cheap/minimax-m2 | MiniMax M2 | 1000000 | tools, reasoning | 0.3/1.2 | active | yes |"), "{text}");
}
