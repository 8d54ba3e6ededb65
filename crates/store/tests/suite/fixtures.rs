//! Job records and workflow runs for the store tests.

use orchestra_protocol::{
    JobRecord, TokenUsage, WorkflowRun, WorkflowRunLimits, WorkflowRunStatus, WorkflowRunUi,
    WorkflowStepResult, WorkflowStepStatus,
};

/// A running job of `worker` on `hub`, started at `started_at`.
pub fn running_job(id: &str, worker: &str, hub: &str, started_at: i64) -> JobRecord {
    let mut job = JobRecord::start(
        id.to_owned(),
        worker.to_owned(),
        format!("task for {id}"),
        orchestra_protocol::TaskKind::Worker,
        hub,
    );
    job.started_at = started_at;
    job
}

/// A boomerang run of `hub` whose second step is running.
pub fn run(id: &str, hub: &str, status: WorkflowRunStatus, started_at: i64) -> WorkflowRun {
    WorkflowRun {
        run_id: id.into(),
        workflow_id: "roocode-boomerang".into(),
        workflow_name: "Boomerang".into(),
        task: "do it".into(),
        auto_spawn: true,
        limits: WorkflowRunLimits::default(),
        attachments: Vec::new(),
        ui: WorkflowRunUi {
            execution: "auto".into(),
            intervene: "on-error".into(),
        },
        status,
        current_step_index: 1,
        steps: vec![
            WorkflowStepResult {
                id: "plan".into(),
                status: WorkflowStepStatus::Success,
                response: Some("## Summary\nplan".into()),
                ..WorkflowStepResult::default()
            },
            WorkflowStepResult {
                id: "implement".into(),
                status: WorkflowStepStatus::Running,
                task_id: Some("job-2".into()),
                ..WorkflowStepResult::default()
            },
        ],
        carry: "### Plan".into(),
        started_at,
        updated_at: started_at,
        finished_at: None,
        active_ms: 0,
        usage: TokenUsage::default(),
        budget: None,
        spent: None,
        budget_stop: None,
        reason: None,
        hub_id: hub.into(),
        job_id: "job-1".into(),
        job_ids: vec!["job-1".into()],
        definition: serde_json::json!({"id": "roocode-boomerang"}),
    }
}
