//! Model references and tags to a concrete `provider/model`, with the reason it was chosen.
//!
//! The original's rules (`models/resolve.ts`) are kept: `auto`/`node` tags pick by score from the
//! usable models, `:fast` prefers OpenCode's `small_model`, plain tags fall back to the configured
//! default, explicit references match exactly, then fuzzily. Where the original was weak this is
//! stricter: a vision pick only ever returns a model whose catalog entry says it takes image input
//! (attachment support alone is not enough), and a model without image input given images is an
//! error, never a warning.

use crate::opencode::ModelRef;

use super::catalog::{Catalog, CatalogModel, provider_rank};
use super::fuzzy::{self, Suggestion};

/// How many suggestions an error message shows (the error keeps up to 20).
const SHOWN_SUGGESTIONS: usize = 5;

/// The longest model reference accepted. Real ids are far shorter
/// (`accounts/fireworks/models/…` is about 60 characters), and fuzzy matching costs the
/// product of the lengths for every model in the catalog.
pub const MAX_REFERENCE_CHARS: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelTag {
    /// `auto`, `node`: the configured default model.
    Default,
    /// `auto:fast`, `node:fast`.
    Fast,
    /// `auto:vision`, `node:vision`.
    Vision,
    /// `auto:docs`, `node:docs`.
    Docs,
}

impl ModelTag {
    pub fn as_str(self) -> &'static str {
        match self {
            ModelTag::Default => "auto",
            ModelTag::Fast => "auto:fast",
            ModelTag::Vision => "auto:vision",
            ModelTag::Docs => "auto:docs",
        }
    }
}

/// A parsed model reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelRequest {
    Tag(ModelTag),
    /// `provider/model`, or a bare model id matched across providers.
    Explicit(String),
}

impl ModelRequest {
    pub fn parse(reference: &str) -> Result<ModelRequest, ResolveError> {
        let reference = reference.trim();
        if reference.is_empty() {
            return Err(ResolveError::Empty);
        }
        let chars = reference.chars().count();
        if chars > MAX_REFERENCE_CHARS {
            return Err(ResolveError::TooLong { chars });
        }
        let lower = reference.to_lowercase();
        let (head, tail) = match lower.split_once(':') {
            Some((head, tail)) => (head, Some(tail)),
            None => (lower.as_str(), None),
        };
        if head != "auto" && head != "node" {
            return Ok(ModelRequest::Explicit(reference.to_owned()));
        }
        match tail {
            None | Some("" | "default") => Ok(ModelRequest::Tag(ModelTag::Default)),
            Some("fast") => Ok(ModelRequest::Tag(ModelTag::Fast)),
            Some("vision") => Ok(ModelRequest::Tag(ModelTag::Vision)),
            Some("docs") => Ok(ModelRequest::Tag(ModelTag::Docs)),
            Some(_) => Err(ResolveError::UnknownTag(reference.to_owned())),
        }
    }
}

/// What the model must be able to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ModelNeeds {
    /// A vision profile, or a task with image attachments.
    pub image_input: bool,
}

/// The chosen model and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    pub model: ModelRef,
    pub reason: String,
    pub image_input: bool,
    pub temperature: bool,
}

impl Resolution {
    fn new(model: &CatalogModel, reason: String) -> Resolution {
        Resolution {
            model: ModelRef {
                provider_id: model.provider_id.clone(),
                model_id: model.model_id.clone(),
            },
            reason,
            image_input: model.image_input,
            temperature: model.temperature,
        }
    }

