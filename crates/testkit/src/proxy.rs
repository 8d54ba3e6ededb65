//! A TCP proxy in front of a server, with switches: [`TcpProxy::cut`] drops every connection
//! through it at once (both ends see the connection end) and turns new ones away;
//! [`TcpProxy::stall`] drops them too but then holds new ones open without forwarding a byte (a
//! server that accepts and never answers); [`TcpProxy::restore`] forwards again. Put between the
//! hub and OpenCode, it cuts the hub's event stream mid-task the way a network blip or a
//! suspended laptop does, or hangs a request in a chosen phase of a task
//! ([`TcpProxy::held_requests`] says which requests hang). [`TcpProxy::stall_requests`] hangs
//! only the requests a test names (the one that collects a finished turn, say), while every
//! other request and open stream goes on: for that the proxy reads HTTP/1.1 request heads.
//! [`TcpProxy::close_on_next_request`] makes every connection already open close, unanswered,
//! when its next request arrives: a server that closed an idle keep-alive connection just as
//! the client sent on it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

pub struct TcpProxy {
    addr: SocketAddr,
    state: Arc<State>,
    accepting: AbortHandle,
}

struct State {
    upstream: SocketAddr,
    open: AtomicBool,
    stalled: AtomicBool,
    relays: Mutex<Vec<AbortHandle>>,
    /// The connections held open while stalled, and the first line of what each sent.
    held: Mutex<Vec<AbortHandle>>,
    held_requests: Mutex<Vec<String>>,
    /// Woken whenever a request joins `held_requests`.
    newly_held: tokio::sync::Notify,
    /// Set by [`TcpProxy::stall_requests`]: requests whose first line it accepts hang.
    stall_matching: Mutex<Option<RequestMatcher>>,
    /// Raised by [`TcpProxy::close_on_next_request`]; a relay opened under an older generation
    /// closes its connection instead of forwarding its next request.
    generation: AtomicU64,
}

/// Which requests [`TcpProxy::stall_requests`] holds, by their first line.
type RequestMatcher = Arc<dyn Fn(&str) -> bool + Send + Sync>;

