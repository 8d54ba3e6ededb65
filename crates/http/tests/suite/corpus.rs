//! Malformed HTTP requests (`tests/corpus/http_requests.jsonl`) and the malformed MCP tool calls
//! of the CLI's corpus (`crates/cli/tests/corpus/mcp_calls.jsonl`, sent to
//! `POST /api/v1/tools/{name}`), all against one hub: each is answered with the expected status
//! and an error naming the problem, and the hub still serves afterwards.

use reqwest::Method;
use serde_json::Value;

use crate::suite::common::{Served, TOKEN};

const HTTP_CORPUS: &str = include_str!("../corpus/http_requests.jsonl");
const MCP_CORPUS: &str = include_str!("../../../cli/tests/corpus/mcp_calls.jsonl");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_request_gets_a_clear_error_and_the_hub_keeps_serving() {
    // The limits the MCP corpus was written against (crates/cli/tests/suite/malformed_inputs.rs).
    let served = Served::start_with(|config| {
        config.tasks.max_task_chars = 2000;
        config.tasks.max_attachments = 2;
        config.tasks.max_attachment_bytes = 1000;
    })
    .await;
    let http = Served::http();
    let port = served.server.addr().port().to_string();
    let mut tried = 0;
    for line in HTTP_CORPUS.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let name = case["name"].as_str().unwrap();
        let method = Method::from_bytes(case["method"].as_str().unwrap().as_bytes()).unwrap();
        let mut request = http.request(method, served.url(case["path"].as_str().unwrap()));
        if case["auth"].as_bool().unwrap_or(true) {
            request = request.bearer_auth(TOKEN);
        }
        for (header, value) in case["headers"].as_object().unwrap() {
            let value = value.as_str().unwrap().replace("PORT", &port);
            request = request.header(header.as_str(), value);
        }
        if let Some(body) = case["body"].as_str() {
            request = request
                .header("content-type", "application/json")
                .body(body.to_owned());
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        assert_eq!(
            u64::from(status),
            case["status"].as_u64().unwrap(),
            "{name}: {text}"
        );
        for needle in case["expect"].as_array().unwrap() {
            let needle = needle.as_str().unwrap().replace("PORT", &port);
            assert!(text.contains(&needle), "{name}: `{needle}` not in {text}");
        }
        tried += 1;
    }
    for line in MCP_CORPUS.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        // Raw `tools/call` params have no HTTP equivalent: the tool name is the route.
        let (Some(tool), Some(arguments)) = (case["tool"].as_str(), case.get("arguments")) else {
            continue;
        };
        let name = case["name"].as_str().unwrap();
        let reply = served.client().tool(tool, arguments, Some("corpus")).await;
        let reply = reply.unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(reply.is_error, "{name} was accepted: {}", reply.text);
        for needle in case["expect"].as_array().unwrap() {
            let needle = needle.as_str().unwrap();
            assert!(
                reply.text.contains(needle),
                "{name}: `{needle}` not in {}",
                reply.text
            );
        }
        tried += 1;
    }
    eprintln!("corpus: {tried} malformed requests answered; the hub still serves");
    assert!(tried >= 100, "only {tried} cases");
    let health = served.client().health().await.unwrap();
    assert_eq!(health.hub_id, served.hub.id());
    served.stop().await;
}
