//! The model catalog, read from a running OpenCode server: which providers and models exist,
//! which of them a worker can call, and what each model can do.
//!
//! Only OpenCode knows which providers are usable (its config, environment keys, stored
//! credentials, plugins), so the hub never guesses: `/config/providers` lists the connected
//! providers, `/provider` the whole catalog with `connected` ids, and `/config` gives the
//! default `model` and the `small_model`.

use std::collections::BTreeMap;

use orchestra_protocol::ModelScope;
use serde::Serialize;
use serde_json::Value;

use crate::opencode::{OpenCodeClient, OpenCodeError, ProviderInfo, ProvidersResponse};

/// One model with the capabilities resolution and listings care about.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CatalogModel {
    pub provider_id: String,
    pub model_id: String,
    pub name: String,
    pub family: String,
    /// `config`, `custom`, `env`, `api`, or `None` for catalog-only providers.
    pub source: Option<String>,
    /// A worker can call it: the provider is configured, custom, from the environment, or
    /// connected with a stored key.
    pub usable: bool,
    pub image_input: bool,
    /// Files (not only images) can be attached.
    pub attachment: bool,
    pub tool_call: bool,
    pub reasoning: bool,
    /// The model accepts a `temperature`; without it OpenCode drops a profile's temperature.
    pub temperature: bool,
    pub context: u64,
    pub output: u64,
    /// Price per million input tokens.
    pub cost_input: f64,
    pub cost_output: f64,
    /// `active`, `beta`, `alpha`, `deprecated`.
    pub status: Option<String>,
}

impl CatalogModel {
    /// `provider/model`, the form OpenCode and profiles use.
    pub fn full_id(&self) -> String {
        format!("{}/{}", self.provider_id, self.model_id)
    }

    pub fn is_deprecated(&self) -> bool {
        self.status.as_deref() == Some("deprecated")
    }

    /// Short capability words for listings and error messages.
    pub fn capability_words(&self) -> String {
        let mut words = Vec::new();
        if self.image_input {
            words.push("image");
        }
        if self.attachment {
            words.push("attachments");
        }
        if self.tool_call {
            words.push("tools");
        }
        if self.reasoning {
            words.push("reasoning");
        }
        if words.is_empty() {
            "text only".to_owned()
        } else {
            words.join(", ")
        }
    }
}

/// The providers and models of one OpenCode server plus its configured defaults.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Catalog {
    /// Sorted by provider rank, then `provider/model`.
    pub models: Vec<CatalogModel>,
    /// OpenCode's configured `model` (`provider/model`), if any.
    pub default_model: Option<String>,
    /// OpenCode's configured `small_model`, if any.
    pub small_model: Option<String>,
    /// Each provider's own default model id.
    pub provider_defaults: BTreeMap<String, String>,
    /// Set by [`Catalog::pin_provider`]: only this provider's models are usable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pinned_provider: Option<String>,
}

/// What a listing asks for: the original's `scope`, `providers` and `query` filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatalogFilter {
    pub scope: ModelScope,
    pub providers: Vec<String>,
    pub query: Option<String>,
}

impl Catalog {
    /// The usable providers only (`GET /config/providers` and `GET /config`): what resolution
    /// chooses from.
    pub async fn read(client: &OpenCodeClient) -> Result<Catalog, OpenCodeError> {
        let providers = client.providers().await?;
        let config = client.config().await?;
        Ok(Catalog::from_configured(&providers, &config))
    }

    /// Every provider OpenCode knows (`GET /provider`), usable ones marked, for `scope: all`.
    pub async fn read_all(client: &OpenCodeClient) -> Result<Catalog, OpenCodeError> {
        let list = client.provider_list().await?;
        let config = client.config().await?;
        let mut catalog = Catalog::from_parts(&list.all, &config, |provider| {
            list.connected.contains(&provider.id) && is_usable(provider)
        });
        catalog.provider_defaults = list.default.into_iter().collect();
        Ok(catalog)
    }

    /// [`Catalog::read`] for `configured`, [`Catalog::read_all`] for `all`.
    pub async fn read_scope(
        client: &OpenCodeClient,
        scope: ModelScope,
    ) -> Result<Catalog, OpenCodeError> {
        match scope {
            ModelScope::Configured => Catalog::read(client).await,
            ModelScope::All => Catalog::read_all(client).await,
        }
    }

