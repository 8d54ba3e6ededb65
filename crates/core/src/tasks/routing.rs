//! `kind: "auto"`: choose a profile from the task text and attachments.
//!
//! The original's order is kept (images → vision, docs → docs, planning →
//! architect, search → explorer, else coder), but words must match whole, so
//! "rapid" no longer means "api", and the decision records the word that
//! decided it.

use orchestra_protocol::{Attachment, AttachmentType, RouteDecision};

use crate::config::Config;

const RULES: &[(&str, &[&str])] = &[
    (
        "docs",
        &[
            "doc",
            "docs",
            "documentation",
            "reference",
            "api",
            "example",
            "examples",
            "research",
            "cite",
        ],
    ),
    (
        "architect",
        &[
            "architecture",
            "architect",
            "design",
            "plan",
            "approach",
            "trade-off",
            "tradeoff",
        ],
    ),
    (
        "explorer",
        &[
            "search", "find", "locate", "grep", "ripgrep", "scan", "explore", "where",
        ],
    ),
];

pub fn route(task: &str, attachments: &[Attachment], config: &Config) -> RouteDecision {
    let has = |id: &str| config.profiles.contains_key(id);
    if has("vision")
        && let Some(n) = Some(
            attachments
                .iter()
                .filter(|a| a.kind == AttachmentType::Image)
                .count(),
        )
        && n > 0
    {
        return RouteDecision {
            profile: "vision".into(),
            reason: format!("{n} image attachment(s)"),
        };
    }
    let words: Vec<String> = task
        .split(|c: char| !(c.is_alphanumeric() || c == '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    for (profile, keywords) in RULES {
        if !has(profile) {
            continue;
        }
        if let Some(word) = words.iter().find(|w| keywords.contains(&w.as_str())) {
            return RouteDecision {
                profile: (*profile).into(),
                reason: format!("task mentions \"{word}\""),
            };
        }
    }
    RouteDecision {
        profile: "coder".into(),
        reason: "no routing keyword matched; coder is the default".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image() -> Attachment {
        Attachment {
            kind: AttachmentType::Image,
            path: Some("a.png".into()),
            base64: None,
            mime_type: None,
        }
    }

    #[test]
    fn routes_like_the_original_with_whole_words() {
        let config = Config::builtin();
        let cases = [
            ("fix the bug in main.rs", "coder"),
            ("look up the API reference for tokio", "docs"),
            ("plan the migration to v2", "architect"),
            ("find where the config is parsed", "explorer"),
            ("make this rapid", "coder"),
        ];
        for (task, want) in cases {
            assert_eq!(route(task, &[], &config).profile, want, "{task}");
        }
        let decision = route("what is this", &[image()], &config);
        assert_eq!(decision.profile, "vision");
        assert!(decision.reason.contains("image"));
    }
}