    /// `provider/model`.
    pub fn full_id(&self) -> String {
        self.model.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ResolveError {
    #[error(
        "the model is empty; use a tag (auto, auto:fast, auto:vision, auto:docs) or `provider/model`"
    )]
    Empty,
    #[error(
        "the model reference is {chars} characters long, more than the {MAX_REFERENCE_CHARS} a model id can have; give a tag (auto, auto:fast, auto:vision, auto:docs) or `provider/model`"
    )]
    TooLong { chars: usize },
    #[error(
        "unknown model tag `{0}`; known tags: auto, auto:fast, auto:vision, auto:docs (node:… works too), or give `provider/model`"
    )]
    UnknownTag(String),
    #[error(
        "OpenCode reports no usable model for this project: no provider is configured, logged in or set in the environment. Fix: run `opencode auth login`, or add a provider to opencode.json (the project's, or ~/.config/opencode/opencode.json); to try Orchestra without a model, use --fake"
    )]
    NoUsableModels,
    #[error(
        "the workers are pinned to provider `{0}` (--fake), but OpenCode does not offer it for this project; an `enabled_providers` or `disabled_providers` in your OpenCode config leaves it out: allow `{0}` there, or run without --fake"
    )]
    PinnedProviderMissing(String),
    #[error(
        "no configured model takes image input, so {wanted} cannot be resolved; configure a model with image input (OpenCode: `attachment: true` and `modalities.input` with \"image\"). Configured models: {}",
        configured_list(.configured)
    )]
    NoVisionModel {
        wanted: String,
        configured: Vec<String>,
    },
    #[error(
        "model `{model}` does not take image input ({capabilities}), but {why}; use an image-capable model ({}) or the tag auto:vision",
        vision_list(.vision_models)
    )]
    NoImageInput {
        model: String,
        capabilities: String,
        why: String,
        vision_models: Vec<String>,
    },
    #[error(
        "model `{reference}` is not among OpenCode's usable models{}; {}",
        provider_note(.provider, .usable_providers),
        suggestion_text(.suggestions)
    )]
    NotFound {
        reference: String,
        provider: Option<String>,
        usable_providers: Vec<String>,
        /// Closest first, at most 20.
        suggestions: Vec<String>,
    },
}

fn configured_list(configured: &[String]) -> String {
    if configured.is_empty() {
        "(none)".to_owned()
    } else {
        configured.join(", ")
    }
}

fn vision_list(models: &[String]) -> String {
    if models.is_empty() {
        "none is configured".to_owned()
    } else {
        models.join(", ")
    }
}

fn provider_note(provider: &Option<String>, usable: &[String]) -> String {
    match provider {
        Some(provider) if !usable.contains(provider) => format!(
            " (provider `{provider}` is not configured or connected; usable providers: {})",
            configured_list(usable)
        ),
        Some(_) | None => String::new(),
    }
}

fn suggestion_text(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        return "list the models with `orchestra models` or task_list {view: \"models\"}"
            .to_owned();
    }
    let shown: Vec<&str> = suggestions
        .iter()
        .take(SHOWN_SUGGESTIONS)
        .map(String::as_str)
        .collect();
    format!(
        "closest: {} (all models: `orchestra models`)",
        shown.join(", ")
    )
}

/// Resolves a profile's or task's model reference against a catalog.
pub fn resolve(
    catalog: &Catalog,
    reference: &str,
    needs: ModelNeeds,
) -> Result<Resolution, ResolveError> {
    let request = ModelRequest::parse(reference)?;
    if catalog.usable().next().is_none() {
        return Err(no_usable_models(catalog));
    }
    match request {
        ModelRequest::Explicit(text) => {
            let resolution = resolve_explicit(catalog, &text)?;
            check_image_input(catalog, resolution, needs, "the worker needs image input")
        }
        ModelRequest::Tag(tag) => resolve_tag(catalog, tag, needs),
    }
}

fn no_usable_models(catalog: &Catalog) -> ResolveError {
    match &catalog.pinned_provider {
        Some(provider) => ResolveError::PinnedProviderMissing(provider.clone()),
        None => ResolveError::NoUsableModels,
    }
}

/// Fails before any tokens are spent when images would go to a model that cannot see them.
pub fn check_image_input(
    catalog: &Catalog,
    resolution: Resolution,
    needs: ModelNeeds,
    why: &str,
) -> Result<Resolution, ResolveError> {
    if !needs.image_input || resolution.image_input {
        return Ok(resolution);
    }
    let capabilities = catalog
        .find(&resolution.model.provider_id, &resolution.model.model_id)
        .map_or_else(
            || "not in the catalog".to_owned(),
            CatalogModel::capability_words,
        );
    Err(ResolveError::NoImageInput {
        model: resolution.full_id(),
        capabilities,
        why: why.to_owned(),
        vision_models: catalog
            .usable()
            .filter(|m| m.image_input)
            .map(CatalogModel::full_id)
            .collect(),
    })
}

