//! Export → import round trip.

use orchestra_protocol::memory::{ForgetMode, MemoryPut, MemoryStatus};

use crate::suite::common::{put, put_global, search_ids, service};

#[test]
fn export_then_import_into_another_project_keeps_records_links_and_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let alpha = service(dir.path(), "alpha");
    let old = put(
        &alpha,
        "decision",
        Some("decision:orm"),
        "Use dieselzz for queries.",
    );
    let new = alpha
        .put(MemoryPut {
            kind: Some("decision".into()),
            key: Some("decision:orm".into()),
            body: "Use plain rusqlite_calls, not an ORM.".into(),
            supersedes: Some("decision:orm".into()),
            tags: vec!["db".into()],
            ..Default::default()
        })
        .unwrap();
    let gone = put(&alpha, "fact", None, "retractedzz fact");
    alpha
        .forget(&gone.record.id, None, ForgetMode::Retract)
        .unwrap();
    let global = put_global(&alpha, "preference:editor", "globalzz prefers helix");

    let mut exported = Vec::new();
    let report = alpha.export_jsonl(&mut exported).unwrap();
    assert_eq!(report.records, 4);
    assert_eq!(report.links, 1);

    // Another machine: fresh stores, another project name.
    let other = tempfile::tempdir().unwrap();
    let gamma = service(other.path(), "gamma");
    let imported = gamma.import_jsonl(&mut exported.as_slice()).unwrap();
    assert_eq!(
        (imported.records, imported.links, imported.rejected_count),
        (4, 1, 0)
    );
    let record = gamma.get(&new.record.id, None).unwrap().unwrap();
    assert_eq!(record.project_id.as_deref(), Some("gamma"));
    assert_eq!(record.tags, ["db"]);
    assert_eq!(
        gamma.get(&old.record.id, None).unwrap().unwrap().status,
        MemoryStatus::Superseded
    );
    assert_eq!(
        search_ids(&gamma, "rusqlite_calls"),
        std::slice::from_ref(&new.record.id)
    );
    assert!(search_ids(&gamma, "dieselzz").is_empty());
    assert!(search_ids(&gamma, "retractedzz").is_empty());
    assert_eq!(
        search_ids(&gamma, "globalzz"),
        std::slice::from_ref(&global.record.id)
    );

    // Importing twice adds nothing; a bad line is reported, not fatal.
    let mut again = exported.clone();
    again.extend_from_slice(b"{\"type\": \"record\", \"nonsense\": 1}\n");
    let second = gamma.import_jsonl(&mut again.as_slice()).unwrap();
    assert_eq!(
        (second.records, second.existing, second.rejected_count),
        (0, 4, 1)
    );
    assert!(
        second.rejected[0].starts_with("line 6:"),
        "{:?}",
        second.rejected
    );
    let mut round = Vec::new();
    gamma.export_jsonl(&mut round).unwrap();
    // Same records and links; only the project id differs (and has the same length here).
    assert_eq!(round.len(), exported.len());
}
