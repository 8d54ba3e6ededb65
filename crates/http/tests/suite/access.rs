//! Who may call the hub: the token, the hub's own Host and Origin, one-time login links.

use reqwest::StatusCode;
use reqwest::header::{COOKIE, HOST, ORIGIN, SET_COOKIE};
use serde_json::Value;

use crate::suite::common::{Served, TOKEN};

#[tokio::test]
async fn without_the_token_the_api_and_the_page_show_nothing() {
    let served = Served::start().await;
    let http = Served::http();
    for path in [
        "/api/v1/health",
        "/api/v1/workers",
        "/api/v1/events",
        "/api/v1/questions",
        "/api/v1/logs",
        "/api/v1/config",
        "/api/v1/runs",
        "/api/v1/notify/deliveries",
        "/mcp",
        "/",
        "/assets/js/app.js",
        "/assets/panel.css",
    ] {
        let response = http.get(served.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path}");
        let body = response.text().await.unwrap();
        assert!(
            !body.contains(served.hub.id()),
            "{path} leaked the hub id: {body}"
        );
    }
    let wrong = http
        .get(served.url("/api/v1/health"))
        .bearer_auth("not-the-token")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let error: Value = wrong.json().await.unwrap();
    assert_eq!(error["kind"], "unauthorized");
    assert!(
        error["error"].as_str().unwrap().contains("Bearer"),
        "{error}"
    );
    let right = http
        .get(served.url("/api/v1/health"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    let health: Value = right.json().await.unwrap();
    assert_eq!(health["hubId"], served.hub.id());
    served.stop().await;
}

#[tokio::test]
async fn a_foreign_origin_or_host_is_refused_even_with_the_token() {
    let served = Served::start().await;
    let http = Served::http();
    let foreign = http
        .get(served.url("/api/v1/health"))
        .bearer_auth(TOKEN)
        .header(ORIGIN, "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    let error: Value = foreign.json().await.unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("evil.example"),
        "{error}"
    );
    let other_port = http
        .get(served.url("/api/v1/health"))
        .bearer_auth(TOKEN)
        .header(ORIGIN, "http://127.0.0.1:1")
        .send()
        .await
        .unwrap();
    assert_eq!(other_port.status(), StatusCode::FORBIDDEN);
    let rebinding = http
        .get(served.url("/api/v1/health"))
        .bearer_auth(TOKEN)
        .header(
            HOST,
            format!("attacker.example:{}", served.server.addr().port()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(rebinding.status(), StatusCode::FORBIDDEN);
    let own = http
        .get(served.url("/api/v1/health"))
        .bearer_auth(TOKEN)
        .header(ORIGIN, served.server.url())
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), StatusCode::OK);
    served.stop().await;
}

#[tokio::test]
async fn a_login_link_works_once_and_gives_the_browser_a_session() {
    let served = Served::start().await;
    let link = served.client().login_link().await.unwrap();
    assert!(
        !link.url.contains(TOKEN),
        "the login link must not carry the hub's token"
    );
    let http = Served::http();
    let first = http.get(&link.url).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let cookie = first.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let pair = cookie.split(';').next().unwrap().to_owned();
    let login = first.text().await.unwrap();
    let key = login
        .split("content=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap();
    let page = http
        .get(served.url("/"))
        .header(COOKIE, &pair)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("/assets/js/app.js"));
    let api = http
        .get(served.url("/api/v1/health"))
        .header(COOKIE, &pair)
        .header("x-orchestra-session", key)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::OK);
    assert!(api.text().await.unwrap().contains(served.hub.id()));
    let again = http.get(&link.url).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    served.stop().await;
}

#[tokio::test]
async fn bad_requests_get_json_errors_that_name_the_problem() {
    let served = Served::start().await;
    let http = Served::http();
    let cases: Vec<(&str, &str, &str)> = vec![
        (
            "/api/v1/tasks",
            "{\"kind\": \"wrker\", \"task\": \"x\"}",
            "kind",
        ),
        ("/api/v1/tasks", "not json", "not valid"),
        (
            "/api/v1/tasks",
            "{\"kind\": \"worker\", \"task\": \"x\", \"workerId\": \"codr\"}",
            "codr",
        ),
        ("/api/v1/list", "{\"view\": \"nope\"}", "view"),
        ("/api/v1/list", "{\"limit\": 18446744073709551615}", "limit"),
        ("/api/v1/tasks/await", "{}", "taskId"),
        ("/api/v1/nowhere", "{}", "/api/v1"),
    ];
    for (path, body, needle) in cases {
        let response = http
            .post(served.url(path))
            .bearer_auth(TOKEN)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        assert!(status.is_client_error(), "{path} {body}: {status}");
        let error: Value = response.json().await.unwrap();
        let text = error["error"].as_str().unwrap_or_default();
        assert!(text.contains(needle), "{path} {body}: {text}");
    }
    let missing = http
        .get(served.url("/api/v1/tasks/no-such-task"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    // Still serving after all of them.
    assert!(served.client().health().await.is_ok());
    served.stop().await;
}