fn resolve_tag(
    catalog: &Catalog,
    tag: ModelTag,
    needs: ModelNeeds,
) -> Result<Resolution, ResolveError> {
    let wanted = tag.as_str();
    match tag {
        ModelTag::Vision => pick_vision(catalog, wanted),
        ModelTag::Default => {
            let fallback = fallback_model(catalog)?;
            if !needs.image_input || fallback.image_input {
                return Ok(fallback);
            }
            let mut picked = pick_vision(catalog, wanted)?;
            picked.reason = format!(
                "{wanted} needs image input and the default model {} has none; {}",
                fallback.full_id(),
                picked.reason
            );
            Ok(picked)
        }
        ModelTag::Fast => {
            if let Some(small) = &catalog.small_model
                && let Ok(found) = resolve_explicit(catalog, small)
                && (!needs.image_input || found.image_input)
            {
                return Ok(Resolution {
                    reason: format!("auto-selected from small_model ({small})"),
                    ..found
                });
            }
            pick_scored(catalog, wanted, needs, fast_score)
        }
        ModelTag::Docs => pick_scored(catalog, wanted, needs, docs_score),
    }
}

/// The configured default: OpenCode's `model`, else the first usable provider's own default,
/// else the first usable model.
fn fallback_model(catalog: &Catalog) -> Result<Resolution, ResolveError> {
    if let Some(model) = &catalog.default_model {
        let found = resolve_explicit(catalog, model)?;
        return Ok(Resolution {
            reason: format!("fallback to default model ({model}, OpenCode `model`)"),
            ..found
        });
    }
    for provider in catalog.usable_providers() {
        if let Some(default) = catalog.provider_defaults.get(&provider)
            && let Some(model) = catalog.find(&provider, default)
        {
            return Ok(Resolution::new(
                model,
                format!(
                    "fallback to default model ({}: OpenCode has no `model`, so provider `{provider}`'s default)",
                    model.full_id()
                ),
            ));
        }
    }
    let first = catalog
        .usable()
        .next()
        .ok_or_else(|| no_usable_models(catalog))?;
    Ok(Resolution::new(
        first,
        format!(
            "fallback to default model ({}: the first usable model; set `model` in OpenCode to choose)",
            first.full_id()
        ),
    ))
}

fn pick_vision(catalog: &Catalog, wanted: &str) -> Result<Resolution, ResolveError> {
    pick_scored(
        catalog,
        wanted,
        ModelNeeds { image_input: true },
        vision_score,
    )
}

/// The best-scoring usable model; ties go to the better-ranked provider, then alphabetically.
fn pick_scored(
    catalog: &Catalog,
    wanted: &str,
    needs: ModelNeeds,
    score: fn(&CatalogModel) -> f64,
) -> Result<Resolution, ResolveError> {
    let candidates: Vec<&CatalogModel> = catalog
        .usable()
        .filter(|m| !needs.image_input || m.image_input)
        .collect();
    let best = candidates.iter().copied().max_by(|a, b| {
        score(a)
            .total_cmp(&score(b))
            .then_with(|| {
                provider_rank(b.source.as_deref()).cmp(&provider_rank(a.source.as_deref()))
            })
            .then_with(|| b.full_id().cmp(&a.full_id()))
    });
    let Some(best) = best else {
        return Err(ResolveError::NoVisionModel {
            wanted: wanted.to_owned(),
            configured: catalog
                .usable()
                .map(|m| format!("{} ({})", m.full_id(), m.capability_words()))
                .collect(),
        });
    };
    let image = if needs.image_input {
        " with image input"
    } else {
        ""
    };
    Ok(Resolution::new(
        best,
        format!(
            "{wanted}: best score ({}) of {} usable model(s){image}",
            score(best),
            candidates.len()
        ),
    ))
}

fn deprecated_penalty(model: &CatalogModel) -> f64 {
    if model.is_deprecated() { -50.0 } else { 0.0 }
}

