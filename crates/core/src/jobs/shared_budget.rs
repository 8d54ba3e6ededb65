//! One budget shared by several jobs: a workflow run's steps, parallel members included.
//!
//! Each job reports what it has spent itself; the pool's spend is what the run spent before
//! (stored on the run) plus every job's own, so two parallel steps draw from one pool. The
//! first job to reach a cap exhausts the pool: it stops, and every other job of the pool sees
//! the exhaustion at once and stops too, partial output kept. Time needs no report: the run's
//! driver ticks the pool's clock (`next_timer`, `tick`), so `maxMs` stops the steps on time
//! while they wait on a slow model.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use orchestra_protocol::{
    BudgetDimension, BudgetSpend, BudgetStop, BudgetWarning, EventBody, JobRecord, TaskBudget,
};
use tokio_util::sync::CancellationToken;

use super::JobHandle;

/// The share of a cap at which `orchestra.budget.warning` is published.
const WARN_AT: f64 = 0.8;

/// Cheap to clone: every clone is the same pool.
#[derive(Clone)]
pub struct SharedBudget {
    inner: Arc<Inner>,
}

struct Inner {
    budget: TaskBudget,
    prior: BudgetSpend,
    started: Instant,
    state: Mutex<PoolState>,
    exhausted: CancellationToken,
}

#[derive(Default)]
struct PoolState {
    jobs: HashMap<String, BudgetSpend>,
    warned: [bool; 4],
    stop: Option<BudgetStop>,
}

impl SharedBudget {
    pub fn new(budget: TaskBudget, prior: BudgetSpend) -> SharedBudget {
        SharedBudget {
            inner: Arc::new(Inner {
                budget,
                prior,
                started: Instant::now(),
                state: Mutex::new(PoolState::default()),
                exhausted: CancellationToken::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// What came before plus every job's own spend; time is the pool's working time.
    pub fn total(&self) -> BudgetSpend {
        let state = self.lock();
        total_of(&self.inner, &state)
    }

    /// The cap that exhausted the pool, once one did.
    pub fn stop(&self) -> Option<BudgetStop> {
        self.lock().stop
    }

    /// Cancelled when the pool is exhausted.
    pub fn exhausted(&self) -> &CancellationToken {
        &self.inner.exhausted
    }

    /// Records `own` (the job's spend so far, without time) and publishes a warning for each
    /// dimension newly past 80 %. Returns the stop when the pool is (now) at a cap.
    pub fn report(
        &self,
        job: &JobHandle,
        record: &JobRecord,
        own: BudgetSpend,
    ) -> Option<BudgetStop> {
        self.evaluate(job, record, Some(own))
    }

    /// The pool's clock: what `report` does with no new usage, so `maxMs` is reached on time
    /// even while every step waits on a slow model. `record` is the run's workflow job.
    pub fn tick(&self, job: &JobHandle, record: &JobRecord) -> Option<BudgetStop> {
        self.evaluate(job, record, None)
    }

    /// When the clock must tick next: the 80 % warning of `maxMs`, then its cap; none once
    /// the pool is exhausted or without `maxMs`.
    pub fn next_timer(&self) -> Option<Instant> {
        let cap = self.inner.budget.max_ms?;
        let state = self.lock();
        if state.stop.is_some() {
            return None;
        }
        let warn_index = 3;
        let at = if state.warned[warn_index] {
            cap
        } else {
            (cap as f64 * WARN_AT) as u64
        };
        let left = at.saturating_sub(self.inner.prior.ms);
        Some(self.inner.started + Duration::from_millis(left))
    }

    fn evaluate(
        &self,
        job: &JobHandle,
        record: &JobRecord,
        own: Option<BudgetSpend>,
    ) -> Option<BudgetStop> {
        let mut warnings = Vec::new();
        let stop = {
            let mut state = self.lock();
            if let Some(own) = own {
                state.jobs.insert(record.id.clone(), own);
            }
            let total = total_of(&self.inner, &state);
            for (index, dimension) in BudgetDimension::ALL.into_iter().enumerate() {
                let Some(cap) = self.inner.budget.cap(dimension) else {
                    continue;
                };
                let used = total.used(dimension);
                if used >= cap * WARN_AT && !state.warned[index] {
                    state.warned[index] = true;
                    warnings.push((dimension, used, cap));
                }
                if used >= cap && state.stop.is_none() {
                    state.stop = Some(BudgetStop {
                        dimension,
                        used,
                        cap,
                    });
                }
            }
            state.stop
        };
        for (dimension, used, cap) in warnings {
            job.emit(EventBody::BudgetWarning(BudgetWarning {
                job_id: record.id.clone(),
                run_id: record.run_id.clone(),
                dimension,
                used,
                cap,
            }));
        }
        if stop.is_some() {
            self.inner.exhausted.cancel();
        }
        stop
    }
}

fn total_of(inner: &Inner, state: &PoolState) -> BudgetSpend {
    let ms = u64::try_from(inner.started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let own = state
        .jobs
        .values()
        .fold(BudgetSpend::default(), |sum, spend| sum.plus(*spend));
    inner.prior.plus(own).plus(BudgetSpend::of(0, 0.0, 0, ms))
}

/// The error of a job its run's pool stopped.
pub(super) fn pool_stop_text(stop: &BudgetStop) -> String {
    format!(
        "the run's budget is spent: budget.{} is {} and the run used {}; this step was stopped \
         with its partial output kept. Resume the run with task_start {{kind: \"workflow\", \
         continueRunId, budget}} and a higher budget.{}",
        stop.dimension.as_str(),
        stop.cap,
        stop.used,
        stop.dimension.as_str()
    )
}
