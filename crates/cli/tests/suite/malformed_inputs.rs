//! Issue 12 §8: every malformed MCP call in `corpus/mcp_calls.jsonl`, sent in order to one real
//! `orchestra mcp` over raw JSON-RPC, is answered with an error naming what is wrong; the
//! process never crashes and still runs a valid task afterwards.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::Duration;

use common::{World, bounded, wait_gone};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout};

const CORPUS: &str = include_str!("../corpus/mcp_calls.jsonl");

struct Raw {
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl Raw {
    async fn send(&mut self, message: &Value) {
        let mut line = message.to_string();
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
    }

    /// Sends a request and returns its response (skipping notifications).
    async fn request(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.send(&json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        loop {
            let line = tokio::time::timeout(Duration::from_secs(60), self.stdout.next_line())
                .await
                .unwrap_or_else(|_| panic!("no answer to request {id} ({method})"))
                .unwrap()
                .unwrap_or_else(|| panic!("orchestra mcp closed stdout before answering {id}"));
            let message: Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("not JSON from orchestra mcp ({e}): {line}"));
            if message["id"] == json!(id) {
                return message;
            }
        }
    }

    /// A tool call's outcome: (is an error, its text).
    async fn call(&mut self, params: Value) -> (bool, String) {
        let response = self.request("tools/call", params).await;
        if let Some(error) = response.get("error") {
            return (true, error.to_string());
        }
        let result = &response["result"];
        let text = result["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["text"].as_str())
            .collect::<Vec<_>>()
            .join("\n");
        (result["isError"] == json!(true), text)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_call_gets_a_clear_error_and_the_server_keeps_serving() {
    bounded(async {
        let world =
            World::new(json!({"tasks": {"maxTaskChars": 2000, "maxAttachments": 2, "maxAttachmentBytes": 1000}})).await;
        let mut child = world
            .mcp_command(&[])
            .env("ORCHESTRA_LOG", "error")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        let mut raw = Raw {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()).lines(),
            next_id: 0,
        };
        let init = raw
            .request(
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": {},
                       "clientInfo": {"name": "corpus", "version": "1"}}),
            )
            .await;
        assert!(init["result"]["serverInfo"].is_object(), "{init}");
        raw.send(&json!({"jsonrpc": "2.0", "method": "notifications/initialized"}))
            .await;

        let mut tried = 0;
        let mut wrong = Vec::new();
        for line in CORPUS.lines().filter(|l| !l.trim().is_empty()) {
            let case: Value = serde_json::from_str(line).unwrap();
            let params = match case.get("params") {
                Some(params) => params.clone(),
                None => json!({"name": case["tool"], "arguments": case["arguments"]}),
            };
            let (is_error, text) = raw.call(params).await;
            tried += 1;
            let missing: Vec<&str> = case["expect"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .filter(|needle| !text.contains(needle))
                .collect();
            if !is_error || !missing.is_empty() {
                wrong.push(format!(
                    "{}: error={is_error}, missing {missing:?} in: {text}",
                    case["name"]
                ));
            }
            assert!(
                child.try_wait().unwrap().is_none(),
                "orchestra mcp exited after `{}`",
                case["name"]
            );
        }
        assert!(tried >= 50, "the corpus has only {tried} calls");
        assert!(wrong.is_empty(), "{} of {tried}:\n{}", wrong.len(), wrong.join("\n"));
        eprintln!("{tried} malformed MCP calls, 0 crashes");

        // Still serving: a valid task runs to its answer.
        let (is_error, text) = raw
            .call(json!({"name": "task_start", "arguments":
                {"kind": "worker", "workerId": "coder", "task": "still serving"}}))
            .await;
        assert!(!is_error, "{text}");
        let id = serde_json::from_str::<Value>(&text).unwrap()["taskId"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut record = Value::Null;
        for _ in 0..10 {
            let (_, text) = raw
                .call(json!({"name": "task_await", "arguments": {"taskId": id}}))
                .await;
            record = serde_json::from_str(&text).unwrap();
            if record["status"] != "running" {
                break;
            }
        }
        assert_eq!(record["responseText"], "ECHO: still serving", "{record}");
        drop(raw);
        wait_gone(pid).await;
    })
    .await;
}
