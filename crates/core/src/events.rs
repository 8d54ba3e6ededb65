//! The event bus: every change the core makes becomes one [`HubEvent`] with an id that only
//! grows. Live subscribers get events at once; a subscriber that starts late, reconnects or
//! falls behind gets the events it missed from a ring of recent events and, further back, from
//! the store. The CLI's progress, `task_await`, the HTTP SSE stream and the control panel all
//! read this one stream.
//!
//! Ids are assigned under one lock together with the broadcast, so every subscriber sees
//! events in id order. Persisting happens behind the live path, in batches, by the
//! [`EventWriter`] the hub runs; the ring only drops events that are already on disk, so a
//! replay never has a hole between the store and the ring.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use orchestra_protocol::{EVENT_VERSION, EventBody, HubEvent, now_ms};
use orchestra_store::{Store, StoreError};
use tokio::sync::{broadcast, mpsc};

/// Recent events kept in memory for replay without a store read: a few seconds of the busiest
/// stream we expect (1,000 events a second), so reconnecting clients rarely touch SQLite.
const RING_EVENTS: usize = 8192;
/// Live fan-out buffer per subscriber. A subscriber that falls further behind is not dropped:
/// it reads what it missed from the ring or the store and carries on.
const LIVE_BUFFER: usize = 4096;
/// Events written to the store in one transaction at most.
const WRITE_BATCH: usize = 512;
/// Events read from the store per query while replaying.
const REPLAY_PAGE: u32 = 2048;

/// Cheap to clone; all clones publish to the same stream.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    live: broadcast::Sender<Arc<HubEvent>>,
    /// `None` for a bus without a store (nothing is kept beyond the ring). Unbounded because
    /// `publish` is synchronous, called from sync code and under locks, so it cannot wait for
    /// room, and dropping an event would leave a hole in every later replay. The writer drains
    /// it in batches, so it only holds what arrives during one store write.
    persist: Option<mpsc::UnboundedSender<Arc<HubEvent>>>,
    store: Option<Arc<Store>>,
    /// The highest id known to be in the store.
    persisted: AtomicU64,
    /// Woken after every batch the writer stored.
    stored: tokio::sync::Notify,
}

struct State {
    next_id: u64,
    ring: VecDeque<Arc<HubEvent>>,
}

/// Writes published events to the store; the hub runs [`EventWriter::run`] until the bus's
/// last clone is dropped, which flushes what is left.
pub struct EventWriter {
    rx: mpsc::UnboundedReceiver<Arc<HubEvent>>,
    store: Arc<Store>,
    inner: std::sync::Weak<Inner>,
}

impl EventBus {
    /// A bus whose ids continue after the newest stored event, and the writer that persists it.
    pub fn with_store(store: Arc<Store>) -> Result<(EventBus, EventWriter), StoreError> {
        let last = store.last_event_id()?;
        let (tx, rx) = mpsc::unbounded_channel();
        let bus = EventBus::build(last, Some(tx), Some(store.clone()));
        let writer = EventWriter {
            rx,
            store,
            inner: Arc::downgrade(&bus.inner),
        };
        Ok((bus, writer))
    }

    /// A bus that keeps nothing beyond its ring (tests, one-shot tools).
    pub fn in_memory() -> EventBus {
        EventBus::build(0, None, None)
    }

    fn build(
        last: u64,
        persist: Option<mpsc::UnboundedSender<Arc<HubEvent>>>,
        store: Option<Arc<Store>>,
    ) -> EventBus {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        EventBus {
            inner: Arc::new(Inner {
                state: Mutex::new(State {
                    next_id: last.saturating_add(1),
                    ring: VecDeque::with_capacity(RING_EVENTS),
                }),
                live,
                persisted: AtomicU64::new(if persist.is_some() { last } else { u64::MAX }),
                persist,
                store,
                stored: tokio::sync::Notify::new(),
            }),
        }
    }

    /// Publishes one event and returns its id.
    pub fn publish(&self, body: EventBody) -> u64 {
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id = state.next_id.saturating_add(1);
        let event = Arc::new(HubEvent {
            version: EVENT_VERSION,
            id,
            timestamp: now_ms(),
            body,
        });
        state.ring.push_back(event.clone());
        let persisted = self.inner.persisted.load(Ordering::Acquire);
        while state.ring.len() > RING_EVENTS
            && state.ring.front().is_some_and(|e| e.id <= persisted)
        {
            state.ring.pop_front();
        }
        // No subscriber is fine: the event is still kept for replay.
        let _ = self.inner.live.send(event.clone());
        if let Some(persist) = &self.inner.persist {
            // A closed writer means the hub is shutting down; the ring still has it.
            let _ = persist.send(event);
        }
        id
    }

