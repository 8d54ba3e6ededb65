//! Puts, updates by key, supersession, retraction, deletion, redaction, links, caps.

use orchestra_memory::MemoryError;
use orchestra_protocol::memory::{ChangeAction, ForgetMode, MemoryPut, MemoryStatus, PutOutcome};

use crate::suite::common::{put, search_ids, service};

#[test]
fn a_put_with_the_same_key_updates_the_active_record() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let first = put(
        &memory,
        "decision",
        Some("decision:db"),
        "We use SQLite for jobs.",
    );
    assert_eq!(first.outcome, PutOutcome::Created);
    let again = put(
        &memory,
        "decision",
        Some("decision:db"),
        "We use SQLite for jobs.",
    );
    assert_eq!(again.outcome, PutOutcome::Unchanged);
    assert_eq!(again.record.id, first.record.id);
    let updated = put(
        &memory,
        "decision",
        Some("decision:db"),
        "We use SQLite (WAL) for jobs.",
    );
    assert_eq!(updated.outcome, PutOutcome::Updated);
    assert_eq!(updated.record.id, first.record.id);
    assert_eq!(updated.record.body, "We use SQLite (WAL) for jobs.");
    assert_eq!(
        search_ids(&memory, "WAL"),
        std::slice::from_ref(&first.record.id)
    );
    let changes = memory
        .project_bank()
        .store()
        .memory_changes_after(0, 100)
        .unwrap();
    let actions: Vec<ChangeAction> = changes.iter().map(|c| c.action).collect();
    assert_eq!(actions, [ChangeAction::Put, ChangeAction::Update]);
}

#[test]
fn supersede_then_search_returns_the_new_record_not_the_old() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let old = put(
        &memory,
        "decision",
        Some("decision:http"),
        "HTTP client: we chose hyper directly.",
    );
    let new = memory
        .put(MemoryPut {
            kind: Some("decision".into()),
            key: Some("decision:http".into()),
            body: "HTTP client: we chose reqwest over hyper.".into(),
            supersedes: Some("decision:http".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(new.outcome, PutOutcome::Created);
    assert_eq!(new.superseded, std::slice::from_ref(&old.record.id));
    assert_eq!(
        new.record.supersedes.as_deref(),
        Some(old.record.id.as_str())
    );
    assert_eq!(
        search_ids(&memory, "HTTP client hyper"),
        std::slice::from_ref(&new.record.id)
    );
    let stale = memory.get(&old.record.id, None).unwrap().unwrap();
    assert_eq!(stale.status, MemoryStatus::Superseded);
    assert_eq!(stale.superseded_by.as_deref(), Some(new.record.id.as_str()));
    // The key now names the new record.
    let by_key = memory.get("decision:http", None).unwrap().unwrap();
    assert_eq!(by_key.id, new.record.id);
    // Asked for, the old one shows up — after its replacement.
    let page = memory
        .search(&orchestra_protocol::memory::MemorySearchParams {
            query: "hyper".into(),
            include_superseded: true,
            ..Default::default()
        })
        .unwrap();
    let ids: Vec<&str> = page.items.iter().map(|h| h.id.as_str()).collect();
    assert_eq!(ids, [new.record.id.as_str(), old.record.id.as_str()]);
    // One document per record: updates and supersessions replace documents, never add copies.
    let bank = memory.project_bank();
    assert_eq!(
        bank.indexed_docs().unwrap(),
        bank.store().memory_count().unwrap()
    );
    // The supersession is a link too.
    let links = memory
        .get_with_links(&new.record.id, None, None)
        .unwrap()
        .links;
    assert_eq!(links.len(), 1);
    assert_eq!(links[0].relation, "supersedes");
}

#[test]
fn retract_hides_and_delete_removes_and_scrubs_the_change_log() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let kept = put(
        &memory,
        "fact",
        None,
        "The staging host is called bluebird.",
    );
    let secret = put(
        &memory,
        "fact",
        None,
        "Alice's home address is 12 Quince Lane.",
    );
    let other = put(
        &memory,
        "fact",
        None,
        "Quince is also a build tool we tried.",
    );
    memory
        .link(&secret.record.id, &other.record.id, None, None)
        .unwrap();

    let retracted = memory
        .forget(&kept.record.id, None, ForgetMode::Retract)
        .unwrap();
    assert!(retracted.changed);
    assert!(search_ids(&memory, "bluebird").is_empty());
    let record = memory.get(&kept.record.id, None).unwrap().unwrap();
    assert_eq!(record.status, MemoryStatus::Retracted);

    memory
        .forget(&secret.record.id, None, ForgetMode::Delete)
        .unwrap();
    assert!(memory.get(&secret.record.id, None).unwrap().is_none());
    assert_eq!(
        search_ids(&memory, "Quince"),
        std::slice::from_ref(&other.record.id)
    );
    let changes = memory
        .project_bank()
        .store()
        .memory_changes_after(0, 100)
        .unwrap();
    let log = serde_json::to_string(&changes).unwrap();
    assert!(!log.contains("Quince Lane"), "{log}");
    assert!(
        changes
            .iter()
            .any(|c| c.action == ChangeAction::Delete && c.record_id == secret.record.id)
    );
    // Every entry about the deleted record, the link included, lost its payload.
    for change in changes.iter().filter(|c| c.record_id == secret.record.id) {
        assert!(change.payload.is_none(), "{change:?}");
    }
    assert!(matches!(
        memory.forget(&secret.record.id, None, ForgetMode::Delete),
        Err(MemoryError::NotFound { .. })
    ));
}

#[test]
fn secrets_are_redacted_before_they_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let body = "Deploy with OPENAI key sk-proj-abcdefghijklmnopqrstuvwx and AWS AKIAABCDEFGHIJKLMNOP, \
        google AIzaSyA1234567890abcdefghijklmnopqrstu, github ghp_abcdefghijklmnopqrstuvwxyz0123, \
        slack xoxb-1234567890-abcdefghij, header Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload, \
        DB_PASSWORD=hunter2hunter and token: abc123def456.\n\
        -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nthe end";
    let stored = put(&memory, "fact", None, body).record;
    for leaked in [
        "sk-proj-abc",
        "AKIAABCDEFGHIJKLMNOP",
        "AIzaSyA123",
        "ghp_abc",
        "xoxb-123",
        "eyJhbGci",
        "hunter2",
        "abc123def456",
        "MIIEowIBAAKCAQEA",
    ] {
        assert!(
            !stored.body.contains(leaked),
            "{leaked} leaked: {}",
            stored.body
        );
    }
    assert!(
        stored.body.contains("DB_PASSWORD=[REDACTED]"),
        "{}",
        stored.body
    );
    assert!(stored.body.contains("Bearer [REDACTED]"), "{}", stored.body);
    assert!(stored.body.ends_with("the end"), "{}", stored.body);
    assert_eq!(stored.redactions, 9, "{}", stored.body);
    let log = serde_json::to_string(
        &memory
            .project_bank()
            .store()
            .memory_changes_after(0, 10)
            .unwrap(),
    )
    .unwrap();
    assert!(!log.contains("hunter2"));
    assert!(search_ids(&memory, "hunter2").is_empty());
}

