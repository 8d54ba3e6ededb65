//! `notify`: the hub sends its own events to the user's targets — a desktop notification, a
//! webhook, a command — without any client or window open.
//!
//! One task follows the hub's event stream (subscribed in [`Notifier::spawn`], before the hub
//! publishes anything else) and records a delivery per matching (target, event) in the store
//! before trying it, so what failed is visible (`GET /api/v1/notify/deliveries`) and a webhook
//! still pending when the hub stops is sent by the next hub. Webhooks are retried with
//! exponential backoff for [`RETRY_FOR`]; the receiver dedupes by `Idempotency-Key` (the event
//! id), because a delivery whose answer was lost is sent again. Commands and desktop
//! notifications are tried once. [`Notifier::stop`] ends every delivery task, bounded.

mod deliver;
mod filter;

use std::sync::Arc;
use std::time::Duration;

use orchestra_protocol::{DeliveryStatus, HubEvent, NotifyDelivery, now_ms};
use orchestra_store::{DeliveryAttempt, Store};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{NotifyKind, NotifyTarget};
use crate::events::{EventBus, Subscription};

use deliver::Envelope;
use filter::EventFacts;

/// How long a webhook delivery keeps being retried before it is marked failed.
pub const RETRY_FOR: Duration = Duration::from_secs(15 * 60);
/// The first retry's wait; each next one doubles, up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(120);

