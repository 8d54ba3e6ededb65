//! `workflows.triggers.visionOnImage`: an image pasted into an OpenCode chat, for a model that
//! does not read images, is described by the vision workflow, and the description replaces the
//! image in the message before the main model sees it.
//!
//! OpenCode hands the `chat.message` hook images as `file` parts with `data:` URLs. A part the
//! hook adds needs an id OpenCode made, so each image part is replaced in place by a text part
//! with the image part's own ids.

use std::time::Duration;

use orchestra_protocol::hooks::{ChatMessageHook, ChatMessageReply, ModelRef, PartReplacement};
use orchestra_protocol::{
    Attachment, AttachmentType, JobRecord, JobStatus, TaskKind, TaskStartParams,
};
use serde_json::{Value, json};

use super::ChatHooks;
use super::render::{self, ImageNote};

/// Recorded as the vision task's `requestedBy`.
const REQUESTED_BY: &str = "opencode-plugin (visionOnImage)";
/// The user's words handed to the vision worker, at most.
const MAX_QUESTION_CHARS: usize = 4000;

/// One image of a message.
#[derive(Debug, Clone)]
struct ImagePart {
    index: usize,
    mime: String,
    url: String,
    name: String,
}

/// A message whose images the trigger will describe: decided at once, done in [`ChatHooks::describe`].
#[derive(Debug, Clone)]
pub struct VisionJob {
    session_id: String,
    model: Option<ModelRef>,
    question: String,
    images: Vec<ImagePart>,
    parts: Vec<Value>,
}

fn image_parts(parts: &[Value]) -> Vec<ImagePart> {
    let mut images = Vec::new();
    for (index, part) in parts.iter().enumerate() {
        let mime = part["mime"].as_str().unwrap_or_default();
        let url = part["url"].as_str().unwrap_or_default();
        if part["type"] != "file" || !mime.starts_with("image/") || !url.starts_with("data:") {
            continue;
        }
        let name = part["filename"]
            .as_str()
            .filter(|n| !n.trim().is_empty())
            .map_or_else(|| format!("#{}", images.len() + 1), |n| format!("`{n}`"));
        images.push(ImagePart {
            index,
            mime: mime.to_owned(),
            url: url.to_owned(),
            name,
        });
    }
    images
}

