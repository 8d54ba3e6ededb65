//! Decoding against payloads captured from a real OpenCode 1.18.33
//! (`crates/core/tests/fixtures/opencode/`).

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;

use futures_util::StreamExt;
use serde_json::json;

use super::events::decode_sse;
use super::*;

const PROVIDERS: &str = include_str!("../../tests/fixtures/opencode/providers.json");
const AGENTS: &str = include_str!("../../tests/fixtures/opencode/agents.json");
const SESSION: &str = include_str!("../../tests/fixtures/opencode/session_create.json");
const PROMPT_RESPONSE: &str = include_str!("../../tests/fixtures/opencode/prompt_response.json");
const MESSAGES: &str = include_str!("../../tests/fixtures/opencode/messages.json");
const PERMISSIONS: &str = include_str!("../../tests/fixtures/opencode/permissions.json");
const EVENTS: &str = include_str!("../../tests/fixtures/opencode/events.sse");

#[test]
fn providers_decode_with_capabilities() {
    let providers: ProvidersResponse = serde_json::from_str(PROVIDERS).unwrap();
    assert_eq!(providers.default.get("fake").unwrap(), "fake-model");
    let fake = &providers.providers[0];
    assert_eq!(fake.id, "fake");
    assert_eq!(fake.source.as_deref(), Some("config"));
    let model = fake.models.get("fake-model").unwrap();
    assert_eq!(model.provider_id, "fake");
    assert!(model.capabilities.toolcall && model.capabilities.attachment);
    assert!(model.capabilities.input.image && !model.capabilities.input.pdf);
    assert_eq!(model.limit.context, 128_000);
    assert!(
        !format!("{providers:?}").contains("sk-fake"),
        "API keys must not be decoded"
    );
}

#[test]
fn agents_decode_with_permission_rules() {
    let agents: Vec<AgentInfo> = serde_json::from_str(AGENTS).unwrap();
    let build = &agents[0];
    assert_eq!(
        (build.name.as_str(), build.mode.as_str()),
        ("build", "primary")
    );
    assert!(build.native && !build.hidden);
    assert_eq!(
        build.permission[0],
        PermissionRule {
            permission: "*".into(),
            pattern: "*".into(),
            action: PermissionAction::Allow
        }
    );
    assert!(agents[1].hidden);
}

#[test]
fn session_and_messages_decode() {
    let session: SessionInfo = serde_json::from_str(SESSION).unwrap();
    assert!(session.id.starts_with("ses_"));
    assert_eq!(session.title, "cap");
    assert_eq!(session.permission[0].action, PermissionAction::Deny);

    let reply: MessageWithParts = serde_json::from_str(PROMPT_RESPONSE).unwrap();
    assert_eq!(reply.info.role, "assistant");
    assert_eq!(reply.info.session_id, session.id);
    assert_eq!(reply.info.finish.as_deref(), Some("stop"));
    assert_eq!(reply.info.model_id.as_deref(), Some("fake-model"));
    let tokens = reply.info.tokens.unwrap();
    assert_eq!(
        (tokens.input, tokens.output, tokens.total),
        (10, 5, Some(15))
    );
    assert_eq!(reply.text(), "ECHO: hello there");
    assert!(
        matches!(reply.parts[0], Part::Other),
        "step-start is not modelled"
    );
    assert!(
        matches!(reply.parts[2], Part::StepFinish { ref reason, .. } if reason.as_deref() == Some("stop"))
    );

    let messages: Vec<MessageWithParts> = serde_json::from_str(MESSAGES).unwrap();
    let user = &messages[0].info;
    assert_eq!(user.role, "user");
    assert_eq!(user.model.as_ref().unwrap().to_string(), "fake/fake-model");
    let aborted = messages.iter().find(|m| m.info.error.is_some()).unwrap();
    assert_eq!(
        aborted.info.error.as_ref().unwrap()["name"],
        "MessageAbortedError"
    );
    let tool = messages
        .iter()
        .flat_map(|m| &m.parts)
        .find_map(|p| match p {
            Part::Tool {
                tool,
                state,
                call_id,
                ..
            } => Some((tool, state, call_id)),
            Part::Text { .. } | Part::StepFinish { .. } | Part::Other => None,
        })
        .unwrap();
    assert_eq!((tool.0.as_str(), tool.2.as_str()), ("read", "call_fake_1"));
    assert_eq!(tool.1.status, "error");
    assert!(
        tool.1
            .error
            .as_deref()
            .unwrap()
            .contains("rejected permission")
    );
}

#[test]
fn permissions_and_statuses_decode() {
    let pending: Vec<PermissionRequest> = serde_json::from_str(PERMISSIONS).unwrap();
    assert_eq!(pending[0].permission, "external_directory");
    assert_eq!(pending[0].patterns, vec!["/etc/*".to_owned()]);
    assert_eq!(pending[0].tool.as_ref().unwrap()["callID"], "call_fake_1");

    let statuses: HashMap<String, SessionStatus> = serde_json::from_value(json!({
        "ses_a": {"type": "busy"},
        "ses_b": {"type": "retry", "attempt": 2, "message": "fake failure 500", "next": 1795479295323_i64}
    }))
    .unwrap();
    assert_eq!(statuses["ses_a"], SessionStatus::Busy);
    assert_eq!(
        statuses["ses_b"],
        SessionStatus::Retry {
            attempt: 2,
            message: "fake failure 500".into(),
            next: Some(1_795_479_295_323)
        }
    );
}

