//! `task_list` views, as markdown tables for models and people or JSON for scripts.

use orchestra_protocol::{JobRecord, ListFormat, ListView, TaskListParams, WorkerSnapshot, now_ms};
use orchestra_store::{JobFilter, UnreadableRow};
use serde_json::{Value, json};

use super::{TaskEngine, TaskError};
use crate::models::{Catalog, CatalogFilter};

/// A rendered view: `text` is what a tool returns, `json` the same data.
#[derive(Debug, Clone)]
pub struct Listing {
    pub format: ListFormat,
    pub json: Value,
    pub text: String,
}

const DEFAULT_LIMIT: u32 = 20;
const MODELS_LIMIT: u32 = 100;

pub async fn render(engine: &TaskEngine, params: &TaskListParams) -> Result<Listing, TaskError> {
    let format = params
        .format
        .unwrap_or(engine.config.ui.default_list_format);
    let limit = params.limit.unwrap_or(match params.view {
        ListView::Models => MODELS_LIMIT,
        _ => DEFAULT_LIMIT,
    });
    // Rows the store could not read: skipped, and said so under the view.
    let mut skipped: Vec<UnreadableRow> = Vec::new();
    let (json, mut markdown) = match params.view {
        ListView::Tasks => {
            let jobs = recent_jobs(engine, params.worker_id.clone(), limit, &mut skipped)?;
            (json!(jobs), tasks_table(&jobs))
        }
        ListView::Workers => {
            let workers = all_workers(engine, &mut skipped).await?;
            let rows: Vec<Vec<String>> = workers
                .iter()
                .map(|w| {
                    vec![
                        w.id.clone(),
                        hub_label(w),
                        w.status.as_str().into(),
                        w.isolation.clone(),
                        w.model_ref.clone(),
                        w.active_jobs.to_string(),
                        w.pid.map_or_else(String::new, |p| p.to_string()),
                        w.server_url.clone().unwrap_or_default(),
                        w.warning.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            (
                json!(workers),
                table(
                    &[
                        "Worker",
                        "Hub",
                        "Status",
                        "Isolation",
                        "Model",
                        "Jobs",
                        "PID",
                        "URL",
                        "Warning",
                    ],
                    &rows,
                ),
            )
        }
        ListView::Profiles => {
            let profiles: Vec<Value> = engine
                .config
                .profiles
                .values()
                .map(|p| {
                    json!({"id": p.id, "name": p.name, "model": p.model, "supportsVision": p.supports_vision,
                           "supportsWeb": p.supports_web, "readOnly": p.read_only(), "purpose": p.purpose,
                           "whenToUse": p.when_to_use, "tags": p.tags})
                })
                .collect();
            let rows: Vec<Vec<String>> = engine
                .config
                .profiles
                .values()
                .map(|p| {
                    vec![
                        p.id.clone(),
                        p.name.clone(),
                        p.model.clone(),
                        if p.read_only() {
                            "read-only"
                        } else {
                            "can edit"
                        }
                        .into(),
                        p.purpose.clone(),
                    ]
                })
                .collect();
            (
                json!(profiles),
                table(&["Profile", "Name", "Model", "Access", "Purpose"], &rows),
            )
        }
        ListView::Models => models(engine, params, limit).await,
        ListView::Workflows => crate::workflows::view::catalog(engine, limit)?,
        ListView::Workflow => crate::workflows::view::run(engine, params.run_id.as_deref())?,
        ListView::Status => {
            let workers = all_workers(engine, &mut skipped).await?;
            let jobs = recent_jobs(engine, None, 5, &mut skipped)?;
            let running = engine.running_count();
            let hubs = if engine.observer {
                let mut pids: Vec<u32> = workers.iter().filter_map(|w| w.hub_pid).collect();
                pids.dedup();
                format!("{} hub process(es) running on this project", pids.len())
            } else {
                format!("hub `{}`, {running} task(s) running here", engine.hub_id)
            };
            let rows: Vec<Vec<String>> = workers
                .iter()
                .map(|w| {
                    vec![
                        w.id.clone(),
                        hub_label(w),
                        w.status.as_str().into(),
                        w.active_jobs.to_string(),
                    ]
                })
                .collect();
            let text = format!(
                "## Open Orchestra\n\n{hubs}\n\n### Workers\n{}\n### Recent tasks\n{}",
                table(&["Worker", "Hub", "Status", "Jobs"], &rows),
                tasks_table(&jobs)
            );
            let warnings: Vec<String> = skipped.iter().map(ToString::to_string).collect();
            (
                json!({"hubId": engine.hub_id, "running": running, "workers": workers, "tasks": jobs,
                       "warnings": warnings}),
                text,
            )
        }
        ListView::Output => {
            let jobs = recent_jobs(engine, params.worker_id.clone(), limit, &mut skipped)?;
            let after = params
                .after
                .unwrap_or_else(|| now_ms().saturating_sub(24 * 3600 * 1000));
            let logs = engine
                .store()
                .logs_after(after, limit.max(1).saturating_mul(5))?;
            let log_json: Vec<Value> = logs
                .iter()
                .map(|l| json!({"at": l.at, "jobId": l.job_id, "level": l.level, "message": l.message}))
                .collect();
            let mut text = String::from("### Tasks\n");
            text.push_str(&tasks_table(&jobs));
            text.push_str("\n### Log\n");
            for l in &logs {
                text.push_str(&format!("- {} [{}] {}\n", l.at, l.level, l.message));
            }
            (json!({"tasks": jobs, "logs": log_json}), text)
        }
    };
    for row in &skipped {
        markdown.push_str(&format!("\n> warning: {row}\n"));
    }
    let text = match format {
        ListFormat::Markdown => markdown,
        ListFormat::Json => serde_json::to_string_pretty(&json).unwrap_or_default(),
    };
    Ok(Listing { format, json, text })
}

async fn models(engine: &TaskEngine, params: &TaskListParams, limit: u32) -> (Value, String) {
    let Some(conn) = engine.pool.any_conn().await else {
        let note = "No OpenCode worker server is running, so the model catalog cannot be read yet; start any task (or `orchestra models`, which starts one) and ask again.";
        return (json!({"models": [], "note": note}), note.to_owned());
    };
    let filter = CatalogFilter {
        scope: params.scope.unwrap_or_default(),
        providers: params.providers.clone(),
        query: params.query.clone(),
    };
    match Catalog::read_scope(&conn.client, filter.scope).await {
        Ok(catalog) => models_listing(&catalog, &filter, limit),
        Err(err) => {
            let note = format!("reading OpenCode's providers failed: {err}");
            (json!({"models": [], "note": note}), note)
        }
    }
}

/// The models view of a catalog: JSON rows and a markdown table, plus the defaults.
pub fn models_listing(catalog: &Catalog, filter: &CatalogFilter, limit: u32) -> (Value, String) {
    let mut models = catalog.filter(filter);
    let total = models.len();
    models.truncate(limit as usize);
    let rows: Vec<Vec<String>> = models
        .iter()
        .map(|m| {
            vec![
                m.full_id(),
                m.name.clone(),
                m.context.to_string(),
                m.capability_words(),
                format!("{}/{}", m.cost_input, m.cost_output),
                m.status.clone().unwrap_or_default(),
                if m.usable { "yes" } else { "no" }.into(),
            ]
        })
        .collect();
    let mut text = table(
        &[
            "Model",
            "Name",
            "Context",
            "Capabilities",
            "Cost in/out (per 1M)",
            "Status",
            "Usable",
        ],
        &rows,
    );
    text.push_str(&format!(
        "\n{} of {total} model(s). Default model: {}. Small model: {}.\n",
        models.len(),
        catalog.default_model.as_deref().unwrap_or("(not set)"),
        catalog.small_model.as_deref().unwrap_or("(not set)"),
    ));
    let json = json!({
        "models": models,
        "total": total,
        "defaultModel": catalog.default_model,
        "smallModel": catalog.small_model,
    });
    (json, text)
}

/// Which hub runs a worker: this one, or another process on the project.
fn hub_label(worker: &WorkerSnapshot) -> String {
    worker
        .hub_pid
        .map_or_else(|| "this".to_owned(), |pid| format!("pid {pid}"))
}

/// This hub's workers (none for an observer such as the CLI) followed by the
/// workers every other live hub on the project published to the store.
async fn all_workers(
    engine: &TaskEngine,
    skipped: &mut Vec<UnreadableRow>,
) -> Result<Vec<WorkerSnapshot>, TaskError> {
    let mut workers = if engine.observer {
        Vec::new()
    } else {
        engine.pool.snapshots().await
    };
    let mut others = engine.store().live_hub_workers_reporting(
        &orchestra_store::pid_is_alive,
        crate::hub::STALE_AFTER_MS,
        Some(&engine.hub_id),
    )?;
    skipped.append(&mut others.skipped);
    for hub in others.items {
        workers.extend(hub.workers.into_iter().map(|mut worker| {
            worker.hub_pid = Some(hub.pid);
            worker
        }));
    }
    Ok(workers)
}

fn recent_jobs(
    engine: &TaskEngine,
    worker_id: Option<String>,
    limit: u32,
    skipped: &mut Vec<UnreadableRow>,
) -> Result<Vec<JobRecord>, TaskError> {
    let mut jobs = engine.store().list_jobs_reporting(&JobFilter {
        worker_id,
        limit,
        ..JobFilter::default()
    })?;
    skipped.append(&mut jobs.skipped);
    Ok(jobs.items)
}

fn tasks_table(jobs: &[JobRecord]) -> String {
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            vec![
                j.id.clone(),
                j.worker_id.clone(),
                j.status.as_str().into(),
                j.started_at.to_string(),
                j.duration_ms.map_or_else(String::new, |d| d.to_string()),
                j.message.chars().take(60).collect(),
            ]
        })
        .collect();
    table(
        &["Task", "Worker", "Status", "Started", "ms", "Message"],
        &rows,
    )
}

/// A markdown table; cells have `|` and newlines escaped.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "(none)\n".into();
    }
    let clean = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let mut out = format!(
        "| {} |\n|{}\n",
        headers.join(" | "),
        "---|".repeat(headers.len())
    );
    for row in rows {
        let cells: Vec<String> = row.iter().map(|c| clean(c)).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}
