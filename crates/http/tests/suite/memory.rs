//! The memory API (`/api/v1/memory/*`), the memory ops through the tools, and the worker MCP
//! endpoint, on a hub with memory in a temp store (no OpenCode: nothing here runs a worker).

use orchestra_core::tasks::TaskAnswer;
use orchestra_protocol::{EventBody, JobStatus, TaskAwaitParams};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::suite::common::{Served, TOKEN};
use crate::suite::mcp::{McpSession, answer};

async fn call(
    served: &Served,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let http = Served::http();
    let mut request = match method {
        "GET" => http.get(served.url(path)),
        _ => http.post(served.url(path)),
    }
    .bearer_auth(TOKEN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// A tool call through `POST /api/v1/tools/{name}`: (is_error, text).
async fn tool(served: &Served, name: &str, args: Value) -> (bool, String) {
    let (status, reply) = call(served, "POST", &format!("/api/v1/tools/{name}"), Some(args)).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    (
        reply["isError"] == true,
        reply["text"].as_str().unwrap().to_owned(),
    )
}

/// Starts an op through `task_start` and awaits it: the final record.
async fn op(served: &Served, op: &str, memory: Value) -> orchestra_protocol::JobRecord {
    let (error, text) = tool(
        served,
        "task_start",
        json!({"kind": "op", "op": op, "task": format!("test {op}"), "memory": memory}),
    )
    .await;
    assert!(!error, "{text}");
    let started: Value = serde_json::from_str(&text).unwrap();
    let id = started["taskId"].as_str().unwrap().to_owned();
    let answer = served
        .hub
        .engine()
        .await_tasks(&TaskAwaitParams {
            task_id: Some(id),
            ..TaskAwaitParams::default()
        })
        .await
        .unwrap();
    match answer {
        TaskAnswer::One(lookup) => lookup.record().cloned().unwrap(),
        TaskAnswer::Many(_) => panic!("one task was awaited"),
    }
}

fn result_of(record: &orchestra_protocol::JobRecord) -> Value {
    assert_eq!(record.status, JobStatus::Succeeded, "{:?}", record.error);
    serde_json::from_str(record.response_text.as_deref().unwrap()).unwrap()
}

#[tokio::test]
async fn the_memory_routes_put_supersede_search_show_forget_and_render_the_block() {
    let served = Served::start().await;
    let mut events = served.hub.bus().subscribe(None);
    let (status, first) = call(
        &served,
        "POST",
        "/api/v1/memory/records",
        Some(
            json!({"kind": "decision", "key": "decision:db", "title": "Job store",
                    "body": "Jobs live in SQLite (WAL), see src/store/jobs.rs"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(first["outcome"], "created");
    assert_eq!(first["record"]["provenance"]["producer"], "user");
    let old_id = first["record"]["id"].as_str().unwrap().to_owned();
    let written = loop {
        let event = events.next().await.unwrap();
        if let EventBody::MemoryWritten(written) = &event.body {
            break written.clone();
        }
    };
    assert_eq!(written.record_id, old_id);
    assert_eq!(written.outcome, "created");
    assert_eq!(written.key.as_deref(), Some("decision:db"));

    let (status, second) = call(
        &served,
        "POST",
        "/api/v1/memory/records/decision%3Adb/supersede",
        Some(
            json!({"kind": "decision", "key": "decision:db", "title": "Job store",
                    "body": "Jobs and workflow runs live in SQLite (WAL)"}),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let new_id = second["record"]["id"].as_str().unwrap().to_owned();
    assert_eq!(second["superseded"], json!([old_id]));

    let (status, page) = call(
        &served,
        "POST",
        "/api/v1/memory/search",
        Some(json!({"query": "SQLite WAL", "detail": "summary"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&str> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [new_id.as_str()],
        "the new record, not the old: {page}"
    );

    let (status, shown) = call(
        &served,
        "GET",
        &format!("/api/v1/memory/records/{old_id}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{shown}");
    assert_eq!(shown["record"]["status"], "superseded");
    assert_eq!(shown["record"]["supersededBy"], new_id.as_str());

    // A pinned convention opens the block; the block is what a worker would get.
    call(
        &served,
        "POST",
        "/api/v1/memory/records",
        Some(json!({"kind": "convention", "body": "Errors name the problem and the fix", "pinned": true})),
    )
    .await;
    let (status, block) = call(
        &served,
        "GET",
        "/api/v1/memory/context?task=where%20do%20jobs%20live%3F%20SQLite",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{block}");
    let text = block["text"].as_str().unwrap();
    assert!(
        text.starts_with("## Project memory (orchestra)\n"),
        "{text}"
    );
    let pinned = text.find("Errors name the problem").unwrap();
    let relevant = text.find("workflow runs live in SQLite").unwrap();
    assert!(pinned < relevant, "pinned first: {text}");
    assert!(
        !text.contains("see src/store/jobs.rs"),
        "superseded records stay out: {text}"
    );
    assert_eq!(block["hash"].as_str().unwrap().len(), 16);
    let (_, again) = call(
        &served,
        "GET",
        "/api/v1/memory/context?task=where%20do%20jobs%20live%3F%20SQLite",
        None,
    )
    .await;
    assert_eq!(again, block, "the same memory gives the same block");

    let (status, forgot) = call(
        &served,
        "POST",
        &format!("/api/v1/memory/records/{new_id}/forget"),
        Some(json!({"mode": "retract"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{forgot}");
    assert_eq!(forgot["changed"], true);
    let (_, page) = call(
        &served,
        "POST",
        "/api/v1/memory/search",
        Some(json!({"query": "SQLite"})),
    )
    .await;
    assert_eq!(page["items"], json!([]), "{page}");

    // Errors are JSON with a kind.
    let (status, missing) = call(
        &served,
        "GET",
        "/api/v1/memory/records/mem_0000000000000000",
        None,
    )
    .await;
    assert_eq!(
        (status, missing["kind"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found")),
        "{missing}"
    );
    let (status, bad) = call(
        &served,
        "POST",
        "/api/v1/memory/search",
        Some(json!({"query": "x", "cursor": "nonsense"})),
    )
    .await;
    assert_eq!(
        (status, bad["kind"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request")),
        "{bad}"
    );
    let (status, bad) = call(
        &served,
        "POST",
        "/api/v1/memory/records",
        Some(json!({"body": "x".repeat(2001)})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}");
    assert!(
        bad["error"].as_str().unwrap().contains("memory.maxChars"),
        "{bad}"
    );
    let (status, bad) = call(&served, "GET", "/api/v1/memory/context?tsk=x", None).await;
    assert_eq!(
        (status, bad["kind"].as_str()),
        (StatusCode::BAD_REQUEST, Some("bad_request")),
        "{bad}"
    );
    served.stop().await;
}

#[tokio::test]
async fn a_tiny_budget_gives_a_cursor_not_a_cut_record_and_pages_cover_everything() {
    let served = Served::start().await;
    for i in 0..5 {
        call(
            &served,
            "POST",
            "/api/v1/memory/records",
            Some(json!({"key": format!("fact:pool:{i}"), "body": format!("the pool in src/db/pool.rs keeps {i} spare connections {}", "and more ".repeat(20))})),
        )
        .await;
    }
    let (status, tiny) = call(
        &served,
        "POST",
        "/api/v1/memory/search",
        Some(json!({"query": "pool", "budgetTokens": 5, "detail": "full"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tiny}");
    assert_eq!(tiny["items"], json!([]), "no record is cut to fit: {tiny}");
    assert!(tiny["needsBudgetTokens"].as_u64().unwrap() > 5, "{tiny}");
    assert!(tiny["nextCursor"].is_string(), "{tiny}");

    // A budget for about two records at a time: every record comes, once, across the pages.
    let one = tiny["needsBudgetTokens"].as_u64().unwrap();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let (_, page) = call(
            &served,
            "POST",
            "/api/v1/memory/search",
            Some(json!({"query": "pool", "budgetTokens": one * 2 + 10, "detail": "full", "cursor": cursor})),
        )
        .await;
        for hit in page["items"].as_array().unwrap() {
            assert!(
                hit["record"]["body"].as_str().unwrap().ends_with("more "),
                "whole: {hit}"
            );
            seen.push(hit["id"].as_str().unwrap().to_owned());
        }
        cursor = page["nextCursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5, "{seen:?}");

    // The same through task_list's memory view.
    let (error, text) = tool(
        &served,
        "task_list",
        json!({"view": "memory", "query": "pool", "budgetTokens": 5, "format": "json"}),
    )
    .await;
    assert!(!error, "{text}");
    let page: Value = serde_json::from_str(&text).unwrap();
    assert!(
        page["nextCursor"].is_string() && page["items"] == json!([]),
        "{page}"
    );
    let (error, text) = tool(
        &served,
        "task_list",
        json!({"view": "memory", "query": "pool", "limit": 2}),
    )
    .await;
    assert!(!error, "{text}");
    assert!(text.starts_with("### Memory: pool"), "{text}");
    assert_eq!(text.matches("[fact · project]").count(), 2, "{text}");
    assert!(text.contains("cursor: \""), "{text}");
    let (error, text) = tool(
        &served,
        "task_list",
        json!({"view": "memory", "scope": "all"}),
    )
    .await;
    assert!(error && text.contains("`project` or `global`"), "{text}");
    served.stop().await;
}

#[tokio::test]
async fn memory_ops_run_through_the_tools_with_the_originals_payload() {
    let served = Served::start().await;
    let put = result_of(
        &op(&served, "memory.put", json!({"key": "decision:cache", "value": "Cache model catalogs per server", "tags": ["models"]})).await,
    );
    let old = put["record"]["id"].as_str().unwrap().to_owned();
    op(&served, "memory.put", json!({"key": "fact:catalog", "value": "The catalog comes from OpenCode's /config/providers"})).await;
    let newer = result_of(
        &op(&served, "memory.put", json!({"key": "decision:cache2", "value": "Cache model catalogs per server and refresh on restart", "supersedes": "decision:cache"})).await,
    );
    let new = newer["record"]["id"].as_str().unwrap().to_owned();
    let link = result_of(
        &op(&served, "memory.link", json!({"fromKey": "decision:cache2", "toKey": "fact:catalog", "relation": "depends_on"})).await,
    );
    assert_eq!(link["relation"], "depends_on");
    let found = result_of(
        &op(
            &served,
            "memory.search",
            json!({"query": "cache model catalogs"}),
        )
        .await,
    );
    let ids: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&new.as_str()) && !ids.contains(&old.as_str()),
        "{found}"
    );
    let got = result_of(&op(&served, "memory.get", json!({"key": "decision:cache2"})).await);
    // The supersede wrote a `supersedes` link; the explicit link is the other one.
    let relations: Vec<(&str, &str, &str)> = got["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["relation"].as_str().unwrap(),
                l["from"].as_str().unwrap(),
                l["to"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        relations.contains(&("supersedes", new.as_str(), old.as_str())),
        "{got}"
    );
    assert!(
        relations
            .iter()
            .any(|(rel, from, _)| *rel == "depends_on" && *from == new.as_str()),
        "{got}"
    );
    let forgot = result_of(
        &op(
            &served,
            "memory.forget",
            json!({"id": new, "mode": "delete"}),
        )
        .await,
    );
    assert_eq!(forgot["mode"], "delete");

    // Refused at once: a payload the op cannot use; later: a memory task nobody opened.
    let (error, text) = tool(
        &served,
        "task_start",
        json!({"kind": "op", "op": "memory.put", "task": "x", "memory": {"key": "k"}}),
    )
    .await;
    assert!(error && text.contains("value"), "{text}");
    let (error, text) = tool(
        &served,
        "task_start",
        json!({"kind": "op", "op": "memory.link", "memory": {"fromKey": "a"}}),
    )
    .await;
    assert!(error && text.contains("toKey"), "{text}");
    let done = op(
        &served,
        "memory.done",
        json!({"taskId": "no-such-task", "summary": "s"}),
    )
    .await;
    assert_eq!(done.status, JobStatus::Failed);
    assert!(done.error.unwrap().contains("no pending memory task"));
    served.stop().await;
}

#[tokio::test]
async fn without_memory_the_routes_and_ops_say_memory_enabled_is_off() {
    let served = Served::start_with(|config| config.memory.enabled = false).await;
    let (status, refused) = call(
        &served,
        "POST",
        "/api/v1/memory/search",
        Some(json!({"query": "x"})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(refused["kind"], "memory_disabled");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("memory.enabled"),
        "{refused}"
    );
    let (error, text) = tool(
        &served,
        "task_start",
        json!({"kind": "op", "op": "memory.put", "task": "x", "memory": {"value": "v"}}),
    )
    .await;
    assert!(error && text.contains("memory.enabled"), "{text}");
    served.stop().await;
}

#[tokio::test]
async fn export_then_import_moves_every_record_and_link() {
    let from = Served::start().await;
    for key in ["a", "b"] {
        call(
            &from,
            "POST",
            "/api/v1/memory/records",
            Some(json!({"key": key, "body": format!("record {key}")})),
        )
        .await;
    }
    op(&from, "memory.link", json!({"fromKey": "a", "toKey": "b"})).await;
    let jsonl = Served::http()
        .get(from.url("/api/v1/memory/export"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(jsonl.headers()["content-type"], "application/x-ndjson");
    let jsonl = jsonl.text().await.unwrap();
    assert_eq!(
        jsonl
            .lines()
            .filter(|l| l.contains("\"type\":\"record\""))
            .count(),
        2,
        "{jsonl}"
    );
    assert_eq!(
        jsonl
            .lines()
            .filter(|l| l.contains("\"type\":\"link\""))
            .count(),
        1,
        "{jsonl}"
    );
    let to = Served::start().await;
    let imported: Value = Served::http()
        .post(to.url("/api/v1/memory/import"))
        .bearer_auth(TOKEN)
        .body(format!("{jsonl}not json\n"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(imported["records"], 2, "{imported}");
    assert_eq!(imported["links"], 1, "{imported}");
    assert_eq!(imported["rejectedCount"], 1, "{imported}");
    let (_, shown) = call(&to, "GET", "/api/v1/memory/records/a", None).await;
    assert_eq!(shown["record"]["body"], "record a", "{shown}");
    assert_eq!(shown["links"].as_array().unwrap().len(), 1, "{shown}");
    from.stop().await;
    to.stop().await;
}

#[tokio::test]
async fn the_worker_endpoint_runs_memory_ops_only_with_its_own_token() {
    let served = Served::start().await;
    let http = Served::http();
    let token = served.worker_mcp.token.clone();
    assert_eq!(served.worker_mcp.url, served.url("/mcp/worker"));
    let (mcp, _) = McpSession::open(&served, "/mcp/worker", &token, "opencode").await;
    let tools = answer(
        mcp.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
            .await,
    )
    .await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["task_start"]);
    let call = |id: u64, arguments: Value| {
        mcp.send(json!({"jsonrpc": "2.0", "id": id, "method": "tools/call",
                        "params": {"name": "task_start", "arguments": arguments}}))
    };
    for (id, refused) in [
        (
            3,
            json!({"kind": "worker", "workerId": "coder", "task": "rm -rf"}),
        ),
        (
            4,
            json!({"kind": "workflow", "workflowId": "roocode-boomerang", "task": "x"}),
        ),
        (
            5,
            json!({"kind": "op", "op": "worker.model.set", "task": "x", "worker": {"workerId": "coder", "model": "a/b"}}),
        ),
        (6, json!({"task": "auto-routed"})),
    ] {
        let reply = answer(call(id, refused).await).await;
        assert_eq!(reply["result"]["isError"], true, "{reply}");
        let text = reply["result"]["content"][0]["text"].as_str().unwrap();
        assert!(text.contains("only run memory ops"), "{text}");
    }
    let reply = answer(
        call(7, json!({"kind": "op", "op": "memory.put", "memory": {"key": "fact:w", "value": "written by a worker"}}))
            .await,
    )
    .await;
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    let answer_json: Value =
        serde_json::from_str(reply["result"]["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(answer_json["status"], "succeeded", "{answer_json}");
    assert_eq!(
        answer_json["result"]["record"]["provenance"]["producer"],
        "worker"
    );
    let job = served
        .hub
        .engine()
        .peek(&orchestra_protocol::TaskPeekParams {
            task_id: answer_json["taskId"].as_str().map(str::to_owned),
            ..Default::default()
        })
        .unwrap();
    let job = job.lookups()[0].record().cloned().unwrap();
    assert_eq!(job.requested_by.as_deref(), Some("memory-worker"));
    assert_eq!(
        job.message, "memory.put",
        "an op's label defaults to its name"
    );

    // The worker token opens the worker endpoint and nothing else.
    for path in ["/api/v1/health", "/mcp", "/api/v1/memory/export"] {
        let status = http
            .get(served.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
    }
    served.stop().await;
}
