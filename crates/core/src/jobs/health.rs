//! What the hub remembers about failing models: a cool-down per model after a failure that
//! made a task fall back, and a circuit breaker per profile (5 failures in 10 minutes open it;
//! after 5 minutes one task may try the profile's own model again, and its outcome closes or
//! reopens it). Both live in memory only: a restarted hub tries every model again.
//!
//! Every method takes `now`, so the unit tests below step the clock instead of waiting.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

/// How long a model that failed is skipped while a fallback is available.
pub const MODEL_COOLDOWN: Duration = Duration::from_secs(60);
/// Failures of a profile's own model that open its breaker…
pub const BREAKER_FAILURES: usize = 5;
/// …when they happen within this window.
pub const BREAKER_WINDOW: Duration = Duration::from_secs(10 * 60);
/// How long an open breaker stays open before one task may try again (half-open).
pub const BREAKER_OPEN_FOR: Duration = Duration::from_secs(5 * 60);

/// What a profile's breaker lets a new task do with the profile's own model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    /// Open: the profile's own model is skipped until `retry_in` has passed.
    Open {
        retry_in: Duration,
    },
    /// This task is the one trial after the open period.
    HalfOpenTrial,
}

#[derive(Default)]
struct Breaker {
    failures: VecDeque<Instant>,
    opened_at: Option<Instant>,
    trial_running: bool,
}

#[derive(Default)]
struct State {
    cooling: HashMap<String, Instant>,
    breakers: HashMap<String, Breaker>,
}

/// Shared by every job of one hub.
#[derive(Default)]
pub struct ModelHealth {
    state: Mutex<State>,
}

impl ModelHealth {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// True while `model` failed less than [`MODEL_COOLDOWN`] ago.
    pub fn cooling(&self, model: &str, now: Instant) -> bool {
        let mut state = self.lock();
        match state.cooling.get(model) {
            Some(until) if *until > now => true,
            Some(_) => {
                state.cooling.remove(model);
                false
            }
            None => false,
        }
    }

    /// A turn on `model` failed in a way that falls back: it cools down; when it is the
    /// profile's own model, the failure counts against the profile's breaker.
    pub fn model_failed(&self, profile: &str, model: &str, own_model: bool, now: Instant) {
        let mut state = self.lock();
        state.cooling.insert(model.to_owned(), now + MODEL_COOLDOWN);
        if !own_model {
            return;
        }
        let breaker = state.breakers.entry(profile.to_owned()).or_default();
        if breaker.trial_running || breaker.opened_at.is_some() {
            // The half-open trial failed (or a task that began before the breaker opened):
            // open again for a full period.
            breaker.trial_running = false;
            breaker.opened_at = Some(now);
            breaker.failures.clear();
            return;
        }
        breaker.failures.push_back(now);
        while let Some(first) = breaker.failures.front() {
            if now.saturating_duration_since(*first) > BREAKER_WINDOW {
                breaker.failures.pop_front();
            } else {
                break;
            }
        }
        if breaker.failures.len() >= BREAKER_FAILURES {
            tracing::warn!(
                profile,
                "circuit breaker opened: {BREAKER_FAILURES} model failures within 10 minutes"
            );
            breaker.opened_at = Some(now);
            breaker.failures.clear();
        }
    }

    /// The profile's own model answered: its breaker closes.
    pub fn own_model_answered(&self, profile: &str) {
        if let Some(breaker) = self.lock().breakers.get_mut(profile) {
            *breaker = Breaker::default();
        }
    }

    /// Asked once per task before it chooses a model. In the half-open period the first task
    /// to ask becomes the trial; others are still kept off the profile's own model.
    pub fn breaker(&self, profile: &str, now: Instant) -> BreakerState {
        let mut state = self.lock();
        let Some(breaker) = state.breakers.get_mut(profile) else {
            return BreakerState::Closed;
        };
        let Some(opened_at) = breaker.opened_at else {
            return BreakerState::Closed;
        };
        let open_for = now.saturating_duration_since(opened_at);
        if open_for < BREAKER_OPEN_FOR || breaker.trial_running {
            return BreakerState::Open {
                retry_in: BREAKER_OPEN_FOR.saturating_sub(open_for),
            };
        }
        breaker.trial_running = true;
        BreakerState::HalfOpenTrial
    }

    /// A half-open trial ended without telling us whether the model works (canceled, or
    /// failed for another reason): the next task may try.
    pub fn trial_inconclusive(&self, profile: &str) {
        if let Some(breaker) = self.lock().breakers.get_mut(profile) {
            breaker.trial_running = false;
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_model_cools_down_for_a_minute() {
        let health = ModelHealth::default();
        let t0 = Instant::now();
        health.model_failed("coder", "p/a", true, t0);
        assert!(health.cooling("p/a", t0 + Duration::from_secs(59)));
        assert!(!health.cooling("p/a", t0 + Duration::from_secs(61)));
        assert!(!health.cooling("p/b", t0));
    }

    #[test]
    fn five_failures_in_ten_minutes_open_the_breaker_and_it_half_opens_after_five() {
        let health = ModelHealth::default();
        let t0 = Instant::now();
        for i in 0..4 {
            health.model_failed("coder", "p/a", true, t0 + Duration::from_secs(i * 60));
        }
        assert_eq!(
            health.breaker("coder", t0 + Duration::from_secs(300)),
            BreakerState::Closed
        );
        let opened = t0 + Duration::from_secs(301);
        health.model_failed("coder", "p/a", true, opened);
        assert_eq!(
            health.breaker("coder", opened + Duration::from_secs(60)),
            BreakerState::Open {
                retry_in: Duration::from_secs(240)
            }
        );
        let half = opened + BREAKER_OPEN_FOR;
        assert_eq!(health.breaker("coder", half), BreakerState::HalfOpenTrial);
        // Only one trial at a time.
        assert!(matches!(
            health.breaker("coder", half),
            BreakerState::Open { .. }
        ));
        // The trial fails: open again for a full period.
        health.model_failed("coder", "p/a", true, half);
        assert!(matches!(
            health.breaker("coder", half + Duration::from_secs(299)),
            BreakerState::Open { .. }
        ));
        assert_eq!(
            health.breaker("coder", half + BREAKER_OPEN_FOR),
            BreakerState::HalfOpenTrial
        );
        health.own_model_answered("coder");
        assert_eq!(
            health.breaker("coder", half + BREAKER_OPEN_FOR),
            BreakerState::Closed
        );
    }

    #[test]
    fn failures_spread_over_more_than_ten_minutes_do_not_open_it() {
        let health = ModelHealth::default();
        let t0 = Instant::now();
        for i in 0..10 {
            health.model_failed("coder", "p/a", true, t0 + Duration::from_secs(i * 200));
        }
        assert_eq!(
            health.breaker("coder", t0 + Duration::from_secs(2000)),
            BreakerState::Closed
        );
        // Failures of a fallback model never count against the profile.
        for _ in 0..10 {
            health.model_failed("coder", "p/b", false, t0);
        }
        assert_eq!(health.breaker("coder", t0), BreakerState::Closed);
    }
}
