//! Secret redaction on the write path: nothing that looks like a credential reaches the store,
//! the index, the change log, an export or Neo4j. Every text field of a record is redacted
//! (body, title, key, tags, entities), on every write path (put, import).
//!
//! Patterns: provider keys (`sk-…`, `sk-ant-…`, Groq `gsk_…`, Hugging Face `hf_…`), Stripe keys
//! (`sk_live_…`, `rk_test_…`), AWS access keys (`AKIA…`, `ASIA…`) and an AWS secret key (40
//! characters) next to a key id or to `aws_secret_access_key`, Google keys (`AIza…`), GitHub
//! tokens (`ghp_…`, `gho_…`, `ghs_…`, `ghu_…`, `ghr_…`, `github_pat_…`), GitLab tokens
//! (`glpat-…`), npm tokens (`npm_…`), Slack tokens (`xox[abprs]-…`), JWTs (`eyJ….eyJ….…`),
//! the password in a URL's userinfo (`postgres://user:pass@host`, any scheme), PEM private keys,
//! `Bearer …` headers, and assignments such as `password=…`, `token: …`, `api_key = "…"`,
//! `DB_PASSWORD=…`. A match becomes `[REDACTED]`. False positives cost a word of a memory; false
//! negatives leak a secret to every later prompt, so the assignment rule is deliberately broad.

use std::sync::{LazyLock, Mutex, PoisonError};

use regex::Regex;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::{Input, MatchKind, meta};

pub const REDACTED: &str = "[REDACTED]";

/// A pattern; the named groups `pre` and `post`, when present, are kept around `[REDACTED]`.
struct Rule {
    regex: Regex,
}

/// Word boundaries in the patterns are ASCII ones: a Unicode `\b` makes the regex engine fall
/// back to its slowest matcher on any text with a non-ASCII character, and an ASCII boundary
/// only ever redacts more (a key right after `é` counts as a word of its own).
fn ascii_boundaries(pattern: &str) -> String {
    pattern.replace(r"\b", r"(?-u:\b)")
}

fn rule(pattern: &str) -> Option<Rule> {
    match Regex::new(pattern) {
        Ok(regex) => Some(Rule { regex }),
        Err(error) => {
            // The patterns are constants; this only fires if one is edited into a bad regex,
            // and the unit tests catch that.
            tracing::error!(%error, pattern, "bad redaction pattern");
            None
        }
    }
}

/// Characters of an AWS secret access key (base64 without `=`).
const AWS_SECRET: &str = "[A-Za-z0-9/+]{40}";
/// What may stand between an AWS key id (or the secret's name) and the secret after it: a few
/// words on the same line (`AKIA…, secret …`), the last character not a base64 one (so the
/// secret is a whole word).
const AWS_GAP: &str = r"[^\n]{0,40}?[^A-Za-z0-9/+]";
/// The same between a secret and the key id after it.
const AWS_GAP_AFTER: &str = r"[^A-Za-z0-9/+][^A-Za-z0-9]{0,23}";

static RULES: LazyLock<Vec<Rule>> = LazyLock::new(|| {
    PATTERNS
        .iter()
        .filter_map(|pattern| rule(pattern))
        .collect()
});

/// Every rule at once: one pass over a text that holds no secret (nearly every text) instead
/// of one pass per rule.
///
/// The search keeps one lazy-DFA cache behind a lock. `regex::RegexSet` keeps a cache per
/// thread bucket instead (up to eight, plus the first thread's), each growing toward 2 MB as
/// new texts add states: redaction runs on the blocking pool's many threads, so the hub held
/// 2.3 MB of caches after 1,000 tasks (heaptrack), on the way to several times that. Threads
/// that redact at the same moment take turns for the check; the rules themselves (run only on a
/// text the set matched) keep `regex`'s own caches.
struct AnyRule {
    regex: meta::Regex,
    cache: Mutex<meta::Cache>,
}

impl AnyRule {
    fn is_match(&self, text: &str) -> bool {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        self.regex.is_match_with(&mut cache, &Input::new(text))
    }
}