#[test]
fn prompt_requests_serialize_like_opencode_expects() {
    let request = PromptRequest {
        parts: vec![
            PartInput::Text { text: "hi".into() },
            PartInput::File {
                mime: "image/png".into(),
                filename: "red.png".into(),
                url: "data:image/png;base64,AA==".into(),
            },
        ],
        agent: Some("build".into()),
        model: Some("fake/fake-model".parse().unwrap()),
        system: None,
        tools: Some([("bash".to_owned(), false)].into()),
    };
    assert_eq!(
        serde_json::to_value(&request).unwrap(),
        json!({
            "parts": [
                {"type": "text", "text": "hi"},
                {"type": "file", "mime": "image/png", "filename": "red.png", "url": "data:image/png;base64,AA=="}
            ],
            "agent": "build",
            "model": {"providerID": "fake", "modelID": "fake-model"},
            "tools": {"bash": false}
        })
    );
    let session = CreateSessionRequest {
        title: Some("t".into()),
        permission: Some(vec![PermissionRule {
            permission: "bash".into(),
            pattern: "*".into(),
            action: PermissionAction::Deny,
        }]),
        ..CreateSessionRequest::default()
    };
    assert_eq!(
        serde_json::to_value(&session).unwrap(),
        json!({"title": "t", "permission": [{"permission": "bash", "pattern": "*", "action": "deny"}]})
    );
}

#[test]
fn model_refs_parse_from_provider_slash_model() {
    let model: ModelRef = "openrouter/meta/llama".parse().unwrap();
    assert_eq!(model.provider_id, "openrouter");
    assert_eq!(model.model_id, "meta/llama");
    let error = "fake-model".parse::<ModelRef>().unwrap_err();
    assert!(error.contains("provider/model"), "{error}");
    assert!("/x".parse::<ModelRef>().is_err());
}

#[tokio::test]
async fn captured_event_stream_decodes_and_skips_garbage() {
    // Split the capture into uneven chunks and add a malformed and an unknown event.
    let mut text = String::from(EVENTS);
    text.push_str("data: {not json}\n\n");
    text.push_str("data: {\"type\":\"session.idle\",\"properties\":{}}\n\n");
    text.push_str("data: {\"id\":\"evt_x\",\"type\":\"todo.updated\",\"properties\":{}}\n\n");
    let chunks: Vec<Result<Vec<u8>, OpenCodeError>> = text
        .as_bytes()
        .chunks(97)
        .map(|chunk| Ok(chunk.to_vec()))
        .collect();
    let events: Vec<_> = decode_sse(futures_util::stream::iter(chunks), "GET /event".into())
        .collect()
        .await;

    assert!(matches!(
        events.last(),
        Some(Err(OpenCodeError::EventStreamClosed))
    ));
    let events: Vec<OpenCodeEvent> = events.into_iter().filter_map(Result::ok).collect();
    assert_eq!(events[0], OpenCodeEvent::ServerConnected);
    assert_eq!(
        events.last().unwrap(),
        &OpenCodeEvent::Other {
            kind: "todo.updated".into()
        }
    );
    let has = |predicate: &dyn Fn(&OpenCodeEvent) -> bool| events.iter().any(predicate);
    assert!(has(&|e| matches!(e, OpenCodeEvent::Heartbeat)));
    assert!(has(&|e| matches!(e, OpenCodeEvent::SessionIdle { .. })));
    assert!(has(
        &|e| matches!(e, OpenCodeEvent::MessagePartDelta { field, delta, .. } if field == "text" && delta == "ECHO: ")
    ));
    assert!(has(&|e| matches!(
        e,
        OpenCodeEvent::SessionStatus {
            status: SessionStatus::Retry { attempt: 1, .. },
            ..
        }
    )));
    assert!(has(
        &|e| matches!(e, OpenCodeEvent::SessionError { error: Some(error), .. } if error["name"] == "MessageAbortedError")
    ));
    assert!(has(
        &|e| matches!(e, OpenCodeEvent::PermissionAsked(request) if request.permission == "external_directory")
    ));
    assert!(has(
        &|e| matches!(e, OpenCodeEvent::PermissionReplied { reply, .. } if reply == "reject")
    ));
    assert!(has(
        &|e| matches!(e, OpenCodeEvent::MessagePartUpdated { part: Part::Tool { state, .. } } if state.status == "error")
    ));
    assert!(has(
        &|e| matches!(e, OpenCodeEvent::MessageUpdated { info } if info.role == "user")
    ));
    // Every session-scoped event names its session.
    for event in &events {
        if let OpenCodeEvent::SessionIdle { .. } | OpenCodeEvent::MessagePartDelta { .. } = event {
            assert!(event.session_id().unwrap().starts_with("ses_"));
        }
    }
}
