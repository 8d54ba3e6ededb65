//! The hub's Neo4j mirror (issue 9 §6): built with `--features neo4j` and run with NEO4J_URI
//! (NEO4J_USER, NEO4J_PASSWORD) pointing at a real server, a record put through the hub shows
//! up as a `:Memory` node, replayed in the background. Without either, the test says plainly
//! that it did not run — no Neo4j is faked.
#![allow(clippy::unwrap_used)]

#[cfg(feature = "neo4j")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hub_mirrors_memory_into_neo4j_in_the_background() {
    use std::time::Duration;

    use orchestra_core::config::Config;
    use orchestra_core::hub::{Hub, HubOptions};
    use orchestra_core::memory::GlobalStore;
    use orchestra_core::workers::LaunchSettings;
    use orchestra_memory::neo4j::{Neo4jConfig, Neo4jSync};
    use orchestra_protocol::memory::MemoryPut;

    let Some(neo4j) = Neo4jConfig::from_env() else {
        panic!(
            "hub neo4j mirror test: built with `--features neo4j` but NEO4J_URI is not set: point it (and NEO4J_USER, NEO4J_PASSWORD) at a real Neo4j server, or build without the feature; no Neo4j is faked"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::builtin();
    config.tasks.store_path = Some(dir.path().join("orchestra.db"));
    let hub = Hub::start(HubOptions {
        project_dir: dir.path().to_path_buf(),
        config,
        launch: LaunchSettings {
            supervisor: None,
            // Never started: nothing here runs a worker.
            binary: dir.path().join("no-opencode"),
            project_dir: dir.path().to_path_buf(),
            env: Vec::new(),
            config_overlay: serde_json::Value::Null,
            provider_pin: None,
        },
        warm: false,
        provenance: orchestra_core::config::Provenance::default(),
        global_memory: GlobalStore::At(dir.path().join("global.db")),
        worker_mcp: None,
    })
    .await
    .unwrap();
    let memory = hub.engine().memory().unwrap().clone();
    memory
        .put(
            MemoryPut {
                key: Some("fact:neo4j".into()),
                body: "mirrored by the hub".into(),
                ..MemoryPut::default()
            },
            None,
        )
        .await
        .unwrap();
    let service = memory.service().await.unwrap();
    let project_id = service.project_id().to_owned();
    let check = Neo4jSync::connect(&neo4j, service.project_bank().store().clone())
        .await
        .unwrap();
    let mut nodes = 0;
    for _ in 0..100 {
        nodes = check.count_nodes(&project_id).await.unwrap();
        if nodes > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(nodes, 1, "the hub's background replay wrote the record");
    hub.shutdown().await;
}

#[cfg(not(feature = "neo4j"))]
#[test]
#[ignore = "not run: needs a real Neo4j server (NEO4J_URI) and `cargo test -p orchestra-core --features neo4j --test all suite::memory_neo4j`"]
fn the_hub_mirrors_memory_into_neo4j_in_the_background() {
    panic!(
        "run only with `cargo test -p orchestra-core --features neo4j --test all suite::memory_neo4j` and NEO4J_URI set"
    );
}
