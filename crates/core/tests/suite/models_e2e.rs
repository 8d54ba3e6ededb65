#![allow(clippy::unwrap_used)]
//! Model resolution end to end on real OpenCode with two fake providers on one fake LLM:
//! `textco/plain-text` (the default, text only) and `visco/seer-vision` (image input). The
//! fake records the `model` of every request, so the tests see which model was really called.

use super::common;
use super::models_providers;

use common::{World, bounded};
use orchestra_protocol::{
    Attachment, AttachmentType, JobRecord, JobStatus, ListFormat, ListView, ModelPolicy, OpKind,
    TaskKind, TaskListParams, TaskStartParams, WorkerOpPayload,
};
use orchestra_testkit::fake_llm::{FakeLlm, RecordedRequest};
use serde_json::json;

const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

fn image() -> Attachment {
    Attachment {
        kind: AttachmentType::Image,
        path: None,
        base64: Some(PNG.into()),
        mime_type: Some("image/png".into()),
    }
}

async fn run(world: &World, params: TaskStartParams) -> JobRecord {
    let id = world.engine().start(params, None).await.unwrap().task_id;
    world.finish(&id).await
}

fn worker_task(worker: &str, task: &str) -> TaskStartParams {
    TaskStartParams {
        kind: TaskKind::Worker,
        worker_id: Some(worker.into()),
        task: task.into(),
        ..TaskStartParams::default()
    }
}

/// The chat request whose first user text is `marker` (title requests are skipped).
fn request_for(fake: &FakeLlm, marker: &str) -> RecordedRequest {
    fake.requests()
        .into_iter()
        .find(|r| r.last_user_text.contains(marker))
        .unwrap_or_else(|| panic!("no request for {marker:?}: {:?}", fake.requests()))
}

