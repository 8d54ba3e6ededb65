//! Arguments of `task_start` that a worker task takes and a workflow run does not: each step's
//! time limit and model are the workflow definition's (`steps[].timeoutMs`, `steps[].model`),
//! and the steps' prompts are the definition's, so a caller's `from` has nowhere to go. Such an
//! argument is refused with the place to set it, never silently dropped.

use orchestra_protocol::TaskStartParams;

use super::TaskError;

/// Refuses the first worker-only argument a workflow start carries.
pub(super) fn refuse_worker_only(params: &TaskStartParams) -> Result<(), TaskError> {
    let refused: [(&'static str, bool, &str); 4] = [
        (
            "timeoutMs",
            params.timeout_ms.is_some(),
            "each step's limit is its `timeoutMs` in the workflow definition (at most \
             security.workflows.perStepTimeoutMs); stop a run sooner with task_cancel",
        ),
        (
            "model",
            params.model.is_some(),
            "each step runs on its own `model` in the workflow definition, or on its profile's",
        ),
        (
            "modelPolicy",
            params.model_policy.is_some(),
            "a step's model is chosen per step (tasks.defaultModelPolicy); set `model` on the \
             step in the workflow definition instead",
        ),
        (
            "from",
            params.from.is_some(),
            "the steps' prompts are the workflow definition's; put who asked into `task`",
        ),
    ];
    match refused.into_iter().find(|(_, given, _)| *given) {
        Some((field, _, instead)) => Err(TaskError::InvalidField {
            field,
            problem: format!("kind \"workflow\" does not take it: {instead}"),
        }),
        None => Ok(()),
    }
}
