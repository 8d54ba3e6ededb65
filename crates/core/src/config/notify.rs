//! `notify`: where the hub itself sends its events — a desktop notification, a webhook, a
//! command. Only the user's own config files may set it (`TRUSTED_ONLY_KEYS`): a repository
//! must not be able to send your events to its URL or run its command on them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Events sent when a target names none: a task (or a workflow, which is a task too) finished,
/// succeeded or failed; a permission question waits for a person; a budget at 80 % or spent;
/// a merge refused with conflicts.
pub const DEFAULT_NOTIFY_EVENTS: [&str; 5] = [
    "orchestra.job.finished",
    "orchestra.permission.asked",
    "orchestra.budget.warning",
    "orchestra.budget.exceeded",
    "orchestra.merge.conflict",
];

/// How long a webhook or a command may take unless `timeoutMs` says otherwise.
pub const DEFAULT_NOTIFY_TIMEOUT_MS: u64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotifyKind {
    /// `notify-send` (libnotify) on the session bus.
    Desktop,
    /// POST of the event envelope as JSON, with `Idempotency-Key` = the event id.
    Webhook,
    /// A program that gets the event envelope as JSON on stdin.
    Command,
}

/// One entry of `notify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NotifyTargetFile {
    #[serde(rename = "type")]
    pub kind: NotifyKind,
    /// Event type names (`orchestra.job.finished`, `orchestra.permission.asked`, …). Default:
    /// task finished, permission question, budget warning and hit, merge conflict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,
    /// Only events about tasks of these profiles (worker ids).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<Vec<String>>,
    /// Only events about runs of these workflows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflows: Option<Vec<String>>,
    /// `webhook`: the http(s) URL to POST to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `command`: a program and its arguments, split on spaces; a command with shell syntax
    /// (quotes, pipes, `$`, redirections) runs under `sh -c`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// How long one delivery may take, in ms. Default: 10000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_ms: Option<u64>,
}

/// A checked `notify` entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotifyTarget {
    pub kind: NotifyKind,
    pub events: Vec<String>,
    pub profiles: Vec<String>,
    pub workflows: Vec<String>,
    pub url: Option<String>,
    pub command: Option<String>,
    pub timeout_ms: u64,
}

impl NotifyTarget {
    /// How deliveries name this target (in the store and the HTTP API).
    pub fn label(&self) -> String {
        match self.kind {
            NotifyKind::Desktop => "desktop".to_owned(),
            NotifyKind::Webhook => format!("webhook {}", self.url.as_deref().unwrap_or_default()),
            NotifyKind::Command => {
                format!("command {}", self.command.as_deref().unwrap_or_default())
            }
        }
    }
}

/// Checks each entry; an error is (index, message, fix).
pub(super) fn resolve_targets(
    files: &[NotifyTargetFile],
) -> Result<Vec<NotifyTarget>, (usize, String, String)> {
    files
        .iter()
        .enumerate()
        .map(|(index, file)| resolve_target(file).map_err(|(m, fix)| (index, m, fix)))
        .collect()
}

fn resolve_target(file: &NotifyTargetFile) -> Result<NotifyTarget, (String, String)> {
    let url = file.url.as_deref().map(str::trim).filter(|u| !u.is_empty());
    let command = file
        .command
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty());
    match file.kind {
        NotifyKind::Webhook => match url {
            Some(url) if url.starts_with("http://") || url.starts_with("https://") => {}
            Some(url) => {
                return Err((
                    format!("webhook url `{url}` is not an http(s) URL"),
                    "write the full URL, e.g. https://example.com/hooks/orchestra".into(),
                ));
            }
            None => {
                return Err((
                    "a webhook needs a `url`".into(),
                    "add \"url\": \"https://…\"".into(),
                ));
            }
        },
        NotifyKind::Command if command.is_none() => {
            return Err((
                "a command hook needs a `command`".into(),
                "add \"command\": \"/path/to/program arg\"".into(),
            ));
        }
        NotifyKind::Command | NotifyKind::Desktop => {}
    }
    let misplaced = match file.kind {
        NotifyKind::Webhook => command.map(|_| "command"),
        NotifyKind::Command => url.map(|_| "url"),
        NotifyKind::Desktop => url.map(|_| "url").or(command.map(|_| "command")),
    };
    if let Some(key) = misplaced {
        return Err((
            format!("`{key}` has no effect on a target of this type"),
            format!("remove `{key}` or change `type`"),
        ));
    }
    let events = file
        .events
        .clone()
        .unwrap_or_else(|| DEFAULT_NOTIFY_EVENTS.map(String::from).to_vec());
    if let Some(bad) = events.iter().find(|e| !e.starts_with("orchestra.")) {
        return Err((
            format!("`{bad}` is not an event type name"),
            "event types start with `orchestra.`, e.g. orchestra.job.finished".into(),
        ));
    }
    Ok(NotifyTarget {
        kind: file.kind,
        events,
        profiles: file.profiles.clone().unwrap_or_default(),
        workflows: file.workflows.clone().unwrap_or_default(),
        url: url.map(str::to_owned),
        command: command.map(str::to_owned),
        timeout_ms: file.timeout_ms.unwrap_or(DEFAULT_NOTIFY_TIMEOUT_MS).max(1),
    })
}
