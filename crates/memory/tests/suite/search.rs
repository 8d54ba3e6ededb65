//! Ranked search: exact identifiers, paths and error strings; filters; bounded pages.

use orchestra_memory::MemoryError;
use orchestra_protocol::memory::{ForgetMode, MemoryDetail, MemoryPut, MemorySearchParams};

use crate::suite::common::{put, search_ids, service};

#[test]
fn identifiers_paths_and_error_codes_are_found_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let path = put(
        &memory,
        "fact",
        None,
        "Connection pooling lives in src/db/pool.rs and is shared.",
    );
    let ident = put(
        &memory,
        "bug",
        None,
        "fn_parse_header panics on an empty header line.",
    );
    let error = put(
        &memory,
        "error",
        None,
        "error[E0502]: cannot borrow `x` as mutable because it is also borrowed as immutable",
    );
    for i in 0..30 {
        put(
            &memory,
            "fact",
            None,
            &format!("Unrelated note {i} about the database and the parser."),
        );
    }
    assert_eq!(search_ids(&memory, "src/db/pool.rs")[0], path.record.id);
    assert_eq!(search_ids(&memory, "pool.rs")[0], path.record.id);
    assert_eq!(search_ids(&memory, "fn_parse_header")[0], ident.record.id);
    assert_eq!(search_ids(&memory, "E0502")[0], error.record.id);
    assert_eq!(
        search_ids(&memory, "cannot borrow `x` as mutable")[0],
        error.record.id
    );
    // Read-your-writes: a put is searchable at once.
    let fresh = put(&memory, "fact", None, "zyxxy_marker appears once");
    assert_eq!(search_ids(&memory, "zyxxy_marker"), [fresh.record.id]);
}

#[test]
fn kinds_and_tags_filter() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let bug = memory
        .put(MemoryPut {
            kind: Some("bug".into()),
            body: "cache eviction races".into(),
            tags: vec!["cache".into(), "race".into()],
            ..Default::default()
        })
        .unwrap();
    put(&memory, "decision", None, "cache eviction uses LRU");
    let page = memory
        .search(&MemorySearchParams {
            query: "cache eviction".into(),
            kinds: vec!["bug".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].id, bug.record.id);
    let page = memory
        .search(&MemorySearchParams {
            query: "cache".into(),
            tags: vec!["race".into()],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page.items.len(), 1);
    // An empty query lists the newest first.
    let page = memory.search(&MemorySearchParams::default()).unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[1].id, bug.record.id);
}

/// A value that is one record's kind and another's tag filters only as what it is, and deleting
/// one of the two leaves the other's document alone.
#[test]
fn a_kind_filter_never_matches_a_tag_of_the_same_name() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let put_with = |kind: &str, tag: &str| {
        memory
            .put(MemoryPut {
                kind: Some(kind.into()),
                body: format!("facet_marker {kind} tagged {tag}"),
                tags: vec![tag.into()],
                ..Default::default()
            })
            .unwrap()
            .record
            .id
    };
    let decision_tagged_bug = put_with("decision", "bug");
    let bug_tagged_decision = put_with("bug", "decision");
    let ids = |params: MemorySearchParams| -> Vec<String> {
        memory
            .search(&params)
            .unwrap()
            .items
            .into_iter()
            .map(|hit| hit.id)
            .collect()
    };
    let by_kind = ids(MemorySearchParams {
        query: "facet_marker".into(),
        kinds: vec!["bug".into()],
        ..Default::default()
    });
    assert_eq!(by_kind, std::slice::from_ref(&bug_tagged_decision));
    let by_tag = ids(MemorySearchParams {
        query: "facet_marker".into(),
        tags: vec!["bug".into()],
        ..Default::default()
    });
    assert_eq!(by_tag, std::slice::from_ref(&decision_tagged_bug));
    memory
        .forget(&decision_tagged_bug, None, ForgetMode::Delete)
        .unwrap();
    assert_eq!(search_ids(&memory, "facet_marker"), [bug_tagged_decision]);
}

#[test]
fn a_tiny_budget_returns_a_cursor_not_a_truncated_record() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let mut ids = Vec::new();
    for i in 0..12 {
        let body = format!("paging_marker record {i}: {}", "some long text ".repeat(20));
        ids.push(put(&memory, "fact", None, &body).record.id);
    }
    let mut params = MemorySearchParams {
        query: "paging_marker".into(),
        detail: MemoryDetail::Full,
        budget_tokens: Some(10),
        limit: Some(5),
        ..Default::default()
    };
    // Too small for even one record: no items, a cursor, and the budget it would need.
    let page = memory.search(&params).unwrap();
    assert!(page.items.is_empty());
    let need = page.needs_budget_tokens.unwrap();
    assert!(need > 10);
    assert!(page.next_cursor.is_some());

    // With room for about two full records a page, paging visits every record once, whole.
    params.budget_tokens = Some(need * 2 + need / 2);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = memory.search(&params).unwrap();
        assert!(page.tokens <= params.budget_tokens.unwrap());
        assert!(!page.items.is_empty());
        for hit in &page.items {
            let record = hit.record.as_ref().unwrap();
            assert!(record.body.ends_with(&"some long text ".repeat(20)));
            seen.push(hit.id.clone());
        }
        pages += 1;
        match page.next_cursor {
            Some(cursor) => params.cursor = Some(cursor),
            None => break,
        }
    }
    assert_eq!(pages, 6);
    seen.sort();
    ids.sort();
    assert_eq!(seen, ids);

    // A cursor belongs to its search.
    params.query = "something else".into();
    assert!(matches!(
        memory.search(&params),
        Err(MemoryError::BadCursor(_))
    ));
}
