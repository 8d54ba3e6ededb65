//! The output log: append, read after a cursor, prune.
#![allow(clippy::unwrap_used)]

use orchestra_protocol::now_ms;
use orchestra_store::Store;

#[test]
fn append_then_read_after_in_order() {
    let store = Store::open_in_memory().unwrap();
    let before = now_ms();
    store.append_log(None, "info", "hub started").unwrap();
    store.append_log(Some("j1"), "warn", "retrying").unwrap();
    store.append_log(Some("j1"), "error", "gave up").unwrap();

    let all = store.logs_after(before - 1, 100).unwrap();
    let messages: Vec<&str> = all.iter().map(|entry| entry.message.as_str()).collect();
    assert_eq!(messages, ["hub started", "retrying", "gave up"]);
    assert_eq!(all[0].job_id, None);
    assert_eq!(all[1].job_id.as_deref(), Some("j1"));
    assert_eq!(all[2].level, "error");
    assert!(all[0].at >= before);
    // Stamps strictly increase even within one millisecond...
    assert!(all.windows(2).all(|pair| pair[0].at < pair[1].at));
    // ...so the last stamp is an exact cursor.
    let rest = store.logs_after(all[0].at, 100).unwrap();
    assert_eq!(rest, all[1..]);
    assert!(store.logs_after(all[2].at, 100).unwrap().is_empty());
    assert_eq!(store.logs_after(before - 1, 2).unwrap(), all[..2]);
}

#[test]
fn cursor_polling_sees_every_line_exactly_once() {
    let store = Store::open_in_memory().unwrap();
    let mut cursor = 0;
    let mut seen = Vec::new();
    for n in 0..200 {
        store
            .append_log(None, "info", &format!("line {n}"))
            .unwrap();
        if n % 7 == 0 {
            for entry in store.logs_after(cursor, 3).unwrap() {
                cursor = entry.at;
                seen.push(entry.message);
            }
        }
    }
    loop {
        let page = store.logs_after(cursor, 50).unwrap();
        let Some(last) = page.last() else { break };
        cursor = last.at;
        seen.extend(page.into_iter().map(|entry| entry.message));
    }
    let expected: Vec<String> = (0..200).map(|n| format!("line {n}")).collect();
    assert_eq!(seen, expected);
}

#[test]
fn prune_keeps_the_newest_rows() {
    let store = Store::open_in_memory().unwrap();
    for n in 0..10 {
        store
            .append_log(None, "info", &format!("line {n}"))
            .unwrap();
    }
    assert_eq!(store.prune_logs(20).unwrap(), 0);
    assert_eq!(store.prune_logs(4).unwrap(), 6);
    let left: Vec<String> = store
        .logs_after(0, 100)
        .unwrap()
        .into_iter()
        .map(|entry| entry.message)
        .collect();
    assert_eq!(left, ["line 6", "line 7", "line 8", "line 9"]);
    assert_eq!(store.prune_logs(0).unwrap(), 4);
    assert!(store.logs_after(0, 100).unwrap().is_empty());
    // Appending after a full prune still works and stamps are sane.
    store.append_log(None, "info", "again").unwrap();
    assert!(store.logs_after(0, 100).unwrap()[0].at >= now_ms() - 60_000);
}
