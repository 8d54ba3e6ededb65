//! MCP over Streamable HTTP at /mcp, spoken as a client that connects by URL would.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::suite::common::{Served, TOKEN};

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

/// A client's MCP session over Streamable HTTP at one path, opened with the handshake a client
/// that connects by URL sends (initialize, then notifications/initialized).
pub struct McpSession {
    http: reqwest::Client,
    url: String,
    token: String,
    session: Option<String>,
}

impl McpSession {
    /// Opens a session; returns it with the answer to `initialize`.
    pub async fn open(
        served: &Served,
        path: &str,
        token: &str,
        client: &str,
    ) -> (McpSession, Value) {
        let mut mcp = McpSession {
            http: Served::http(),
            url: served.url(path),
            token: token.to_owned(),
            session: None,
        };
        let init = mcp
            .send(
                json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
                "protocolVersion": "2025-06-18", "capabilities": {},
                "clientInfo": {"name": client, "version": "1"}}}),
            )
            .await;
        assert_eq!(init.status(), StatusCode::OK);
        mcp.session = init
            .headers()
            .get("mcp-session-id")
            .map(|v| v.to_str().unwrap().to_owned());
        let init = answer(init).await;
        let _ = mcp
            .send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;
        (mcp, init)
    }

    /// Ends the session, as a client that closes does.
    pub async fn delete(&self) -> reqwest::Response {
        let mut request = self
            .http
            .delete(&self.url)
            .bearer_auth(&self.token)
            .header("mcp-protocol-version", "2025-06-18");
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        request.send().await.unwrap()
    }

    /// The same endpoint and token under another session id.
    pub fn with_id(&self, session: &str) -> McpSession {
        McpSession {
            http: self.http.clone(),
            url: self.url.clone(),
            token: self.token.clone(),
            session: Some(session.to_owned()),
        }
    }

    /// Posts one JSON-RPC message in this session.
    pub async fn send(&self, body: Value) -> reqwest::Response {
        let mut request = self
            .http
            .post(&self.url)
            .bearer_auth(&self.token)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&body);
        if let Some(session) = &self.session {
            request = request.header("mcp-session-id", session);
        }
        request.send().await.unwrap()
    }
}

#[tokio::test]
async fn the_five_tools_are_served_over_streamable_http() {
    let served = Served::start().await;
    let http = Served::http();
    let (mcp, init) = McpSession::open(&served, "/mcp", TOKEN, "http-test").await;
    assert_eq!(init["result"]["serverInfo"]["name"], "orchestra", "{init}");
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
        mcp.send(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                   "params": {"name": "task_list", "arguments": {"view": "profiles", "format": "json"}}})).await,
    )
    .await;
    let text = listed["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("\"architect\""), "{text}");
    let refused = answer(
        mcp.send(json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call",
                   "params": {"name": "task_start", "arguments": {"kind": "worker", "task": "x", "workerId": "codr"}}})).await,
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
