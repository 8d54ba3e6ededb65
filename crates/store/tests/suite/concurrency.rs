//! Two handles on one file (as two hub processes would have) and threads
//! hammering them at once.
#![allow(clippy::unwrap_used)]

use super::fixtures;

use std::sync::Arc;

use fixtures::running_job;
use orchestra_protocol::{JobStatus, now_ms};
use orchestra_store::{JobFilter, Store};

const OPS_PER_THREAD: usize = 300;

#[test]
fn two_handles_hammering_one_file_keep_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orchestra.db");
    // Open both at once too: migrations must not collide.
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| Store::open(&path).unwrap());
        let b = scope.spawn(|| Store::open(&path).unwrap());
        (Arc::new(a.join().unwrap()), Arc::new(b.join().unwrap()))
    });

    let shared = running_job("shared", "coder", "hub-a", now_ms());
    a.insert_job(&shared).unwrap();

    let mut threads = Vec::new();
    for (name, store) in [
        ("a", a.clone()),
        ("b", b.clone()),
        ("a2", a.clone()),
        ("b2", b.clone()),
    ] {
        threads.push(std::thread::spawn(move || {
            let hub = format!("hub-{name}");
            for n in 0..OPS_PER_THREAD {
                let id = format!("{name}-{n}");
                let mut job = running_job(&id, "coder", &hub, now_ms());
                store.insert_job(&job).unwrap();
                job.progress.tool_calls = 1;
                job.progress.last_output = Some(format!("output of {id}"));
                store.save_job(&job).unwrap();
                // Everyone also updates the same row.
                let mut shared = store.get_job("shared").unwrap().unwrap();
                shared.progress.last_tool = Some(id.clone());
                store.save_job(&shared).unwrap();
                store.append_log(Some(&id), "info", &id).unwrap();
            }
        }));
    }
    for thread in threads {
        thread.join().unwrap();
    }

    let names = ["a", "b", "a2", "b2"];
    assert_eq!(
        a.count_jobs().unwrap(),
        (names.len() * OPS_PER_THREAD + 1) as u64
    );
    let ids: Vec<String> = names
        .iter()
        .flat_map(|name| (0..OPS_PER_THREAD).map(move |n| format!("{name}-{n}")))
        .collect();
    for (id, job) in ids.iter().zip(b.get_jobs(&ids).unwrap()) {
        let job = job.unwrap_or_else(|| panic!("job {id} lost"));
        assert_eq!(&job.id, id);
        assert_eq!(job.progress.tool_calls, 1);
        assert_eq!(
            job.progress.last_output.as_deref(),
            Some(&*format!("output of {id}"))
        );
    }
    let logs = a.logs_after(0, u32::MAX).unwrap();
    assert_eq!(logs.len(), names.len() * OPS_PER_THREAD);
    assert!(logs.windows(2).all(|pair| pair[0].at < pair[1].at));
    assert!(
        a.get_job("shared")
            .unwrap()
            .unwrap()
            .progress
            .last_tool
            .is_some()
    );
}

#[test]
fn two_hubs_racing_to_finish_one_job_finalize_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orchestra.db");
    let a = Arc::new(Store::open(&path).unwrap());
    let b = Arc::new(Store::open(&path).unwrap());
    let jobs = 100;
    for n in 0..jobs {
        a.insert_job(&running_job(&format!("j{n}"), "coder", "h", now_ms()))
            .unwrap();
    }
    let racer = |store: Arc<Store>, status: JobStatus| {
        std::thread::spawn(move || {
            let mut wins = 0;
            for n in 0..jobs {
                let mut job = store.get_job(&format!("j{n}")).unwrap().unwrap();
                if job.status.is_final() {
                    continue;
                }
                job.finish(status, now_ms());
                if store.finish_job(&job).unwrap() {
                    wins += 1;
                }
            }
            wins
        })
    };
    let succeeded = racer(a.clone(), JobStatus::Succeeded);
    let canceled = racer(b.clone(), JobStatus::Canceled);
    let total = succeeded.join().unwrap() + canceled.join().unwrap();
    assert_eq!(total, jobs);
    let running = a
        .list_jobs(&JobFilter {
            status: Some(JobStatus::Running),
            ..JobFilter::default()
        })
        .unwrap();
    assert!(running.is_empty());
}

/// Hubs starting together open one fresh file at the same moment: every open succeeds (the
/// switch to WAL waits for the other openers instead of failing "database is locked").
#[test]
fn many_handles_opening_one_fresh_file_at_once_all_succeed() {
    for _ in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orchestra.db");
        std::thread::scope(|scope| {
            let opens: Vec<_> = (0..6).map(|_| scope.spawn(|| Store::open(&path))).collect();
            for open in opens {
                if let Err(err) = open.join().unwrap() {
                    panic!("opening a store another hub opens at once failed: {err}");
                }
            }
        });
    }
}
