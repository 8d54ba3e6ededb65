//! Issue 24 §7: automatic records age out by policy (through the delete path, so search
//! follows), and change-log entries go once every consumer has passed them.

use std::collections::HashSet;

use orchestra_memory::{AutoRecordPolicy, MemoryService};
use orchestra_protocol::memory::{MemoryProvenance, MemoryPut, MemoryRecord};
use orchestra_protocol::now_ms;
use orchestra_store::MemoryListFilter;

use crate::suite::common::{put, search_ids, service};

/// A record the way the hub's recorder writes one for a finished task.
fn automatic(memory: &MemoryService, n: usize, body: &str) -> MemoryRecord {
    memory
        .put(MemoryPut {
            kind: Some("task".to_owned()),
            key: Some(format!("task:job{n}")),
            title: Some(format!("coder: job {n}")),
            body: body.to_owned(),
            tags: vec!["auto".to_owned(), "coder".to_owned()],
            provenance: MemoryProvenance {
                task_id: Some(format!("job{n}")),
                producer: Some("hub".to_owned()),
                ..MemoryProvenance::default()
            },
            ..MemoryPut::default()
        })
        .unwrap()
        .record
}

fn all_records(memory: &MemoryService) -> Vec<MemoryRecord> {
    memory
        .project_bank()
        .store()
        .memory_list(&MemoryListFilter {
            project_id: Some(memory.project_id().to_owned()),
            limit: 100_000,
            ..MemoryListFilter::default()
        })
        .unwrap()
        .rows
        .into_iter()
        .map(|row| row.record)
        .collect()
}

fn is_automatic(record: &MemoryRecord) -> bool {
    record.provenance.producer.as_deref() == Some("hub") && record.tags.iter().any(|t| t == "auto")
}

#[test]
fn age_out_keeps_exactly_the_newest_automatic_records_and_nothing_else_goes() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    // The oldest automatic record is pinned by the user: it stays whatever its rank.
    let mut pinned = automatic(&memory, 100_000, "pinned task summary kangaroo");
    pinned.pinned = true;
    memory
        .put(MemoryPut {
            kind: Some("task".to_owned()),
            key: pinned.key.clone(),
            body: pinned.body.clone(),
            pinned: Some(true),
            ..MemoryPut::default()
        })
        .unwrap();
    let explicit: Vec<String> = (0..5)
        .map(|i| {
            put(
                &memory,
                "decision",
                Some(&format!("decision:{i}")),
                &format!("explicit task summary decision {i}"),
            )
            .record
            .id
        })
        .collect();
    let mut written = Vec::new();
    for n in 0..3_000 {
        let body = match n {
            0 => "task summary quokka".to_owned(),
            2_999 => "task summary wombat".to_owned(),
            _ => format!("task summary number {n}"),
        };
        written.push(automatic(&memory, n, &body).id);
    }
    assert_eq!(
        search_ids(&memory, "quokka").len(),
        1,
        "indexed before the pass"
    );

    // A bounded pass stops at its bound and says more is due.
    let policy = AutoRecordPolicy {
        max_count: 1_000,
        max_age_days: 90,
    };
    let first = memory.age_out_automatic(policy, now_ms(), 300).unwrap();
    assert_eq!((first.deleted, first.more), (300, true));
    let rest = memory.age_out_automatic(policy, now_ms(), 100_000).unwrap();
    assert_eq!((rest.deleted, rest.more), (1_700, false));
    let again = memory.age_out_automatic(policy, now_ms(), 100_000).unwrap();
    assert_eq!(again.deleted, 0, "a second pass finds nothing due");

    let records = all_records(&memory);
    let left_automatic: HashSet<&str> = records
        .iter()
        .filter(|r| is_automatic(r) && !r.pinned)
        .map(|r| r.id.as_str())
        .collect();
    let newest: HashSet<&str> = written[2_000..].iter().map(String::as_str).collect();
    assert_eq!(left_automatic, newest, "exactly the newest 1,000 remain");
    for id in &explicit {
        assert!(records.iter().any(|r| &r.id == id), "explicit {id} kept");
    }
    assert!(
        records
            .iter()
            .any(|r| r.key == pinned.key && r.pinned && r.body.contains("kangaroo")),
        "the pinned automatic record is kept"
    );
    assert_eq!(records.len(), 1_000 + 5 + 1);

    // Search follows the deletes.
    assert!(
        search_ids(&memory, "quokka").is_empty(),
        "an aged-out record is not found"
    );
    assert_eq!(search_ids(&memory, "wombat"), vec![written[2_999].clone()]);
    assert_eq!(search_ids(&memory, "kangaroo").len(), 1);
    let survivors: HashSet<String> = records.iter().map(|r| r.id.clone()).collect();
    for id in search_ids(&memory, "summary") {
        assert!(survivors.contains(&id), "search returned the deleted {id}");
    }
    assert_eq!(memory.project_bank().indexed_docs().unwrap(), 1_006);
}

