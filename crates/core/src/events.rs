//! The event bus: every change the core makes becomes one [`HubEvent`] with an id that only
//! grows. Live subscribers get events at once; a subscriber that starts late, reconnects or
//! falls behind gets the events it missed from a ring of recent events and, further back, from
//! the store, one page at a time. The CLI's progress, `task_await`, the HTTP SSE stream and the
//! control panel all read this one stream.
//!
//! Ids are assigned under one lock together with the broadcast, so every subscriber sees
//! events in id order. Persisting happens behind the live path, in batches, by the
//! [`EventWriter`] the hub runs. The ring is also the writer's queue: an event leaves it only
//! once it is on disk, so a replay never has a hole between the store and the ring, and a batch
//! the store refused is written again (with a growing pause) rather than skipped. What the ring
//! holds is bounded: past [`MAX_UNSTORED`] events the store could not take, the oldest are
//! dropped, counted and logged — only a store that fails for that long leaves a hole.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestra_protocol::{EVENT_VERSION, EventBody, HubEvent, now_ms};
use orchestra_store::{Store, StoreError};
use tokio::sync::{Notify, broadcast};

/// Recent events kept in memory for replay without a store read: two seconds of the busiest
/// stream we expect (1,000 events a second), ten of a hub running 64 tasks at once, so a client
/// that reconnects rarely touches SQLite. Each task's start and end events carry its whole
/// record (about 500 bytes of JSON an event on average): at 8,192 (and 4,096 in the live
/// buffer) they held several MB of the hub's heap once a thousand tasks had run.
const RING_EVENTS: usize = 2048;
/// Events the store has not taken yet that the ring keeps on top of [`RING_EVENTS`]: about a
/// minute of the busiest stream, while a write is retried; beyond it memory would grow with
/// the outage.
const MAX_UNSTORED: usize = 65_536;
/// Live fan-out buffer per subscriber. A subscriber that falls further behind is not dropped:
/// it reads what it missed from the ring or the store and carries on. At most the ring's size
/// (a bus without a store has only the ring), and it keeps its events alive as the ring does.
const LIVE_BUFFER: usize = 1024;
const _: () = assert!(LIVE_BUFFER <= RING_EVENTS);
/// Events written to the store in one transaction at most.
const WRITE_BATCH: usize = 512;
/// How long the writer gathers events before a transaction that is not full: a commit costs
/// far more than a row, and a busy hub publishes a few events per task. Live subscribers get
/// every event at once; only the store lags, and the ring covers that lag for replays. A
/// reader that needs the store current ([`EventBus::flush`]) cuts the wait short.
const GATHER: Duration = Duration::from_millis(100);
/// Events a replay holds at a time, from the store or the ring.
const REPLAY_PAGE: u32 = 2048;
/// The first and the longest pause before a refused batch is written again.
const RETRY_FIRST: Duration = Duration::from_millis(50);
const RETRY_MAX: Duration = Duration::from_secs(5);

/// Cheap to clone; all clones publish to the same stream.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    shared: Arc<Shared>,
    live: broadcast::Sender<Arc<HubEvent>>,
    /// `None` for a bus without a store (nothing is kept beyond the ring).
    store: Option<Arc<Store>>,
}

/// What the bus and its writer both hold: the writer outlives the bus to store the rest.
struct Shared {
    state: Mutex<State>,
    /// The highest id known to be in the store; `u64::MAX` for a bus without a store.
    persisted: AtomicU64,
    /// Woken after every batch the writer stored.
    stored: Notify,
    /// Wakes the writer: an event was published, or the bus is gone.
    unstored: Notify,
    /// Ends the writer's gathering at once: someone waits for the store.
    hurry: Notify,
    /// Transactions the writer committed (for tests and stats).
    write_batches: AtomicU64,
    /// Batches the store refused (each is written again).
    write_failures: AtomicU64,
    /// Events dropped unstored because the store failed for longer than the ring can hold.
    lost: AtomicU64,
}

struct State {
    next_id: u64,
    ring: VecDeque<Arc<HubEvent>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The bus is gone: the writer stores what is left and ends.
        self.shared.hurry.notify_one();
        self.shared.unstored.notify_one();
    }
}

/// Writes published events to the store; the hub runs [`EventWriter::run`] until the bus's
/// last clone is dropped, which flushes what is left.
pub struct EventWriter {
    shared: Arc<Shared>,
    store: Arc<Store>,
    bus: std::sync::Weak<Inner>,
}

impl EventBus {
    /// A bus whose ids continue after the newest stored event, and the writer that persists it.
    pub fn with_store(store: Arc<Store>) -> Result<(EventBus, EventWriter), StoreError> {
        let last = store.last_event_id()?;
        let bus = EventBus::build(last, last, Some(store.clone()));
        let writer = EventWriter {
            shared: bus.inner.shared.clone(),
            store,
            bus: Arc::downgrade(&bus.inner),
        };
        Ok((bus, writer))
    }

