//! `budget`, `until` and `continueTaskId` of `task_start`: checked and resolved before a worker
//! job starts.
//!
//! A budget is the task's own over its profile's, dimension by dimension. A continued task runs
//! in the finished task's session, and what the chain of tasks already spent is read from the
//! store (each record's `spent` includes what the tasks it continues spent), so a hub restart
//! neither resets nor double-counts it. `until` names a check from the config; the command
//! itself never comes from the caller.

use orchestra_protocol::{
    BudgetDimension, BudgetSpend, ErrorKind, JobRecord, TaskBudget, TaskKind, TaskStartParams,
};
use orchestra_store::Store;

use crate::config::Config;
use crate::jobs::UntilJob;
use crate::jobs::check_run::{self, DEFAULT_MAX_ITERATIONS, UntilError};

#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("`budget.{dimension}` must be greater than 0 (got {value}); leave it out for no cap")]
    NotPositive { dimension: &'static str, value: f64 },
    #[error(transparent)]
    Until(#[from] UntilError),
    #[error("`continueTaskId`: no task with id `{id}`; list tasks with task_list")]
    UnknownTask { id: String },
    #[error("`continueTaskId`: task `{id}` {why}")]
    CannotContinue { id: String, why: String },
    #[error(
        "task `{id}` already used {used} of budget.{dimension} (cap {cap}); pass a `budget` with \
         {dimension} above {used} to continue it"
    )]
    StillSpent {
        id: String,
        dimension: &'static str,
        used: f64,
        cap: f64,
    },
    #[error(
        "the project's budget for today is spent: budgets.perDay.{dimension} is {cap} and \
         today's tasks used {used}; raise it in orchestrator.json or wait for the next day (UTC)"
    )]
    DailySpent {
        dimension: &'static str,
        used: f64,
        cap: f64,
    },
    #[error("reading the task to continue failed: {0}")]
    Store(#[from] orchestra_store::StoreError),
}

impl LimitsError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            LimitsError::NotPositive { .. } | LimitsError::Until(_) => ErrorKind::BadRequest,
            LimitsError::UnknownTask { .. } => ErrorKind::NotFound,
            LimitsError::CannotContinue { .. } => ErrorKind::Conflict,
            LimitsError::StillSpent { .. } | LimitsError::DailySpent { .. } => {
                ErrorKind::BudgetExceeded
            }
            LimitsError::Store(_) => ErrorKind::Internal,
        }
    }
}

/// A task's limits, resolved.
#[derive(Default)]
pub(super) struct Limits {
    pub budget: Option<TaskBudget>,
    pub prior_spend: BudgetSpend,
    pub until: Option<UntilJob>,
    /// The task being continued: its worker and session.
    pub continues: Option<JobRecord>,
}

/// The finished task `continueTaskId` names, if any, checked to be continuable.
pub(super) fn continued_task(
    store: &Store,
    params: &TaskStartParams,
) -> Result<Option<JobRecord>, LimitsError> {
    let Some(id) = &params.continue_task_id else {
        return Ok(None);
    };
    let record = store
        .get_job(id)?
        .ok_or_else(|| LimitsError::UnknownTask { id: id.clone() })?;
    let cannot = |why: &str| LimitsError::CannotContinue {
        id: id.clone(),
        why: why.to_owned(),
    };
    if !record.status.is_final() {
        return Err(cannot("is still running; await it first"));
    }
    if !matches!(record.kind, TaskKind::Worker | TaskKind::Auto) || record.run_id.is_some() {
        return Err(cannot(
            "is not a worker task of its own; only worker tasks continue in their session",
        ));
    }
    if record.session_id.is_none() {
        return Err(cannot("never had a session; start a new task instead"));
    }
    Ok(Some(record))
}

