//! HTTP errors scripted per model name, for tests of model fallback: requests for a listed
//! model get its status (with an OpenAI error body) every time; every other model answers by
//! the default rules.

use std::collections::BTreeMap;

use super::{ChatRequest, FakeLlm, Script};

/// Model name (as the request's `model` field says it, without the provider) → HTTP status.
#[derive(Debug, Clone, Default)]
pub struct ModelErrors {
    statuses: BTreeMap<String, u16>,
}

impl ModelErrors {
    pub fn new() -> ModelErrors {
        ModelErrors::default()
    }

    /// Every request for `model` is answered with `status`.
    pub fn fail(mut self, model: impl Into<String>, status: u16) -> ModelErrors {
        self.statuses.insert(model.into(), status);
        self
    }

    /// The reply for one request: `None` lets the default rules answer.
    pub fn script_for(&self, request: &ChatRequest) -> Option<Script> {
        let status = *self.statuses.get(&request.model)?;
        Some(Script::http_error(
            status,
            format!(
                "fake LLM: model {} answers {status} (scripted)",
                request.model
            ),
        ))
    }

    /// Installs these errors as `fake`'s responder (replacing any other).
    pub fn install(self, fake: &FakeLlm) {
        fake.set_responder(move |request| self.script_for(request));
    }
}