    /// A bus that keeps nothing beyond its ring (tests, one-shot tools).
    pub fn in_memory() -> EventBus {
        EventBus::build(0, u64::MAX, None)
    }

    fn build(last: u64, persisted: u64, store: Option<Arc<Store>>) -> EventBus {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        EventBus {
            inner: Arc::new(Inner {
                shared: Arc::new(Shared {
                    state: Mutex::new(State {
                        next_id: last.saturating_add(1),
                        ring: VecDeque::with_capacity(RING_EVENTS),
                    }),
                    persisted: AtomicU64::new(persisted),
                    stored: Notify::new(),
                    unstored: Notify::new(),
                    hurry: Notify::new(),
                    write_batches: AtomicU64::new(0),
                    write_failures: AtomicU64::new(0),
                    lost: AtomicU64::new(0),
                }),
                live,
                store,
            }),
        }
    }

    /// Publishes one event and returns its id.
    pub fn publish(&self, body: EventBody) -> u64 {
        let shared = &self.inner.shared;
        let mut state = shared.lock();
        let id = state.next_id;
        state.next_id = state.next_id.saturating_add(1);
        let event = Arc::new(HubEvent {
            version: EVENT_VERSION,
            id,
            timestamp: now_ms(),
            body,
        });
        state.ring.push_back(event.clone());
        let persisted = shared.persisted.load(Ordering::Acquire);
        while state.ring.len() > RING_EVENTS
            && state.ring.front().is_some_and(|e| e.id <= persisted)
        {
            state.ring.pop_front();
        }
        if state.ring.len() > RING_EVENTS + MAX_UNSTORED {
            state.ring.pop_front();
            let lost = shared.lost.fetch_add(1, Ordering::AcqRel) + 1;
            if lost == 1 || lost.is_multiple_of(10_000) {
                tracing::error!(
                    lost,
                    "the store has refused events for too long: the oldest unsaved ones are \
                     dropped, and a replay that far back will miss them"
                );
            }
        }
        // No subscriber is fine: the event is still kept for replay.
        let _ = self.inner.live.send(event);
        drop(state);
        if self.inner.store.is_some() {
            shared.unstored.notify_one();
        }
        id
    }

    /// The id of the newest event published so far (0 when there is none).
    pub fn last_id(&self) -> u64 {
        self.inner.shared.lock().next_id.saturating_sub(1)
    }

    /// Transactions the writer has committed so far.
    pub fn write_batches(&self) -> u64 {
        self.inner.shared.write_batches.load(Ordering::Acquire)
    }

    /// Batches the store refused so far (each was written again later).
    pub fn write_failures(&self) -> u64 {
        self.inner.shared.write_failures.load(Ordering::Acquire)
    }

    /// Events dropped unsaved because the store failed for longer than the ring holds.
    pub fn lost_events(&self) -> u64 {
        self.inner.shared.lost.load(Ordering::Acquire)
    }

