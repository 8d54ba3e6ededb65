//! Cancel and `timeoutMs` are honoured in every phase of a task, not only during the model's
//! turn: while the worker's server is starting (and giving up there never stops the start other
//! tasks wait for, nor leaves the worker `starting`), while a request to OpenCode hangs
//! (a server that accepts and never answers, through the testkit proxy), while the worker waits
//! on a permission question nobody answers, and while the finished turn's reply is collected.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::{Duration, Instant};

use common::{World, bounded};
use orchestra_core::supervisor::ServerProcess;
use orchestra_protocol::{JobStatus, TaskCancelParams, TaskKind, TaskStartParams, WorkerStatus};
use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::{IsolatedHome, TestProject};
use orchestra_testkit::proxy::TcpProxy;
use serde_json::json;

async fn start(world: &World, task: &str, timeout_ms: Option<u64>) -> String {
    world
        .engine()
        .start(
            TaskStartParams {
                kind: TaskKind::Worker,
                task: task.into(),
                worker_id: Some("coder".into()),
                timeout_ms,
                // The phases under test are the session's; a worktree would add its own first.
                workspace: Some(orchestra_protocol::WorkspaceMode::Checkout),
                ..TaskStartParams::default()
            },
            None,
        )
        .await
        .unwrap()
        .task_id
}

/// The last user text of every request that reached the model.
fn user_texts(world: &World) -> Vec<String> {
    world
        .fake
        .requests()
        .iter()
        .map(|r| r.last_user_text.clone())
        .collect()
}

