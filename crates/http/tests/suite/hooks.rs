//! The routes Orchestra's OpenCode plugin calls (`/api/v1/hooks/*`): the token, answers in the
//! shape the plugin applies, the memory block in the system prompt and the compaction context.
//! The story with a real OpenCode loading the plugin is `crates/cli/tests/suite/plugin.rs`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::suite::common::{Served, TOKEN};

async fn hook(served: &Served, route: &str, body: Value) -> (StatusCode, Value) {
    let response = Served::http()
        .post(served.url(&format!("/api/v1/hooks/{route}")))
        .bearer_auth(TOKEN)
        .header("x-orchestra-plugin", "test-instance")
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_hooks_need_the_token() {
    let served = Served::start().await;
    let http = Served::http();
    for route in [
        "system",
        "chat-message",
        "tool-before",
        "event",
        "compacting",
    ] {
        let response = http
            .post(served.url(&format!("/api/v1/hooks/{route}")))
            .json(&json!({"sessionID": "ses_1"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{route}");
    }
    let stream = http
        .get(served.url("/api/v1/hooks/deliveries"))
        .header("x-orchestra-plugin", "i")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::UNAUTHORIZED);
    served.stop().await;
}

#[tokio::test]
async fn task_start_gets_the_calling_session_and_other_tools_nothing() {
    let served = Served::start().await;
    let (status, reply) = hook(
        &served,
        "tool-before",
        json!({"tool": "orchestra_task_start", "sessionID": "ses_main", "callID": "c1"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(reply, json!({"args": {"callerSessionId": "ses_main"}}));
    let (_, reply) = hook(
        &served,
        "tool-before",
        json!({"tool": "orchestra_task_await", "sessionID": "ses_main", "callID": "c2"}),
    )
    .await;
    assert_eq!(
        reply,
        json!({"after": true}),
        "await results are reported back"
    );
    let (_, reply) = hook(
        &served,
        "tool-before",
        json!({"tool": "bash", "sessionID": "ses_main", "callID": "c3"}),
    )
    .await;
    assert_eq!(reply, json!({}));
    // A message without images answers at once and changes nothing.
    let (status, reply) = hook(
        &served,
        "chat-message",
        json!({"sessionID": "ses_main", "parts": [{"type": "text", "text": "hello"}]}),
    )
    .await;
    assert_eq!((status, reply), (StatusCode::OK, json!({})));
    served.stop().await;
}

#[tokio::test]
async fn the_system_prompt_and_the_compaction_get_the_pinned_memory() {
    let served = Served::start().await;
    let put = Served::http()
        .post(served.url("/api/v1/memory/records"))
        .bearer_auth(TOKEN)
        .json(
            &json!({"kind": "convention", "key": "errors", "pinned": true,
                      "body": "Errors name the problem and the fix (pinned-hook-test)"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::OK);
    hook(
        &served,
        "chat-message",
        json!({"sessionID": "ses_m", "parts": [{"type": "text", "text": "fix the parser"}]}),
    )
    .await;
    // The block is built in the background; a request that comes before it is ready goes
    // without it, and a later one gets it.
    let mut system = Vec::new();
    for _ in 0..50 {
        let (status, reply) = hook(&served, "system", json!({"sessionID": "ses_m"})).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        system = reply["system"].as_array().unwrap().clone();
        if !system.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let text = system[0].as_str().unwrap();
    assert!(
        text.contains("## Project memory (orchestra)") && text.contains("pinned-hook-test"),
        "{text}"
    );
    assert_eq!(system.len(), 1, "no running-task line without tasks");
    let (_, reply) = hook(&served, "compacting", json!({"sessionID": "ses_m"})).await;
    assert!(
        reply["context"][0]
            .as_str()
            .is_some_and(|t| t.contains("pinned-hook-test")),
        "{reply}"
    );
    // Outside a session (agent generation) nothing is added.
    let (_, reply) = hook(&served, "system", json!({})).await;
    assert_eq!(reply, json!({"system": []}));
    served.stop().await;
}

#[tokio::test]
async fn malformed_hook_bodies_and_a_stream_without_an_instance_are_refused() {
    let served = Served::start().await;
    let (status, reply) = hook(&served, "tool-before", json!({"tool": 5})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{reply}");
    assert!(
        reply["error"]
            .as_str()
            .unwrap()
            .contains("tool.execute.before"),
        "{reply}"
    );
    let stream = Served::http()
        .get(served.url("/api/v1/hooks/deliveries"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::BAD_REQUEST);
    let error: Value = stream.json().await.unwrap();
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("x-orchestra-plugin"),
        "{error}"
    );
    served.stop().await;
}
