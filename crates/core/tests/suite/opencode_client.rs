#![allow(clippy::unwrap_used)]
//! `OpenCodeClient` against the real pinned OpenCode (started by `ServerProcess`) and the fake LLM.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use orchestra_core::opencode::{
    BasicAuth, CreateSessionRequest, EventStream, OpenCodeClient, OpenCodeError, OpenCodeEvent,
    Part, PermissionAction, PermissionReplyKind, PermissionRule, PromptRequest, SessionStatus,
};
use orchestra_core::supervisor::{ServeSpec, ServerProcess};
use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::{
    IsolatedHome, TestProject, fake_provider_config, require_opencode,
};
use orchestra_testkit::proxy::TcpProxy;

const PASSWORD: &str = "client-secret";
const EVENT_WAIT: Duration = Duration::from_secs(20);

struct Rig {
    fake: FakeLlm,
    server: ServerProcess,
    client: OpenCodeClient,
    project_dir: PathBuf,
    _home: IsolatedHome,
    _project: TestProject,
}

impl Rig {
    async fn start(label: &str) -> Rig {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let home = IsolatedHome::new().unwrap();
        let project = TestProject::new().unwrap();
        let mut env = home.env();
        env.push((
            "OPENCODE_CONFIG_CONTENT".to_owned(),
            fake_provider_config(&fake.base_url()).to_string(),
        ));
        let started = Instant::now();
        let server = ServerProcess::spawn(ServeSpec {
            supervisor: None,
            binary: require_opencode(),
            cwd: project.dir.clone(),
            env,
            password: PASSWORD.to_owned(),
            port: 0,
            startup_timeout: Duration::from_secs(60),
            label: label.to_owned(),
        })
        .await
        .unwrap();
        eprintln!("[{label}] OpenCode ready after {:?}", started.elapsed());
        let project_dir = std::fs::canonicalize(&project.dir).unwrap();
        let client = server.client(Some(project_dir.clone())).unwrap();
        Rig {
            fake,
            server,
            client,
            project_dir,
            _home: home,
            _project: project,
        }
    }

    async fn session(&self, title: &str) -> String {
        let session = self
            .client
            .create_session(&CreateSessionRequest {
                title: Some(title.to_owned()),
                ..CreateSessionRequest::default()
            })
            .await
            .unwrap();
        assert_eq!(session.title, title);
        session.id
    }
}

/// Reads events until one matches; returns it with everything seen before it.
async fn wait_for_event(
    events: &mut EventStream,
    what: &str,
    matches: impl Fn(&OpenCodeEvent) -> bool,
) -> (OpenCodeEvent, Vec<OpenCodeEvent>) {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + EVENT_WAIT;
    loop {
        let next = tokio::time::timeout_at(deadline, events.next()).await;
        let event = match next {
            Ok(Some(Ok(event))) => event,
            Ok(Some(Err(error))) => panic!("event stream failed while waiting for {what}: {error}"),
            Ok(None) => panic!("event stream ended while waiting for {what}"),
            Err(_) => panic!("no {what} within {EVENT_WAIT:?}; saw {seen:#?}"),
        };
        if matches(&event) {
            return (event, seen);
        }
        seen.push(event);
    }
}

