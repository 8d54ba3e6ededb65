//! A workflow's `requiredSkills`, checked before its first step starts: every step (each member
//! of a parallel group) needs its own skills and its profile's, on its worker's OpenCode. A
//! run that names a skill its worker cannot load fails here, before any task spends a token.

use crate::config::{WorkflowDefinition, WorkflowStep};
use crate::workers::{WorkerPool, skills};

/// The first step whose skills are not all usable, as the run's error; `None` when every step
/// passes (or names none).
pub(super) async fn preflight(
    pool: &WorkerPool,
    definition: &WorkflowDefinition,
    auto_spawn: bool,
) -> Option<String> {
    let members = definition.steps.iter().flat_map(WorkflowStep::members);
    for member in members {
        let profile = match pool.config().profile(&member.worker_id) {
            Ok(profile) => profile,
            Err(err) => return Some(format!("step `{}`: {err}", member.id)),
        };
        let required = skills::union(&profile.required_skills, &member.required_skills);
        if required.is_empty() {
            continue;
        }
        let lease = match pool.acquire(&member.worker_id, auto_spawn).await {
            Ok(lease) => lease,
            Err(err) => return Some(format!("step `{}`: {err}", member.id)),
        };
        if let Err(err) = skills::preflight(&lease, &required).await {
            return Some(format!(
                "step `{}` cannot run, checked before the first step: {err}",
                member.id
            ));
        }
    }
    None
}
