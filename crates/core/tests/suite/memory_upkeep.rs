//! Issue 24 §7 in the hub: `memory.autoRecords` is read from the config and applied in the
//! background once memory opens (automatic records past the policy deleted, the change log
//! compacted behind the index); a limit of 0 is refused with the key and the fix.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orchestra_core::config::{self, LoadOptions};
use orchestra_core::memory::{GlobalStore, HubMemory};
use orchestra_memory::{MemoryService, MemorySettings};
use orchestra_protocol::memory::{MemoryProvenance, MemoryPut};
use orchestra_store::Store;

fn load(project: &Path, global: &Path, text: &str) -> Result<config::Config, String> {
    std::fs::create_dir_all(project.join(".opencode")).unwrap();
    std::fs::write(project.join(".opencode/orchestrator.json"), text).unwrap();
    config::load(&LoadOptions {
        project_dir: project.to_path_buf(),
        global_dir: Some(global.to_path_buf()),
        extra_file: None,
    })
    .map(|loaded| loaded.config)
    .map_err(|error| error.to_string())
}

#[test]
fn a_zero_or_oversized_limit_is_refused_naming_the_key() {
    let root = tempfile::tempdir().unwrap();
    let (project, global) = (root.path().join("p"), root.path().join("g"));
    let zero = load(
        &project,
        &global,
        r#"{"memory": {"autoRecords": {"maxCount": 0}}}"#,
    );
    let message = zero.unwrap_err();
    assert!(
        message.contains("memory.autoRecords.maxCount")
            && message.contains("at least 1")
            && message.contains("memory.autoRecord"),
        "{message}"
    );
    let big = load(
        &project,
        &global,
        r#"{"memory": {"autoRecords": {"maxAgeDays": 99999999999}}}"#,
    );
    assert!(big.unwrap_err().contains("memory.autoRecords.maxAgeDays"));
    let unknown = load(
        &project,
        &global,
        r#"{"memory": {"autoRecords": {"max": 3}}}"#,
    );
    assert!(unknown.unwrap_err().contains("max"));
    let defaults = load(&project, &global, "{}").unwrap();
    assert_eq!(
        (
            defaults.memory.auto_records.max_count,
            defaults.memory.auto_records.max_age_days
        ),
        (2_000, 90)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_ages_out_automatic_records_and_compacts_the_log_once_memory_opens() {
    let root = tempfile::tempdir().unwrap();
    let (project, global_dir) = (root.path().join("p"), root.path().join("g"));
    let config = load(
        &project,
        &global_dir,
        r#"{"memory": {"autoRecords": {"maxCount": 10, "maxAgeDays": 30}}}"#,
    )
    .unwrap();
    let store = Arc::new(Store::open(&root.path().join("state/orchestra.db")).unwrap());
    let global = root.path().join("global/memory.db");
    // Records left by earlier hub runs: 30 automatic ones, and 3 a user wrote.
    {
        let memory = MemoryService::open(
            store.clone(),
            orchestra_state_dir::project_id(&project),
            Some(Arc::new(Store::open(&global).unwrap())),
            MemorySettings::default(),
        )
        .unwrap();
        for n in 0..30 {
            memory
                .put(MemoryPut {
                    kind: Some("task".to_owned()),
                    key: Some(format!("task:job{n}")),
                    body: format!("finished task {n}"),
                    tags: vec!["auto".to_owned()],
                    provenance: MemoryProvenance {
                        producer: Some("hub".to_owned()),
                        ..MemoryProvenance::default()
                    },
                    ..MemoryPut::default()
                })
                .unwrap();
        }
        for n in 0..3 {
            memory
                .put(MemoryPut {
                    kind: Some("decision".to_owned()),
                    body: format!("a decision of the user, number {n}"),
                    ..MemoryPut::default()
                })
                .unwrap();
        }
    }
    assert_eq!(store.memory_count().unwrap(), 33);
    let bus = orchestra_core::events::EventBus::in_memory();
    let memory = HubMemory::open(
        &config,
        store.clone(),
        &project,
        GlobalStore::At(global),
        bus,
    )
    .await
    .unwrap()
    .unwrap();
    // The pass runs in the background; wait for its result, with a limit.
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.memory_count().unwrap() != 13 || store.memory_change_count().unwrap() != 1 {
        assert!(
            Instant::now() < deadline,
            "records {} (want 13), change-log entries {} (want 1)",
            store.memory_count().unwrap(),
            store.memory_change_count().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let service = memory.service().await.unwrap();
    let hits = service
        .search(&orchestra_protocol::memory::MemorySearchParams {
            query: "finished task".to_owned(),
            limit: Some(50),
            ..Default::default()
        })
        .unwrap();
    let mut keys: Vec<String> = hits.items.iter().filter_map(|h| h.key.clone()).collect();
    keys.sort();
    let mut want: Vec<String> = (20..30).map(|n| format!("task:job{n}")).collect();
    want.sort();
    assert_eq!(keys, want, "only the newest 10 automatic records are found");
    let decisions = service
        .search(&orchestra_protocol::memory::MemorySearchParams {
            query: "decision".to_owned(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(decisions.items.len(), 3, "the user's records are kept");
}