#[test]
fn age_out_removes_automatic_records_past_the_age_limit() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let old = automatic(&memory, 1, "stale task summary platypus");
    let fresh = automatic(&memory, 2, "fresh task summary echidna");
    // Backdate the first record by 100 days (an import keeps the times it is given).
    let mut backdated = old.clone();
    backdated.id = "mem_backdated00000".to_owned();
    backdated.key = Some("task:old".to_owned());
    backdated.updated_at = now_ms() - 100 * 24 * 60 * 60 * 1000;
    backdated.created_at = backdated.updated_at;
    memory
        .project_bank()
        .store()
        .memory_import(&[backdated.clone()], &[])
        .unwrap();
    let policy = AutoRecordPolicy {
        max_count: 2_000,
        max_age_days: 90,
    };
    let report = memory.age_out_automatic(policy, now_ms(), 100).unwrap();
    assert_eq!(report.deleted, 1);
    let ids: Vec<String> = all_records(&memory).into_iter().map(|r| r.id).collect();
    assert!(!ids.contains(&backdated.id));
    assert!(ids.contains(&old.id) && ids.contains(&fresh.id));
    assert_eq!(search_ids(&memory, "platypus"), vec![old.id]);
}

#[test]
fn change_log_entries_go_once_the_index_has_passed_them_and_stay_for_a_lagging_consumer() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let bank = memory.project_bank().clone();
    let store = bank.store().clone();
    for n in 0..40 {
        put(
            &memory,
            "fact",
            Some(&format!("fact:{n}")),
            &format!("fact number {n} about gears"),
        );
    }
    let head = store.memory_head_seq().unwrap();
    assert_eq!(store.memory_change_count().unwrap(), 40);

    // The index has not consumed the puts yet: nothing goes.
    assert_eq!(bank.compact_change_log(&[], 1_000).unwrap(), (0, false));
    assert_eq!(store.memory_change_count().unwrap(), 40);

    // A consumer that lags (the Neo4j sync at entry 10) keeps everything after its cursor,
    // and one that is configured but never ran keeps everything.
    store.set_memory_cursor("neo4j", 10).unwrap();
    bank.sync().unwrap();
    assert_eq!(
        bank.compact_change_log(&["neo4j", "other"], 1_000).unwrap(),
        (0, false)
    );
    assert_eq!(store.memory_change_count().unwrap(), 40);
    let report = memory.compact_change_logs(&["neo4j"], 1_000).unwrap();
    assert_eq!(report.dropped, 10);
    let kept = store.memory_changes_after(0, 1_000).unwrap();
    assert_eq!(kept.first().map(|c| c.seq), Some(11));
    assert_eq!(kept.len(), 30);

    // The consumer catches up: all but the head goes, in bounded steps.
    store.set_memory_cursor("neo4j", head).unwrap();
    assert_eq!(bank.compact_change_log(&["neo4j"], 20).unwrap(), (20, true));
    assert_eq!(bank.compact_change_log(&["neo4j"], 20).unwrap(), (9, false));
    assert_eq!(store.memory_change_count().unwrap(), 1);
    assert_eq!(
        store.memory_head_seq().unwrap(),
        head,
        "the head entry stays"
    );

    // The index goes on from there, in this process and in a new one (no rebuild needed for
    // it to see later writes, deletes included).
    let added = put(&memory, "fact", Some("fact:new"), "a fact about sprockets");
    memory
        .forget(
            "fact:3",
            None,
            orchestra_protocol::memory::ForgetMode::Delete,
        )
        .unwrap();
    assert_eq!(
        search_ids(&memory, "sprockets"),
        vec![added.record.id.clone()]
    );
    let reopened = service(dir.path(), "alpha");
    assert_eq!(search_ids(&reopened, "sprockets"), vec![added.record.id]);
    assert_eq!(
        search_ids(&reopened, "gears").len(),
        10,
        "default page of the 39 left"
    );
    assert_eq!(reopened.project_bank().indexed_docs().unwrap(), 40);
}
