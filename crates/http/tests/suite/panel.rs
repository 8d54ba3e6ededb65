//! The panel's page and the routes people use through it, on a hub that starts no worker:
//! embedded assets with their security headers, the inbox, logs, config, run and worker
//! controls, each answering a wrong request with an error that names the problem.

use orchestra_protocol::{EventBody, LogEvent};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH};
use serde_json::{Value, json};

use crate::suite::common::{Served, TOKEN};

async fn get(served: &Served, path: &str) -> (StatusCode, Value) {
    let response = Served::http()
        .get(served.url(path))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn post(served: &Served, path: &str, body: Value) -> (StatusCode, Value) {
    let response = Served::http()
        .post(served.url(path))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_page_and_its_modules_are_embedded_with_a_strict_policy() {
    let served = Served::start().await;
    let http = Served::http();
    for (path, kind) in [
        ("/", "text/html"),
        ("/assets/js/app.js", "text/javascript"),
        ("/assets/js/views/run.js", "text/javascript"),
        ("/assets/panel.css", "text/css"),
    ] {
        let response = http
            .get(served.url(path))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers[CONTENT_TYPE].to_str().unwrap().starts_with(kind),
            "{path}"
        );
        let policy = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(
            policy.contains("script-src 'self'") && policy.contains("connect-src 'self'"),
            "{policy}"
        );
        // Unchanged files are not sent again.
        let again = http
            .get(served.url(path))
            .bearer_auth(TOKEN)
            .header(IF_NONE_MATCH, headers[ETAG].clone())
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    let (status, error) = get(&served, "/assets/js/nope.js").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(error["error"].as_str().unwrap().contains("orchestra panel"));
    assert!(orchestra_http::panel_weight() < 200 * 1024);
    served.stop().await;
}

#[tokio::test]
async fn the_inbox_runs_and_workers_routes_name_what_is_wrong() {
    let served = Served::start().await;
    let (status, questions) = get(&served, "/api/v1/questions").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(questions, json!([]));
    let (status, error) = post(&served, "/api/v1/questions/per_x", json!({"reply": "once"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("GET /api/v1/questions"),
        "{error}"
    );
    let (status, error) = post(
        &served,
        "/api/v1/questions/per_x",
        json!({"reply": "maybe"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"].as_str().unwrap().contains("reply"),
        "{error}"
    );
    let (status, runs) = get(&served, "/api/v1/runs").await;
    assert_eq!((status, runs), (StatusCode::OK, json!([])));
    for action in ["pause", "resume", "cancel"] {
        let (status, error) =
            post(&served, &format!("/api/v1/runs/run-x/{action}"), json!({})).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}: {error}");
        assert!(
            error["error"].as_str().unwrap().contains("run-x"),
            "{error}"
        );
    }
    let (status, error) = post(&served, "/api/v1/workers/codr/restart", json!({})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        error["error"].as_str().unwrap().contains("coder"),
        "{error}"
    );
    let (status, error) = get(&served, "/api/v1/tasks/nope/events").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{error}");
    served.stop().await;
}

#[tokio::test]
async fn logs_are_filtered_by_level_worker_task_and_text() {
    let served = Served::start().await;
    let bus = served.hub.bus().clone();
    let line = |level: &str, message: &str, job: Option<&str>, worker: Option<&str>| {
        let mut log = LogEvent::new(level, message);
        log.job_id = job.map(str::to_owned);
        log.worker_id = worker.map(str::to_owned);
        bus.publish(EventBody::Log(log));
    };
    line("info", "hub started", None, None);
    line("debug", "chatty", None, Some("coder"));
    line("warn", "slow start", None, Some("coder"));
    line("error", "task failed", Some("job-1"), Some("docs"));
    line("info", "task done", Some("job-2"), Some("coder"));
    let messages = |page: &Value| -> Vec<String> {
        page["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["message"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, page) = get(&served, "/api/v1/logs").await;
    assert_eq!(status, StatusCode::OK);
    let all = messages(&page);
    // Oldest first; `info` and above unless asked.
    let expected = ["hub started", "slow start", "task failed", "task done"];
    assert_eq!(all[all.len() - 4..], expected, "{page}");
    let (_, page) = get(&served, "/api/v1/logs?level=warn").await;
    assert_eq!(messages(&page), ["slow start", "task failed"]);
    let (_, page) = get(&served, "/api/v1/logs?worker=coder&level=debug").await;
    assert_eq!(messages(&page), ["chatty", "slow start", "task done"]);
    let (_, page) = get(&served, "/api/v1/logs?job=job-1").await;
    assert_eq!(messages(&page), ["task failed"]);
    assert_eq!(page["lines"][0]["workerId"], "docs");
    let (_, page) = get(&served, "/api/v1/logs?text=DONE").await;
    assert_eq!(messages(&page), ["task done"]);
    let (_, page) = get(&served, "/api/v1/logs?limit=1").await;
    assert_eq!(messages(&page), ["task done"]);
    assert_eq!(page["more"], true);
    let first = page["lines"][0]["id"].as_u64().unwrap();
    let (_, page) = get(&served, &format!("/api/v1/logs?after={}", first - 2)).await;
    assert_eq!(messages(&page), ["task failed", "task done"]);
    let (status, error) = get(&served, "/api/v1/logs?level=loud").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(error["error"].as_str().unwrap().contains("warn"), "{error}");
    let (status, error) = get(&served, "/api/v1/logs?lvl=warn").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        error["error"].as_str().unwrap().contains("level="),
        "{error}"
    );
    served.stop().await;
}

#[tokio::test]
async fn config_shows_profiles_workflows_and_their_limits() {
    let served = Served::start().await;
    let (status, config) = get(&served, "/api/v1/config").await;
    assert_eq!(status, StatusCode::OK);
    let profiles = config["profiles"].as_array().unwrap();
    let coder = profiles.iter().find(|p| p["id"] == "coder").unwrap();
    assert_eq!(coder["onPermissionAsk"], "reject");
    assert_eq!(coder["readOnly"], false);
    // No worker server runs in this hub, and the view says why no model is shown.
    assert!(
        config["modelsNote"]
            .as_str()
            .unwrap()
            .contains("no worker server"),
        "{config}"
    );
    let workflows = config["workflows"].as_array().unwrap();
    let boomerang = workflows
        .iter()
        .find(|w| w["id"] == "roocode-boomerang")
        .unwrap();
    assert_eq!(
        boomerang["limits"]["maxSteps"],
        config["workflowCaps"]["maxSteps"]
    );
    assert_eq!(
        config["settings"]["tasks"]["permissionAskTimeoutMs"],
        300_000
    );
    served.stop().await;
}
