//! Several writers on one global store, as several projects' hubs are: every write lands once,
//! and every service's search sees every write (the index sync protocol under an flock).

use std::sync::Arc;

use orchestra_protocol::memory::MemorySearchParams;

use crate::suite::common::{put_global, service};

const WRITES: usize = 60;

#[test]
fn two_services_writing_one_global_store_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // Separate Store handles and separate index handles on the same files: what two hub
    // processes have (flock conflicts between two open files in one process as between two
    // processes).
    let alpha = Arc::new(service(dir.path(), "alpha"));
    let beta = Arc::new(service(dir.path(), "beta"));
    let handles: Vec<_> = [("alpha", alpha.clone()), ("beta", beta.clone())]
        .into_iter()
        .map(|(name, memory)| {
            std::thread::spawn(move || {
                for i in 0..WRITES {
                    put_global(
                        &memory,
                        &format!("{name}:{i}"),
                        &format!("concurrent_marker from {name} number {i}"),
                    );
                    if i % 10 == 0 {
                        // Searching while the other writes exercises the index hand-over.
                        let page = memory
                            .search(&MemorySearchParams {
                                query: format!("concurrent_marker {name}"),
                                limit: Some(100),
                                ..Default::default()
                            })
                            .unwrap();
                        assert!(!page.items.is_empty());
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        handle.join().unwrap();
    }
    for memory in [&alpha, &beta] {
        let mut cursor = None;
        let mut total = 0;
        loop {
            let page = memory
                .search(&MemorySearchParams {
                    query: "concurrent_marker".into(),
                    limit: Some(100),
                    budget_tokens: Some(100_000),
                    cursor: cursor.take(),
                    ..Default::default()
                })
                .unwrap();
            total += page.items.len();
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(total, 2 * WRITES);
    }
    let global = alpha.global_bank().unwrap();
    assert_eq!(global.store().memory_count().unwrap(), (2 * WRITES) as u64);
    assert_eq!(global.indexed_docs().unwrap(), (2 * WRITES) as u64);
}
