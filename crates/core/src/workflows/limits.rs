//! The limits a run gets and the checks made before anything runs.
//!
//! `security.workflows` holds caps for every workflow. The boomerang's own limits
//! (`workflows.roocodeBoomerang.*`) are lowered to the caps; a user workflow's `limits` may
//! only lower them, and asking for more is refused rather than quietly cut.

use orchestra_protocol::WorkflowRunLimits;

use crate::config::{Config, WorkflowDefinition};

use super::WorkflowError;
use super::builtin::BOOMERANG_ID;

/// The limits `definition` runs under, or why it may not run at all.
pub fn effective(
    config: &Config,
    definition: &WorkflowDefinition,
) -> Result<WorkflowRunLimits, WorkflowError> {
    let caps = &config.security.workflows;
    if definition.id == BOOMERANG_ID {
        return Ok(config.workflows.roocode_boomerang.effective_limits(caps));
    }
    let own = &definition.limits;
    let lower = |name: &'static str, asked: Option<u64>, cap: u64| match asked {
        Some(value) if value > cap => Err(WorkflowError::LimitAboveCap {
            workflow: definition.id.clone(),
            name,
            value,
            cap,
        }),
        Some(value) => Ok(value),
        None => Ok(cap),
    };
    Ok(WorkflowRunLimits {
        max_steps: lower("maxSteps", own.max_steps, caps.max_steps)?,
        max_task_chars: lower("maxTaskChars", own.max_task_chars, caps.max_task_chars)?,
        max_carry_chars: lower("maxCarryChars", own.max_carry_chars, caps.max_carry_chars)?,
        per_step_timeout_ms: lower(
            "perStepTimeoutMs",
            own.per_step_timeout_ms,
            caps.per_step_timeout_ms,
        )?,
        max_run_ms: lower("maxRunMs", own.max_run_ms, caps.max_run_ms)?,
        max_run_tokens: lower("maxRunTokens", own.max_run_tokens, caps.max_run_tokens)?,
    })
}

/// Step count, task length and step timeouts, checked before the first step starts (and
/// again on resume, against the limits of that moment).
pub fn check_run(
    definition: &WorkflowDefinition,
    limits: &WorkflowRunLimits,
    task: &str,
) -> Result<(), WorkflowError> {
    // Every worker step counts, group members included: each is a model run.
    let leaves = definition.leaves();
    let steps = leaves.len() as u64;
    if steps > limits.max_steps {
        return Err(WorkflowError::TooManySteps {
            workflow: definition.id.clone(),
            steps,
            max: limits.max_steps,
        });
    }
    let chars = task.chars().count() as u64;
    if chars > limits.max_task_chars {
        return Err(WorkflowError::TaskTooLong {
            workflow: definition.id.clone(),
            chars,
            max: limits.max_task_chars,
        });
    }
    for (_, step) in leaves {
        if let Some(timeout) = step.timeout_ms
            && timeout > limits.per_step_timeout_ms
        {
            return Err(WorkflowError::StepTimeoutAboveCap {
                workflow: definition.id.clone(),
                step: step.id.clone(),
                timeout,
                max: limits.per_step_timeout_ms,
            });
        }
    }
    Ok(())
}

/// Tokens the `maxRunTokens` budget counts: what the model read and wrote, not cache hits.
pub fn budget_tokens(usage: &orchestra_protocol::TokenUsage) -> u64 {
    usage.input + usage.output + usage.reasoning
}

/// The budget a paused run resumes with: `asked` over the run's own, dimension by dimension.
/// Every capped dimension must be above what the run already spent, or nothing would run.
pub fn raised_budget(
    run: &orchestra_protocol::WorkflowRun,
    asked: Option<orchestra_protocol::TaskBudget>,
) -> Result<Option<orchestra_protocol::TaskBudget>, WorkflowError> {
    let Some(budget) = asked
        .or(run.budget)
        .map(|b| b.or(run.budget.unwrap_or_default()))
    else {
        return Ok(None);
    };
    let spent = run.spent.unwrap_or_default();
    for dimension in orchestra_protocol::BudgetDimension::ALL {
        if let Some(cap) = budget.cap(dimension)
            && spent.used(dimension) >= cap
        {
            return Err(WorkflowError::BudgetSpent {
                id: run.run_id.clone(),
                dimension: dimension.as_str(),
                used: spent.used(dimension),
                cap,
            });
        }
    }
    Ok(Some(budget))
}
