//! A dropped event stream never costs a task: the hub reaches OpenCode through a TCP proxy
//! (`runtime.isolation: attach` to the proxy's address), the proxy cuts every connection while
//! the worker's turn goes on, and once the link is back the hub reconciles the session from
//! OpenCode's own state — the task finishes with its real answer within 2 s, and a permission
//! question asked during the cut is answered.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::{Duration, Instant};

use common::{World, bounded};
use orchestra_core::supervisor::{ServeSpec, ServerProcess};
use orchestra_protocol::JobStatus;
use orchestra_testkit::fake_llm::{FakeLlm, Script, Step};
use orchestra_testkit::opencode::{IsolatedHome, TestProject, require_opencode};
use orchestra_testkit::proxy::TcpProxy;
use serde_json::json;

/// How long the link stays cut: longer than the worker's whole turn.
const CUT_FOR: Duration = Duration::from_secs(4);

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
    let server = ServerProcess::spawn(ServeSpec {
        binary: require_opencode(),
        cwd: theirs.dir.clone(),
        env: home.env(),
        password: "proxy-secret".into(),
        port: 0,
        startup_timeout: Duration::from_secs(60),
        label: "behind the proxy".into(),
    })
    .await
    .unwrap();
    let upstream = server
        .url()
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap();
    let proxy = TcpProxy::start(upstream).await.unwrap();
    let config = json!({
        "runtime": {"isolation": "attach", "attachUrl": proxy.url(), "attachPasswordEnv": "ORCHESTRA_TEST_PROXY_PW"},
        "profiles": [{"id": "coder", "onPermissionAsk": "once"}],
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

/// Starts `task`, cuts the link once the model has the request, restores it after [`CUT_FOR`],
/// and returns the final record with how long it took after the link came back.
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
    let remaining = CUT_FOR.saturating_sub(Duration::from_millis(1500));
    tokio::time::sleep(remaining).await;
    let running = world.engine().runtime().peek(&id).unwrap().unwrap();
    assert_eq!(
        running.status,
        JobStatus::Running,
        "finished during the cut: {running:?}"
    );
    setup.proxy.restore();
    let back = Instant::now();
    let record = world.finish(&id).await;
    (record, back.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_turn_that_ended_during_a_cut_stream_completes_with_its_answer() {
    bounded(async {
        let setup = setup().await;
        let (record, after) = through_a_cut(&setup, "CUT_TEXT please", 1).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(
            record.response_text.as_deref(),
            Some("the answer made during the cut")
        );
        eprintln!(
            "reconnect: final {} ms after the link came back",
            after.as_millis()
        );
        assert!(
            after < Duration::from_secs(2),
            "took {after:?} after the link came back"
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
        let (record, after) = through_a_cut(&setup, "CUT_ASK please", 1).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        let answers = &record.progress.permissions;
        assert_eq!(answers.len(), 1, "{record:?}");
        assert_eq!(answers[0].permission, "external_directory");
        assert_eq!(answers[0].reply, "once");
        let reply = record.response_text.unwrap_or_default();
        assert!(reply.starts_with("TOOL_RESULT_SEEN"), "{reply}");
        eprintln!(
            "reconnect: final {} ms after the link came back",
            after.as_millis()
        );
        setup.world.hub.shutdown().await;
        setup.server.stop(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}