struct Shared {
    targets: Vec<NotifyTarget>,
    store: Arc<Store>,
    http: reqwest::Client,
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// Owns the notifier's tasks; [`Notifier::stop`] ends them.
pub struct Notifier {
    shared: Arc<Shared>,
}

impl Notifier {
    /// `None` when the user configured no targets: nothing follows the stream then.
    pub fn spawn(
        targets: Vec<NotifyTarget>,
        store: Arc<Store>,
        bus: &EventBus,
    ) -> Option<Notifier> {
        if targets.is_empty() {
            return None;
        }
        let subscription = bus.subscribe(None);
        let shared = Arc::new(Shared {
            targets,
            store,
            http: reqwest::Client::new(),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        shared.tasks.spawn(follow(shared.clone(), subscription));
        Some(Notifier { shared })
    }

    /// Stops following events and every delivery; a webhook not delivered yet stays pending
    /// in the store for the next hub. False if the tasks did not end within `limit`.
    pub async fn stop(self, limit: Duration) -> bool {
        self.shared.stop.cancel();
        self.shared.tasks.close();
        tokio::time::timeout(limit, self.shared.tasks.wait())
            .await
            .is_ok()
    }
}

async fn follow(shared: Arc<Shared>, mut events: Subscription) {
    resume_pending(&shared);
    loop {
        let event = tokio::select! {
            () = shared.stop.cancelled() => return,
            event = events.next() => event,
        };
        let Some(event) = event else { return };
        dispatch(&shared, &event);
    }
}

fn dispatch(shared: &Arc<Shared>, event: &HubEvent) {
    // Cheap test first: most events (deltas, progress) match no target.
    if !shared
        .targets
        .iter()
        .any(|t| t.events.iter().any(|e| e == event.body.type_name()))
    {
        return;
    }
    let Some(facts) = EventFacts::of(event) else {
        return;
    };
    let json = facts.envelope.to_string();
    let now = now_ms();
    for target in shared.targets.iter().filter(|t| facts.matches(t)) {
        match shared
            .store
            .add_delivery(&target.label(), event.id, &facts.type_name, &json, now)
        {
            Ok(Some(row)) => {
                let job = Delivery {
                    row,
                    target: target.clone(),
                    json: json.clone(),
                    event_id: event.id,
                    created_at: now,
                    attempts: 0,
                    not_before: now,
                };
                shared.tasks.spawn(job.run(shared.clone()));
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "recording a notify delivery failed"),
        }
    }
}

/// Deliveries a stopped hub left pending: each continues with its target if the user's
/// config still has it, and is marked failed otherwise.
fn resume_pending(shared: &Arc<Shared>) {
    let pending = match shared.store.pending_deliveries() {
        Ok(pending) => pending,
        Err(err) => {
            tracing::warn!(error = %err, "reading pending notify deliveries failed");
            return;
        }
    };
    for (delivery, json) in pending {
        let Some(target) = shared.targets.iter().find(|t| t.label() == delivery.target) else {
            record(
                shared,
                delivery.id,
                &DeliveryAttempt {
                    status: DeliveryStatus::Failed,
                    attempts: delivery.attempts,
                    last_error: Some("this target is no longer in your `notify` config".into()),
                    next_attempt_at: None,
                    delivered_at: None,
                },
            );
            continue;
        };
        let job = Delivery {
            row: delivery.id,
            target: target.clone(),
            json,
            event_id: delivery.event_id,
            created_at: delivery.created_at,
            attempts: delivery.attempts,
            not_before: delivery.next_attempt_at.unwrap_or(0),
        };
        shared.tasks.spawn(job.run(shared.clone()));
    }
}

fn record(shared: &Shared, row: i64, attempt: &DeliveryAttempt) {
    if let Err(err) = shared.store.update_delivery(row, attempt) {
        tracing::warn!(error = %err, "saving a notify delivery failed");
    }
}

/// One event on its way to one target.
struct Delivery {
    row: i64,
    target: NotifyTarget,
    json: String,
    event_id: u64,
    created_at: i64,
    attempts: u32,
    /// Unix ms before which the next attempt must not start (a resumed backoff).
    not_before: i64,
}

impl Delivery {
    async fn run(mut self, shared: Arc<Shared>) {
        let (event_type, title, body) = match serde_json::from_str::<HubEvent>(&self.json)
            .ok()
            .and_then(|event| EventFacts::of(&event))
        {
            Some(facts) => {
                let (title, body) = facts.summary();
                (facts.type_name, title, body)
            }
            None => (
                "orchestra.event".to_owned(),
                "Open Orchestra".to_owned(),
                String::new(),
            ),
        };
        let mut wait = millis_until(self.not_before);
        loop {
            if !wait.is_zero() {
                tokio::select! {
                    () = shared.stop.cancelled() => return,
                    () = tokio::time::sleep(wait) => {}
                }
            }
            let envelope = Envelope {
                json: &self.json,
                event_id: self.event_id,
                event_type: &event_type,
                title: &title,
                body: &body,
            };
            let result = tokio::select! {
                // The row stays pending: the next hub sends it again.
                () = shared.stop.cancelled() => return,
                result = deliver::attempt(&self.target, &shared.http, &envelope) => result,
            };
            self.attempts = self.attempts.saturating_add(1);
            let now = now_ms();
            let error = match result {
                Ok(()) => {
                    record(
                        &shared,
                        self.row,
                        &DeliveryAttempt {
                            status: DeliveryStatus::Delivered,
                            attempts: self.attempts,
                            last_error: None,
                            next_attempt_at: None,
                            delivered_at: Some(now),
                        },
                    );
                    return;
                }
                Err(error) => error,
            };
            let retry_until = self.created_at.saturating_add(millis(RETRY_FOR));
            let backoff = backoff(self.attempts);
            let retry = self.target.kind == NotifyKind::Webhook
                && now.saturating_add(millis(backoff)) <= retry_until;
            if !retry {
                tracing::warn!(target = %self.target.label(), event = self.event_id, error = %error, "a notify delivery failed");
                record(
                    &shared,
                    self.row,
                    &DeliveryAttempt {
                        status: DeliveryStatus::Failed,
                        attempts: self.attempts,
                        last_error: Some(error),
                        next_attempt_at: None,
                        delivered_at: None,
                    },
                );
                return;
            }
            record(
                &shared,
                self.row,
                &DeliveryAttempt {
                    status: DeliveryStatus::Pending,
                    attempts: self.attempts,
                    last_error: Some(error),
                    next_attempt_at: Some(now.saturating_add(millis(backoff))),
                    delivered_at: None,
                },
            );
            wait = backoff;
        }
    }
}

/// 1 s, 2 s, 4 s … up to two minutes.
fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn millis_until(at: i64) -> Duration {
    Duration::from_millis(u64::try_from(at.saturating_sub(now_ms())).unwrap_or(0))
}

/// The newest deliveries, optionally only those with one status (the HTTP API's view).
pub fn deliveries(
    store: &Store,
    status: Option<DeliveryStatus>,
    limit: u32,
) -> Result<Vec<NotifyDelivery>, orchestra_store::StoreError> {
    store.deliveries(status, limit)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_a_webhook_is_retried_for_at_least_ten_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(2), Duration::from_secs(2));
        assert_eq!(backoff(5), Duration::from_secs(16));
        assert_eq!(backoff(30), MAX_BACKOFF);
        // Attempts whose waits add up to the retry window: it is over ten minutes long.
        let total: Duration = (1..=20).map(backoff).sum();
        assert!(total > RETRY_FOR && RETRY_FOR >= Duration::from_secs(600));
    }
}