    /// Waits until every event published so far is in the store, at most `limit` (at
    /// shutdown, so a restarted hub can replay them). Returns false if it gave up.
    pub async fn flush(&self, limit: std::time::Duration) -> bool {
        let target = self.last_id();
        let shared = &self.inner.shared;
        shared.hurry.notify_one();
        let wait = async {
            loop {
                let stored = shared.stored.notified();
                if shared.persisted.load(Ordering::Acquire) >= target {
                    return;
                }
                stored.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Events from now on, or — with `after` — every event with a higher id first, read a page
    /// at a time as the subscriber takes them.
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        let state = self.inner.shared.lock();
        // Subscribing under the lock that orders publishing: nothing can slip between the
        // replay and the live stream.
        let rx = self.inner.live.subscribe();
        let last = state.next_id.saturating_sub(1);
        drop(state);
        Subscription {
            bus: self.clone(),
            rx,
            pending: VecDeque::new(),
            last: after.unwrap_or(last),
            replaying: after.is_some(),
        }
    }

    /// The next page of kept events above `after`, oldest first, and whether it reached the
    /// newest: from the store while `after` is older than the ring, then from the ring.
    async fn replay_page(&self, after: u64) -> (VecDeque<Arc<HubEvent>>, bool) {
        let page = REPLAY_PAGE as usize;
        let from_ring = |state: &State| -> (VecDeque<Arc<HubEvent>>, bool) {
            let first = state.ring.partition_point(|e| e.id <= after);
            let taken: VecDeque<Arc<HubEvent>> =
                state.ring.range(first..).take(page).cloned().collect();
            let done = state.ring.len() - first <= page;
            (taken, done)
        };
        {
            let state = self.inner.shared.lock();
            let covered = state
                .ring
                .front()
                .is_none_or(|e| e.id <= after.saturating_add(1));
            if covered || self.inner.store.is_none() {
                return from_ring(&state);
            }
        }
        if let Some(store) = &self.inner.store {
            let store = store.clone();
            let read =
                tokio::task::spawn_blocking(move || store.events_after(after, REPLAY_PAGE)).await;
            match read {
                Ok(Ok(events)) if !events.is_empty() => {
                    return (events.into_iter().map(Arc::new).collect(), false);
                }
                Ok(Ok(_)) => {}
                Ok(Err(err)) => {
                    tracing::warn!(error = %err, "replaying events from the store failed");
                }
                Err(err) => tracing::warn!(error = %err, "the replay read stopped"),
            }
        }
        // Nothing (more) in the store: what is kept starts at the ring.
        from_ring(&self.inner.shared.lock())
    }
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Publishing never panics while holding the lock; a poisoned lock still holds a
        // consistent ring.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Up to [`WRITE_BATCH`] events of the ring not in the store yet, oldest first.
    fn unstored_count(&self) -> usize {
        let persisted = self.persisted.load(Ordering::Acquire);
        let state = self.lock();
        state.ring.len() - state.ring.partition_point(|e| e.id <= persisted)
    }

    fn unstored(&self) -> Vec<HubEvent> {
        let persisted = self.persisted.load(Ordering::Acquire);
        let state = self.lock();
        let first = state.ring.partition_point(|e| e.id <= persisted);
        state
            .ring
            .range(first..)
            .take(WRITE_BATCH)
            .map(|e| (**e).clone())
            .collect()
    }
}

/// One subscriber's view of the stream: in id order, nothing missed, nothing twice.
pub struct Subscription {
    bus: EventBus,
    rx: broadcast::Receiver<Arc<HubEvent>>,
    /// At most one replay page.
    pending: VecDeque<Arc<HubEvent>>,
    last: u64,
    /// Catching up from the store and the ring before following the live stream.
    replaying: bool,
}

impl Subscription {
    /// The next event; `None` once the bus is gone.
    pub async fn next(&mut self) -> Option<Arc<HubEvent>> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                if event.id > self.last {
                    self.last = event.id;
                    return Some(event);
                }
                continue;
            }
            if self.replaying {
                let (page, done) = self.bus.replay_page(self.last).await;
                self.replaying = !done && !page.is_empty();
                self.pending = page;
                continue;
            }
            match self.rx.recv().await {
                Ok(event) => {
                    if event.id > self.last {
                        self.last = event.id;
                        return Some(event);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => self.replaying = true,
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    }

    /// The id of the last event this subscription returned.
    pub fn last_id(&self) -> u64 {
        self.last
    }
}

impl EventWriter {
    /// Persists events until the bus is gone, then stores what is left.
    pub async fn run(self) {
        let mut pause = RETRY_FIRST;
        loop {
            // Whether the bus was still there before this look at the ring: once it is gone,
            // nothing more can be published, so an empty look means everything is stored.
            let bus_alive = self.bus.strong_count() > 0;
            let waiting = self.shared.unstored_count();
            if waiting == 0 {
                if !bus_alive {
                    return;
                }
                self.shared.unstored.notified().await;
                continue;
            }
            if bus_alive && waiting < WRITE_BATCH {
                // Timing out is the normal end of the gathering.
                let _ = tokio::time::timeout(GATHER, self.shared.hurry.notified()).await;
            }
            let batch = self.shared.unstored();
            let Some(newest) = batch.last().map(|e| e.id) else {
                continue;
            };
            let store = self.store.clone();
            let written = tokio::task::spawn_blocking(move || store.append_events(&batch)).await;
            let refused = match written {
                Ok(Ok(())) => {
                    pause = RETRY_FIRST;
                    self.shared.write_batches.fetch_add(1, Ordering::AcqRel);
                    self.shared.persisted.store(newest, Ordering::Release);
                    self.shared.stored.notify_waiters();
                    continue;
                }
                Ok(Err(err)) => err.to_string(),
                Err(err) => format!("the write stopped: {err}"),
            };
            let failures = self.shared.write_failures.fetch_add(1, Ordering::AcqRel) + 1;
            tracing::error!(error = %refused, failures, "saving events failed; the batch is written again");
            if !bus_alive {
                // Shutting down: the bus's `flush` already gave up on these.
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(RETRY_MAX);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use orchestra_protocol::LogEvent;

    fn log(n: usize) -> EventBody {
        EventBody::Log(LogEvent::new("info", format!("event {n}")))
    }

    #[tokio::test]
    async fn late_subscribers_replay_from_the_store_and_the_ring_without_holes() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let (bus, writer) = EventBus::with_store(store.clone()).unwrap();
        let writing = tokio::spawn(writer.run());
        let total = RING_EVENTS * 2 + 100;
        for n in 0..total {
            bus.publish(log(n));
        }
        // Let the writer catch up so the ring may drop the oldest events.
        while store.last_event_id().unwrap() < total as u64 {
            tokio::task::yield_now().await;
        }
        bus.publish(log(total));
        let mut sub = bus.subscribe(Some(10));
        let mut expected = 11;
        while expected <= total as u64 + 1 {
            let event = sub.next().await.unwrap();
            assert_eq!(event.id, expected);
            expected += 1;
        }
        drop(sub);
        drop(bus);
        writing.await.unwrap();
    }

    #[tokio::test]
    async fn a_steady_trickle_of_events_is_stored_in_few_transactions() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let (bus, writer) = EventBus::with_store(store.clone()).unwrap();
        let writing = tokio::spawn(writer.run());
        // 100 events 3 ms apart: one transaction each if the writer did not gather.
        for n in 0..100 {
            bus.publish(log(n));
            tokio::time::sleep(Duration::from_millis(3)).await;
        }
        assert!(bus.flush(Duration::from_secs(30)).await);
        assert_eq!(store.last_event_id().unwrap(), 100);
        let batches = bus.write_batches();
        assert!(batches <= 10, "{batches} transactions for 100 events");
        drop(bus);
        writing.await.unwrap();
    }

    #[tokio::test]
    async fn a_lagging_subscriber_misses_nothing() {
        let bus = EventBus::in_memory();
        let mut sub = bus.subscribe(None);
        for n in 0..(LIVE_BUFFER * 2) {
            bus.publish(log(n));
        }
        for expected in 1..=(LIVE_BUFFER * 2) as u64 {
            assert_eq!(sub.next().await.unwrap().id, expected);
        }
    }

    #[tokio::test]
    async fn a_replay_from_far_back_holds_one_page_at_a_time() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let (bus, writer) = EventBus::with_store(store.clone()).unwrap();
        let writing = tokio::spawn(writer.run());
        let total = RING_EVENTS * 3;
        for n in 0..total {
            bus.publish(log(n));
        }
        assert!(bus.flush(std::time::Duration::from_secs(30)).await);
        let mut sub = bus.subscribe(Some(0));
        let mut most_held = 0;
        for expected in 1..=total as u64 {
            assert_eq!(sub.next().await.unwrap().id, expected);
            most_held = most_held.max(sub.pending.len());
        }
        assert!(
            most_held < REPLAY_PAGE as usize,
            "a replay held {most_held} events at once"
        );
        drop(sub);
        drop(bus);
        writing.await.unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_the_store_refused_is_written_again_and_leaves_no_gap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.db");
        let store = Arc::new(Store::open(&path).unwrap());
        let (bus, writer) = EventBus::with_store(store.clone()).unwrap();
        let writing = tokio::spawn(writer.run());
        // Another connection makes every insert into `events` fail until it lets go.
        let saboteur = rusqlite::Connection::open(&path).unwrap();
        saboteur
            .execute_batch(
                "CREATE TRIGGER refuse_events BEFORE INSERT ON events \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            )
            .unwrap();
        // More than the ring keeps once events are stored: none may be dropped unsaved.
        let total = RING_EVENTS * 2;
        for n in 0..total {
            bus.publish(log(n));
        }
        while bus.write_failures() < 2 {
            tokio::task::yield_now().await;
        }
        assert!(!bus.flush(std::time::Duration::from_millis(10)).await);
        saboteur
            .execute_batch("DROP TRIGGER refuse_events;")
            .unwrap();
        bus.publish(log(total));
        assert!(bus.flush(std::time::Duration::from_secs(30)).await);
        assert_eq!(bus.lost_events(), 0);
        let mut stored = Vec::new();
        let mut after = 0;
        loop {
            let page = store.events_after(after, 4096).unwrap();
            let Some(last) = page.last() else { break };
            after = last.id;
            stored.extend(page.into_iter().map(|e| e.id));
        }
        let expected: Vec<u64> = (1..=total as u64 + 1).collect();
        assert_eq!(stored.len(), expected.len());
        assert_eq!(stored, expected, "a gap in the stored events");
        // And a replay from the start sees every one, in order.
        let mut sub = bus.subscribe(Some(0));
        for expected in 1..=total as u64 + 1 {
            assert_eq!(sub.next().await.unwrap().id, expected);
        }
        drop(sub);
        drop(bus);
        writing.await.unwrap();
    }

    #[tokio::test]
    async fn ids_continue_after_the_stored_ones() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let (bus, writer) = EventBus::with_store(store.clone()).unwrap();
        bus.publish(log(1));
        bus.publish(log(2));
        drop(bus);
        writer.run().await;
        let (bus, _writer) = EventBus::with_store(store).unwrap();
        assert_eq!(bus.publish(log(3)), 3);
    }
}
