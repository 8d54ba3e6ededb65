//! A run's budget pool seen from the driver: its clock, ticked while a step runs so `maxMs`
//! is reached on time even while every step waits on a slow model, and the
//! `orchestra.budget.exceeded` event when the pool is spent.

use orchestra_protocol::{
    BudgetExceeded, BudgetScope, BudgetStop, EventBody, JobRecord, WorkflowRun,
};

use crate::jobs::{JobHandle, SharedBudget};

/// Publishes `orchestra.budget.exceeded` for the run and returns why it pauses.
pub(super) fn exceeded(
    job: &JobHandle,
    record: &JobRecord,
    run: &WorkflowRun,
    stop: BudgetStop,
    step_id: &str,
) -> String {
    job.emit(EventBody::BudgetExceeded(BudgetExceeded {
        task_id: record.id.clone(),
        run_id: Some(run.run_id.clone()),
        worker_id: record.worker_id.clone(),
        workflow_id: Some(run.workflow_id.clone()),
        scope: BudgetScope::Run,
        dimension: stop.dimension,
        used: stop.used,
        cap: stop.cap,
    }));
    format!(
        "budget.{} is {} and the run used {} during step `{step_id}`; resume with \
         task_start {{kind: \"workflow\", continueRunId, budget}} and a higher budget.{} to \
         run it again",
        stop.dimension.as_str(),
        stop.cap,
        stop.used,
        stop.dimension.as_str()
    )
}

/// Runs `work` (a step) while ticking the pool's clock: at `maxMs` the pool is exhausted and
/// every step of it stops, partial output kept. `record` is the run's workflow job.
pub(super) async fn with_pool_clock<F: std::future::Future>(
    pool: Option<&SharedBudget>,
    job: &JobHandle,
    record: &JobRecord,
    work: F,
) -> F::Output {
    let Some(pool) = pool else {
        return work.await;
    };
    tokio::pin!(work);
    loop {
        let Some(at) = pool.next_timer() else {
            return work.await;
        };
        tokio::select! {
            out = &mut work => return out,
            () = tokio::time::sleep_until(at.into()) => {
                pool.tick(job, record);
            }
        }
    }
}