async fn cancel(world: &World, id: &str, reason: &str) -> orchestra_protocol::JobRecord {
    common::one(
        world
            .engine()
            .cancel(&TaskCancelParams {
                task_id: Some(id.into()),
                reason: Some(reason.into()),
                ..TaskCancelParams::default()
            })
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn giving_up_while_the_server_starts_leaves_the_start_to_the_others() {
    bounded(async {
        // A cold hub: the first tasks wait for OpenCode to start (a second or more).
        let world = World::start(json!({})).await;
        let waiting = start(&world, "waits for the start", None).await;
        let impatient = start(&world, "gives up on the start", Some(200)).await;
        let canceled = start(&world, "canceled during the start", None).await;
        let record = cancel(&world, &canceled, "not needed any more").await;
        assert_eq!(record.status, JobStatus::Canceled, "{record:?}");
        assert_eq!(record.error.as_deref(), Some("not needed any more"));
        // The cancel did not wait for the server: it is still not up.
        let coder = world.worker("coder").await;
        assert!(
            matches!(coder.status, WorkerStatus::Starting | WorkerStatus::Stopped),
            "the cancel waited for the server: {coder:?}"
        );
        let timed_out = world.finish(&impatient).await;
        assert_eq!(timed_out.status, JobStatus::Failed, "{timed_out:?}");
        let error = timed_out.error.unwrap_or_default();
        assert!(
            error.contains("timed out") && error.contains("to start"),
            "{error}"
        );
        // The start went on for the task that waited: it ran, and the worker is not `starting`.
        let done = world.finish(&waiting).await;
        assert_eq!(done.status, JobStatus::Succeeded, "{done:?}");
        let coder = world.worker("coder").await;
        assert!(
            matches!(coder.status, WorkerStatus::Ready | WorkerStatus::Busy),
            "{coder:?}"
        );
        // No request of the canceled or timed-out task reached the model.
        let texts = user_texts(&world);
        assert!(
            texts
                .iter()
                .all(|t| !t.contains("gives up") && !t.contains("canceled during")),
            "{texts:?}"
        );
        world.shutdown().await;
    })
    .await;
}

/// A hub attached to its own OpenCode server through a proxy that can hang every request,
/// warmed up by one task; `config` is merged into the attach settings.
async fn attached_through_a_proxy(config: serde_json::Value) -> (World, TcpProxy, ServerProcess) {
    let (world, proxy, server) = attached_cold(config, |_| {}).await;
    let warm = world.run("coder", "warm up").await;
    assert_eq!(warm.status, JobStatus::Succeeded, "{warm:?}");
    (world, proxy, server)
}

/// The same hub, with no task run yet; `before_hub` sees the proxy before the hub starts.
async fn attached_cold(
    config: serde_json::Value,
    before_hub: impl FnOnce(&TcpProxy),
) -> (World, TcpProxy, ServerProcess) {
    let fake = FakeLlm::start_scripted().await.unwrap();
    let home = IsolatedHome::new().unwrap();
    let theirs = TestProject::new().unwrap();
    let server =
        common::someone_elses_server(&home, &theirs, "stall-secret", "behind the proxy").await;
    let proxy = TcpProxy::in_front_of(server.url()).await.unwrap();
    before_hub(&proxy);
    let mut settings = json!({"runtime": {"isolation": "attach", "attachUrl": proxy.url(),
                              "attachPasswordEnv": "ORCHESTRA_TEST_STALL_PW"}});
    if let (Some(settings), serde_json::Value::Object(extra)) = (settings.as_object_mut(), config) {
        settings.extend(extra);
    }
    let world = World::start_in(
        fake,
        home,
        settings,
        vec![("ORCHESTRA_TEST_STALL_PW".into(), "stall-secret".into())],
    )
    .await;
    (world, proxy, server)
}

/// Issue 24 §6: a task canceled while it acquires its worker — the worker's server is held up
/// (every request to it hangs; a start limit far away) — leaves the worker neither busy nor
/// counting the task, and the next task gets the worker and frees it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_acquiring_the_worker_leaves_it_not_busy() {
    bounded(async {
        let (world, proxy, server) =
            attached_cold(json!({"startupTimeout": 600_000}), TcpProxy::stall).await;
        let id = start(&world, "canceled while its worker is acquired", None).await;
        // The task is acquiring its worker once the hub's first request to the server hangs.
        held(&proxy, &["GET ", "POST "]).await;
        let queued = world.worker("coder").await;
        assert_ne!(queued.status, WorkerStatus::Ready, "{queued:?}");
        let record = cancel(&world, &id, "gave up on the worker").await;
        assert_eq!(record.status, JobStatus::Canceled, "{record:?}");
        let coder = world.worker("coder").await;
        assert!(
            coder.status != WorkerStatus::Busy && coder.active_jobs == 0,
            "the canceled task left its worker held: {coder:?}"
        );

        proxy.restore();
        let next = world.run("coder", "runs after the cancel").await;
        assert_eq!(next.status, JobStatus::Succeeded, "{next:?}");
        let coder = world.worker("coder").await;
        assert_eq!(
            (coder.status, coder.active_jobs),
            (WorkerStatus::Ready, 0),
            "{coder:?}"
        );
        let texts = user_texts(&world);
        assert!(
            texts.iter().all(|t| !t.contains("canceled while")),
            "{texts:?}"
        );
        world.shutdown().await;
        drop(server);
    })
    .await;
}

/// Waits until a request whose line starts with one of `lines` hangs in the stalled proxy.
async fn held(proxy: &TcpProxy, lines: &[&str]) {
    held_where(proxy, |line| {
        lines.iter().any(|start| line.starts_with(start))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_to_opencode_that_hangs_is_cut_short_by_cancel_and_by_the_timeout() {
    bounded(async {
        let (world, proxy, server) = attached_through_a_proxy(json!({})).await;

        // OpenCode now accepts connections and never answers: the task hangs creating its
        // session (the catalog is already known).
        proxy.stall();
        let stuck = start(&world, "hangs in a request", None).await;
        // The task is stuck once its request to create the session hangs in the proxy. (This
        // wait failed once in CI: the stall had closed the hub's kept-alive connection just as
        // the request went out on it, and the task failed at once. The client now sends such a
        // request again on a fresh connection; should the wait fail again, the message says
        // where the task was.)
        held_or_explain(&proxy, &["POST /session "], &world, &stuck).await;
        let record = cancel(&world, &stuck, "stuck").await;
        assert_eq!(record.status, JobStatus::Canceled, "{record:?}");
        // Cut short: the request still hangs (nothing answered it), and the task is over.
        assert!(
            proxy
                .held_requests()
                .iter()
                .any(|line| line.starts_with("POST /session ")),
            "the hanging request was answered: {:?}",
            proxy.held_requests()
        );

        let slow = start(&world, "hangs until its timeout", Some(1500)).await;
        let record = world.finish(&slow).await;
        assert_eq!(record.status, JobStatus::Failed, "{record:?}");
        let error = record.error.unwrap_or_default();
        assert!(
            error.contains("timed out after 1500 ms")
                && error.contains("while creating the worker's session"),
            "{error}"
        );

        proxy.restore();
        world.hub.shutdown().await;
        server.stop(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}

/// Cancel and the timeout reach a task whose check on its session hangs: the event stream was
/// cut mid-turn and the slow poll's request to the server never returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_reconcile_is_cut_short_by_cancel_and_by_the_timeout() {
    bounded(async {
        // Health checks slower than the test: the server is not given up on meanwhile.
        let (world, proxy, server) =
            attached_through_a_proxy(json!({"healthCheckInterval": 600_000})).await;
        let reconciling = ["GET /permission ", "GET /session/status "];

        let requests = world.fake.requests().len();
        let stuck = start(&world, "SLOW:60 reconciles while stalled", None).await;
        world
            .fake
            .wait_for_requests(requests + 1, Duration::from_secs(60))
            .await
            .unwrap();
        proxy.stall();
        // The slow poll (every 10 s) asks the server about the session; that request hangs.
        held(&proxy, &reconciling).await;
        let began = Instant::now();
        let record = cancel(&world, &stuck, "stuck reconciling").await;
        assert_eq!(record.status, JobStatus::Canceled, "{record:?}");
        assert_eq!(record.error.as_deref(), Some("stuck reconciling"));
        assert!(
            began.elapsed() < Duration::from_secs(8),
            "took {:?}",
            began.elapsed()
        );

        proxy.restore();
        let requests = world.fake.requests().len();
        let slow = start(&world, "SLOW:60 times out while stalled", Some(20_000)).await;
        world
            .fake
            .wait_for_requests(requests + 1, Duration::from_secs(60))
            .await
            .unwrap();
        proxy.stall();
        held(&proxy, &reconciling).await;
        let record = world.finish(&slow).await;
        assert_eq!(record.status, JobStatus::Failed, "{record:?}");
        let error = record.error.unwrap_or_default();
        assert!(
            error.contains("timed out after 20000 ms")
                && error.contains("while reconciling the session with its server"),
            "{error}"
        );

        proxy.restore();
        world.hub.shutdown().await;
        server.stop(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}

/// How long a request may take to reach the stalled proxy.
const HELD_WITHIN: Duration = Duration::from_secs(60);

/// [`held`], and on timeout the task's record as it stands beside the held requests.
async fn held_or_explain(proxy: &TcpProxy, lines: &[&str], world: &World, task: &str) {
    let starts = |line: &str| lines.iter().any(|start| line.starts_with(start));
    if let Err(held) = proxy.wait_held(starts, HELD_WITHIN).await {
        let record = world
            .engine()
            .peek(&orchestra_protocol::TaskPeekParams {
                task_id: Some(task.into()),
                ..Default::default()
            })
            .map(common::one);
        panic!(
            "no request starting with {lines:?} reached the proxy: {held:?}; the task: {record:?}"
        );
    }
}

/// Waits until a request whose first line `matches` accepts hangs in the proxy.
async fn held_where(proxy: &TcpProxy, matches: impl Fn(&str) -> bool) {
    if let Err(held) = proxy.wait_held(matches, HELD_WITHIN).await {
        panic!("no such request reached the proxy: {held:?}");
    }
}

/// The request that reads a session's messages: after the turn, the runner collects the reply.
fn reads_messages(line: &str) -> bool {
    line.starts_with("GET /session/") && line.contains("/message")
}

/// Issue 24 §6: the model has answered and the turn is over, but reading the reply hangs (only
/// that request: the event stream and every other call go on). A cancel ends the task at once,
/// and the timeout ends it naming the phase; afterwards the worker collects replies again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collecting_the_reply_is_cut_short_by_cancel_and_by_the_timeout() {
    bounded(async {
        let (world, proxy, server) =
            attached_through_a_proxy(json!({"healthCheckInterval": 600_000})).await;
        proxy.stall_requests(reads_messages);

        let stuck = start(&world, "canceled while its reply is collected", None).await;
        // The task is collecting once its read of the session's messages hangs, after the model
        // has answered it.
        held_where(&proxy, reads_messages).await;
        assert!(
            user_texts(&world)
                .iter()
                .any(|t| t.contains("canceled while its reply")),
            "{:?}",
            user_texts(&world)
        );
        let record = cancel(&world, &stuck, "stuck collecting").await;
        assert_eq!(record.status, JobStatus::Canceled, "{record:?}");
        assert_eq!(record.error.as_deref(), Some("stuck collecting"));
        assert_eq!(record.response_text, None, "{record:?}");

        let slow = start(
            &world,
            "times out while its reply is collected",
            Some(15_000),
        )
        .await;
        let record = world.finish(&slow).await;
        assert_eq!(record.status, JobStatus::Failed, "{record:?}");
        let error = record.error.unwrap_or_default();
        assert!(
            error.contains("timed out after 15000 ms")
                && error.contains("while collecting the worker's reply"),
            "{error}"
        );
        assert!(
            user_texts(&world)
                .iter()
                .any(|t| t.contains("times out while its reply")),
            "the model answered before the timeout: {:?}",
            user_texts(&world)
        );

        proxy.restore();
        let next = world.run("coder", "collected after the stall").await;
        assert_eq!(next.status, JobStatus::Succeeded, "{next:?}");
        assert!(
            next.response_text
                .unwrap_or_default()
                .contains("collected after the stall")
        );
        world.hub.shutdown().await;
        server.stop(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}

/// Issue 24 §6: a task whose worker waits on a permission question nobody answers
/// (`onPermissionAsk: ask`) ends at once when canceled: the question leaves the inbox, OpenCode
/// is not left waiting on it, and the worker takes the next task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancel_while_a_permission_question_waits_ends_the_task_and_its_question() {
    bounded(async {
        let world = World::start(json!({
            "profiles": [{"id": "coder", "onPermissionAsk": "ask"}],
            "tasks": {"permissionAskTimeoutMs": 600_000},
        }))
        .await;
        let id = start(
            &world,
            r#"CALL_TOOL:read {"filePath":"/etc/hostname"}"#,
            None,
        )
        .await;
        // The worker waits once its question is in the inbox.
        let since = Instant::now();
        let question = loop {
            if let Some(q) = world
                .engine()
                .pending_questions()
                .into_iter()
                .find(|q| q.job_id == id)
            {
                break q;
            }
            assert!(
                since.elapsed() < Duration::from_secs(60),
                "the task's permission question never reached the inbox"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(question.permission, "external_directory", "{question:?}");

        let record = cancel(&world, &id, "no answer is coming").await;
        assert_eq!(record.status, JobStatus::Canceled, "{record:?}");
        assert_eq!(record.error.as_deref(), Some("no answer is coming"));
        assert!(
            world
                .engine()
                .pending_questions()
                .iter()
                .all(|q| q.job_id != id),
            "the question outlived its task: {:?}",
            world.engine().pending_questions()
        );
        let conn = world.engine().pool().running_conn("coder").await.unwrap();
        let since = Instant::now();
        loop {
            let waiting = conn.client.pending_permissions().await.unwrap();
            if waiting.iter().all(|p| p.id != question.request_id) {
                break;
            }
            assert!(
                since.elapsed() < Duration::from_secs(10),
                "OpenCode still waits on the canceled task's question: {waiting:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }

        let next = world.run("coder", "runs after the question").await;
        assert_eq!(next.status, JobStatus::Succeeded, "{next:?}");
        let coder = world.worker("coder").await;
        assert_eq!(coder.active_jobs, 0, "{coder:?}");
        world.shutdown().await;
    })
    .await;
}
