//! Model names as users, configs and catalogs really write them: non-ASCII, emoji, combining
//! marks, empty, only suffixes, very long. Nothing in `models` may panic on any of them.

use super::catalog::{Catalog, CatalogModel};
use super::fuzzy::{best_match, edit_distance, match_score, normalize, suggestions};
use super::resolve::{
    MAX_REFERENCE_CHARS, ModelNeeds, ModelRequest, ResolveError, resolve, resolve_explicit,
    vision_named,
};

fn model(provider: &str, id: &str, name: &str, image: bool) -> CatalogModel {
    CatalogModel {
        provider_id: provider.to_owned(),
        model_id: id.to_owned(),
        name: name.to_owned(),
        family: String::new(),
        source: Some("config".to_owned()),
        usable: true,
        image_input: image,
        attachment: image,
        tool_call: true,
        reasoning: false,
        temperature: true,
        context: 128_000,
        output: 4096,
        cost_input: 0.0,
        cost_output: 0.0,
        status: None,
    }
}

/// A catalog whose ids and names put multi-byte characters where byte-offset code would cut.
fn catalog() -> Catalog {
    Catalog {
        models: vec![
            model("héllo", "aé1234567890", "Modèle é", false),
            model("héllo", "zürich-2024-08-06", "Zürich", true),
            model("日本", "モデル-v2", "日本語モデル 4.6v", true),
            model("emoji", "🤖-bot-20250101", "Robot 🤖", false),
            model("mark", "e\u{301}te\u{301}", "E\u{301}te\u{301}", false),
            model("plain", "gpt-4o-2024-08-06", "GPT-4o", true),
        ],
        default_model: Some("héllo/aé1234567890".to_owned()),
        small_model: Some("日本/モデル-v2".to_owned()),
        ..Catalog::default()
    }
}

/// Strings that broke, or could break, code that slices at byte offsets.
fn odd_inputs() -> Vec<String> {
    vec![
        String::new(),
        " ".to_owned(),
        "/".to_owned(),
        ":".to_owned(),
        "-v2".to_owned(),
        "-20250101".to_owned(),
        "-2025-01-01".to_owned(),
        "x-2025-01-01".to_owned(),
        "aé1234567890".to_owned(),
        "éé-2024-08-06".to_owned(),
        "ü1234567890".to_owned(),
        "🤖".to_owned(),
        "🤖-v2".to_owned(),
        "🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖🤖".to_owned(),
        "e\u{301}".to_owned(),
        "e\u{301}-2024-08-06".to_owned(),
        "\u{301}\u{301}\u{301}\u{301}\u{301}\u{301}".to_owned(),
        "héllo/aé1234567890".to_owned(),
        "日本/モデル".to_owned(),
        "auto:🤖".to_owned(),
        "prefix:é-v1".to_owned(),
        "İstanbul-2024-08-06".to_owned(),
        "x".repeat(10_000),
        "é".repeat(MAX_REFERENCE_CHARS + 1),
        "é".repeat(MAX_REFERENCE_CHARS),
        format!("p/{}", "🤖".repeat(150)),
    ]
}

#[test]
fn normalize_never_panics_and_strips_suffixes_on_char_boundaries() {
    for input in odd_inputs() {
        let _ = normalize(&input);
    }
    for (input, want) in [
        ("aé1234567890", "aé1234567890"),
        ("éé-2024-08-06", "éé"),
        ("e\u{301}-2024-08-06", "e\u{301}"),
        ("🤖-v2", "🤖"),
        ("モデル-v2", "モデル"),
        ("🤖-bot-20250101", "🤖-bot"),
        ("-2025-01-01", "-2025-01-01"),
        ("-v2", "-v2"),
        ("", ""),
    ] {
        assert_eq!(normalize(input), want, "{input}");
    }
}

