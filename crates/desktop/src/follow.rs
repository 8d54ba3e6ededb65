//! The window's link to the hub: attach (or start the hub), hand the window a login link, then
//! follow the hub's event stream for the status bar and notifications. When the stream ends —
//! the hub stopped (`orchestra stop`, a crash) — it attaches again, starting a new hub if none
//! runs, as `orchestra mcp` does on its next call; the window keeps a hub while it is open.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use tao::event_loop::EventLoopProxy;
use tokio_util::sync::CancellationToken;

use crate::hub::{self, Current, Setup};
use crate::notify::{Availability, Notifier};
use crate::tally::{Counts, Tally};

/// What the hub link, the notifier, the page and the signal handler tell the window.
pub enum UserEvent {
    /// On a hub: load the page through `login_url` (one-time), accept pages of `base_url`.
    HubReady {
        login_url: String,
        base_url: String,
        /// Which hub: a new hub may come up on the old one's port, and needs a login of its own.
        hub_id: String,
        pid: u32,
        owned: bool,
        warnings: Vec<String>,
    },
    /// No hub could be reached or started; the link tries again.
    HubFailed(String),
    /// The hub's event stream ended (it stopped); the link attaches again.
    HubLost(String),
    Counts(Counts),
    Notifications(Availability),
    PageTitle(String),
    OpenInOpenCode,
    /// SIGTERM, SIGINT or SIGHUP: close as if the window's close button was pressed.
    CloseRequested,
    /// The hub this window owned has stopped (or there was none): the process may end.
    Released,
}

/// Waits between attempts to reach a hub after a failure, doubling up to the last.
const BACKOFF: [Duration; 4] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
];

/// The hub the window is on, shared with the close path (which stops it if the window owns it).
pub type Shared = Arc<Mutex<Option<Current>>>;

pub fn lock(shared: &Shared) -> std::sync::MutexGuard<'_, Option<Current>> {
    shared
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Runs until `stop` is cancelled (the window is closing).
pub async fn run(
    setup: Setup,
    proxy: EventLoopProxy<UserEvent>,
    shared: Shared,
    stop: CancellationToken,
    notifier: Notifier,
) {
    let mut failures = 0usize;
    loop {
        let attached = tokio::select! {
            () = stop.cancelled() => return,
            attached = hub::attach(&setup) => attached,
        };
        let current = match attached {
            Ok(current) => current,
            Err(err) => {
                send(&proxy, UserEvent::HubFailed(format!("{err:#}")));
                let wait = BACKOFF[failures.min(BACKOFF.len() - 1)];
                failures += 1;
                if sleep_or_stop(&stop, wait).await {
                    return;
                }
                continue;
            }
        };
        if stop.is_cancelled() {
            // The window closed while we attached: hand the hub to the close path anyway.
            *lock(&shared) = Some(current);
            return;
        }
        *lock(&shared) = Some(current.clone());
        let reason = match follow(&current, &proxy, &notifier, &stop).await {
            Ok(()) => "its event stream ended".to_owned(),
            Err(err) => format!("{err:#}"),
        };
        if stop.is_cancelled() {
            return;
        }
        failures = 0;
        tracing::warn!(
            pid = current.info.pid,
            "lost the hub: {reason}; attaching again"
        );
        send(&proxy, UserEvent::HubLost(reason));
        if sleep_or_stop(&stop, BACKOFF[0]).await {
            return;
        }
    }
}

/// Shows the hub in the window and follows its events until the stream ends.
async fn follow(
    current: &Current,
    proxy: &EventLoopProxy<UserEvent>,
    notifier: &Notifier,
    stop: &CancellationToken,
) -> anyhow::Result<()> {
    let client = &current.client;
    // The link works once, for two minutes, and only the webview ever sees it.
    let link = client.login_link().await?;
    send(
        proxy,
        UserEvent::HubReady {
            login_url: link.url,
            base_url: client.base_url().to_owned(),
            hub_id: current.info.hub_id.clone(),
            pid: current.info.pid,
            owned: current.owned,
            warnings: current.warnings.clone(),
        },
    );
    // A snapshot, then exactly the events after it: nothing counted twice or missed.
    let health = client.health().await?;
    let mut tally = Tally::new(health.running);
    send(proxy, UserEvent::Counts(tally.counts()));
    let events = client.events(Some(health.last_event_id)).await?;
    let mut events = std::pin::pin!(events);
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return Ok(()),
            next = events.next() => next,
        };
        let Some(event) = next else { return Ok(()) };
        let event = event?;
        let before = tally.counts();
        if let Some(alert) = tally.apply(&event) {
            notifier.send(alert);
        }
        let after = tally.counts();
        if after != before {
            send(proxy, UserEvent::Counts(after));
        }
    }
}

/// Sleeps; true when the window closed meanwhile.
async fn sleep_or_stop(stop: &CancellationToken, wait: Duration) -> bool {
    tokio::select! {
        () = stop.cancelled() => true,
        () = tokio::time::sleep(wait) => false,
    }
}

fn send(proxy: &EventLoopProxy<UserEvent>, event: UserEvent) {
    // Fails only once the event loop is gone, when nobody is left to show anything to.
    let _ = proxy.send_event(event);
}
