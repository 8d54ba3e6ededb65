//! Browser sessions: what a one-time login link is traded for.
//!
//! A session is two secrets. The cookie (`HttpOnly`, `SameSite=Strict`) only lets a browser
//! load the panel's page and its static files. Every other route also needs the session's key
//! in the `X-Orchestra-Session` header, which the page keeps in its tab's `sessionStorage`.
//! Cookies are scoped by host, not port (RFC 6265): the browser sends the cookie to every
//! server on 127.0.0.1 it visits, so the cookie alone must authorize nothing. The key never
//! leaves the page's own origin (storage is per origin, port included), and a header is not
//! something another page can make the browser send.
//!
//! The cookie stays as a second factor rather than being dropped: the page's address (`/`)
//! is loaded by a navigation, which cannot carry a header, so without a cookie the page would
//! have to be served to anyone; and a key that leaks on its own (copied out of devtools, a
//! crash report) is useless without the `HttpOnly` cookie from the same login.
//!
//! Sessions end when unused for a while, after a fixed lifetime, on logout, and when the hub
//! stops (they live in memory only); there are at most [`MAX_SESSIONS`] (the oldest goes).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::secrets::{lock, same, secret};

/// The header that carries a session's key.
pub const SESSION_HEADER: &str = "x-orchestra-session";

/// A session nobody used for this long ends. Twelve hours: a panel kept in a background tab
/// through a working day still works the next time it is looked at, while a session whose
/// tab was closed (its key lived only in that tab) is gone by the next morning. An open event
/// stream does not count as use: it is what a forgotten tab does.
pub const SESSION_IDLE: Duration = Duration::from_secs(12 * 60 * 60);
/// A session ends this long after its login however much it is used. A week: a panel in use
/// every day logs in again once a week (one `orchestra panel`), so a key and cookie copied out
/// of a browser profile cannot stay useful for longer.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Sessions kept at most; a new login ends the oldest. Each `orchestra panel` and each
/// desktop window makes one; 32 is more tabs than anyone keeps open on one hub, and bounds
/// what a runaway script minting logins can hold.
pub const MAX_SESSIONS: usize = 32;

/// How long sessions live and how many there may be (shorter in tests).
#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub lifetime: Duration,
    pub max: usize,
}

impl Default for SessionPolicy {
    fn default() -> SessionPolicy {
        SessionPolicy {
            idle: SESSION_IDLE,
            lifetime: SESSION_LIFETIME,
            max: MAX_SESSIONS,
        }
    }
}

/// A session just made: the cookie for the browser, the key for the page.
pub struct NewSession {
    pub cookie: String,
    pub key: String,
}

/// The session a request was authorized by (a request extension the guard adds), for the
/// routes that act on it: logout, and the event stream that ends with it.
#[derive(Clone)]
pub struct BrowserSession {
    cookie: String,
}

struct Session {
    cookie: String,
    key: String,
    created: Instant,
    used: Instant,
}

pub struct Sessions {
    policy: SessionPolicy,
    /// Oldest first.
    list: Mutex<Vec<Session>>,
}

impl Sessions {
    pub fn new(policy: SessionPolicy) -> Sessions {
        Sessions {
            policy,
            list: Mutex::new(Vec::new()),
        }
    }

    pub fn policy(&self) -> SessionPolicy {
        self.policy
    }

    /// A new session; the oldest ends when there are already as many as allowed.
    pub fn open(&self) -> NewSession {
        let now = Instant::now();
        let mut list = lock(&self.list);
        self.prune(&mut list, now);
        let max = self.policy.max.max(1);
        if list.len() >= max {
            let excess = list.len() + 1 - max;
            list.drain(..excess);
        }
        let session = NewSession {
            cookie: secret(),
            key: secret(),
        };
        list.push(Session {
            cookie: session.cookie.clone(),
            key: session.key.clone(),
            created: now,
            used: now,
        });
        session
    }

    /// True when `cookie` belongs to a live session: enough to load the page, nothing more.
    pub fn page_allowed(&self, cookie: &str) -> bool {
        let mut list = lock(&self.list);
        self.prune(&mut list, Instant::now());
        list.iter().any(|s| same(&s.cookie, cookie))
    }

    /// The live session that both `cookie` and `key` belong to, now marked as used.
    pub fn authorize(&self, cookie: &str, key: &str) -> Option<BrowserSession> {
        let now = Instant::now();
        let mut list = lock(&self.list);
        self.prune(&mut list, now);
        let session = list
            .iter_mut()
            .find(|s| same(&s.cookie, cookie) && same(&s.key, key))?;
        session.used = now;
        Some(BrowserSession {
            cookie: session.cookie.clone(),
        })
    }

    /// True while `session` has not ended (expired, logged out, evicted).
    pub fn alive(&self, session: &BrowserSession) -> bool {
        let mut list = lock(&self.list);
        self.prune(&mut list, Instant::now());
        list.iter().any(|s| s.cookie == session.cookie)
    }

    /// Ends `session`; false when it had already ended.
    pub fn close(&self, session: &BrowserSession) -> bool {
        let mut list = lock(&self.list);
        let before = list.len();
        list.retain(|s| s.cookie != session.cookie);
        list.len() != before
    }

    fn prune(&self, list: &mut Vec<Session>, now: Instant) {
        list.retain(|s| {
            now.duration_since(s.used) < self.policy.idle
                && now.duration_since(s.created) < self.policy.lifetime
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(idle_ms: u64, lifetime_ms: u64, max: usize) -> SessionPolicy {
        SessionPolicy {
            idle: Duration::from_millis(idle_ms),
            lifetime: Duration::from_millis(lifetime_ms),
            max,
        }
    }

    #[test]
    fn a_session_needs_its_cookie_and_its_key_together() {
        let sessions = Sessions::new(SessionPolicy::default());
        let one = sessions.open();
        let two = sessions.open();
        assert!(sessions.authorize(&one.cookie, &one.key).is_some());
        assert!(sessions.authorize(&one.cookie, &two.key).is_none());
        assert!(sessions.authorize(&two.cookie, &one.key).is_none());
        assert!(sessions.authorize(&one.cookie, "").is_none());
        assert!(sessions.page_allowed(&one.cookie));
        assert!(!sessions.page_allowed(&one.key));
        let live = sessions.authorize(&two.cookie, &two.key);
        let Some(live) = live else {
            panic!("the second session is live");
        };
        assert!(sessions.close(&live));
        assert!(!sessions.alive(&live) && !sessions.close(&live));
        assert!(sessions.authorize(&two.cookie, &two.key).is_none());
        assert!(!sessions.page_allowed(&two.cookie));
    }

    #[test]
    fn sessions_end_when_idle_and_when_old_and_the_oldest_goes_first() {
        let sessions = Sessions::new(policy(500, 1000, 2));
        let a = sessions.open();
        let b = sessions.open();
        let c = sessions.open();
        assert!(sessions.authorize(&a.cookie, &a.key).is_none(), "evicted");
        // Used every 200 ms, `b` outlives the idle limit but not its lifetime; `c` idles out.
        for round in 1..=4 {
            std::thread::sleep(Duration::from_millis(200));
            assert!(sessions.authorize(&b.cookie, &b.key).is_some(), "{round}");
            if round == 3 {
                assert!(sessions.authorize(&c.cookie, &c.key).is_none(), "idle");
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        assert!(sessions.authorize(&b.cookie, &b.key).is_none(), "too old");
    }
}