    /// The id of the newest event published so far (0 when there is none).
    pub fn last_id(&self) -> u64 {
        self.lock().next_id.saturating_sub(1)
    }

    /// Waits until every event published so far is in the store, at most `limit` (at
    /// shutdown, so a restarted hub can replay them). Returns false if it gave up.
    pub async fn flush(&self, limit: std::time::Duration) -> bool {
        let target = self.last_id();
        let wait = async {
            loop {
                let stored = self.inner.stored.notified();
                if self.inner.persisted.load(Ordering::Acquire) >= target {
                    return;
                }
                stored.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }

    /// Events from now on, or — with `after` — every event with a higher id first.
    pub fn subscribe(&self, after: Option<u64>) -> Subscription {
        let state = self.lock();
        // Subscribing under the lock that orders publishing: nothing can slip between the
        // replay and the live stream.
        let rx = self.inner.live.subscribe();
        let last = state.next_id.saturating_sub(1);
        drop(state);
        let (pending, last) = match after {
            Some(after) => (self.replay_after(after), after),
            None => (VecDeque::new(), last),
        };
        Subscription {
            bus: self.clone(),
            rx,
            pending,
            last,
        }
    }

    /// Every kept event with an id above `after`, oldest first: the store's part, then the
    /// ring's.
    fn replay_after(&self, after: u64) -> VecDeque<Arc<HubEvent>> {
        let ring: Vec<Arc<HubEvent>> = {
            let state = self.lock();
            state
                .ring
                .iter()
                .filter(|e| e.id > after)
                .cloned()
                .collect()
        };
        let ring_start = ring.first().map_or(u64::MAX, |e| e.id);
        let mut out = VecDeque::new();
        if ring_start > after.saturating_add(1)
            && let Some(store) = &self.inner.store
        {
            let mut cursor = after;
            'pages: loop {
                let page = match store.events_after(cursor, REPLAY_PAGE) {
                    Ok(page) => page,
                    Err(err) => {
                        tracing::warn!(error = %err, "replaying events from the store failed");
                        break;
                    }
                };
                let full = page.len() == REPLAY_PAGE as usize;
                for event in page {
                    if event.id >= ring_start {
                        break 'pages;
                    }
                    cursor = event.id;
                    out.push_back(Arc::new(event));
                }
                if !full {
                    break;
                }
            }
        }
        out.extend(ring);
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // Publishing never panics while holding the lock; a poisoned lock still holds a
        // consistent ring.
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One subscriber's view of the stream: in id order, nothing missed, nothing twice.
pub struct Subscription {
    bus: EventBus,
    rx: broadcast::Receiver<Arc<HubEvent>>,
    pending: VecDeque<Arc<HubEvent>>,
    last: u64,
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
            match self.rx.recv().await {
                Ok(event) => {
                    if event.id > self.last {
                        self.last = event.id;
                        return Some(event);
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    self.pending = self.bus.replay_after(self.last);
                }
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
    /// Persists events until the bus is gone, then flushes the rest.
    pub async fn run(mut self) {
        let mut batch = Vec::with_capacity(WRITE_BATCH);
        while let Some(first) = self.rx.recv().await {
            batch.push((*first).clone());
            while batch.len() < WRITE_BATCH {
                match self.rx.try_recv() {
                    Ok(event) => batch.push((*event).clone()),
                    Err(_) => break,
                }
            }
            self.write(&mut batch);
        }
    }

    fn write(&self, batch: &mut Vec<HubEvent>) {
        let Some(newest) = batch.last().map(|e| e.id) else {
            return;
        };
        match self.store.append_events(batch) {
            Ok(()) => {
                if let Some(inner) = self.inner.upgrade() {
                    inner.persisted.store(newest, Ordering::Release);
                    inner.stored.notify_waiters();
                }
            }
            // Live subscribers already have these events; only a later replay misses them.
            Err(err) => tracing::error!(error = %err, count = batch.len(), "saving events failed"),
        }
        batch.clear();
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