fn mentions(model: &CatalogModel, words: &[&str]) -> bool {
    let id = model.model_id.to_lowercase();
    let name = model.name.to_lowercase();
    words.iter().any(|w| id.contains(w) || name.contains(w))
}

/// The sum of the points whose condition holds.
fn points(rules: &[(bool, f64)]) -> f64 {
    rules.iter().filter(|(hit, _)| *hit).map(|(_, p)| p).sum()
}

/// One point per `per` tokens of context, at most `max`.
fn context_points(model: &CatalogModel, per: u64, max: u64) -> f64 {
    (model.context / per).min(max) as f64
}

/// Tool calls, a "small" name, low input price, some context; never deprecated.
pub fn fast_score(model: &CatalogModel) -> f64 {
    let small = mentions(model, &["mini", "small", "flash", "fast", "haiku"]);
    points(&[(model.tool_call, 5.0), (small, 10.0)]) - model.cost_input.clamp(0.0, 5.0)
        + context_points(model, 64_000, 3)
        + deprecated_penalty(model)
}

/// Image input first, then tools, attachments, a vision-named model, and context.
pub fn vision_score(model: &CatalogModel) -> f64 {
    points(&[
        (model.image_input, 100.0),
        (model.tool_call, 10.0),
        (model.attachment, 10.0),
        (vision_named(model), 20.0),
    ]) + context_points(model, 32_000, 10)
        + deprecated_penalty(model)
}

/// Tools and reasoning, the original's MiniMax preference, and long context.
pub fn docs_score(model: &CatalogModel) -> f64 {
    points(&[
        (model.tool_call, 10.0),
        (model.reasoning, 3.0),
        (mentions(model, &["minimax"]), 8.0),
        (mentions(model, &["m2"]), 3.0),
    ]) + context_points(model, 64_000, 10)
        + deprecated_penalty(model)
}

/// "vision" or "-vl" in the id or name, or a version ending in `v` (`glm-4.6v`, `4.5v`):
/// the original meant to match the last form with `/4\\.6v/`, which never matched.
pub fn vision_named(model: &CatalogModel) -> bool {
    if mentions(model, &["vision", "-vl", " vl"]) {
        return true;
    }
    [model.model_id.as_str(), model.name.as_str()]
        .iter()
        .flat_map(|text| text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.')))
        .any(|token| {
            token
                .to_ascii_lowercase()
                .strip_suffix('v')
                .and_then(|head| head.chars().last())
                .is_some_and(|c| c.is_ascii_digit())
        })
}

/// Exact `provider/model`, then fuzzy within that provider, then fuzzy across providers.
pub fn resolve_explicit(catalog: &Catalog, reference: &str) -> Result<Resolution, ResolveError> {
    let (provider, model) = match reference.split_once('/') {
        Some((provider, model)) if !provider.is_empty() && !model.is_empty() => {
            (Some(provider), model)
        }
        _ => (None, reference),
    };
    if let Some(provider) = provider
        && let Some(found) = catalog.find(provider, model)
    {
        return Ok(Resolution::new(found, "explicit model".to_owned()));
    }
    let provider_known = provider.is_some_and(|p| catalog.usable().any(|m| m.provider_id == p));
    if provider_known
        && let Some(found) = fuzzy::best_match(
            catalog
                .usable()
                .filter(|m| Some(m.provider_id.as_str()) == provider),
            model,
        )
    {
        return Ok(Resolution::new(
            found,
            format!(
                "fuzzy match for `{reference}` within provider `{}`",
                found.provider_id
            ),
        ));
    }
    if let Some(found) = fuzzy::best_match(catalog.usable(), model) {
        return Ok(Resolution::new(
            found,
            format!("fuzzy match for `{reference}` across providers"),
        ));
    }
    Err(ResolveError::NotFound {
        reference: reference.to_owned(),
        provider: provider.map(str::to_owned),
        usable_providers: catalog.usable_providers(),
        suggestions: fuzzy::suggestions(catalog, reference)
            .into_iter()
            .map(|Suggestion { full_id, .. }| full_id)
            .collect(),
    })
}
