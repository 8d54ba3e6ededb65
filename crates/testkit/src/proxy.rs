//! A TCP proxy in front of a server, with switches: [`TcpProxy::cut`] drops every connection
//! through it at once (both ends see the connection end) and turns new ones away;
//! [`TcpProxy::stall`] drops them too but then holds new ones open without forwarding a byte (a
//! server that accepts and never answers); [`TcpProxy::restore`] forwards again. Put between the
//! hub and OpenCode, it cuts the hub's event stream mid-task the way a network blip or a
//! suspended laptop does, or hangs a request in a chosen phase of a task
//! ([`TcpProxy::held_requests`] says which requests hang).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::AsyncReadExt;
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
}

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
        });
        let accepting = tokio::spawn(accept(listener, state.clone())).abort_handle();
        Ok(TcpProxy {
            addr,
            state,
            accepting,
        })
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every connection through the proxy and refuses new ones until [`TcpProxy::restore`].
    pub fn cut(&self) {
        self.state.open.store(false, Ordering::SeqCst);
        self.state.stalled.store(false, Ordering::SeqCst);
        self.drop_connections();
    }

    /// Drops every connection through the proxy and holds new ones open without forwarding
    /// anything, until [`TcpProxy::restore`]: requests hang.
    pub fn stall(&self) {
        self.state.stalled.store(true, Ordering::SeqCst);
        self.drop_connections();
    }

    pub fn restore(&self) {
        self.state.stalled.store(false, Ordering::SeqCst);
        self.state.open.store(true, Ordering::SeqCst);
        self.state.release_held();
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

    fn drop_connections(&self) {
        for relay in self.state.lock().drain(..) {
            relay.abort();
        }
        self.state.release_held();
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.accepting.abort();
        self.cut();
    }
}

impl State {
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
            state
                .held_requests
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(line);
            noted = true;
        }
    }
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    while let Ok((client, _)) = listener.accept().await {
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
        let relay = tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect(upstream).await else {
                return;
            };
            let mut client = client;
            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
        });
        let mut relays = state.lock();
        relays.retain(|r| !r.is_finished());
        relays.push(relay.abort_handle());
    }
}
