//! The Neo4j mirror, against a real server only: set NEO4J_URI (and NEO4J_USER,
//! NEO4J_PASSWORD) and run with `--features neo4j`. Without them the test says it did not run.

#[cfg(feature = "neo4j")]
#[tokio::test]
async fn the_change_log_replays_into_neo4j_and_resumes() {
    use orchestra_memory::neo4j::{CURSOR_NAME, Neo4jConfig, Neo4jSync};
    use orchestra_protocol::memory::ForgetMode;

    use crate::suite::common::{put, service};

    let Some(config) = Neo4jConfig::from_env() else {
        panic!(
            "neo4j sync test: built with `--features neo4j` but NEO4J_URI is not set: point it (and NEO4J_USER, NEO4J_PASSWORD) at a real Neo4j server, or build without the feature; no Neo4j is faked"
        );
    };
    let dir = tempfile::tempdir().unwrap();
    let project = format!("neo4j-test-{}", std::process::id());
    let memory = service(dir.path(), &project);
    let store = memory.project_bank().store().clone();
    let a = put(&memory, "decision", Some("a"), "first");
    put(&memory, "fact", Some("b"), "second");
    memory.link("a", "b", Some("relates_to"), None).unwrap();
    let sync = Neo4jSync::connect(&config, store.clone()).await.unwrap();
    let first = sync.run_once().await.unwrap();
    assert!(first.applied >= 3);
    assert_eq!(sync.count_nodes(&project).await.unwrap(), 2);
    // Resumes: nothing new, nothing replayed; then only the new changes.
    assert_eq!(sync.run_once().await.unwrap().applied, 0);
    memory
        .forget(&a.record.id, None, ForgetMode::Delete)
        .unwrap();
    let again = Neo4jSync::connect(&config, store.clone()).await.unwrap();
    let second = again.run_once().await.unwrap();
    assert_eq!(second.applied, 1);
    assert_eq!(again.count_nodes(&project).await.unwrap(), 1);
    assert_eq!(store.memory_cursor(CURSOR_NAME).unwrap(), second.cursor);
}

#[cfg(not(feature = "neo4j"))]
#[test]
#[ignore = "not run: needs a real Neo4j server (NEO4J_URI) and `cargo test -p orchestra-memory --features neo4j --test all suite::neo4j`"]
fn the_change_log_replays_into_neo4j_and_resumes() {
    panic!(
        "run only with `cargo test -p orchestra-memory --features neo4j --test all suite::neo4j` and NEO4J_URI set"
    );
}
