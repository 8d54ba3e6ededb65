//! A TCP proxy in front of a server, with a switch: [`TcpProxy::cut`] drops every connection
//! through it at once (both ends see the connection end) and turns new ones away until
//! [`TcpProxy::restore`]. Put between the hub and OpenCode, it cuts the hub's event stream
//! mid-task the way a network blip or a suspended laptop does.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

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
    relays: Mutex<Vec<AbortHandle>>,
}

impl TcpProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            upstream,
            open: AtomicBool::new(true),
            relays: Mutex::new(Vec::new()),
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
        for relay in self.state.lock().drain(..) {
            relay.abort();
        }
    }

    pub fn restore(&self) {
        self.state.open.store(true, Ordering::SeqCst);
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
}

async fn accept(listener: TcpListener, state: Arc<State>) {
    while let Ok((client, _)) = listener.accept().await {
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