/// The budget (the task's over its profile's), the continued chain's spend and the check.
pub(super) fn resolve(
    config: &Config,
    store: &Store,
    params: &TaskStartParams,
    profile_budget: Option<TaskBudget>,
    continues: Option<JobRecord>,
) -> Result<Limits, LimitsError> {
    let own = params.budget.unwrap_or_default();
    check_positive(&own)?;
    let inherited = continues
        .as_ref()
        .and_then(|r| r.budget)
        .unwrap_or_default();
    let budget = own.or(inherited).or(profile_budget.unwrap_or_default());
    let prior_spend = continues.as_ref().map(spent_by).unwrap_or_default();
    if let Some(record) = &continues {
        for dimension in BudgetDimension::ALL {
            let (Some(cap), used) = (budget.cap(dimension), prior_spend.used(dimension)) else {
                continue;
            };
            if used >= cap {
                return Err(LimitsError::StillSpent {
                    id: record.id.clone(),
                    dimension: dimension.as_str(),
                    used,
                    cap,
                });
            }
        }
    }
    let until = params
        .until
        .as_ref()
        .map(|until| check_run::resolve_until(config, until))
        .transpose()?;
    Ok(Limits {
        budget: within_daily(config, store, (!budget.is_empty()).then_some(budget))?,
        prior_spend,
        until,
        continues,
    })
}

/// What a finished task spent with the tasks it continues, as its stored record says.
fn spent_by(record: &JobRecord) -> BudgetSpend {
    record.spent.unwrap_or_else(|| {
        let ms = record
            .duration_ms
            .and_then(|ms| u64::try_from(ms).ok())
            .unwrap_or(0);
        BudgetSpend::of(record.usage.total(), record.usage.cost, 0, ms)
    })
}

fn check_positive(budget: &TaskBudget) -> Result<(), LimitsError> {
    for dimension in BudgetDimension::ALL {
        if let Some(value) = budget.cap(dimension)
            && (value <= 0.0 || value.is_nan())
        {
            return Err(LimitsError::NotPositive {
                dimension: dimension.as_str(),
                value,
            });
        }
    }
    Ok(())
}

/// A task's status for the list: with the budget that stopped it, and its checks so far
/// (`failed · budget.maxTurns 3/3`, `running · checks 1 of 3, last failed`).
pub(super) fn status_with_limits(record: &JobRecord) -> String {
    let mut text = record.status.as_str().to_owned();
    if let Some(stop) = &record.budget_stop {
        text.push_str(&format!(
            " · budget.{} {}/{}",
            stop.dimension.as_str(),
            stop.used,
            stop.cap
        ));
    }
    if let (Some(until), Some(last)) = (&record.until, record.checks.last()) {
        text.push_str(&format!(
            " · checks {} of {}, last {}",
            record.checks.len(),
            until.max_iterations.unwrap_or(DEFAULT_MAX_ITERATIONS),
            if last.passed { "passed" } else { "failed" }
        ));
    }
    text
}

/// Lowers one dimension of `budget` to `left` (what the day has left), keeping a lower own cap.
fn lower_to(budget: &mut TaskBudget, dimension: BudgetDimension, left: f64) {
    // `left` is positive and below a cap that fit the dimension's type.
    match dimension {
        BudgetDimension::MaxTokens => {
            let left = left as u64;
            budget.max_tokens = Some(budget.max_tokens.map_or(left, |own| own.min(left)));
        }
        BudgetDimension::MaxCostUsd => {
            budget.max_cost_usd = Some(budget.max_cost_usd.map_or(left, |own| own.min(left)));
        }
        BudgetDimension::MaxTurns => {
            let left = left as u32;
            budget.max_turns = Some(budget.max_turns.map_or(left, |own| own.min(left)));
        }
        BudgetDimension::MaxMs => {
            let left = left as u64;
            budget.max_ms = Some(budget.max_ms.map_or(left, |own| own.min(left)));
        }
    }
}

/// `budget` lowered to what is left of the project's per-day budget (`budgets.perDay`), or
/// refused when nothing is left. Today's spend is read from the store.
pub(super) fn within_daily(
    config: &Config,
    store: &Store,
    budget: Option<TaskBudget>,
) -> Result<Option<TaskBudget>, LimitsError> {
    let Some(daily) = config.daily_budget else {
        return Ok(budget);
    };
    const DAY_MS: i64 = 86_400_000;
    let now = orchestra_protocol::now_ms();
    let spent = store.worker_spend_since(now - now.rem_euclid(DAY_MS))?;
    let mut budget = budget.unwrap_or_default();
    let caps = daily.caps();
    for dimension in BudgetDimension::ALL {
        let Some(cap) = caps.cap(dimension) else {
            continue;
        };
        let used = spent.used(dimension);
        if used >= cap {
            return Err(LimitsError::DailySpent {
                dimension: dimension.as_str(),
                used,
                cap,
            });
        }
        lower_to(&mut budget, dimension, cap - used);
    }
    Ok((!budget.is_empty()).then_some(budget))
}
