//! Model fallback on the real pinned OpenCode: the fake LLM answers 429 (or 401) for one model
//! of the project's own provider, and the profile lists another in `fallbackModels`.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use orchestra_protocol::JobStatus;
use orchestra_testkit::fake_llm::{FakeLlm, ModelErrors};
use serde_json::json;

use super::common::{World, bounded};

fn profile(id: &str) -> serde_json::Value {
    json!({"profiles": [{
        "id": id, "name": "Steady", "model": "fake/fake-text", "purpose": "tests fallback",
        "whenToUse": "never", "fallbackModels": ["fake/fake-model"]
    }]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_model_falls_back_within_three_seconds_and_then_cools_down() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        ModelErrors::new().fail("fake-text", 429).install(&fake);
        let world = World::start_with(fake, profile("steady")).await;

        let record = world.run("steady", "FALLBACK-1 say hello").await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(
            record.model.as_deref(),
            Some("fake/fake-model"),
            "{record:?}"
        );
        assert_eq!(record.fallbacks.len(), 1, "{:?}", record.fallbacks);
        let switch = &record.fallbacks[0];
        assert_eq!(switch.from, "fake/fake-text");
        assert_eq!(switch.to, "fake/fake-model");
        assert!(
            switch.reason.contains("429") || switch.reason.contains("scripted"),
            "{}",
            switch.reason
        );
        assert!(record.response_text.unwrap().contains("FALLBACK-1"));

        // The first 429 to the first request on the fallback: under 3 s, OpenCode's own
        // backoff (seconds, growing) was not waited out.
        let requests = world.fake.requests();
        let ours = |model: &str| {
            requests
                .iter()
                .filter(|r| r.model == model && r.last_user_text.contains("FALLBACK-1"))
                .map(|r| r.received_at)
                .collect::<Vec<_>>()
        };
        let failed = ours("fake-text");
        let answered = ours("fake-model");
        assert!(!failed.is_empty() && !answered.is_empty(), "{requests:?}");
        let gap = answered[0].duration_since(failed[0]);
        assert!(gap < Duration::from_secs(3), "fell back after {gap:?}");
        assert!(
            failed.len() <= 2,
            "OpenCode's retries were waited out: {} calls",
            failed.len()
        );

        // The failed model cools down: the next task goes straight to the fallback.
        let record = world.run("steady", "FALLBACK-2 again").await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(record.model.as_deref(), Some("fake/fake-model"));
        assert!(
            record.fallbacks[0].reason.contains("cooling down"),
            "{:?}",
            record.fallbacks
        );
        let requests = world.fake.requests();
        assert!(
            !requests
                .iter()
                .any(|r| r.model == "fake-text" && r.last_user_text.contains("FALLBACK-2")),
            "a cooling model was tried"
        );

        // The list view says which model answered and what it fell back from.
        let listed = world
            .engine()
            .list(&orchestra_protocol::TaskListParams::default())
            .await
            .unwrap();
        assert!(
            listed
                .text
                .contains("fake/fake-model (fell back from fake/fake-text)"),
            "{}",
            listed.text
        );
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unauthorized_model_never_falls_back() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        ModelErrors::new().fail("fake-text", 401).install(&fake);
        let world = World::start_with(fake, profile("locked")).await;

        let record = world.run("locked", "FALLBACK-401 say hello").await;
        assert_eq!(record.status, JobStatus::Failed, "{record:?}");
        assert!(record.fallbacks.is_empty(), "{:?}", record.fallbacks);
        assert_eq!(record.model.as_deref(), Some("fake/fake-text"));
        assert!(record.error.unwrap().contains("401"));
        let requests = world.fake.requests();
        assert!(
            !requests
                .iter()
                .any(|r| r.model == "fake-model" && r.last_user_text.contains("FALLBACK-401")),
            "a 401 was sent to the fallback model"
        );
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_failures_open_the_profiles_breaker_and_the_next_task_fails_fast_naming_it() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        ModelErrors::new().fail("fake-text", 503).install(&fake);
        // No fallback, and OpenCode's first retry ends the task: five quick failures.
        let world = World::start_with(
            fake,
            json!({
                "tasks": {"providerRetryLimit": 1},
                "profiles": [{
                    "id": "brittle", "name": "Brittle", "model": "fake/fake-text",
                    "purpose": "tests the breaker", "whenToUse": "never"
                }]
            }),
        )
        .await;
        for i in 0..5 {
            let record = world.run("brittle", &format!("BREAKER-{i}")).await;
            assert_eq!(record.status, JobStatus::Failed, "{record:?}");
            assert!(!record.error.unwrap().contains("circuit breaker"));
        }
        let before = world.fake.requests().len();
        let started = std::time::Instant::now();
        let record = world.run("brittle", "BREAKER-open").await;
        assert_eq!(record.status, JobStatus::Failed, "{record:?}");
        let error = record.error.unwrap();
        assert!(
            error.contains("circuit breaker of profile `brittle` is open"),
            "{error}"
        );
        assert!(error.contains("fallbackModels"), "{error}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        assert!(
            !world.fake.requests()[before..]
                .iter()
                .any(|r| r.last_user_text.contains("BREAKER-open")),
            "the task reached the provider while the breaker was open"
        );
        world.shutdown().await;
    })
    .await;
}
