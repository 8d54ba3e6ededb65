//! MCP over Streamable HTTP at /mcp, spoken as a client that connects by URL would.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::{Served, TOKEN};

/// One JSON-RPC message's answer, from a JSON body or the first `data:` line of an SSE body.
pub async fn answer(response: reqwest::Response) -> Value {
    let text = response.text().await.unwrap();
    // An SSE body starts with a priming event whose data is empty.
    let json = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(str::trim)
        .find(|data| !data.is_empty())
        .unwrap_or(text.as_str());
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON-RPC: {e}: {text}"))
}

#[tokio::test]
async fn the_five_tools_are_served_over_streamable_http() {
    let served = Served::start().await;
    let http = Served::http();
    let post = |body: Value, session: Option<String>| {
        let mut request = http
            .post(served.url("/mcp"))
            .bearer_auth(TOKEN)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body);
        if let Some(session) = session {
            request = request.header("mcp-session-id", session);
        }
        request.send()
    };
    let init = post(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "http-test", "version": "1"}}}),
        None,
    )
    .await
    .unwrap();
    assert_eq!(init.status(), StatusCode::OK);
    let session = init
        .headers()
        .get("mcp-session-id")
        .map(|v| v.to_str().unwrap().to_owned());
    let init = answer(init).await;
    assert_eq!(init["result"]["serverInfo"]["name"], "orchestra", "{init}");
    let _ = post(
        json!({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        session.clone(),
    )
    .await
    .unwrap();
    let tools = answer(
        post(
            json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}),
            session.clone(),
        )
        .await
        .unwrap(),
    )
    .await;
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "task_start",
            "task_await",
            "task_peek",
            "task_list",
            "task_cancel"
        ]
    );
    let listed = answer(
        post(
            json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": "task_list", "arguments": {"view": "profiles", "format": "json"}}}),
            session.clone(),
        )
        .await
        .unwrap(),
    )
    .await;
    let text = listed["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("\"architect\""), "{text}");
    let refused = answer(
        post(
            json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                   "params": {"name": "task_start", "arguments": {"kind": "worker", "task": "x", "workerId": "codr"}}}),
            session,
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(refused["result"]["isError"], true, "{refused}");
    let unauthorized = http
        .post(served.url("/mcp"))
        .header("accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "initialize"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status(), StatusCode::UNAUTHORIZED);
    served.stop().await;
}
