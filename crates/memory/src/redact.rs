//! Secret redaction on the write path: nothing that looks like a credential reaches the store,
//! the index, the change log, an export or Neo4j.
//!
//! Patterns: provider keys (`sk-…`, `sk-ant-…`), AWS access keys (`AKIA…`), Google keys
//! (`AIza…`), GitHub tokens (`ghp_…`, `gho_…`, `ghs_…`, `ghu_…`, `ghr_…`, `github_pat_…`), Slack
//! tokens (`xox[abprs]-…`), PEM private keys, `Bearer …` headers, and assignments such as
//! `password=…`, `token: …`, `api_key = "…"`, `DB_PASSWORD=…`. A match becomes `[REDACTED]`.
//! False positives cost a word of a memory; false negatives leak a secret to every later prompt,
//! so the assignment rule is deliberately broad.

use std::sync::LazyLock;

use regex::Regex;

pub const REDACTED: &str = "[REDACTED]";

struct Rule {
    regex: Regex,
    /// Keep capture group 1 (a prefix such as `password=`) and redact the rest.
    keep_prefix: bool,
}

fn rule(pattern: &str, keep_prefix: bool) -> Option<Rule> {
    match Regex::new(pattern) {
        Ok(regex) => Some(Rule { regex, keep_prefix }),
        Err(error) => {
            // The patterns are constants; this only fires if one is edited into a bad regex,
            // and the unit tests catch that.
            tracing::error!(%error, pattern, "bad redaction pattern");
            None
        }
    }
}

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    [
        rule(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
            false,
        ),
        rule(r"\bsk-[A-Za-z0-9_\-]{16,}", false),
        rule(r"\bAKIA[0-9A-Z]{16}\b", false),
        rule(r"\bAIza[0-9A-Za-z_\-]{30,}", false),
        rule(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}", false),
        rule(r"\bgithub_pat_[A-Za-z0-9_]{20,}", false),
        rule(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}", false),
        rule(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}", true),
        // `password=hunter2`, `token: abc`, `"api_key": "…"`, `DB_PASSWORD = '…'`. The name may
        // carry a prefix (`DB_`, `github-`) and a closing quote; the value ends at whitespace,
        // a quote, a comma or a semicolon.
        rule(
            r#"(?i)(\b[A-Za-z0-9_\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key|client[_\-]?secret|auth)["']?\s*[:=]\s*["']?)[^\s"',;\[\]][^\s"',;]*"#,
            true,
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
});

/// `text` with every secret replaced by `[REDACTED]`, and how many were replaced.
pub fn redact(text: &str) -> (String, u32) {
    let mut current = text.to_owned();
    let mut count: u32 = 0;
    for rule in RULES.iter() {
        if !rule.regex.is_match(&current) {
            continue;
        }
        let replaced = rule
            .regex
            .replace_all(&current, |caps: &regex::Captures<'_>| {
                let whole = caps.get(0).map_or("", |m| m.as_str());
                let prefix = if rule.keep_prefix {
                    caps.get(1).map_or("", |m| m.as_str())
                } else {
                    ""
                };
                // An assignment whose value is already redacted is left alone.
                if whole[prefix.len()..].starts_with(REDACTED) {
                    return whole.to_owned();
                }
                count = count.saturating_add(1);
                format!("{prefix}{REDACTED}")
            });
        current = replaced.into_owned();
    }
    (current, count)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_pattern_compiles() {
        assert_eq!(RULES.len(), 9);
    }

    #[test]
    fn plain_text_is_untouched() {
        let text =
            "use src/db/pool.rs; fn_parse_header fails with E0502 when the token stream ends";
        assert_eq!(redact(text), (text.to_owned(), 0));
    }
}
