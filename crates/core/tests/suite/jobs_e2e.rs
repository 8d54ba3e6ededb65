//! Job records shared by two hubs, attachments reaching the model, and the answer's text
//! streamed as few events.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::Duration;

use base64::Engine;
use common::{World, bounded};
use orchestra_protocol::{
    Attachment, AttachmentType, EventBody, JobStatus, TaskAwaitParams, TaskKind, TaskPeekParams,
    TaskStartParams,
};
use orchestra_testkit::fake_llm::{Script, Step};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hubs_on_one_project_share_the_store_without_touching_each_others_jobs() {
    bounded(async {
        let world = World::start(json!({})).await;
        // A second hub (a second OpenCode window) on the same project and store.
        let second = world.another_hub().await;

        let slow = world
            .start_task("coder", "DELAYMS:3000 from the first hub")
            .await;
        // Starting a third hub must not mark the first hub's running job interrupted.
        let third = world.another_hub().await;
        assert_eq!(third.interrupted_on_start(), 0);
        third.shutdown().await;

        let theirs = second
            .engine()
            .start(
                TaskStartParams {
                    kind: TaskKind::Worker,
                    task: "from the second hub".into(),
                    worker_id: Some("explorer".into()),
                    ..TaskStartParams::default()
                },
                None,
            )
            .await
            .unwrap()
            .task_id;
        // Each hub sees the other's job; the second hub can await the first hub's job.
        let peek = second
            .engine()
            .peek(&TaskPeekParams {
                task_id: Some(slow.clone()),
                ..TaskPeekParams::default()
            })
            .unwrap();
        assert_eq!(common::one(peek).status, JobStatus::Running);
        let awaited = second
            .engine()
            .await_tasks(&TaskAwaitParams {
                task_id: Some(slow.clone()),
                // The first hub's cold server and a 3 s reply can take long on a loaded machine.
                timeout_ms: Some(90_000),
                ..TaskAwaitParams::default()
            })
            .await
            .unwrap();
        let record = common::one(awaited);
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(
            record.response_text.as_deref(),
            Some("ECHO: from the first hub")
        );
        let record = world.finish(&theirs).await;
        assert_eq!(record.status, JobStatus::Succeeded);
        assert_ne!(record.hub_id, world.hub.id());
        second.shutdown().await;
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_and_files_reach_the_model_as_file_parts() {
    bounded(async {
        let world = World::start(json!({})).await;
        std::fs::write(world.project.dir.join("notes.txt"), "the secret word is marmalade").unwrap();
        // A 1x1 PNG.
        let png = base64::engine::general_purpose::STANDARD
            .decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
            .unwrap();
        std::fs::write(world.project.dir.join("dot.png"), png).unwrap();
        let id = world
            .engine()
            .start(
                TaskStartParams {
                    kind: TaskKind::Worker,
                    worker_id: Some("coder".into()),
                    task: "what is in these".into(),
                    attachments: vec![
                        Attachment {
                            kind: AttachmentType::File,
                            path: Some("notes.txt".into()),
                            base64: None,
                            mime_type: None,
                        },
                        Attachment {
                            kind: AttachmentType::Image,
                            path: Some("dot.png".into()),
                            base64: None,
                            mime_type: None,
                        },
                    ],
                    ..TaskStartParams::default()
                },
                None,
            )
            .await
            .unwrap()
            .task_id;
        let record = world.finish(&id).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        let request = world.fake.wait_for_requests(1, Duration::from_secs(5)).await.unwrap()[0].clone();
        assert_eq!(request.image_parts, 1, "{:?}", request.messages);
        let body = serde_json::to_string(&request.messages).unwrap();
        assert!(body.contains("marmalade"), "the text file did not reach the model: {body}");
        world.shutdown().await;
    })
    .await;
}

/// A word at a time with no pause is a handful of events; a pause between chunks still shows
/// each chunk as it comes. Either way the events add up to the answer, in order, before the
/// job's end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streamed_text_is_published_joined_yet_live() {
    bounded(async {
        let world = World::start(json!({})).await;
        world.fake.set_responder(|request| {
            if !request.tool_names.is_empty() && request.last_user_text.starts_with("PAUSED") {
                let chunks = ["first ", "second ", "third"].map(String::from).to_vec();
                return Some(Script {
                    steps: vec![Step::TextChunks {
                        chunks,
                        gap: Duration::from_millis(400),
                    }],
                });
            }
            None
        });
        let mut events = world.hub.bus().subscribe(None);
        let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let burst = format!("BURST {}", words.join(" "));
        for task in [burst.as_str(), "PAUSED"] {
            let id = world
                .engine()
                .start(
                    TaskStartParams {
                        kind: TaskKind::Worker,
                        worker_id: Some("coder".into()),
                        task: task.into(),
                        ..TaskStartParams::default()
                    },
                    None,
                )
                .await
                .unwrap()
                .task_id;
            let record = world.finish(&id).await;
            assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
            let mut deltas = Vec::new();
            loop {
                let event = events.next().await.unwrap();
                match &event.body {
                    EventBody::JobDelta { job_id, text } if *job_id == id => {
                        deltas.push(text.clone())
                    }
                    EventBody::JobFinished { job } if job.id == id => break,
                    _ => {}
                }
            }
            let answer = record.response_text.clone().unwrap();
            assert_eq!(deltas.concat(), answer, "{deltas:?}");
            if task == "PAUSED" {
                assert_eq!(deltas, ["first ", "second ", "third"], "each chunk live");
            } else {
                // The echo (its first 200 characters) streams about 45 words without a pause.
                assert!(
                    deltas.len() <= 10,
                    "{} events for one burst of {} words",
                    deltas.len(),
                    answer.split_whitespace().count()
                );
            }
        }
        world.shutdown().await;
    })
    .await;
}