/// The user's own words in a message (OpenCode's synthetic parts left out).
fn message_text(parts: &[Value]) -> String {
    parts
        .iter()
        .filter(|p| p["type"] == "text" && p["synthetic"] != true)
        .filter_map(|p| p["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn cut(text: &str, max: usize) -> &str {
    text.char_indices()
        .nth(max)
        .map_or(text, |(at, _)| &text[..at])
}

/// A text part that takes an image part's place, with the image part's ids.
fn text_part(image: &Value, text: String) -> Value {
    json!({
        "id": image["id"],
        "sessionID": image["sessionID"],
        "messageID": image["messageID"],
        "type": "text",
        "text": text,
    })
}

impl ChatHooks {
    /// `chat.message`: notes the session's first words (the memory query) and says whether the
    /// message has images for the vision trigger. Answers at once.
    pub fn chat_message(&self, instance: Option<&str>, hook: ChatMessageHook) -> Option<VisionJob> {
        let question = message_text(&hook.parts);
        let images = image_parts(&hook.parts);
        let trigger = &self
            .engine
            .config()
            .workflows
            .triggers
            .vision_on_image
            .trigger;
        let mut state = self.lock();
        state.sessions.claim(&hook.session_id, instance);
        state.sessions.note_text(&hook.session_id, &question);
        // The system prompt's memory block, ready by the time OpenCode asks for it.
        if let (Some(query), Ok(memory)) = (
            state.sessions.first_text(&hook.session_id),
            self.engine.memory(),
        ) {
            drop(self.blocks.prepare(memory, &query));
            // The fallback while the session's own block is not ready yet.
            drop(self.blocks.prepare(memory, ""));
        }
        if !trigger.enabled || images.is_empty() {
            return None;
        }
        // The model runs once the message is stored; until the turn ends, a vision result must
        // not be delivered as a message of its own.
        state.sessions.set_idle(&hook.session_id, false);
        Some(VisionJob {
            session_id: hook.session_id,
            model: hook.model.or(hook.message_model),
            question,
            images,
            parts: hook.parts,
        })
    }

    /// How long the plugin should wait for [`ChatHooks::describe`] after the answer's headers:
    /// starting the vision worker, then `ui.visionTimeoutMs` (blocking) or nothing.
    pub fn vision_wait(&self) -> Duration {
        let config = self.engine.config();
        let start =
            Duration::from_millis(config.startup_timeout_ms).saturating_add(Duration::from_secs(5));
        if config.workflows.triggers.vision_on_image.trigger.blocking {
            start.saturating_add(Duration::from_millis(config.ui.vision_timeout_ms))
        } else {
            start
        }
    }

    /// Describes the job's images unless the session's model reads images itself; the answer
    /// replaces each image part. Anything that goes wrong before a task exists leaves the
    /// message as it is.
    pub async fn describe(&self, job: VisionJob) -> ChatMessageReply {
        let config = self.engine.config().clone();
        let vision = &config.workflows.triggers.vision_on_image;
        let model_name = job
            .model
            .as_ref()
            .map(|m| format!("{}/{}", m.provider_id, m.model_id));
        if vision.skip_when_model_sees_images
            && let Some(model) = &job.model
            && self
                .model_sees_images(model, vision.trigger.auto_spawn)
                .await
        {
            return ChatMessageReply::default();
        }
        let question = cut(job.question.trim(), MAX_QUESTION_CHARS);
        let task = if question.is_empty() {
            "The user pasted the attached image into a chat without words. A model that cannot \
             see images answers them from your description."
                .to_owned()
        } else {
            format!(
                "The user pasted the attached image into a chat with this message; a model that \
                 cannot see images answers it from your description:\n\n{question}"
            )
        };
        let params = TaskStartParams {
            kind: TaskKind::Workflow,
            task,
            workflow_id: Some(vision.trigger.workflow_id.clone()),
            attachments: job
                .images
                .iter()
                .map(|image| Attachment {
                    kind: AttachmentType::Image,
                    path: None,
                    base64: Some(image.url.clone()),
                    mime_type: Some(image.mime.clone()),
                })
                .collect(),
            auto_spawn: Some(vision.trigger.auto_spawn),
            caller_session_id: Some(job.session_id.clone()),
            ..TaskStartParams::default()
        };
        let started = match self.engine.start_triggered_workflow(
            params,
            REQUESTED_BY.to_owned(),
            vision.trigger.max_tokens,
        ) {
            Ok(started) => started,
            Err(err) => {
                tracing::warn!(error = %err, "visionOnImage: the vision workflow did not start; the image goes to the model as it is");
                return ChatMessageReply::default();
            }
        };
        let task_id = started.task_id;
        let finished = if vision.trigger.blocking {
            self.wait_for_description(&job.session_id, &task_id, config.ui.vision_timeout_ms)
                .await
        } else {
            None
        };
        replacements(&job, &task_id, finished.as_ref(), model_name.as_deref())
    }

    /// Waits up to `timeout_ms` for the vision task. Its result counts as seen by the session
    /// while the message waits, so it is neither delivered nor announced on its own; when the
    /// wait ends without it, the result is delivered once it is there.
    async fn wait_for_description(
        &self,
        session_id: &str,
        task_id: &str,
        timeout_ms: u64,
    ) -> Option<JobRecord> {
        let ids = [task_id.to_owned()];
        self.lock().sessions.mark_seen(session_id, &ids);
        let runtime = self.engine.runtime();
        let deadline = tokio::time::Instant::now() + Duration::from_millis(timeout_ms);
        let record = match runtime.await_until(task_id, deadline).await {
            Ok(record) => record,
            Err(err) => {
                tracing::warn!(error = %err, task = %task_id, "visionOnImage: could not wait for the description");
                None
            }
        };
        if let Some(done) = record.filter(|r| r.status.is_final()) {
            return Some(done);
        }
        self.lock().sessions.unsee(session_id, task_id);
        // It may have finished between the deadline and `unsee`; its event was then skipped.
        let now = tokio::time::Instant::now();
        if let Ok(Some(late)) = runtime.await_until(task_id, now).await
            && late.status.is_final()
        {
            self.lock().sessions.finished(&late);
        }
        None
    }

    /// True when the hub's catalog (the project's models, as OpenCode reports them) says the
    /// model takes image input. Unknown models and unreadable catalogs count as "no".
    async fn model_sees_images(&self, model: &ModelRef, auto_spawn: bool) -> bool {
        let pool = self.engine.pool();
        let profile = if self.engine.config().profiles.contains_key("vision") {
            Some("vision".to_owned())
        } else {
            pool.default_profile()
        };
        let Some(profile) = profile else {
            return false;
        };
        match pool.catalog(&profile, auto_spawn).await {
            Ok(catalog) => catalog
                .find(&model.provider_id, &model.model_id)
                .is_some_and(|m| m.image_input),
            Err(err) => {
                tracing::warn!(error = %err, "visionOnImage: no model catalog; describing the image anyway");
                false
            }
        }
    }
}

fn replacements(
    job: &VisionJob,
    task_id: &str,
    finished: Option<&JobRecord>,
    model: Option<&str>,
) -> ChatMessageReply {
    let Some(first) = job.images.first() else {
        return ChatMessageReply::default();
    };
    let note = match finished {
        Some(record) if record.status == JobStatus::Succeeded => ImageNote::Described {
            task_id,
            model,
            text: record.response_text.as_deref().unwrap_or_default(),
        },
        Some(record) => ImageNote::Failed {
            task_id,
            error: record.error.as_deref().unwrap_or("no reason given"),
        },
        None => ImageNote::Pending { task_id },
    };
    let mut replace = Vec::with_capacity(job.images.len());
    for (n, image) in job.images.iter().enumerate() {
        let text = if n == 0 {
            render::image_note(&first.name, note)
        } else {
            render::image_note(&image.name, ImageNote::SeeAbove { first: &first.name })
        };
        let original = job.parts.get(image.index).unwrap_or(&Value::Null);
        replace.push(PartReplacement {
            index: image.index,
            part: text_part(original, text),
        });
    }
    ChatMessageReply { replace }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn parts() -> Vec<Value> {
        vec![
            json!({"id": "p1", "sessionID": "s", "messageID": "m", "type": "text", "text": "what is this?"}),
            json!({"id": "p2", "sessionID": "s", "messageID": "m", "type": "text", "synthetic": true, "text": "Called the Read tool"}),
            json!({"id": "p3", "sessionID": "s", "messageID": "m", "type": "file", "mime": "image/png", "filename": "shot.png", "url": "data:image/png;base64,AAAA"}),
            json!({"id": "p4", "sessionID": "s", "messageID": "m", "type": "file", "mime": "text/plain", "url": "data:text/plain;base64,AAAA"}),
            json!({"id": "p5", "sessionID": "s", "messageID": "m", "type": "file", "mime": "image/jpeg", "url": "data:image/jpeg;base64,BBBB"}),
        ]
    }

    #[test]
    fn images_are_replaced_in_place_with_their_own_ids() {
        let parts = parts();
        let images = image_parts(&parts);
        assert_eq!(
            images.iter().map(|i| i.index).collect::<Vec<_>>(),
            vec![2, 4]
        );
        assert_eq!(message_text(&parts), "what is this?");
        let job = VisionJob {
            session_id: "s".into(),
            model: None,
            question: message_text(&parts),
            images,
            parts,
        };
        let mut record = JobRecord::start(
            "t1".into(),
            "workflow:vision".into(),
            "x".into(),
            orchestra_protocol::TaskKind::Workflow,
            "h",
        );
        record.response_text = Some("A red square.".into());
        record.finish(JobStatus::Succeeded, record.started_at);
        let reply = replacements(&job, "t1", Some(&record), Some("fake/fake-text"));
        assert_eq!(reply.replace.len(), 2);
        let first = &reply.replace[0];
        assert_eq!(first.index, 2);
        assert_eq!(first.part["id"], "p3");
        assert_eq!(first.part["messageID"], "m");
        assert_eq!(first.part["type"], "text");
        let text = first.part["text"].as_str().unwrap();
        assert!(
            text.contains("A red square.") && text.contains("fake/fake-text"),
            "{text}"
        );
        assert!(
            reply.replace[1].part["text"]
                .as_str()
                .unwrap()
                .contains("together with `shot.png`")
        );
        let pending = replacements(&job, "t1", None, None);
        assert!(
            pending.replace[0].part["text"]
                .as_str()
                .unwrap()
                .contains("orchestra_task_await")
        );
    }
}
