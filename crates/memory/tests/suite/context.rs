//! The injected block: deterministic, bounded, and changing only with relevant memory.

use orchestra_protocol::memory::MemoryPut;

use crate::suite::common::{put, put_global, service};

const TASK: &str = "Fix the deadlock in src/db/pool.rs when fn_acquire_conn times out";

#[test]
fn the_block_is_byte_identical_until_relevant_memory_changes() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    memory
        .put(MemoryPut {
            kind: Some("convention".into()),
            key: Some("convention:errors".into()),
            title: Some("Errors".into()),
            body: "Library errors are thiserror enums; no unwrap outside tests.".into(),
            pinned: Some(true),
            ..Default::default()
        })
        .unwrap();
    let pool = put(
        &memory,
        "bug",
        Some("bug:pool-deadlock"),
        "Deadlock in src/db/pool.rs: fn_acquire_conn held the guard across an await.",
    );
    put(
        &memory,
        "decision",
        None,
        "The pool size is 8 connections by default.",
    );
    put_global(
        &memory,
        "preference:tests",
        "Run the tests of the crates you touched.",
    );
    for i in 0..20 {
        put(
            &memory,
            "fact",
            None,
            &format!("Unrelated fact {i} about the docs site theme."),
        );
    }

    let first = memory.render_context(TASK, None).unwrap();
    assert!(
        first.text.starts_with("## Project memory (orchestra)\n"),
        "{}",
        first.text
    );
    let pinned_at = first.text.find("Library errors").unwrap();
    let bug_at = first.text.find("fn_acquire_conn held").unwrap();
    assert!(pinned_at < bug_at, "{}", first.text);
    assert!(first.tokens <= 800);
    assert!(!first.text.contains("docs site theme"), "{}", first.text);
    assert_eq!(first.record_ids[1], pool.record.id);

    // Same inputs, same bytes — also from a fresh service (another process, a restart).
    for _ in 0..3 {
        assert_eq!(memory.render_context(TASK, None).unwrap(), first);
    }
    drop(memory);
    let memory = service(dir.path(), "alpha");
    assert_eq!(memory.render_context(TASK, None).unwrap(), first);

    // An unrelated write leaves it alone.
    put(&memory, "fact", None, "The logo is blue.");
    assert_eq!(memory.render_context(TASK, None).unwrap(), first);

    // Changing a record it shows changes it.
    put(
        &memory,
        "bug",
        Some("bug:pool-deadlock"),
        "Deadlock in src/db/pool.rs: fn_acquire_conn now drops the guard before awaiting.",
    );
    let second = memory.render_context(TASK, None).unwrap();
    assert_ne!(second.hash, first.hash);
    assert!(second.text.contains("drops the guard"), "{}", second.text);
}

#[test]
fn the_block_stays_within_its_budget_and_is_empty_without_memory() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    let empty = memory.render_context(TASK, None).unwrap();
    assert_eq!(empty.text, "");
    assert_eq!(empty.tokens, 0);
    for i in 0..40 {
        put(
            &memory,
            "fact",
            None,
            &format!(
                "Note {i}: src/db/pool.rs and fn_acquire_conn {}",
                "detail ".repeat(30)
            ),
        );
    }
    for budget in [40, 100, 300] {
        let block = memory.render_context(TASK, Some(budget)).unwrap();
        assert!(block.tokens <= budget, "{} > {budget}", block.tokens);
        assert!(block.tokens >= orchestra_memory::tokenize::estimate_tokens(&block.text));
    }
}

#[test]
fn words_most_records_hold_do_not_pull_records_into_the_block() {
    let dir = tempfile::tempdir().unwrap();
    let memory = service(dir.path(), "alpha");
    for i in 0..300 {
        put(
            &memory,
            "fact",
            None,
            &format!("Weekly review note {i}: the module builds."),
        );
    }
    let parser = put(
        &memory,
        "bug",
        None,
        "The parser module rejects tabs in indentation.",
    );

    // `review` and `module` are in nearly every record: only `parser` chooses candidates.
    let block = memory
        .render_context("review the parser module", None)
        .unwrap();
    assert_eq!(block.record_ids, vec![parser.record.id], "{}", block.text);

    // When every word of the task is that common, the rarest ones still find records.
    let block = memory.render_context("review the module", None).unwrap();
    assert!(!block.record_ids.is_empty(), "no record for a common task");
}
