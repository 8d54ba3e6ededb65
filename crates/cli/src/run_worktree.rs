//! What `orchestra run` says about a task's worktree: the diffstat and how to merge, and with
//! `--merge` the merge itself (the hub's `worktree.merge` op: checked for conflicts first).

use anyhow::Context;
use orchestra_client::HubClient;
use orchestra_protocol::{
    JobRecord, JobStatus, OpKind, TaskKind, TaskStartParams, TaskStartResult, WorktreePayload,
    WorktreeState,
};

/// Prints the task's worktree (stderr); with `merge`, merges it and says how that went.
/// Returns false when a merge was asked for and did not happen.
pub async fn report(client: &HubClient, record: &JobRecord, merge: bool) -> anyhow::Result<bool> {
    let Some(worktree) = &record.worktree else {
        return Ok(!merge || record.status != JobStatus::Succeeded);
    };
    match worktree.state {
        WorktreeState::Discarded => {
            eprintln!("orchestra: the task changed no file; its worktree was removed");
            return Ok(true);
        }
        WorktreeState::Merged => return Ok(true),
        WorktreeState::Open | WorktreeState::Conflict => {}
    }
    eprintln!(
        "orchestra: branch {}: {} file(s) changed, +{} -{} (from {} at {})\n  worktree: {}",
        worktree.branch,
        worktree.files,
        worktree.insertions,
        worktree.deletions,
        worktree.base_ref,
        worktree.base_sha.get(..10).unwrap_or(&worktree.base_sha),
        worktree.path
    );
    if !merge || record.status != JobStatus::Succeeded {
        eprintln!(
            "  review: git diff {}...{}\n  merge:  ask the main agent to merge task {} (worktree.merge checks for conflicts first), or run with --merge next time\n  drop:   ask it to discard the task's worktree (worktree.discard)",
            worktree.base_ref, worktree.branch, record.id
        );
        return Ok(!merge);
    }
    let params = TaskStartParams {
        kind: TaskKind::Op,
        op: Some(OpKind::WorktreeMerge),
        worktree: Some(WorktreePayload {
            task_id: record.id.clone(),
        }),
        ..TaskStartParams::default()
    };
    let started: TaskStartResult = client
        .post("/api/v1/tasks", &params)
        .await
        .context("the merge was refused")?;
    let merged = await_final(client, &started.task_id).await?;
    match merged.status {
        JobStatus::Succeeded => {
            let reply: serde_json::Value =
                serde_json::from_str(merged.response_text.as_deref().unwrap_or("{}"))
                    .unwrap_or_default();
            eprintln!(
                "orchestra: {}",
                reply["message"].as_str().unwrap_or("merge finished")
            );
            Ok(reply["state"] == "merged")
        }
        JobStatus::Failed | JobStatus::Canceled | JobStatus::Running => {
            eprintln!(
                "orchestra: not merged: {}",
                merged.error.as_deref().unwrap_or("no error recorded")
            );
            Ok(false)
        }
    }
}

/// Waits for the op's record to be final (ops take well under a second) with `task_await`.
async fn await_final(client: &HubClient, id: &str) -> anyhow::Result<JobRecord> {
    let reply = client
        .tool(
            "task_await",
            &serde_json::json!({"taskId": id, "timeoutMs": 30_000}),
            None,
        )
        .await
        .context("awaiting the merge")?;
    if reply.is_error {
        anyhow::bail!("awaiting the merge failed: {}", reply.text);
    }
    serde_json::from_str(&reply.text).context("reading the merge's record")
}
