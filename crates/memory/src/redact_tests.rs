//! One case per secret format `redact` knows, and text it must leave alone.
#![allow(clippy::unwrap_used)]

use super::*;

/// Redacts `text` and checks that `secret` is gone and `kept` (context around it) is not.
fn gone(text: &str, secret: &str, kept: &[&str]) {
    let (clean, count) = redact(text);
    assert!(!clean.contains(secret), "{secret} survived in {clean:?}");
    assert!(count >= 1, "{text:?} counted no redaction");
    assert!(clean.contains(REDACTED), "{clean:?}");
    for word in kept {
        assert!(clean.contains(word), "{word:?} was lost: {clean:?}");
    }
}

#[test]
fn every_pattern_compiles() {
    assert_eq!(RULES.len(), 19);
    assert!(ANY_RULE.is_some(), "the set of every rule did not build");
}

#[test]
fn plain_text_is_untouched() {
    let text = "use src/db/pool.rs; fn_parse_header fails with E0502 when the token stream ends";
    assert_eq!(redact(text), (text.to_owned(), 0));
    // Look-alikes that are not secrets: a URL without a password, a short `hf_` word, a path.
    for text in [
        "see https://user@example.com/x and http://example.com:8080/a@b",
        "the hf_hub crate, npm_config_cache, sk_live mode",
        "src/app/components/UserProfileCardHeaderView.tsx is 40 long",
    ] {
        assert_eq!(redact(text), (text.to_owned(), 0), "{text}");
    }
}

#[test]
fn provider_keys() {
    gone(
        "GROQ key gsk_abcdefghijklmnopqrstuvwxyz0123456789ABCD here",
        "gsk_abcdefghij",
        &["GROQ key", "here"],
    );
    gone(
        "stripe sk_live_51HxYzAbCdEfGhIjKlMnOpQr done",
        "sk_live_51Hx",
        &["stripe", "done"],
    );
    gone(
        "stripe rk_test_51HxYzAbCdEfGhIjKlMnOpQr",
        "rk_test_51Hx",
        &["stripe"],
    );
    gone(
        "HF hf_AbCdEfGhIjKlMnOpQrStUvWxYz012345",
        "hf_AbCdEf",
        &["HF"],
    );
    gone(
        "old key sk-proj-AbCdEfGhIjKlMnOpQrSt1234",
        "sk-proj-AbCd",
        &["old key"],
    );
}

#[test]
fn forge_and_registry_tokens() {
    gone(
        "gitlab glpat-xY9_abcdEFGHijklMNOP1234 ok",
        "glpat-xY9",
        &["gitlab", "ok"],
    );
    gone(
        "npm npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "npm_AbCdEf",
        &["npm "],
    );
    gone(
        "gh ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
        "ghp_AbCd",
        &["gh "],
    );
}

#[test]
fn jwts() {
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    gone(
        &format!("cookie {jwt} expired"),
        "eyJhbGci",
        &["cookie", "expired"],
    );
    gone(
        &format!("unsigned {}.", &jwt[..jwt.rfind('.').unwrap()]),
        "eyJzdWIi",
        &["unsigned"],
    );
}

#[test]
fn passwords_in_urls_of_any_scheme() {
    gone(
        "DATABASE_URL is postgres://app:s3cr3t-P4ss@db.internal:5432/main now",
        "s3cr3t-P4ss",
        &["postgres://app:", "@db.internal:5432/main", "now"],
    );
    gone(
        "redis://:hunter2hunter2@cache:6379",
        "hunter2hunter2",
        &["@cache:6379"],
    );
    gone(
        "clone https://bob:ghx-token-value@git.example.com/r.git",
        "ghx-token-value",
        &["bob", "git.example.com"],
    );
    gone("amqp://guest:guest@localhost", "guest@", &["amqp://guest:"]);
}

#[test]
fn aws_secret_keys_next_to_their_id_or_name() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    gone(&format!("AKIAIOSFODNN7EXAMPLE {secret}"), secret, &[]);
    gone(
        &format!("creds: AKIAIOSFODNN7EXAMPLE / {secret} (prod)"),
        secret,
        &["creds", "(prod)"],
    );
    gone(&format!("{secret},AKIAIOSFODNN7EXAMPLE"), secret, &[]);
    gone(
        &format!("aws_secret_access_key | {secret} |"),
        secret,
        &["aws_secret_access_key"],
    );
    gone(&format!("AWS_SECRET_ACCESS_KEY={secret}"), secret, &[]);
    let (clean, _) = redact(&format!("key id AKIAIOSFODNN7EXAMPLE, secret {secret}"));
    assert!(
        !clean.contains("AKIAIOSFODNN7EXAMPLE") && !clean.contains(secret),
        "{clean}"
    );
}

#[test]
fn assignments_bearer_and_pem_still_go() {
    gone(
        "DB_PASSWORD=hunter2 and more",
        "hunter2",
        &["DB_PASSWORD=", "and more"],
    );
    gone(
        "Authorization: Bearer abcdefghijklmnop",
        "abcdefghijklmnop",
        &["Authorization"],
    );
    gone(
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY----- after",
        "MIIEow",
        &["after"],
    );
}

#[test]
fn a_redacted_text_is_stable() {
    let once = redact("postgres://u:p4ss@h and token=abc gsk_abcdefghijklmnopqrstuvwxyz").0;
    assert_eq!(redact(&once), (once.clone(), 0));
}

/// The set's one search cache is shared by every thread (behind a lock): threads redacting at
/// once each get their own answer, secrets gone and plain text whole.
#[test]
fn threads_redacting_at_once_get_their_own_answers() {
    let workers: Vec<_> = (0..8)
        .map(|n| {
            std::thread::spawn(move || {
                for round in 0..50 {
                    let secret = format!("ghp_{n}{round}abcdefghijklmnopqrstuvwxyz0123456789");
                    let (clean, count) = redact(&format!("thread {n} token {secret} end"));
                    assert!(!clean.contains(&secret), "{clean:?}");
                    assert_eq!(count, 1, "{clean:?}");
                    let plain = format!("thread {n} round {round}: nothing secret here");
                    assert_eq!(redact(&plain), (plain.clone(), 0));
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
}
