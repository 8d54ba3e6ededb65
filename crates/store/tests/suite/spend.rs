//! `worker_spend_since`: what the day's worker tasks spent, for `budgets.perDay`.
#![allow(clippy::unwrap_used)]

use super::fixtures::running_job;
use orchestra_protocol::{BudgetSpend, JobStatus};
use orchestra_store::Store;

#[test]
fn a_continued_task_counts_only_the_model_steps_it_added() {
    let store = Store::open_in_memory().unwrap();
    let mut first = running_job("first", "coder", "h1", 1_000);
    store.insert_job(&first).unwrap();
    first.spent = Some(BudgetSpend::of(100, 0.0, 3, 0));
    first.usage.input = 100;
    first.duration_ms = Some(2_000);
    first.status = JobStatus::Failed;
    store.finish_job(&first).unwrap();

    // It continues `first`: its `spent` (5 steps) includes first's 3.
    let mut next = running_job("next", "coder", "h1", 5_000);
    next.continues_task_id = Some("first".into());
    store.insert_job(&next).unwrap();
    next.spent = Some(BudgetSpend::of(150, 0.0, 5, 0));
    next.usage.input = 50;
    next.duration_ms = Some(1_000);
    next.status = JobStatus::Failed;
    store.finish_job(&next).unwrap();

    let day = store.worker_spend_since(0).unwrap();
    assert_eq!(day.turns, 5);
    assert_eq!(day.tokens, 150);
    assert_eq!(day.ms, 3_000);
    // `first` started before the window: `next` still adds only its own two steps.
    let later = store.worker_spend_since(4_000).unwrap();
    assert_eq!(later.turns, 2);
    assert_eq!(later.ms, 1_000);
}
