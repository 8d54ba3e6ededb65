//! Services over stores in a temp folder.

use std::path::Path;
use std::sync::Arc;

use orchestra_memory::{MemoryService, MemorySettings};
use orchestra_protocol::memory::{MemoryPut, MemoryPutResult, MemoryScope, MemorySearchParams};
use orchestra_store::Store;

pub fn store(path: &Path) -> Arc<Store> {
    Arc::new(Store::open(path).unwrap())
}

/// A project service with its own store under `dir/<project>/` and the global store
/// `dir/global/memory.db`.
pub fn service(dir: &Path, project: &str) -> MemoryService {
    MemoryService::open(
        store(&dir.join(project).join("orchestra.db")),
        project,
        Some(store(&dir.join("global").join("memory.db"))),
        MemorySettings::default(),
    )
    .unwrap()
}

pub fn put(service: &MemoryService, kind: &str, key: Option<&str>, body: &str) -> MemoryPutResult {
    service
        .put(MemoryPut {
            kind: Some(kind.to_owned()),
            key: key.map(str::to_owned),
            body: body.to_owned(),
            ..Default::default()
        })
        .unwrap()
}

pub fn put_global(service: &MemoryService, key: &str, body: &str) -> MemoryPutResult {
    service
        .put(MemoryPut {
            scope: Some(MemoryScope::Global),
            key: Some(key.to_owned()),
            body: body.to_owned(),
            ..Default::default()
        })
        .unwrap()
}

/// Ids of the hits for `query` (default limits).
pub fn search_ids(service: &MemoryService, query: &str) -> Vec<String> {
    service
        .search(&MemorySearchParams {
            query: query.to_owned(),
            ..Default::default()
        })
        .unwrap()
        .items
        .into_iter()
        .map(|hit| hit.id)
        .collect()
}