fn is_idle(event: &OpenCodeEvent, session: &str) -> bool {
    matches!(event, OpenCodeEvent::SessionIdle { session_id } if session_id == session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_prompts_events_messages_and_errors() {
    let rig = Rig::start("basics").await;
    let client = &rig.client;

    let health = client.health(Duration::from_millis(500)).await.unwrap();
    assert!(health.healthy);
    assert_eq!(health.version, "1.18.33");
    let config = client.config().await.unwrap();
    assert_eq!(config["model"], "fake/fake-model");
    let providers = client.providers().await.unwrap();
    let fake = providers.providers.iter().find(|p| p.id == "fake").unwrap();
    // `default` is OpenCode's pick per provider, not the config's `model`.
    assert!(
        fake.models.contains_key(&providers.default["fake"]),
        "{providers:?}"
    );
    assert!(fake.models["fake-model"].capabilities.toolcall);
    assert!(fake.models["fake-model"].capabilities.input.image);
    let agents = client.agents().await.unwrap();
    assert!(
        agents
            .iter()
            .any(|a| a.name == "build" && a.mode == "primary"),
        "{agents:?}"
    );

    let session = client
        .create_session(&CreateSessionRequest {
            title: Some("client test".to_owned()),
            permission: Some(vec![PermissionRule {
                permission: "bash".to_owned(),
                pattern: "*".to_owned(),
                action: PermissionAction::Deny,
            }]),
            ..CreateSessionRequest::default()
        })
        .await
        .unwrap();
    assert!(session.id.starts_with("ses_"), "{session:?}");
    assert_eq!(session.directory, rig.project_dir.to_string_lossy());
    assert_eq!(session.permission.len(), 1);
    let sid = session.id;

    // Blocking prompt.
    let started = Instant::now();
    let reply = client
        .prompt(&sid, &PromptRequest::text("hello from the client"))
        .await
        .unwrap();
    eprintln!("first blocking prompt took {:?}", started.elapsed());
    assert_eq!(reply.text(), "ECHO: hello from the client");
    assert_eq!(reply.info.role, "assistant");
    assert_eq!(reply.info.session_id, sid);
    assert_eq!(reply.info.finish.as_deref(), Some("stop"));

    // Async prompt, followed over SSE.
    let mut events = client.events().await.unwrap();
    let (first, _) = wait_for_event(&mut events, "server.connected", |_| true).await;
    assert_eq!(first, OpenCodeEvent::ServerConnected);
    let started = Instant::now();
    client
        .prompt_async(&sid, &PromptRequest::text("streamed hello"))
        .await
        .unwrap();
    let accepted = started.elapsed();
    let (_, seen) = wait_for_event(&mut events, "session.idle", |e| is_idle(e, &sid)).await;
    eprintln!(
        "prompt_async answered in {accepted:?}, idle after {:?}",
        started.elapsed()
    );
    assert!(
        seen.iter().any(|e| matches!(e,
            OpenCodeEvent::MessagePartDelta { session_id, field, .. } if session_id == &sid && field == "text")),
        "no text delta in {seen:#?}"
    );
    assert!(
        seen.iter().any(|e| matches!(e,
            OpenCodeEvent::MessagePartUpdated { part: Part::Text { text, session_id, .. } }
                if session_id == &sid && text == "ECHO: streamed hello")),
        "no final text part in {seen:#?}"
    );
    assert!(seen.iter().any(|e| matches!(e,
        OpenCodeEvent::SessionStatus { session_id, status: SessionStatus::Busy } if session_id == &sid)));
    assert!(seen.iter().any(|e| matches!(e,
        OpenCodeEvent::MessageUpdated { info } if info.role == "assistant" && info.session_id == sid)));

    let messages = client.messages(&sid).await.unwrap();
    let roles: Vec<&str> = messages.iter().map(|m| m.info.role.as_str()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(messages[2].text(), "streamed hello");
    assert_eq!(messages[3].text(), "ECHO: streamed hello");
    let tokens = messages[3].info.tokens.unwrap();
    assert!(tokens.input > 0 && tokens.output > 0, "{tokens:?}");
    assert_eq!(messages[3].info.model_id.as_deref(), Some("fake-model"));
    assert_eq!(messages[3].info.provider_id.as_deref(), Some("fake"));
    // A titled session makes no title-generation call: exactly the two prompts reached the fake.
    assert_eq!(rig.fake.requests().len(), 2, "{:#?}", rig.fake.requests());
    assert!(
        client
            .session_status()
            .await
            .unwrap()
            .get(&sid)
            .is_none_or(|s| *s == SessionStatus::Idle)
    );

    // Errors carry OpenCode's own message.
    let error = client.messages("ses_doesnotexist").await.unwrap_err();
    assert_eq!(error.status(), Some(404), "{error:?}");
    match &error {
        OpenCodeError::Http { message, route, .. } => {
            assert_eq!(message, "Session not found: ses_doesnotexist");
            assert_eq!(route, "GET /session/ses_doesnotexist/message");
        }
        other => panic!("expected an HTTP error, got {other:?}"),
    }
    let error = client
        .reply_permission("per_doesnotexist", PermissionReplyKind::Once, None)
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("Permission request not found: per_doesnotexist"),
        "{error}"
    );
    let intruder =
        OpenCodeClient::new(rig.server.url(), Some(BasicAuth::opencode("wrong")), None).unwrap();
    let error = intruder.health(Duration::from_secs(2)).await.unwrap_err();
    assert_eq!(error.status(), Some(401), "{error:?}");
    assert!(!error.is_connection_refused());

    client.delete_session(&sid).await.unwrap();
    assert_eq!(client.messages(&sid).await.unwrap_err().status(), Some(404));

    let url = rig.server.url().to_owned();
    rig.server.stop(Duration::from_secs(5)).await.unwrap();
    let gone = OpenCodeClient::new(&url, None, None).unwrap();
    let error = gone.health(Duration::from_millis(500)).await.unwrap_err();
    assert!(error.is_connection_refused(), "{error:?}");
    // Once the server is gone the stream ends, its last item being EventStreamClosed
    // (after a transport error when the connection was cut mid-body).
    let rest: Vec<_> = tokio::time::timeout(EVENT_WAIT, events.collect())
        .await
        .unwrap();
    assert!(
        matches!(rest.last(), Some(Err(OpenCodeError::EventStreamClosed))),
        "{rest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_retry_and_permission_flows() {
    let rig = Rig::start("flows").await;
    let client = &rig.client;
    let sid = rig.session("flows").await;
    let mut events = client.events().await.unwrap();

    // Abort during a slow stream: the provider connection is closed promptly.
    client
        .prompt_async(&sid, &PromptRequest::text("SLOW:30"))
        .await
        .unwrap();
    wait_for_event(
        &mut events,
        "a streamed chunk",
        |e| matches!(e, OpenCodeEvent::MessagePartDelta { session_id, .. } if session_id == &sid),
    )
    .await;
    let aborted_at = Instant::now();
    assert!(client.abort(&sid).await.unwrap());
    let abort_returned = aborted_at.elapsed();
    // Bounded well inside the 30 s stream: what ends it is the abort, not its last chunk.
    let disconnected = rig
        .fake
        .wait_for_disconnect(Duration::from_secs(20))
        .await
        .unwrap();
    let seen_after = disconnected
        .disconnected_at
        .unwrap()
        .saturating_duration_since(aborted_at);
    eprintln!("abort returned in {abort_returned:?}; fake saw the disconnect after {seen_after:?}");
    assert!(
        disconnected.completed_at.is_none(),
        "the stream ran to its end: {disconnected:?}"
    );
    let (error_event, _) = wait_for_event(
        &mut events,
        "session.error",
        |e| matches!(e, OpenCodeEvent::SessionError { session_id: Some(s), .. } if s == &sid),
    )
    .await;
    let OpenCodeEvent::SessionError {
        error: Some(error), ..
    } = error_event
    else {
        panic!("session.error without error: {error_event:?}");
    };
    assert_eq!(error["name"], "MessageAbortedError", "{error}");
    wait_for_event(&mut events, "session.idle after abort", |e| {
        is_idle(e, &sid)
    })
    .await;
    let messages = client.messages(&sid).await.unwrap();
    let last = messages.last().unwrap();
    assert_eq!(
        last.info.error.as_ref().unwrap()["name"],
        "MessageAbortedError"
    );

    // A failing provider is retried forever: the status shows it, the hub aborts.
    client
        .prompt_async(&sid, &PromptRequest::text("FAIL:500"))
        .await
        .unwrap();
    let started = Instant::now();
    let (retry, _) = wait_for_event(&mut events, "session.status retry", |e| {
        matches!(e, OpenCodeEvent::SessionStatus { session_id, status: SessionStatus::Retry { .. } } if session_id == &sid)
    })
    .await;
    eprintln!("retry status after {:?}: {retry:?}", started.elapsed());
    let statuses = client.session_status().await.unwrap();
    match statuses.get(&sid) {
        Some(SessionStatus::Retry {
            attempt, message, ..
        }) => {
            assert!(*attempt >= 1);
            assert!(message.contains("fake failure 500"), "{message}");
        }
        other => panic!("expected retry status, got {other:?} in {statuses:?}"),
    }
    assert!(client.abort(&sid).await.unwrap());
    wait_for_event(&mut events, "session.idle after aborting retries", |e| {
        is_idle(e, &sid)
    })
    .await;
    assert!(
        client
            .session_status()
            .await
            .unwrap()
            .get(&sid)
            .is_none_or(|s| *s == SessionStatus::Idle)
    );

    // A read outside the project asks for external_directory; rejecting fails the tool call.
    client
        .prompt_async(
            &sid,
            &PromptRequest::text(r#"CALL_TOOL:read {"filePath":"/etc/hostname"}"#),
        )
        .await
        .unwrap();
    let (asked, _) = wait_for_event(
        &mut events,
        "permission.asked",
        |e| matches!(e, OpenCodeEvent::PermissionAsked(request) if request.session_id == sid),
    )
    .await;
    let OpenCodeEvent::PermissionAsked(request) = asked else {
        unreachable!()
    };
    assert_eq!(request.permission, "external_directory");
    assert_eq!(request.patterns, ["/etc/*"]);
    assert_eq!(request.metadata["filepath"], "/etc/hostname");
    client
        .reply_permission(
            &request.id,
            PermissionReplyKind::Reject,
            Some("not in tests"),
        )
        .await
        .unwrap();
    let (_, seen) = wait_for_event(&mut events, "session.idle after reject", |e| {
        is_idle(e, &sid)
    })
    .await;
    assert!(seen.iter().any(|e| matches!(e,
        OpenCodeEvent::PermissionReplied { request_id, reply, .. } if request_id == &request.id && reply == "reject")));
    let tool_error = seen.iter().find_map(|e| match e {
        OpenCodeEvent::MessagePartUpdated {
            part: Part::Tool { tool, state, .. },
        } if tool == "read" && state.status == "error" => state.error.clone(),
        _ => None,
    });
    assert!(
        tool_error
            .as_deref()
            .is_some_and(|e| e.contains("not in tests")),
        "{tool_error:?} in {seen:#?}"
    );
    let messages = client.messages(&sid).await.unwrap();
    let tool_state = messages
        .iter()
        .flat_map(|m| &m.parts)
        .find_map(|p| match p {
            Part::Tool { state, .. } => Some(state),
            Part::Text { .. } | Part::StepFinish { .. } | Part::Other => None,
        })
        .unwrap();
    assert_eq!(tool_state.status, "error");
    assert_eq!(
        tool_state.input.as_ref().unwrap()["filePath"],
        "/etc/hostname"
    );

    rig.server.stop(Duration::from_secs(5)).await.unwrap();
}

/// A server that closes a kept-alive connection just as a request goes out on it (the proxy
/// closes every open connection at its next request): the client sends once more on a fresh
/// connection (an event subscription too), except a prompt, which fails naming the cause rather
/// than risk a second turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_alive_connection_closed_under_a_request_is_sent_again_except_a_prompt() {
    let rig = Rig::start("closed under a request").await;
    let proxy = TcpProxy::in_front_of(rig.server.url()).await.unwrap();
    let client = OpenCodeClient::new(
        &proxy.url(),
        Some(BasicAuth::opencode(PASSWORD)),
        Some(rig.project_dir.clone()),
    )
    .unwrap();
    client.health(Duration::from_secs(5)).await.unwrap();

    proxy.close_on_next_request();
    let session = client
        .create_session(&CreateSessionRequest {
            title: Some("after the close".to_owned()),
            ..CreateSessionRequest::default()
        })
        .await
        .unwrap();
    assert_eq!(session.title, "after the close");

    proxy.close_on_next_request();
    let error = client
        .prompt_async(&session.id, &PromptRequest::text("must not run twice"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, OpenCodeError::Transport { .. })
            && error
                .to_string()
                .contains("connection closed before message completed"),
        "{error}"
    );
    // The prompt reached nobody; the client still works on a fresh connection.
    let messages = client.messages(&session.id).await.unwrap();
    assert!(messages.is_empty(), "{messages:?}");
    assert!(rig.fake.requests().is_empty());

    // The event stream's subscription is sent again too, and the stream flows.
    proxy.close_on_next_request();
    let mut events = client.events().await.unwrap();
    let first = tokio::time::timeout(EVENT_WAIT, events.next())
        .await
        .unwrap();
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
}