async fn snapshot_model(world: &World, worker: &str) -> (Option<String>, Option<String>) {
    let snapshot = world
        .engine()
        .pool()
        .snapshots()
        .into_iter()
        .find(|w| w.id == worker)
        .unwrap();
    (snapshot.model, snapshot.model_resolution)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_resolved_from_opencode_and_reach_the_provider() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let overlay = models_providers::two_providers(&fake.base_url());
        let world = World::start_with_opencode_config(
            fake,
            overlay,
            json!({"profiles": [{
                "id": "tempy", "name": "Tempy", "model": "visco/Seer-Vision", "purpose": "tests temperature",
                "whenToUse": "never", "temperature": 0.3
            }]}),
        )
        .await;

        // auto:vision (the built-in vision profile) picks the image model, and the image
        // reaches exactly that model.
        let record = run(&world, TaskStartParams {
            attachments: vec![image()],
            ..worker_task("vision", "VISION-1 what is this")
        })
        .await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(record.model.as_deref(), Some("visco/seer-vision"));
        let reason = record.model_reason.clone().unwrap();
        assert!(reason.contains("auto:vision"), "{reason}");
        let request = request_for(&world.fake, "VISION-1");
        assert_eq!(request.model, "seer-vision");
        assert_eq!(request.image_parts, 1, "{:?}", request.messages);
        let (model, why) = snapshot_model(&world, "vision").await;
        assert_eq!(model.as_deref(), Some("visco/seer-vision"));
        assert!(why.unwrap().contains("auto:vision"));

        // Plain `auto` (coder) runs on OpenCode's default model.
        let record = run(&world, worker_task("coder", "CODER-1 hello")).await;
        assert_eq!(record.model.as_deref(), Some("textco/plain-text"), "{record:?}");
        assert!(record.model_reason.unwrap().contains("fallback to default model"));
        assert_eq!(request_for(&world.fake, "CODER-1").model, "plain-text");

        // A profile's temperature reaches the provider when the model takes one; the fuzzy
        // reference `visco/Seer-Vision` resolved.
        let record = run(&world, worker_task("tempy", "TEMPY-1 hello")).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert!(record.model_reason.unwrap().contains("fuzzy"));
        let request = request_for(&world.fake, "TEMPY-1");
        assert_eq!(request.model, "seer-vision");
        assert_eq!(request.body["temperature"], json!(0.3), "{}", request.body);

        // An explicit text-only model given an image fails before any request is made.
        let record = run(&world, TaskStartParams {
            model: Some("textco/plain-text".into()),
            attachments: vec![image()],
            ..worker_task("coder", "NOIMAGE-1 look")
        })
        .await;
        assert_eq!(record.status, JobStatus::Failed);
        let error = record.error.unwrap();
        assert!(error.contains("`textco/plain-text` does not take image input") && error.contains("visco/seer-vision"), "{error}");
        assert_eq!(record.session_id, None, "no session may be created");

        // A per-task model, dynamic: this task only.
        let record = run(&world, TaskStartParams {
            model: Some("auto:vision".into()),
            ..worker_task("coder", "PERTASK-1 hi")
        })
        .await;
        // Through the same worker after the refused task: any request of that one would have
        // reached the model before this task's.
        let texts: Vec<String> = world.fake.requests().iter().map(|r| r.last_user_text.clone()).collect();
        assert!(texts.iter().any(|t| t.contains("PERTASK-1")), "{texts:?}");
        assert!(texts.iter().all(|t| !t.contains("NOIMAGE-1")), "{texts:?}");
        assert_eq!(record.model.as_deref(), Some("visco/seer-vision"), "{record:?}");
        assert!(record.model_reason.unwrap().starts_with("per-task model `auto:vision`"));
        let record = run(&world, worker_task("coder", "PERTASK-2 hi")).await;
        assert_eq!(record.model.as_deref(), Some("textco/plain-text"));

        // Sticky: the task's model becomes the worker's.
        let record = run(&world, TaskStartParams {
            model: Some("visco/seer-vision".into()),
            model_policy: Some(ModelPolicy::Sticky),
            ..worker_task("explorer", "STICKY-1 hi")
        })
        .await;
        assert!(record.model_reason.unwrap().contains("sticky"));
        let record = run(&world, worker_task("explorer", "STICKY-2 hi")).await;
        assert_eq!(record.model.as_deref(), Some("visco/seer-vision"), "{record:?}");
        assert_eq!(request_for(&world.fake, "STICKY-2").model, "seer-vision");

        // worker.model.set / reset as ops.
        let op = |op: OpKind, model: Option<&str>| TaskStartParams {
            kind: TaskKind::Op,
            task: "switch model".into(),
            op: Some(op),
            worker: Some(WorkerOpPayload {
                worker_id: Some("coder".into()),
                model: model.map(str::to_owned),
                ..WorkerOpPayload::default()
            }),
            ..TaskStartParams::default()
        };
        let record = run(&world, op(OpKind::WorkerModelSet, Some("seer-vision"))).await;
        assert_eq!(record.status, JobStatus::Succeeded, "{record:?}");
        assert_eq!(record.worker_id, "op:worker.model.set");
        assert!(record.response_text.unwrap().contains("now runs on visco/seer-vision"));
        let snapshot = world.engine().pool().snapshots();
        let coder = snapshot.iter().find(|w| w.id == "coder").unwrap();
        assert_eq!((coder.model_ref.as_str(), coder.model_policy), ("seer-vision", Some(ModelPolicy::Sticky)));
        let record = run(&world, worker_task("coder", "SET-1 hi")).await;
        assert_eq!(request_for(&world.fake, "SET-1").model, "seer-vision", "{record:?}");
        let record = run(&world, op(OpKind::WorkerModelSet, Some("nosuch/model"))).await;
        assert_eq!(record.status, JobStatus::Failed);
        assert!(record.error.unwrap().contains("closest:"));
        let record = run(&world, op(OpKind::WorkerModelReset, None)).await;
        assert_eq!(record.model.as_deref(), Some("textco/plain-text"), "{record:?}");
        run(&world, worker_task("coder", "RESET-1 hi")).await;
        assert_eq!(request_for(&world.fake, "RESET-1").model, "plain-text");

        // The models view reads the catalog from the running server.
        let listing = world
            .engine()
            .list(&TaskListParams {
                view: ListView::Models,
                format: Some(ListFormat::Json),
                ..TaskListParams::default()
            })
            .await
            .unwrap();
        let ids: Vec<&str> = listing.json["models"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["modelId"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["plain-text", "seer-vision"], "{}", listing.text);
        // … and says which model each profile's task would get, and why.
        let plans = listing.json["wouldRunOn"].as_array().unwrap();
        let plan = |id: &str| plans.iter().find(|p| p["profile"] == id).unwrap().clone();
        assert_eq!(plans.len(), world.engine().config().profiles.len());
        assert_eq!(plan("vision")["model"], "visco/seer-vision");
        assert!(plan("vision")["reason"].as_str().unwrap().contains("auto:vision"));
        assert_eq!(plan("coder")["model"], "textco/plain-text");
        assert!(plan("coder")["reason"].as_str().unwrap().contains("fallback to default model"));
        assert_eq!((plan("explorer")["reference"].as_str(), plan("explorer")["model"].as_str()),
            (Some("visco/seer-vision"), Some("visco/seer-vision")));
        let markdown = world
            .engine()
            .list(&TaskListParams { view: ListView::Models, format: Some(ListFormat::Markdown), ..TaskListParams::default() })
            .await
            .unwrap()
            .text;
        assert!(markdown.contains("### Would run on"), "{markdown}");
        assert!(markdown.contains("- `vision` (`node:vision`) would run on visco/seer-vision: auto:vision"), "{markdown}");
        world.shutdown().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vision_worker_without_image_models_fails_with_the_configured_models() {
    bounded(async {
        let fake = FakeLlm::start_scripted().await.unwrap();
        let overlay = models_providers::text_only(&fake.base_url());
        let world = World::start_with_opencode_config(fake, overlay, json!({})).await;
        let record = run(
            &world,
            TaskStartParams {
                attachments: vec![image()],
                ..worker_task("vision", "what is this")
            },
        )
        .await;
        assert_eq!(record.status, JobStatus::Failed);
        let error = record.error.unwrap();
        assert!(
            error.contains("no configured model takes image input")
                && error.contains("plain/writer-small"),
            "{error}"
        );
        assert!(
            world.fake.requests().is_empty(),
            "{:?}",
            world.fake.requests()
        );
        let (model, why) = snapshot_model(&world, "vision").await;
        assert_eq!(model, None);
        assert!(why.unwrap().starts_with("no model:"));
        world.shutdown().await;
    })
    .await;
}
