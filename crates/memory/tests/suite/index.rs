//! The index is derived: rebuilt from the store when missing or damaged; bad rows are skipped.

use orchestra_memory::{MemoryService, MemorySettings, index_dir_of};

use crate::suite::common::{put, search_ids, service, store};

#[test]
fn a_deleted_index_folder_is_rebuilt_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (id, index_dir) = {
        let memory = service(dir.path(), "alpha");
        let id = put(&memory, "fact", None, "rebuild_marker survives")
            .record
            .id;
        assert_eq!(
            search_ids(&memory, "rebuild_marker"),
            std::slice::from_ref(&id)
        );
        (id, index_dir_of(memory.project_bank().store()).unwrap())
    };
    std::fs::remove_dir_all(&index_dir).unwrap();
    let memory = service(dir.path(), "alpha");
    assert!(index_dir.join("meta.json").exists());
    assert_eq!(
        search_ids(&memory, "rebuild_marker"),
        std::slice::from_ref(&id)
    );
    // Writes after the rebuild (an update of an indexed record, a new one) replace or add
    // exactly one document each.
    put(&memory, "fact", Some("k"), "rebuild_marker keyed");
    put(&memory, "fact", Some("k"), "rebuild_marker keyed, updated");
    let bank = memory.project_bank();
    assert_eq!(bank.indexed_docs().unwrap(), 2);
    assert_eq!(search_ids(&memory, "updated").len(), 1);
}

#[test]
fn a_damaged_index_is_rebuilt_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let (id, index_dir) = {
        let memory = service(dir.path(), "alpha");
        let id = put(&memory, "fact", None, "damage_marker survives")
            .record
            .id;
        search_ids(&memory, "damage_marker");
        (id, index_dir_of(memory.project_bank().store()).unwrap())
    };
    std::fs::write(index_dir.join("meta.json"), b"{ not json").unwrap();
    let memory = service(dir.path(), "alpha");
    assert_eq!(search_ids(&memory, "damage_marker"), [id]);
}

#[test]
fn one_unreadable_row_is_skipped_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("alpha").join("orchestra.db");
    let memory = service(dir.path(), "alpha");
    let good = put(&memory, "fact", None, "skip_marker good").record.id;
    let bad = put(&memory, "fact", None, "skip_marker bad").record.id;
    assert_eq!(search_ids(&memory, "skip_marker").len(), 2);
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute(
        "UPDATE memory_records SET record = '{broken' WHERE id = ?1",
        [&bad],
    )
    .unwrap();
    let page = memory
        .search(&orchestra_protocol::memory::MemorySearchParams {
            query: "skip_marker".into(),
            ..Default::default()
        })
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, [good.as_str()]);
    assert_eq!(page.skipped.len(), 1);
    assert_eq!(page.skipped[0].id, bad);
    // A rebuild skips it too instead of failing.
    memory.project_bank().reindex().unwrap();
    assert_eq!(search_ids(&memory, "skip_marker"), [good]);
    let in_memory =
        MemoryService::open(store(&path), "alpha", None, MemorySettings::default()).unwrap();
    assert_eq!(in_memory.project_bank().indexed_docs().unwrap(), 1);
}
