//! `task_list` views, as markdown tables for models and people or JSON for scripts.

use orchestra_protocol::{
    JobRecord, ListFormat, ListScope, ListView, ModelScope, TaskListParams, WorkerSnapshot, now_ms,
};
use orchestra_store::{JobFilter, UnreadableRow};
use serde_json::{Value, json};

use super::human::table;
use super::{TaskEngine, TaskError, human};
use crate::models::{Catalog, CatalogFilter};
use crate::workers::ModelPlan;

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
        .unwrap_or(engine.config().ui.default_list_format);
    let limit = params.limit.unwrap_or(match params.view {
        ListView::Models => MODELS_LIMIT,
        ListView::Tasks
        | ListView::Workers
        | ListView::Profiles
        | ListView::Workflows
        | ListView::Workflow
        | ListView::Status
        | ListView::Output
        | ListView::Memory => DEFAULT_LIMIT,
    });
    // Rows the store could not read: skipped, and said so under the view.
    let mut skipped: Vec<UnreadableRow> = Vec::new();
    let (json, mut markdown) = match params.view {
        ListView::Tasks => {
            let jobs = recent_jobs(engine, params.worker_id.clone(), limit, &mut skipped)?;
            (json!(jobs), tasks_table(&jobs))
        }
        ListView::Workers => {
            let workers = all_workers(engine);
            let rows: Vec<Vec<String>> = workers
                .iter()
                .map(|w| {
                    vec![
                        w.id.clone(),
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
        ListView::Models => models(engine, params, limit).await?,
        ListView::Memory => super::memory_view::render(engine, params).await?,
        ListView::Workflows => super::workflow_views::catalog(engine, limit)?,
        ListView::Workflow => super::workflow_views::run(engine, params.run_id.as_deref())?,
        ListView::Status => {
            let workers = all_workers(engine);
            let jobs = recent_jobs(engine, None, 5, &mut skipped)?;
            let running = engine.running_count();
            let hub = format!(
                "hub `{}` (pid {}), {running} task(s) running",
                engine.hub_id(),
                std::process::id()
            );
            let rows: Vec<Vec<String>> = workers
                .iter()
                .map(|w| {
                    vec![
                        w.id.clone(),
                        w.status.as_str().into(),
                        w.active_jobs.to_string(),
                    ]
                })
                .collect();
            let text = format!(
                "## Open Orchestra\n\n{hub}\n\n### Workers\n{}\n### Recent tasks\n{}",
                table(&["Worker", "Status", "Jobs"], &rows),
                tasks_table(&jobs)
            );
            let warnings: Vec<String> = skipped.iter().map(ToString::to_string).collect();
            (
                json!({"hubId": engine.hub_id(), "hubPid": std::process::id(), "running": running,
                       "workers": workers, "tasks": jobs, "warnings": warnings}),
                text,
            )
        }
        ListView::Output => {
            let jobs = recent_jobs(engine, params.worker_id.clone(), limit, &mut skipped)?;
            let now = now_ms();
            let after = params
                .after
                .unwrap_or_else(|| now.saturating_sub(24 * 3600 * 1000));
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
                text.push_str(&format!(
                    "- {} [{}] {}\n",
                    human::ago(l.at, now),
                    l.level,
                    l.message
                ));
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

async fn models(
    engine: &TaskEngine,
    params: &TaskListParams,
    limit: u32,
) -> Result<(Value, String), TaskError> {
    let scope = match params.scope {
        None | Some(ListScope::Configured) => ModelScope::Configured,
        Some(ListScope::All) => ModelScope::All,
        Some(other @ (ListScope::Project | ListScope::Global)) => {
            return Err(TaskError::InvalidField {
                field: "scope",
                problem: format!(
                    "`{}` is a memory scope; the models view takes `configured` or `all`",
                    other.as_str()
                ),
            });
        }
    };
    Ok(models_of(engine, params, scope, limit).await)
}

async fn models_of(
    engine: &TaskEngine,
    params: &TaskListParams,
    scope: ModelScope,
    limit: u32,
) -> (Value, String) {
    let pool = engine.pool();
    // The catalog lives in OpenCode: with no server up yet, bring one up (as a task would).
    if pool.any_conn().await.is_none()
        && engine.config().auto_spawn
        && let Some(profile) = pool.default_profile()
        && let Err(err) = pool.warm_up(&profile).await
    {
        let note = format!("no OpenCode worker server could be started to read the models: {err}");
        return (json!({"models": [], "note": note}), note);
    }
    let Some(conn) = pool.any_conn().await else {
        let note = "No OpenCode worker server is running (autoSpawn is off), so the model catalog cannot be read; start any task and ask again.";
        return (json!({"models": [], "note": note}), note.to_owned());
    };
    let filter = CatalogFilter {
        scope,
        providers: params.providers.clone(),
        query: params.query.clone(),
    };
    let plans = engine
        .pool()
        .read_catalog(&conn.client)
        .await
        .map(|catalog| engine.pool().model_plans(&catalog))
        .map_err(|err| err.to_string());
    match Catalog::read_scope(&conn.client, filter.scope).await {
        Ok(catalog) => {
            let (mut json, mut text) = models_listing(&catalog, &filter, limit);
            let (plans_json, plans_text) = plans_section(&plans, engine.pool().provider_pin());
            json["wouldRunOn"] = plans_json;
            json["providerPin"] = json!(engine.pool().provider_pin());
            text.push_str(&plans_text);
            (json, text)
        }
        Err(err) => {
            let note = format!("reading OpenCode's providers failed: {err}");
            (json!({"models": [], "note": note}), note)
        }
    }
}

/// Which model each profile's task would get and why: one "would run on" line per profile.
pub fn plans_section(plans: &Result<Vec<ModelPlan>, String>, pin: Option<&str>) -> (Value, String) {
    let mut text = String::from("\n### Would run on\n");
    if let Some(provider) = pin {
        text.push_str(&format!(
            "Pinned to provider `{provider}` (--fake): tasks run only on its models; the table lists everything OpenCode offers.\n"
        ));
    }
    match plans {
        Ok(plans)
            if plans.len() > 1
                && plans
                    .iter()
                    .all(|p| p.model.is_none() && p.reason == plans[0].reason) =>
        {
            // One cause for every profile (no provider at all): say it once.
            let ids: Vec<&str> = plans.iter().map(|p| p.profile.as_str()).collect();
            text.push_str(&format!(
                "- every profile ({}) would run on no model: {}\n",
                ids.join(", "),
                plans[0].reason
            ));
            (json!(plans), text)
        }
        Ok(plans) => {
            for plan in plans {
                let model = plan.model.as_deref().unwrap_or("no model");
                text.push_str(&format!(
                    "- `{}` (`{}`) would run on {model}: {}\n",
                    plan.profile, plan.reference, plan.reason
                ));
            }
            (json!(plans), text)
        }
        Err(err) => {
            text.push_str(&format!("could not read OpenCode's usable models: {err}\n"));
            (json!([]), text)
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

/// This hub's workers.
fn all_workers(engine: &TaskEngine) -> Vec<WorkerSnapshot> {
    engine.pool().snapshots()
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

/// The model that answered, and the one it fell back from (`fallbackModels`).
fn model_cell(job: &JobRecord) -> String {
    let model = job.model.clone().unwrap_or_default();
    match job.fallbacks.first() {
        Some(first) => format!("{model} (fell back from {})", first.from),
        None => model,
    }
}

fn tasks_table(jobs: &[JobRecord]) -> String {
    let now = now_ms();
    let rows: Vec<Vec<String>> = jobs
        .iter()
        .map(|j| {
            let took = j
                .duration_ms
                .unwrap_or_else(|| now.saturating_sub(j.started_at));
            vec![
                j.id.clone(),
                j.worker_id.clone(),
                super::limits::status_with_limits(j),
                human::ago(j.started_at, now),
                human::duration(took),
                model_cell(j),
                j.usage.total().to_string(),
                j.worktree.as_ref().map_or_else(String::new, |w| {
                    format!(
                        "{} {} (+{} -{}, {} files)",
                        w.state.as_str(),
                        w.branch,
                        w.insertions,
                        w.deletions,
                        w.files
                    )
                }),
                j.message.chars().take(60).collect(),
            ]
        })
        .collect();
    table(
        &[
            "Task", "Worker", "Status", "Started", "Took", "Model", "Tokens", "Worktree", "Message",
        ],
        &rows,
    )
}
