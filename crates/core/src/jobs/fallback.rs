//! Model fallback: which failures move a turn to the next of the profile's `fallbackModels`,
//! and which model each attempt runs on.
//!
//! OpenCode retries a rate limit, a 5xx or an unreachable provider itself, with a backoff that
//! grows to minutes; the runner does not wait for that. The first `retry` status (or a session
//! error with such a status) ends the attempt: the session is aborted and the same prompt goes
//! to a fresh session on the next model. 400, 401 and 403 are the caller's or the key's fault,
//! and another model would not mend them: those never fall back.

use std::sync::Arc;
use std::time::Instant;

use orchestra_protocol::{ModelFallback, now_ms};

use crate::models::{self, ModelNeeds, Resolution};
use crate::workers::Lease;

use super::health::{BreakerState, ModelHealth};

/// Words in a provider's error that mean "try elsewhere" even without a status code.
const TRANSIENT_WORDS: [&str; 6] = [
    "overloaded",
    "quota",
    "rate limit",
    "rate_limit",
    "too many requests",
    "capacity",
];

/// True when an OpenCode error (`{"name":"APIError","data":{"statusCode":429,…}}`) is one
/// another model may not have: a rate limit, a server error, an overload, an exhausted quota.
pub(super) fn error_falls_back(error: Option<&serde_json::Value>) -> bool {
    let Some(error) = error else {
        return false;
    };
    let status = error
        .pointer("/data/statusCode")
        .or_else(|| error.get("statusCode"))
        .and_then(serde_json::Value::as_u64);
    match status {
        Some(400 | 401 | 403) => false,
        Some(429 | 500..=599) => true,
        Some(_) | None => {
            let text = error.to_string().to_lowercase();
            TRANSIENT_WORDS.iter().any(|word| text.contains(word))
        }
    }
}

/// The models a task may run on: the one chosen for it, then the profile's fallbacks.
pub(super) struct ModelChain {
    profile: String,
    own: String,
    fallbacks: Vec<String>,
    /// Index into `fallbacks` of the next one to consider.
    next_fallback: usize,
    breaker: BreakerState,
}

/// The model an attempt runs on.
pub(super) struct Pick {
    pub resolution: Resolution,
    /// The task's own model (not a fallback): its outcome moves the profile's breaker.
    pub own: bool,
}

impl ModelChain {
    pub fn new(lease: &Lease, own: &Resolution, health: &ModelHealth) -> ModelChain {
        ModelChain {
            profile: lease.profile.id.clone(),
            own: own.full_id(),
            fallbacks: lease.profile.fallback_models.clone(),
            next_fallback: 0,
            breaker: health.breaker(&lease.profile.id, Instant::now()),
        }
    }

    pub fn breaker(&self) -> BreakerState {
        self.breaker
    }

    /// The first attempt's model: the task's own unless its breaker is open or it is cooling
    /// down and a fallback is ready. `Err` when the breaker is open and nothing else can run.
    pub async fn first(
        &mut self,
        lease: &Lease,
        own: Resolution,
        needs: ModelNeeds,
        health: &ModelHealth,
        record: &mut Vec<ModelFallback>,
    ) -> Result<Pick, String> {
        let skip_reason = match self.breaker {
            BreakerState::Open { retry_in } => Some(format!(
                "the circuit breaker of profile `{}` is open ({} failures of {} within 10 minutes); \
                 it lets a task try {} again in {} s",
                self.profile,
                super::health::BREAKER_FAILURES,
                self.own,
                self.own,
                retry_in.as_secs()
            )),
            BreakerState::HalfOpenTrial | BreakerState::Closed => {
                health.cooling(&self.own, Instant::now()).then(|| {
                    format!(
                        "{} failed less than a minute ago and is cooling down",
                        self.own
                    )
                })
            }
        };
        let Some(reason) = skip_reason else {
            return Ok(Pick {
                resolution: own,
                own: true,
            });
        };
        match self.next(lease, needs, health).await {
            Some(resolution) => {
                record.push(ModelFallback {
                    from: self.own.clone(),
                    to: resolution.full_id(),
                    reason,
                    at: now_ms(),
                });
                Ok(Pick {
                    resolution,
                    own: false,
                })
            }
            None if matches!(self.breaker, BreakerState::Open { .. }) => Err(format!(
                "{reason}; the profile has no usable fallbackModels, so the task was not sent. \
                 Wait, or add `fallbackModels` to profile `{}`",
                self.profile
            )),
            // Cooling down but nothing else to run on: trying it again beats failing.
            None => Ok(Pick {
                resolution: own,
                own: true,
            }),
        }
    }