#[test]
fn links_are_typed_and_found_from_both_ends() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let bug = put(
        &memory,
        "bug",
        Some("bug:pool"),
        "Pool deadlocks under load.",
    );
    let fix = put(
        &memory,
        "fix",
        Some("fix:pool"),
        "Release the guard before awaiting.",
    );
    let link = memory
        .link("fix:pool", "bug:pool", Some("fixes"), None)
        .unwrap();
    assert_eq!(
        (link.from.as_str(), link.to.as_str()),
        (fix.record.id.as_str(), bug.record.id.as_str())
    );
    assert_eq!(link.relation, "fixes");
    // Linking again adds nothing.
    memory
        .link("fix:pool", "bug:pool", Some("fixes"), None)
        .unwrap();
    let from_bug = memory.get_with_links("bug:pool", None, None).unwrap();
    assert_eq!(from_bug.links, std::slice::from_ref(&link));
    let default = memory.link("bug:pool", "fix:pool", None, None).unwrap();
    assert_eq!(default.relation, "relates_to");
    assert!(matches!(
        memory.link("nope", "fix:pool", None, None),
        Err(MemoryError::NotFound { .. })
    ));
}

#[test]
fn bad_puts_are_refused_with_the_field_named() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let too_long = "x".repeat(2_001);
    let error = memory
        .put(MemoryPut {
            body: too_long,
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("value") && error.contains("memory.maxChars"),
        "{error}"
    );
    let error = memory
        .put(MemoryPut {
            body: "  ".into(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(error.contains("empty"), "{error}");
    let error = memory
        .put(MemoryPut {
            kind: Some("Not A Kind!".into()),
            body: "b".into(),
            ..Default::default()
        })
        .unwrap_err()
        .to_string();
    assert!(error.contains("kind"), "{error}");
}