impl TcpProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream,
            open: AtomicBool::new(true),
            stalled: AtomicBool::new(false),
            relays: Mutex::new(Vec::new()),
            held: Mutex::new(Vec::new()),
            held_requests: Mutex::new(Vec::new()),
            newly_held: tokio::sync::Notify::new(),
            stall_matching: Mutex::new(None),
            generation: AtomicU64::new(0),
        });
        let accepting = tokio::spawn(accept(listener, state.clone())).abort_handle();
        Ok(TcpProxy {
            addr,
            state,
            accepting,
        })
    }

    /// [`TcpProxy::start`] in front of the server at `url` (`http://127.0.0.1:<port>`, a
    /// trailing slash allowed).
    pub async fn in_front_of(url: &str) -> std::io::Result<TcpProxy> {
        let upstream = url
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .map_err(|error| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("`{url}` is not http://<ip>:<port>: {error}"),
                )
            })?;
        TcpProxy::start(upstream).await
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every connection through the proxy and refuses new ones until [`TcpProxy::restore`].
    pub fn cut(&self) {
        let mut relays = self.state.lock();
        self.state.open.store(false, Ordering::SeqCst);
        self.state.stalled.store(false, Ordering::SeqCst);
        self.state.drop_connections(&mut relays);
    }

    /// Drops every connection through the proxy and holds new ones open without forwarding
    /// anything, until [`TcpProxy::restore`]: requests hang.
    pub fn stall(&self) {
        let mut relays = self.state.lock();
        self.state.stalled.store(true, Ordering::SeqCst);
        self.state.drop_connections(&mut relays);
    }

    /// From now on, each request whose first line (`GET /session/ses_1/message HTTP/1.1`)
    /// `matches` accepts is held, never forwarded, with whatever its connection sends after it;
    /// every other request, and every stream already open, goes on. Connections stay up, so
    /// this can hang one request of a session while its event stream keeps flowing.
    /// [`TcpProxy::restore`] stops holding new ones; [`TcpProxy::held_requests`] lists them.
    pub fn stall_requests(&self, matches: impl Fn(&str) -> bool + Send + Sync + 'static) {
        *self
            .state
            .stall_matching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Arc::new(matches));
    }

    /// Every connection open now closes, both ways and unanswered, when its next request
    /// arrives (the request reaches nobody); connections opened later forward as usual.
    pub fn close_on_next_request(&self) {
        let _switching = self.state.lock();
        self.state.generation.fetch_add(1, Ordering::SeqCst);
    }

    pub fn restore(&self) {
        *self
            .state
            .stall_matching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let _switching = self.state.lock();
        self.state.stalled.store(false, Ordering::SeqCst);
        self.state.open.store(true, Ordering::SeqCst);
        self.state.release_held();
    }

    /// Waits up to `limit` until a held request's first line satisfies `matches`; the held
    /// requests when none did.
    pub async fn wait_held(
        &self,
        matches: impl Fn(&str) -> bool,
        limit: std::time::Duration,
    ) -> Result<(), Vec<String>> {
        let waiting = async {
            loop {
                // Registered before the check, so a request held in between still wakes it.
                let woken = self.state.newly_held.notified();
                if self.held_requests().iter().any(|line| matches(line)) {
                    return;
                }
                woken.await;
            }
        };
        tokio::time::timeout(limit, waiting)
            .await
            .map_err(|_| self.held_requests())
    }

    /// The first line of each request held open since the last stall (`POST /session HTTP/1.1`):
    /// proof that a request is hanging, and which one.
    pub fn held_requests(&self) -> Vec<String> {
        self.state
            .held_requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

impl State {
    fn note_held(&self, line: String) {
        self.held_requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(line);
        self.newly_held.notify_waiters();
    }

    /// Aborts every relay (`relays` is this state's own list, locked by the caller so the
    /// switch it flips and the drop are one step for `accept`).
    fn drop_connections(&self, relays: &mut Vec<AbortHandle>) {
        for relay in relays.drain(..) {
            relay.abort();
        }
        self.release_held();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<AbortHandle>> {
        self.relays
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Closes the held connections and forgets what they sent.
    fn release_held(&self) {
        for hold in self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .drain(..)
        {
            hold.abort();
        }
        self.held_requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }
}

/// Reads what a held client sends and never answers; notes the request's first line.
async fn hold(mut client: TcpStream, state: Arc<State>) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    let mut noted = false;
    while let Ok(read) = client.read(&mut buf).await {
        if read == 0 {
            return;
        }
        if noted {
            continue;
        }
        head.extend_from_slice(&buf[..read]);
        if let Some(end) = head.iter().position(|&b| b == b'\r' || b == b'\n') {
            let line = String::from_utf8_lossy(&head[..end]).into_owned();
            state.note_held(line);
            noted = true;
        }
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    while let Ok((client, _)) = listener.accept().await {
        // The switches flip under this lock too: a connection is either seen by the stall or
        // cut that drops connections, or decided on after it, never lost in between (a relay
        // that escaped a stall would keep forwarding, and the request a test waits to see
        // held would be answered instead).
        let mut relays = state.lock();
        if state.stalled.load(Ordering::SeqCst) {
            // Held open, never answered.
            let held = tokio::spawn(hold(client, state.clone()));
            state
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(held.abort_handle());
            continue;
        }
        if !state.open.load(Ordering::SeqCst) {
            // Turned away: the client sees the connection close at once.
            drop(client);
            continue;
        }
        let upstream = state.upstream;
        let relay_state = state.clone();
        let born = state.generation.load(Ordering::SeqCst);
        let relay = tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            relay(client, server, relay_state, born).await;
        });
        relays.retain(|r| !r.is_finished());
        relays.push(relay.abort_handle());
    }
}

/// How [`forward_requests`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RequestsEnded {
    /// The client's side ended (or a request is held): the server's answers still flow.
    Drained,
    /// The connection is to close at once, both ways ([`TcpProxy::close_on_next_request`]).
    Close,
}

