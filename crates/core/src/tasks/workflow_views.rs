//! `task_list` views: `workflows` (what can run, recent runs) and `workflow` (one run).

use orchestra_protocol::WorkflowRun;
use serde_json::{Value, json};

use super::human::table;
use super::{TaskEngine, TaskError, human};
use crate::workflows::WorkflowError;
use crate::workflows::limits::budget_tokens;

/// Built-ins, `workflows.definitions`, workflow files (and the files that could not be read),
/// then the most recent runs.
pub fn catalog(engine: &TaskEngine, limit: u32) -> Result<(Value, String), TaskError> {
    let catalog = engine.workflows().catalog();
    let runs = engine.workflows().list_runs(limit)?;
    let workflows: Vec<Value> = catalog
        .entries
        .iter()
        .map(|e| {
            let d = &e.definition;
            json!({"id": d.id, "name": d.name, "description": d.description,
                   "steps": d.steps.iter().map(|s| json!({"id": s.id, "title": s.title,
                       "workerId": if s.parallel.is_empty() { json!(s.worker_id) } else { Value::Null },
                       "parallel": s.parallel.iter().map(|m| json!({"id": m.id, "workerId": m.worker_id})).collect::<Vec<_>>()}))
                       .collect::<Vec<_>>(),
                   "source": e.source.label()})
        })
        .collect();
    let problems: Vec<String> = catalog.problems.iter().map(ToString::to_string).collect();
    let rows: Vec<Vec<String>> = catalog
        .entries
        .iter()
        .map(|e| {
            let d = &e.definition;
            let steps: Vec<String> = d
                .steps
                .iter()
                .map(|s| {
                    if s.parallel.is_empty() {
                        format!("{} ({})", s.id, s.worker_id)
                    } else {
                        let members: Vec<String> = s
                            .parallel
                            .iter()
                            .map(|m| format!("{} ({})", m.id, m.worker_id))
                            .collect();
                        format!("[{}]", members.join(" ‖ "))
                    }
                })
                .collect();
            vec![
                d.id.clone(),
                d.name.clone(),
                steps.join(" → "),
                e.source.label(),
            ]
        })
        .collect();
    let mut text = table(&["Workflow", "Name", "Steps", "Source"], &rows);
    for problem in &problems {
        text.push_str(&format!("\n- not loaded: {problem}"));
    }
    text.push_str("\n### Recent runs\n");
    text.push_str(&runs_table(&runs));
    text.push_str(
        "\nStart one with task_start({kind: \"workflow\", workflowId, task}); see a run with task_list({view: \"workflow\", runId}).\n",
    );
    Ok((
        json!({"workflows": workflows, "problems": problems, "runs": runs}),
        text,
    ))
}

fn runs_table(runs: &[WorkflowRun]) -> String {
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|r| {
            vec![
                r.run_id.clone(),
                r.workflow_id.clone(),
                r.status.as_str().into(),
                format!("{}/{}", r.current_step_index, step_count(r)),
                r.job_id.clone(),
                r.reason.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        &["Run", "Workflow", "Status", "Step", "Task", "Reason"],
        &rows,
    )
}

/// Top-level steps of the run's definition (a group counts once).
fn step_count(run: &WorkflowRun) -> usize {
    run.definition
        .get("steps")
        .and_then(Value::as_array)
        .map_or(0, Vec::len)
}

/// One run: status, reason, and each step's status, duration, model and tokens.
pub fn run(engine: &TaskEngine, run_id: Option<&str>) -> Result<(Value, String), TaskError> {
    let Some(run_id) = run_id else {
        return Err(TaskError::MissingViewField {
            field: "runId",
            view: "workflow",
            hint: "list runs with task_list view \"workflows\"".into(),
        });
    };
    let Some(run) = engine.workflows().get_run(run_id)? else {
        return Err(WorkflowError::UnknownRun { id: run_id.into() }.into());
    };
    let rows: Vec<Vec<String>> = run
        .steps
        .iter()
        .map(|s| {
            vec![
                s.group
                    .as_ref()
                    .map_or_else(|| s.id.clone(), |g| format!("{g}/{}", s.id)),
                s.worker_id.clone(),
                s.status.as_str().into(),
                s.duration_ms.map_or_else(String::new, human::duration),
                s.model.clone().unwrap_or_default(),
                budget_tokens(&s.usage).to_string(),
                s.task_id.clone().unwrap_or_default(),
                s.error
                    .clone()
                    .or_else(|| s.warning.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let text = format!(
        "## Workflow run `{}`\n\n{} (`{}`): **{}**, step {}/{}, {} working, {} tokens{}\n\n{}",
        run.run_id,
        run.workflow_name,
        run.workflow_id,
        run.status.as_str(),
        run.current_step_index,
        step_count(&run),
        human::duration(i64::try_from(run.active_ms).unwrap_or(i64::MAX)),
        budget_tokens(&run.usage),
        run.reason
            .as_ref()
            .map(|r| format!("\n\n{r}"))
            .unwrap_or_default(),
        table(
            &[
                "Step", "Worker", "Status", "Took", "Model", "Tokens", "Task", "Note"
            ],
            &rows
        )
    );
    Ok((json!(run), text))
}