    /// From `/config/providers` and `/config` bodies (the captured fixtures use this).
    pub fn from_configured(providers: &ProvidersResponse, config: &Value) -> Catalog {
        let mut catalog = Catalog::from_parts(&providers.providers, config, is_usable);
        catalog.provider_defaults = providers
            .default
            .iter()
            .map(|(provider, model)| (provider.clone(), model.clone()))
            .collect();
        catalog
    }

    fn from_parts(
        providers: &[ProviderInfo],
        config: &Value,
        usable: impl Fn(&ProviderInfo) -> bool,
    ) -> Catalog {
        let mut models: Vec<CatalogModel> = providers
            .iter()
            .flat_map(|provider| {
                let usable = usable(provider);
                provider.models.iter().map(move |(key, model)| {
                    let caps = &model.capabilities;
                    CatalogModel {
                        provider_id: provider.id.clone(),
                        // The map key is the id OpenCode accepts in a prompt's model.
                        model_id: key.clone(),
                        name: model.name.clone(),
                        family: model.family.clone(),
                        source: provider.source.clone(),
                        usable,
                        image_input: caps.input.image,
                        attachment: caps.attachment,
                        tool_call: caps.toolcall,
                        reasoning: caps.reasoning,
                        temperature: caps.temperature,
                        context: model.limit.context,
                        output: model.limit.output,
                        cost_input: model.cost.input,
                        cost_output: model.cost.output,
                        status: model.status.clone(),
                    }
                })
            })
            .collect();
        models.sort_by(|a, b| {
            provider_rank(a.source.as_deref())
                .cmp(&provider_rank(b.source.as_deref()))
                .then_with(|| a.full_id().cmp(&b.full_id()))
        });
        let text = |key: &str| {
            config
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        Catalog {
            models,
            default_model: text("model"),
            small_model: text("small_model"),
            provider_defaults: BTreeMap::new(),
            pinned_provider: None,
        }
    }

    /// Only `provider_id`'s models stay usable (`--fake` pins the built-in fake, so no tag can
    /// pick one of the user's providers); the others are still listed.
    pub fn pin_provider(&mut self, provider_id: &str) {
        for model in &mut self.models {
            if model.provider_id != provider_id {
                model.usable = false;
            }
        }
        self.pinned_provider = Some(provider_id.to_owned());
    }

    /// The models a worker can run on.
    pub fn usable(&self) -> impl Iterator<Item = &CatalogModel> {
        self.models.iter().filter(|m| m.usable)
    }

    /// Exact `provider/model` lookup among usable models.
    pub fn find(&self, provider_id: &str, model_id: &str) -> Option<&CatalogModel> {
        self.usable()
            .find(|m| m.provider_id == provider_id && m.model_id == model_id)
    }

    /// Ids of the usable providers, in rank order, without duplicates.
    pub fn usable_providers(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for model in self.usable() {
            if !out.contains(&model.provider_id) {
                out.push(model.provider_id.clone());
            }
        }
        out
    }

    /// The listing filters: scope (usable only unless `all`), provider ids, and a
    /// case-insensitive query over `provider/model` and the display name.
    pub fn filter(&self, filter: &CatalogFilter) -> Vec<&CatalogModel> {
        let query = filter
            .query
            .as_deref()
            .map(str::trim)
            .filter(|q| !q.is_empty())
            .map(str::to_lowercase);
        self.models
            .iter()
            .filter(|m| filter.scope == ModelScope::All || m.usable)
            .filter(|m| filter.providers.is_empty() || filter.providers.contains(&m.provider_id))
            .filter(|m| {
                query.as_deref().is_none_or(|q| {
                    m.full_id().to_lowercase().contains(q) || m.name.to_lowercase().contains(q)
                })
            })
            .collect()
    }
}

/// Providers a worker can actually call (the original's rule): OpenCode's own `opencode`
/// provider, anything from config, a custom loader or the environment, and stored (`api`)
/// credentials only when a key is present.
pub fn is_usable(provider: &ProviderInfo) -> bool {
    if provider.id == "opencode" {
        return true;
    }
    match provider.source.as_deref() {
        Some("config" | "custom" | "env") => true,
        Some("api") => provider.has_key,
        _ => false,
    }
}

/// Lower ranks win ties: what the user configured beats plugins, the environment and stored keys.
pub fn provider_rank(source: Option<&str>) -> u8 {
    match source {
        Some("config") => 0,
        Some("custom") => 1,
        Some("env") => 2,
        Some("api") => 3,
        _ => 4,
    }
}
