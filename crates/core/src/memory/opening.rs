//! Memory opens in the background (issue 24 §4): opening builds or repairs the search indexes
//! and waits on the cross-process index lock, which for a large store or a busy lock takes far
//! longer than a client waits for a hub. So the hub starts and announces itself at once; calls
//! that need memory wait for it with a limit, and a task start's memory block has a deadline
//! of its own (see `HubMemory::block_for_task`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestra_memory::{MemoryError, MemoryService};
use tokio::sync::watch;

use super::HubMemoryError;

/// Where opening stands.
#[derive(Clone)]
pub(super) enum Opened {
    Opening,
    Ready(Arc<MemoryService>),
    Failed(String),
}

/// Opens memory on the blocking pool; the receiver sees it become ready (or fail).
pub(super) fn open_in_background<F>(open: F) -> watch::Receiver<Opened>
where
    F: FnOnce() -> Result<MemoryService, MemoryError> + Send + 'static,
{
    let (sender, receiver) = watch::channel(Opened::Opening);
    tokio::task::spawn_blocking(move || {
        let began = Instant::now();
        let opened = match open() {
            Ok(service) => {
                tracing::info!(
                    took_ms = began.elapsed().as_millis(),
                    "memory is open (its search indexes are ready)"
                );
                Opened::Ready(Arc::new(service))
            }
            Err(err) => {
                tracing::error!(error = %err, "memory could not be opened; memory calls will say so");
                Opened::Failed(err.to_string())
            }
        };
        // No receiver left: the hub is gone, nothing to tell.
        let _ = sender.send(opened);
    });
    receiver
}

/// The service once open, waiting at most `limit`.
pub(super) async fn wait_ready(
    opened: &watch::Receiver<Opened>,
    limit: Duration,
) -> Result<Arc<MemoryService>, HubMemoryError> {
    let mut opened = opened.clone();
    let waited = tokio::time::timeout(
        limit,
        opened.wait_for(|state| !matches!(state, Opened::Opening)),
    )
    .await;
    let state = match waited {
        Err(_elapsed) => return Err(HubMemoryError::Opening { waited: limit }),
        Ok(Err(_closed)) => {
            return Err(HubMemoryError::NotOpened(
                "the task that opens memory ended without a result".to_owned(),
            ));
        }
        Ok(Ok(state)) => state.clone(),
    };
    match state {
        Opened::Ready(service) => Ok(service),
        Opened::Failed(reason) => Err(HubMemoryError::NotOpened(reason)),
        Opened::Opening => Err(HubMemoryError::Opening { waited: limit }),
    }
}

/// The service if it is open now.
pub(super) fn ready_now(opened: &watch::Receiver<Opened>) -> Option<Arc<MemoryService>> {
    match &*opened.borrow() {
        Opened::Ready(service) => Some(service.clone()),
        Opened::Opening | Opened::Failed(_) => None,
    }
}
