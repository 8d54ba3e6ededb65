//! Who is using the hub right now: requests in flight, open event streams (each
//! `orchestra mcp` relay keeps one open for as long as its MCP client lives) and open
//! MCP-over-HTTP sessions (`mcp_sessions.rs`). A hub started in
//! the background stops once nobody has used it for its idle time and no job runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::mcp_sessions::McpSessions;

#[derive(Default)]
pub struct Activity {
    requests: AtomicUsize,
    streams: AtomicUsize,
    last_seen: Mutex<Option<Instant>>,
    mcp_sessions: Arc<McpSessions>,
}

/// Counts while alive.
pub struct Presence {
    activity: Arc<Activity>,
    stream: bool,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        let activity = Arc::new(Activity::default());
        activity.touch();
        activity
    }

    /// A request in flight.
    pub fn enter(self: &Arc<Self>) -> Presence {
        self.requests.fetch_add(1, Ordering::AcqRel);
        Presence {
            activity: self.clone(),
            stream: false,
        }
    }

    /// An open event stream: a connected client.
    pub fn enter_stream(self: &Arc<Self>) -> Presence {
        self.streams.fetch_add(1, Ordering::AcqRel);
        Presence {
            activity: self.clone(),
            stream: true,
        }
    }

    /// The MCP-over-HTTP sessions, for the middleware that follows them.
    pub fn mcp_sessions(&self) -> Arc<McpSessions> {
        self.mcp_sessions.clone()
    }

    /// Clients connected now (open event streams and MCP-over-HTTP sessions).
    pub fn clients(&self) -> usize {
        self.streams.load(Ordering::Acquire) + self.mcp_sessions.open()
    }

    /// How long nothing has been in flight, no stream open and no MCP session open; `None`
    /// while something is.
    pub fn idle_for(&self) -> Option<Duration> {
        if self.requests.load(Ordering::Acquire) > 0 || self.clients() > 0 {
            return None;
        }
        let last = *self
            .last_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(last.map_or(Duration::ZERO, |t| t.elapsed()))
    }

    fn touch(&self) {
        *self
            .last_seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
    }
}

impl Drop for Presence {
    fn drop(&mut self) {
        let counter = if self.stream {
            &self.activity.streams
        } else {
            &self.activity.requests
        };
        counter.fetch_sub(1, Ordering::AcqRel);
        self.activity.touch();
    }
}
