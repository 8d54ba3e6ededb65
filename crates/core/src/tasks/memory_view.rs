//! `task_list({view: "memory", query, scope, limit, budgetTokens, cursor})`: one bounded page
//! of a ranked memory search — markdown lines for models and people, the page as JSON for
//! scripts. A record is never cut to fit the budget: it starts the next page, and the cursor
//! says where.

use orchestra_protocol::memory::{
    MemoryDetail, MemoryHit, MemoryPage, MemoryScope, MemorySearchParams, MemoryStatus,
};
use orchestra_protocol::{ListScope, TaskListParams};
use serde_json::{Value, json};

use super::{TaskEngine, TaskError};

pub(super) async fn render(
    engine: &TaskEngine,
    params: &TaskListParams,
) -> Result<(Value, String), TaskError> {
    let memory = engine.memory()?;
    let scopes = match params.scope {
        None => Vec::new(),
        Some(ListScope::Project) => vec![MemoryScope::Project],
        Some(ListScope::Global) => vec![MemoryScope::Global],
        Some(other @ (ListScope::Configured | ListScope::All)) => {
            return Err(TaskError::InvalidField {
                field: "scope",
                problem: format!(
                    "`{}` is a models scope; the memory view takes `project` or `global` (default: both)",
                    other.as_str()
                ),
            });
        }
    };
    let query = params.query.clone().unwrap_or_default();
    let page = memory
        .search(MemorySearchParams {
            query: query.clone(),
            scopes,
            limit: params.limit,
            budget_tokens: params.budget_tokens,
            cursor: params.cursor.clone(),
            detail: MemoryDetail::Summary,
            ..MemorySearchParams::default()
        })
        .await?;
    let text = markdown(&query, &page);
    Ok((json!(page), text))
}

fn markdown(query: &str, page: &MemoryPage<MemoryHit>) -> String {
    let mut text = if query.trim().is_empty() {
        String::from("### Memory (newest)\n")
    } else {
        format!("### Memory: {}\n", query.trim())
    };
    for hit in &page.items {
        let key = hit
            .key
            .as_deref()
            .map(|k| format!(" `{k}`"))
            .unwrap_or_default();
        let status = match hit.status {
            MemoryStatus::Active => String::new(),
            other => format!(" ({})", other.as_str()),
        };
        let pinned = if hit.pinned { " (pinned)" } else { "" };
        text.push_str(&format!(
            "- `{}` [{} · {}]{key}{status}{pinned} {}\n",
            hit.id,
            hit.kind,
            hit.scope.as_str(),
            hit.title
        ));
        if let Some(snippet) = &hit.snippet {
            text.push_str(&format!("  {snippet}\n"));
        }
    }
    if page.items.is_empty() {
        text.push_str("(no matching memory)\n");
    }
    if let Some(need) = page.needs_budget_tokens {
        text.push_str(&format!(
            "\nThe next record alone needs about {need} tokens; ask again with a larger budgetTokens, or read it with memory.get.\n"
        ));
    }
    for skipped in &page.skipped {
        text.push_str(&format!(
            "\n> warning: record {} could not be read: {}\n",
            skipped.id, skipped.reason
        ));
    }
    if let Some(cursor) = &page.next_cursor {
        text.push_str(&format!(
            "\nMore: task_list({{view: \"memory\", query: …, cursor: \"{cursor}\"}})\n"
        ));
    }
    text
}
