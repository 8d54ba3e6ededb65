//! A task's budget while it runs: what it has spent (its own finished model steps plus what the
//! tasks it continues spent, as stored), the 80 % warnings, and the stop at the cap.
//!
//! Spend is checked after every finished model step, so a task runs at most the one step that
//! crossed a cap; the runner then aborts the session at once. Time (`maxMs`) is a deadline the
//! runner waits on beside the job's own timeout.

use std::time::{Duration, Instant};

use orchestra_protocol::{
    BudgetDimension, BudgetExceeded, BudgetScope, BudgetSpend, BudgetStop, BudgetWarning,
    EventBody, JobRecord, TaskBudget, TokenUsage,
};

use super::JobHandle;

/// The share of a cap at which `orchestra.budget.warning` is published.
const WARN_AT: f64 = 0.8;

pub(super) struct BudgetGuard {
    budget: TaskBudget,
    /// What the continued tasks spent, read from the store when this task started.
    prior: BudgetSpend,
    started: Instant,
    warned: [bool; 4],
}

impl BudgetGuard {
    pub fn new(budget: TaskBudget, prior: BudgetSpend) -> BudgetGuard {
        BudgetGuard {
            budget,
            prior,
            started: Instant::now(),
            warned: [false; 4],
        }
    }

    /// Prior spend plus this task's steps and time so far.
    pub fn spend(&self, usage: &TokenUsage, turns: u32) -> BudgetSpend {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.prior
            .plus(BudgetSpend::of(usage.total(), usage.cost, turns, ms))
    }

    /// Publishes a warning for each dimension newly past 80 %, and returns the first dimension
    /// at or past its cap.
    pub fn check(
        &mut self,
        job: &JobHandle,
        record: &JobRecord,
        spend: &BudgetSpend,
    ) -> Option<BudgetStop> {
        let mut stop = None;
        for (index, dimension) in BudgetDimension::ALL.into_iter().enumerate() {
            let Some(cap) = self.budget.cap(dimension) else {
                continue;
            };
            let used = spend.used(dimension);
            if used >= cap * WARN_AT && !self.warned[index] {
                self.warned[index] = true;
                job.emit(EventBody::BudgetWarning(BudgetWarning {
                    job_id: record.id.clone(),
                    run_id: record.run_id.clone(),
                    dimension,
                    used,
                    cap,
                }));
            }
            if used >= cap && stop.is_none() {
                stop = Some(BudgetStop {
                    dimension,
                    used,
                    cap,
                });
            }
        }
        stop
    }

    /// When the next time-based thing happens: the 80 % warning of `maxMs`, then its cap.
    pub fn next_timer(&self) -> Option<Instant> {
        let cap = self.budget.max_ms?;
        let left = cap.saturating_sub(self.prior.ms);
        let warn_index = 3;
        let at = if self.warned[warn_index] {
            left
        } else {
            (left as f64 * WARN_AT) as u64
        };
        Some(self.started + Duration::from_millis(at))
    }
}

/// Records that the task's own budget stopped it and publishes `orchestra.budget.exceeded`.
/// Returns the error text for the task.
pub(super) fn stop_task(job: &JobHandle, record: &mut JobRecord, stop: BudgetStop) -> String {
    record.budget_stop = Some(stop);
    job.emit(EventBody::BudgetExceeded(BudgetExceeded {
        task_id: record.id.clone(),
        run_id: record.run_id.clone(),
        worker_id: record.worker_id.clone(),
        workflow_id: None,
        scope: BudgetScope::Task,
        dimension: stop.dimension,
        used: stop.used,
        cap: stop.cap,
    }));
    stop_text(&stop)
}

/// The error text of a task its budget stopped: the dimension, the usage and the cap.
fn stop_text(stop: &BudgetStop) -> String {
    let (used, cap) = match stop.dimension {
        BudgetDimension::MaxCostUsd => (format!("${:.4}", stop.used), format!("${:.4}", stop.cap)),
        BudgetDimension::MaxMs => (format!("{} ms", stop.used), format!("{} ms", stop.cap)),
        BudgetDimension::MaxTokens => (format!("{} tokens", stop.used), format!("{}", stop.cap)),
        BudgetDimension::MaxTurns => (
            format!("{} model steps", stop.used),
            format!("{}", stop.cap),
        ),
    };
    format!(
        "budget exceeded: budget.{} is {cap} and the task used {used}; the worker's model was \
         stopped and its partial output kept. Continue it in the same session with task_start \
         {{continueTaskId, budget}} and a higher budget.{}",
        stop.dimension.as_str(),
        stop.dimension.as_str()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_the_dimension_the_usage_and_the_cap() {
        let text = stop_text(&BudgetStop {
            dimension: BudgetDimension::MaxTurns,
            used: 3.0,
            cap: 3.0,
        });
        assert!(text.contains("budget.maxTurns is 3"), "{text}");
        assert!(text.contains("used 3 model steps"), "{text}");
    }
}
