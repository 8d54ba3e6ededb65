//! Project and global scopes: two projects and the user's global memory, never a leak.

use std::sync::Arc;

use orchestra_memory::{MemoryService, MemorySettings};
use orchestra_protocol::memory::{ForgetMode, MemoryPut, MemoryScope, MemorySearchParams};

use crate::suite::common::{put, put_global, search_ids, service, store};

#[test]
fn two_projects_and_global_never_see_each_others_records() {
    let dir = tempfile::tempdir().unwrap();
    let alpha = service(dir.path(), "alpha");
    let beta = service(dir.path(), "beta");
    let a = put(
        &alpha,
        "decision",
        Some("decision:db"),
        "alpha stores jobs in sqlite_wal_mode",
    );
    let b = put(
        &beta,
        "decision",
        Some("decision:db"),
        "beta stores jobs in sqlite_wal_mode",
    );
    let g = put_global(
        &alpha,
        "preference:style",
        "Prefer sqlite_wal_mode everywhere",
    );

    let mut seen_by_alpha = search_ids(&alpha, "sqlite_wal_mode");
    seen_by_alpha.sort();
    let mut expected = vec![a.record.id.clone(), g.record.id.clone()];
    expected.sort();
    assert_eq!(seen_by_alpha, expected);
    let mut seen_by_beta = search_ids(&beta, "sqlite_wal_mode");
    seen_by_beta.sort();
    let mut expected = vec![b.record.id.clone(), g.record.id.clone()];
    expected.sort();
    assert_eq!(seen_by_beta, expected);

    // By id or key, too.
    assert!(beta.get(&a.record.id, None).unwrap().is_none());
    assert_eq!(
        beta.get("decision:db", None).unwrap().unwrap().id,
        b.record.id
    );
    assert!(beta.forget(&a.record.id, None, ForgetMode::Delete).is_err());
    assert!(alpha.get(&a.record.id, None).unwrap().is_some());

    // Scoped searches.
    let only_global = beta
        .search(&MemorySearchParams {
            query: "sqlite_wal_mode".into(),
            scopes: vec![MemoryScope::Global],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(only_global.items.len(), 1);
    assert_eq!(only_global.items[0].id, g.record.id);
    assert!(g.record.project_id.is_none());
}

#[test]
fn two_projects_sharing_one_store_file_stay_apart() {
    // `tasks.storePath` set in the global config puts every project in one file.
    let dir = tempfile::tempdir().unwrap();
    let shared = store(&dir.path().join("shared.db"));
    let alpha =
        MemoryService::open(shared.clone(), "alpha", None, MemorySettings::default()).unwrap();
    let beta = MemoryService::open(shared, "beta", None, MemorySettings::default()).unwrap();
    let a = put(&alpha, "fact", Some("k"), "fn_parse_header lives in alpha");
    let b = put(&beta, "fact", Some("k"), "fn_parse_header lives in beta");
    let g = beta
        .put(MemoryPut {
            scope: Some(MemoryScope::Global),
            body: "fn_parse_header is a shared idea".into(),
            ..Default::default()
        })
        .unwrap();
    let mut ids = search_ids(&alpha, "fn_parse_header");
    ids.sort();
    let mut expected = vec![a.record.id, g.record.id.clone()];
    expected.sort();
    assert_eq!(ids, expected);
    assert!(!search_ids(&alpha, "beta").contains(&b.record.id));
    assert!(alpha.get(&b.record.id, None).unwrap().is_none());
    assert_eq!(Arc::strong_count(alpha.project_bank()), 1);
}