/// Forwards one connection both ways, each side closing its half when the other's ends (as
/// `copy_bidirectional` does). Requests go one at a time through [`forward_requests`], which
/// can hold one or close the connection; answers are copied as they come. `born` is the
/// generation the connection was opened under.
async fn relay(client: TcpStream, server: TcpStream, state: Arc<State>, born: u64) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let answers = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    let requests = async {
        let ended = forward_requests(&mut client_read, &mut server_write, &state, born).await;
        if ended == RequestsEnded::Drained {
            let _ = server_write.shutdown().await;
        }
        ended
    };
    tokio::pin!(answers, requests);
    tokio::select! {
        ended = &mut requests => {
            if ended == RequestsEnded::Drained {
                answers.await;
            }
            // Closing: returning drops all four halves, so the client reads the end at once.
        }
        () = &mut answers => {
            requests.await;
        }
    }
}

/// The longest request head read before giving up on parsing and copying the rest as it is.
const MAX_HEAD: usize = 64 * 1024;

/// Copies requests from the client to the server one by one: each head is read whole (up to the
/// blank line), then its body by `Content-Length`. A head the stall matcher accepts is noted and
/// nothing more of the connection is forwarded; a head read after
/// [`TcpProxy::close_on_next_request`] raised the generation past `born` closes the connection.
/// What cannot be parsed this way (a chunked body, an oversized head) is copied through
/// unparsed for the rest of the connection.
async fn forward_requests(
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
    state: &State,
    born: u64,
) -> RequestsEnded {
    let mut buffer: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let head_end = loop {
            if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break Some(end + 4);
            }
            if buffer.len() > MAX_HEAD {
                break None;
            }
            match from.read(&mut chunk).await {
                Ok(0) | Err(_) => return RequestsEnded::Drained,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        };
        let Some(head_end) = head_end else {
            copy_rest(&buffer, from, to).await;
            return RequestsEnded::Drained;
        };
        if state.generation.load(Ordering::SeqCst) > born {
            return RequestsEnded::Close;
        }
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let first_line = head.lines().next().unwrap_or_default().to_owned();
        let matcher = state
            .stall_matching
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        if matcher.is_some_and(|matches| matches(&first_line)) {
            state.note_held(first_line);
            // Held: read and drop whatever else comes, until the client gives up.
            while let Ok(read) = from.read(&mut chunk).await {
                if read == 0 {
                    return RequestsEnded::Drained;
                }
            }
            return RequestsEnded::Drained;
        }
        let header = |name: &str| {
            head.lines().find_map(|line| {
                let (key, value) = line.split_once(':')?;
                key.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| value.trim().to_owned())
            })
        };
        if header("transfer-encoding").is_some() {
            copy_rest(&buffer, from, to).await;
            return RequestsEnded::Drained;
        }
        let body_len: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let request_end = head_end + body_len;
        while buffer.len() < request_end {
            match from.read(&mut chunk).await {
                Ok(0) | Err(_) => return RequestsEnded::Drained,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        }
        if to.write_all(&buffer[..request_end]).await.is_err() {
            return RequestsEnded::Drained;
        }
        buffer.drain(..request_end);
    }
}

/// Sends what was already read, then copies the rest of the connection as it is.
async fn copy_rest(
    already: &[u8],
    from: &mut tokio::net::tcp::OwnedReadHalf,
    to: &mut tokio::net::tcp::OwnedWriteHalf,
) {
    if to.write_all(already).await.is_ok() {
        let _ = tokio::io::copy(from, to).await;
    }
}
