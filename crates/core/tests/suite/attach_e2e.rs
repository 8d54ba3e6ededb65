//! `runtime.isolation: "attach"`: the hub drives an OpenCode server it did
//! not start. No agents can be injected there, so the profile travels as the
//! prompt's system text and read-only is enforced by session permission rules.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::Duration;

use common::{World, bounded};
use orchestra_core::supervisor::{ServeSpec, ServerProcess};
use orchestra_protocol::{JobStatus, WorkerStatus};
use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::{IsolatedHome, TestProject, require_opencode};
use serde_json::{Value, json};

/// A server someone else started on their project, which has no provider at all. Our
/// project's opencode.json has one (World puts it there): tasks can only run if OpenCode loads
/// the project the hub names in `x-opencode-directory`, not the one it was started in.
fn their_server(home: &IsolatedHome, theirs: &TestProject) -> ServeSpec {
    ServeSpec {
        supervisor: None,
        binary: require_opencode(),
        cwd: theirs.dir.clone(),
        env: home.env(),
        password: "attach-secret".into(),
        port: 0,
        startup_timeout: Duration::from_secs(60),
        label: "someone else's".into(),
    }
}

/// A hub attached to `url` with its password in the launch environment; `extra` is merged over
/// the attach settings.
async fn attached_world(fake: FakeLlm, home: IsolatedHome, url: &str, extra: Value) -> World {
    let mut config = json!({"runtime": {
        "isolation": "attach", "attachUrl": url, "attachPasswordEnv": "ORCHESTRA_TEST_ATTACH_PW"
    }});
    orchestra_core::workers::agents::merge_json(&mut config, &extra);
    World::start_in(
        fake,
        home,
        config,
        vec![("ORCHESTRA_TEST_ATTACH_PW".into(), "attach-secret".into())],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_server_runs_tasks_and_keeps_read_only_profiles_read_only() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let home = IsolatedHome::new().unwrap();
        let theirs = TestProject::new().unwrap();
        let server = ServerProcess::spawn(their_server(&home, &theirs))
            .await
            .unwrap();
        let world = attached_world(fake, home, server.url(), json!({})).await;

        let record = world.run("coder", "hello attached").await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(
            record.response_text.as_deref(),
            Some("ECHO: hello attached")
        );
        // The profile's prompt reached the model as system text.
        let coder_prompt = &world.engine().config().profile("coder").unwrap().prompt;
        let first_line = coder_prompt.lines().next().unwrap();
        assert!(world.fake.requests()[0].system_prompt.contains(first_line));

        let target = world.project.dir.join("attached-architect.txt");
        let call = format!(
            "CALL_TOOL:write {}",
            json!({"filePath": target.display().to_string(), "content": "nope"})
        );
        let record = world.run("architect", &call).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert!(
            !target.exists(),
            "the read-only architect wrote through an attached server"
        );

        // The hub does not own the attached server: shutting down leaves it running.
        assert!(world.pids().await.is_empty());
        world.hub.shutdown().await;
        assert!(
            server
                .client(None)
                .unwrap()
                .health(Duration::from_secs(2))
                .await
                .is_ok()
        );
        server.stop(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attached_server_that_dies_fails_its_tasks_and_is_reconnected_when_it_returns() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let home = IsolatedHome::new().unwrap();
        let theirs = TestProject::new().unwrap();
        let spec = their_server(&home, &theirs);
        let server = ServerProcess::spawn(spec.clone()).await.unwrap();
        let url = server.url().to_owned();
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        let world = attached_world(
            fake,
            home,
            &url,
            json!({"healthCheckInterval": 1000,
                   "runtime": {"maxRestarts": 40, "restartBackoffMs": 50}}),
        )
        .await;
        let record = world.run("coder", "before the outage").await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");

        let id = world
            .start_task("coder", "SLOW:120 during the outage")
            .await;
        world
            .fake
            .wait_for_requests(2, Duration::from_secs(30))
            .await
            .unwrap();
        server.stop(Duration::ZERO).await.unwrap();
        let lost_at = std::time::Instant::now();
        let record = world.finish(&id).await;
        assert_eq!(record.status, JobStatus::Failed, "{record:?}");
        let error = record.error.unwrap_or_default();
        assert!(
            error.contains("health checks") && error.contains(&url),
            "{error}"
        );
        assert!(
            lost_at.elapsed() < Duration::from_secs(15),
            "took {:?}",
            lost_at.elapsed()
        );
        let coder = world.worker("coder").await;
        assert!(
            matches!(
                coder.status,
                WorkerStatus::Error | WorkerStatus::Starting | WorkerStatus::Restarting
            ),
            "{coder:?}"
        );

        // The server comes back on the same address: the hub reconnects by itself. The port
        // may take a moment to be free again (the old server's last connections).
        let mut tries = 0;
        let back = loop {
            match ServerProcess::spawn(ServeSpec {
                supervisor: None,
                port,
                ..spec.clone()
            })
            .await
            {
                Ok(back) => break back,
                Err(err) if tries < 20 => {
                    tries += 1;
                    eprintln!("the port is not free yet ({err}); trying again");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(err) => panic!("their server could not come back on port {port}: {err}"),
            }
        };
        assert_eq!(back.url(), url);
        let mut status = coder.status;
        for _ in 0..600 {
            let coder = world.worker("coder").await;
            status = coder.status;
            if status == WorkerStatus::Ready {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(status, WorkerStatus::Ready);
        let record = world.run("coder", "after the outage").await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        world.hub.shutdown().await;
        back.stop(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}
