//! The Neo4j mirror in the hub (feature `neo4j`): when `NEO4J_URI` (or the original's
//! `OPENCODE_NEO4J_URI`) is set, the change logs of the project store and the global store are
//! replayed into Neo4j in a task of their own — after writes (debounced) and every half
//! minute — never on a request's path. Each replay resumes from the cursor kept in its store,
//! so a restarted hub carries on where the last one stopped; a Neo4j that cannot be reached
//! is tried again with backoff, and the log says why.

use std::sync::Arc;
use std::time::Duration;

use orchestra_memory::neo4j::{Neo4jConfig, Neo4jSync};
use orchestra_protocol::EventBody;
use orchestra_store::Store;
use tokio_util::sync::CancellationToken;

use super::HubMemory;

const EVERY: Duration = Duration::from_secs(30);
/// Writes come in bursts (an import, a memory run): wait this long after one before replaying.
const DEBOUNCE: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Runs until `stop`; returns at once when no Neo4j is configured.
pub async fn neo4j_sync(memory: HubMemory, stop: CancellationToken) {
    let Some(config) = Neo4jConfig::from_env() else {
        tracing::debug!("NEO4J_URI is not set: memory is not mirrored to Neo4j");
        return;
    };
    let service = match memory.service().await {
        Ok(service) => service,
        Err(err) => {
            tracing::warn!(error = %err, "memory is not open: it is not mirrored to Neo4j");
            return;
        }
    };
    let mut stores: Vec<Arc<Store>> = vec![service.project_bank().store().clone()];
    if let Some(global) = service.global_bank() {
        stores.push(global.store().clone());
    }
    let mut events = memory.bus().subscribe(None);
    let mut syncs: Vec<Option<Neo4jSync>> = stores.iter().map(|_| None).collect();
    let mut backoff = Duration::from_secs(1);
    loop {
        let mut failed = false;
        for (store, sync) in stores.iter().zip(syncs.iter_mut()) {
            if sync.is_none() {
                match Neo4jSync::connect(&config, store.clone()).await {
                    Ok(connected) => *sync = Some(connected),
                    Err(err) => {
                        tracing::warn!(error = %err, uri = %config.uri, "connecting to Neo4j failed; trying again later");
                        failed = true;
                        continue;
                    }
                }
            }
            if let Some(connected) = sync {
                match connected.run_once().await {
                    Ok(report) if report.applied > 0 => {
                        tracing::info!(
                            applied = report.applied,
                            cursor = report.cursor,
                            "memory mirrored to Neo4j"
                        );
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(error = %err, "replaying memory into Neo4j failed; trying again later");
                        *sync = None;
                        failed = true;
                    }
                }
            }
        }
        let wait = if failed {
            let wait = backoff;
            backoff = (backoff * 2).min(MAX_BACKOFF);
            wait
        } else {
            backoff = Duration::from_secs(1);
            EVERY
        };
        let woken = tokio::time::sleep(wait);
        tokio::pin!(woken);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = &mut woken => break,
                event = events.next() => match event {
                    None => return,
                    Some(event) if matches!(event.body, EventBody::MemoryWritten(_)) && !failed => {
                        tokio::select! {
                            () = stop.cancelled() => return,
                            () = tokio::time::sleep(DEBOUNCE) => break,
                        }
                    }
                    Some(_) => {}
                },
            }
        }
    }
}