static ANY_RULE: LazyLock<Option<AnyRule>> = LazyLock::new(|| {
    let built = meta::Regex::builder()
        // As `regex::RegexSet` configures it, so the same engines answer.
        .configure(
            meta::Config::new()
                .match_kind(MatchKind::All)
                .utf8_empty(true)
                .which_captures(WhichCaptures::None),
        )
        .build_many(&PATTERNS);
    match built {
        Ok(regex) => {
            let cache = Mutex::new(regex.create_cache());
            Some(AnyRule { regex, cache })
        }
        Err(error) => {
            tracing::error!(%error, "bad redaction pattern set");
            None
        }
    }
});

/// The rules, in the order they apply, with ASCII word boundaries.
static PATTERNS: LazyLock<Vec<String>> = LazyLock::new(|| {
    [
        String::from(
            r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\z)",
        ),
        // Before the key-id rule below, which would hide what marks the secret as AWS's.
        format!(
            r"(?P<pre>\b(?:AKIA|ASIA)[0-9A-Z]{{16}}{AWS_GAP}){AWS_SECRET}(?P<post>[^A-Za-z0-9/+=]|$)"
        ),
        format!(
            r"(?P<pre>(?:^|[^A-Za-z0-9/+])){AWS_SECRET}(?P<post>{AWS_GAP_AFTER}(?:AKIA|ASIA)[0-9A-Z]{{16}}\b)"
        ),
        format!(
            r"(?i)(?P<pre>aws_?secret(?:_?access)?_?key{AWS_GAP}){AWS_SECRET}(?P<post>[^A-Za-z0-9/+=]|$)"
        ),
        String::from(r"\bsk-[A-Za-z0-9_\-]{16,}"),
        String::from(r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}"),
        String::from(r"\bgsk_[A-Za-z0-9]{20,}"),
        String::from(r"\bhf_[A-Za-z0-9]{20,}"),
        String::from(r"\bglpat-[A-Za-z0-9_\-]{20,}"),
        String::from(r"\bnpm_[A-Za-z0-9]{30,}"),
        String::from(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
        String::from(r"\bAIza[0-9A-Za-z_\-]{30,}"),
        String::from(r"\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}"),
        String::from(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
        String::from(r"\bxox[abprs]-[A-Za-z0-9\-]{10,}"),
        // A JWT: base64url header and payload (both JSON objects, so `eyJ`), then a signature
        // (empty for `alg: none`).
        String::from(r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*"),
        // `scheme://user:password@host`: the password goes, the user and host stay.
        String::from(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@]*:)[^\s@/]+(?P<post>@)"),
        String::from(r"(?i)(?P<pre>\bbearer\s+)[A-Za-z0-9._~+/=\-]{8,}"),
        // `password=hunter2`, `token: abc`, `"api_key": "…"`, `DB_PASSWORD = '…'`. The name may
        // carry a prefix (`DB_`, `github-`) and a closing quote; the value ends at whitespace,
        // a quote, a comma or a semicolon.
        String::from(
            r#"(?i)(?P<pre>\b[A-Za-z0-9_\-]*(?:password|passwd|pwd|secret|token|api[_\-]?key|access[_\-]?key|private[_\-]?key|client[_\-]?secret|auth)["']?\s*[:=]\s*["']?)[^\s"',;\[\]][^\s"',;]*"#,
        ),
    ]
    .iter()
    .map(|pattern| ascii_boundaries(pattern))
    .collect()
});

/// `text` with every secret replaced by `[REDACTED]`, and how many were replaced.
pub fn redact(text: &str) -> (String, u32) {
    if let Some(set) = &*ANY_RULE
        && !set.is_match(text)
    {
        return (text.to_owned(), 0);
    }
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
                let prefix = caps.name("pre").map_or("", |m| m.as_str());
                let suffix = caps.name("post").map_or("", |m| m.as_str());
                // An assignment whose value is already redacted is left alone.
                if whole[prefix.len()..].starts_with(REDACTED) {
                    return whole.to_owned();
                }
                count = count.saturating_add(1);
                format!("{prefix}{REDACTED}{suffix}")
            });
        current = replaced.into_owned();
    }
    (current, count)
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
