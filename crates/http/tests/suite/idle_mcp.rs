//! The idle stop counts MCP-over-HTTP sessions as clients: a client that connects by URL holds
//! nothing open between its calls, and its hub stays up while its session is open.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::suite::common::{Served, TOKEN};
use crate::suite::mcp::McpSession;

const IDLE: Duration = Duration::from_millis(300);

async fn clients(served: &Served) -> usize {
    served.client().health().await.unwrap().clients
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_open_mcp_session_keeps_its_hub_up_and_its_end_lets_it_stop() {
    let served = Served::start_idle(IDLE).await;
    let (session, _) = McpSession::open(&served, "/mcp", TOKEN, "by-url").await;
    assert_eq!(clients(&served).await, 1, "the open session is a client");

    // Many idle periods pass with no request in flight: the hub is still there. The idle
    // check runs every `IDLE`, and the stop below shows that it does.
    let quiet_since = Instant::now();
    let stopped = tokio::time::timeout(IDLE * 10, served.server.stop_requested()).await;
    assert!(
        stopped.is_err(),
        "the hub stopped {:?} into an open MCP session",
        quiet_since.elapsed()
    );
    assert_eq!(clients(&served).await, 1);

    // The client ends its session: the hub stops once it has been idle for its time.
    let ended = session.delete().await;
    assert!(ended.status().is_success(), "{}", ended.status());
    let ended_at = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), served.server.stop_requested())
        .await
        .expect("the hub did not stop after the session ended");
    assert!(ended_at.elapsed() >= IDLE, "stopped before its idle time");
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_the_hub_no_longer_knows_stops_counting() {
    let served = Served::start().await;
    let (session, _) = McpSession::open(&served, "/mcp", TOKEN, "by-url").await;
    assert_eq!(clients(&served).await, 1);
    let forged = session.with_id("not-a-session");
    let answer = forged
        .send(serde_json::json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list"}))
        .await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND);
    // An unknown id is not counted, and the real session still is.
    assert_eq!(clients(&served).await, 1);
    assert!(session.delete().await.status().is_success());
    assert_eq!(clients(&served).await, 0);
    served.stop().await;
}
