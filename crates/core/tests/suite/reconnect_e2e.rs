//! A dropped event stream never costs a task: the hub reaches OpenCode through a TCP proxy
//! (`runtime.isolation: attach` to the proxy's address), the proxy cuts every connection while
//! the worker's turn goes on, and once the link is back the hub reconciles the session from
//! OpenCode's own state — the task finishes with its real answer (reconciled at once, not by the
//! safety-net poll), and a permission question asked during the cut is answered.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::{Duration, Instant};

use common::{World, bounded};
use orchestra_core::opencode::SessionStatus;
use orchestra_core::supervisor::ServerProcess;
use orchestra_protocol::JobStatus;
use orchestra_testkit::fake_llm::{FakeLlm, Script, Step};
use orchestra_testkit::opencode::{IsolatedHome, TestProject};
use orchestra_testkit::proxy::TcpProxy;
use serde_json::json;

/// The hub's safety-net poll of a session (`STATUS_POLL` in `jobs/runner.rs`): a task that
/// finishes sooner after its start was reconciled by the reconnect, not found by the poll.
const SAFETY_NET_POLL: Duration = Duration::from_secs(10);

struct Setup {
    world: World,
    proxy: TcpProxy,
    server: ServerProcess,
}

async fn setup() -> Setup {
    let fake = FakeLlm::start_scripted().await.unwrap();
    fake.set_responder(|request| {
        // Answers (and tool calls) arrive while the hub cannot hear the worker.
        if request.last_tool_result.is_some() {
            return None;
        }
        if request.last_user_text.starts_with("CUT_TEXT") {
            return Some(Script {
                steps: vec![
                    Step::Delay(Duration::from_millis(1500)),
                    Step::Text("the answer made during the cut".into()),
                ],
            });
        }
        if request.last_user_text.starts_with("CUT_ASK") {
            return Some(Script {
                steps: vec![
                    Step::Delay(Duration::from_millis(1500)),
                    Step::ToolCall {
                        name: "read".into(),
                        arguments: json!({"filePath": "/etc/hostname"}),
                    },
                ],
            });
        }
        None
    });
    let home = IsolatedHome::new().unwrap();
    let theirs = TestProject::new().unwrap();
    let server =
        common::someone_elses_server(&home, &theirs, "proxy-secret", "behind the proxy").await;
    let proxy = TcpProxy::in_front_of(server.url()).await.unwrap();
    let config = json!({
        "runtime": {"isolation": "attach", "attachUrl": proxy.url(), "attachPasswordEnv": "ORCHESTRA_TEST_PROXY_PW"},
        "profiles": [{"id": "coder", "onPermissionAsk": "once", "workspace": "checkout"}],
    });
    let world = World::start_in(
        fake,
        home,
        config,
        vec![("ORCHESTRA_TEST_PROXY_PW".into(), "proxy-secret".into())],
    )
    .await;
    Setup {
        world,
        proxy,
        server,
    }
}

/// Asks OpenCode directly (not through the cut proxy) until the worker's turn has done its part
/// during the cut: the reply written and the session idle, or a permission question waiting.
async fn turn_settled_behind_the_cut(setup: &Setup, session_id: &str) {
    let opencode = setup
        .server
        .client(Some(setup.world.project.dir.clone()))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let asking = opencode
            .pending_permissions()
            .await
            .unwrap()
            .iter()
            .any(|question| question.session_id == session_id);
        let busy = matches!(
            opencode.session_status().await.unwrap().get(session_id),
            Some(SessionStatus::Busy | SessionStatus::Retry { .. })
        );
        let replied = opencode
            .messages(session_id)
            .await
            .unwrap()
            .iter()
            .any(|message| {
                message.info.role == "assistant" && message.info.time.completed.is_some()
            });
        if asking || (replied && !busy) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the worker's turn never settled during the cut"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts `task`, cuts the link once the model has the request, restores it once the worker's
/// turn has settled without the hub, and returns the final record with how long it took after
/// the task started.
async fn through_a_cut(
    setup: &Setup,
    task: &str,
    llm_calls: usize,
) -> (orchestra_protocol::JobRecord, Duration) {
    let world = &setup.world;
    // A first task warms the link (the event stream is up, the catalog read).
    let warm = world.run("coder", "warm up").await;
    assert_eq!(warm.status, JobStatus::Succeeded, "{warm:?}");
    let before = world.fake.requests().len();
    let started = Instant::now();
    let id = world.start_task("coder", task).await;
    world
        .fake
        .wait_for_requests(before + 1, Duration::from_secs(20))
        .await
        .unwrap();
    setup.proxy.cut();
    // The worker's turn goes on without us: wait until the model has done its part.
    world
        .fake
        .wait_for_requests(before + llm_calls, Duration::from_secs(20))
        .await
        .unwrap();
    let running = world.engine().runtime().peek(&id).unwrap().unwrap();
    let session_id = running.session_id.clone().unwrap();
    turn_settled_behind_the_cut(setup, &session_id).await;
    let running = world.engine().runtime().peek(&id).unwrap().unwrap();
    assert_eq!(
        running.status,
        JobStatus::Running,
        "finished during the cut: {running:?}"
    );
    setup.proxy.restore();
    let record = world.finish(&id).await;
    (record, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_ended_during_a_cut_stream_completes_with_its_answer() {
    bounded(async {
        let setup = setup().await;
        let (record, took) = through_a_cut(&setup, "CUT_TEXT please", 1).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(
            record.response_text.as_deref(),
            Some("the answer made during the cut")
        );
        eprintln!("reconnect: final {} ms after the start", took.as_millis());
        assert!(
            took < SAFETY_NET_POLL,
            "took {took:?}: found by the safety-net poll, not reconciled on reconnect"
        );
        setup.world.hub.shutdown().await;
        setup.server.stop(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_asked_during_a_cut_is_answered_once_the_link_is_back() {
    bounded(async {
        let setup = setup().await;
        // The model's tool call happens during the cut; OpenCode then waits for the answer.
        let (record, took) = through_a_cut(&setup, "CUT_ASK please", 1).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        let answers = &record.progress.permissions;
        assert_eq!(answers.len(), 1, "{record:?}");
        assert_eq!(answers[0].permission, "external_directory");
        assert_eq!(answers[0].reply, "once");
        let reply = record.response_text.unwrap_or_default();
        assert!(reply.starts_with("TOOL_RESULT_SEEN"), "{reply}");
        eprintln!("reconnect: final {} ms after the start", took.as_millis());
        setup.world.hub.shutdown().await;
        setup.server.stop(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}