#[test]
fn scores_matches_and_suggestions_never_panic() {
    let catalog = catalog();
    for input in odd_inputs() {
        for m in &catalog.models {
            let _ = match_score(m, &input);
        }
        let _ = best_match(catalog.usable(), &input);
        let _ = suggestions(&catalog, &input);
    }
    assert_eq!(edit_distance("é", "e\u{301}"), 2);
    assert_eq!(edit_distance("🤖", "🤖"), 0);
}

#[test]
fn every_odd_reference_resolves_or_fails_with_an_error() {
    let catalog = catalog();
    for input in odd_inputs() {
        for needs in [ModelNeeds::default(), ModelNeeds { image_input: true }] {
            let _ = resolve(&catalog, &input, needs);
        }
        let _ = resolve_explicit(&catalog, &input);
        let _ = ModelRequest::parse(&input);
    }
}

#[test]
fn non_ascii_names_resolve_like_any_other() {
    let catalog = catalog();
    let exact = resolve(&catalog, "héllo/aé1234567890", ModelNeeds::default()).unwrap();
    assert_eq!(exact.full_id(), "héllo/aé1234567890");
    let fuzzy = resolve(&catalog, "日本/モデル", ModelNeeds::default()).unwrap();
    assert_eq!(fuzzy.full_id(), "日本/モデル-v2");
    let dated = resolve(&catalog, "zürich", ModelNeeds::default()).unwrap();
    assert_eq!(dated.full_id(), "héllo/zürich-2024-08-06");
    let default = resolve(&catalog, "auto", ModelNeeds::default()).unwrap();
    assert_eq!(default.full_id(), "héllo/aé1234567890");
    let fast = resolve(&catalog, "auto:fast", ModelNeeds::default()).unwrap();
    assert_eq!(fast.full_id(), "日本/モデル-v2");
    assert!(vision_named(&catalog.models[2]), "4.6v in a non-ASCII name");
    assert!(!vision_named(&catalog.models[3]));
}

#[test]
fn empty_long_and_unknown_references_are_errors_that_say_why() {
    let catalog = catalog();
    let needs = ModelNeeds::default();
    assert_eq!(resolve(&catalog, "", needs), Err(ResolveError::Empty));
    assert_eq!(resolve(&catalog, "  ", needs), Err(ResolveError::Empty));
    let long = "é".repeat(MAX_REFERENCE_CHARS + 1);
    let err = resolve(&catalog, &long, needs).unwrap_err();
    assert_eq!(
        err,
        ResolveError::TooLong {
            chars: MAX_REFERENCE_CHARS + 1
        }
    );
    assert!(err.to_string().contains("provider/model"), "{err}");
    assert!(matches!(
        resolve(&catalog, "auto:🤖", needs),
        Err(ResolveError::UnknownTag(_))
    ));
    let miss = resolve(&catalog, "nowhere/🤖🤖🤖", needs).unwrap_err();
    assert!(matches!(miss, ResolveError::NotFound { .. }), "{miss}");
}

#[test]
fn a_pinned_catalog_resolves_only_to_its_provider() {
    let mut catalog = catalog();
    catalog.pin_provider("plain");
    assert!(catalog.usable().all(|m| m.provider_id == "plain"));
    assert_eq!(catalog.models.len(), 6, "the others are still listed");
    let vision = resolve(&catalog, "auto:vision", ModelNeeds::default()).unwrap();
    assert_eq!(vision.full_id(), "plain/gpt-4o-2024-08-06");

    catalog.pin_provider("orchestra-fake");
    let err = resolve(&catalog, "auto", ModelNeeds::default()).unwrap_err();
    assert_eq!(
        err,
        ResolveError::PinnedProviderMissing("orchestra-fake".to_owned())
    );
    assert!(err.to_string().contains("enabled_providers"), "{err}");

    let empty = Catalog::default();
    let err = resolve(&empty, "auto", ModelNeeds::default()).unwrap_err();
    assert_eq!(err, ResolveError::NoUsableModels);
    let text = err.to_string();
    assert!(
        text.contains("opencode auth login") && text.contains("opencode.json"),
        "{text}"
    );
}