    /// The next fallback that resolves against the worker's catalog and is not cooling down.
    pub async fn next(
        &mut self,
        lease: &Lease,
        needs: ModelNeeds,
        health: &ModelHealth,
    ) -> Option<Resolution> {
        while let Some(reference) = self.fallbacks.get(self.next_fallback).cloned() {
            self.next_fallback += 1;
            if reference == self.own || health.cooling(&reference, Instant::now()) {
                continue;
            }
            match resolve(lease, &reference, needs).await {
                Ok(mut resolution) => {
                    resolution.reason = format!("fallbackModels entry `{reference}`");
                    return Some(resolution);
                }
                Err(err) => {
                    tracing::warn!(profile = %self.profile, fallback = %reference, error = %err, "skipping a fallback model");
                }
            }
        }
        None
    }
}

async fn resolve(lease: &Lease, reference: &str, needs: ModelNeeds) -> Result<Resolution, String> {
    let catalog = match &lease.catalog {
        Some(catalog) => catalog.clone(),
        None => std::sync::Arc::new(lease.read_catalog().await.map_err(|e| e.to_string())?),
    };
    models::resolve(&catalog, reference, needs).map_err(|e| e.to_string())
}

/// The model a job runs on now, the ones it may fall back to, and what its provider did.
pub(super) struct Models {
    pub chain: ModelChain,
    pub pick: Pick,
    pub health: Arc<ModelHealth>,
    pub needs: ModelNeeds,
    /// The provider failed at least once in a way that falls back.
    pub provider_failed: bool,
}

impl Models {
    /// Counts the job's end against its model's health and the profile's breaker.
    pub fn settle(&self, lease: &Lease, done: bool) {
        let profile = &lease.profile.id;
        // No fallback was ready, so the turn waited on OpenCode's retries; a turn that still
        // failed counts against the model like one that fell back.
        if self.provider_failed && !done {
            let model = self.pick.resolution.full_id();
            self.health
                .model_failed(profile, &model, self.pick.own, Instant::now());
        }
        if !self.pick.own {
            return;
        }
        match (done, self.chain.breaker()) {
            (true, _) => self.health.own_model_answered(profile),
            (false, BreakerState::HalfOpenTrial) => self.health.trial_inconclusive(profile),
            (false, BreakerState::Closed | BreakerState::Open { .. }) => {}
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::error_falls_back;

    #[test]
    fn rate_limits_server_errors_and_quota_fall_back_auth_errors_never() {
        let api = |status: u64, message: &str| json!({"name": "APIError", "data": {"message": message, "statusCode": status}});
        assert!(error_falls_back(Some(&api(429, "slow down"))));
        assert!(error_falls_back(Some(&api(503, "unavailable"))));
        assert!(error_falls_back(Some(&api(529, "Overloaded"))));
        assert!(!error_falls_back(Some(&api(401, "bad key"))));
        assert!(!error_falls_back(Some(&api(403, "quota exceeded"))));
        assert!(!error_falls_back(Some(&api(400, "rate limit"))));
        assert!(error_falls_back(Some(
            &json!({"name": "APIError", "data": {"message": "You exceeded your current quota"}})
        )));
        assert!(error_falls_back(Some(
            &json!({"name": "UnknownError", "data": {"message": "model is overloaded"}})
        )));
        assert!(!error_falls_back(Some(
            &json!({"name": "MessageAbortedError", "data": {"message": "aborted"}})
        )));
        assert!(!error_falls_back(None));
    }
}
