//! Deterministic corpora for the memory bench: synthetic agent-memory text at scale (a Zipf
//! vocabulary with identifiers and paths), and a small coding-memory corpus with known answers
//! (decisions superseded over time, near-duplicates in a sibling project, exact identifiers,
//! file paths and error strings). Same seed, same records, on every machine.

use orchestra_protocol::memory::{MemoryEntities, MemoryRecord, MemoryScope, MemoryStatus};

/// splitmix64: tiny, fast, and stable across platforms and Rust versions.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % (n.max(1) as u64)) as usize
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const SYLLABLES: [&str; 16] = [
    "ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "ve", "zu", "ar", "el", "in", "or", "um",
    "bex",
];

/// The `i`th vocabulary word: a distinct pronounceable string.
fn word(i: usize) -> String {
    let mut out = String::new();
    let mut n = i + 16;
    while n > 0 {
        out.push_str(SYLLABLES[n % 16]);
        n /= 16;
    }
    out
}

/// A 50k-word vocabulary drawn with Zipf exponent 1.07 (agent text has very common words).
pub struct Vocabulary {
    words: Vec<String>,
    cdf: Vec<f64>,
}

impl Vocabulary {
    pub fn new() -> Vocabulary {
        const SIZE: usize = 50_000;
        let weights: Vec<f64> = (1..=SIZE).map(|r| 1.0 / (r as f64).powf(1.07)).collect();
        let total: f64 = weights.iter().sum();
        let mut acc = 0.0;
        let cdf = weights
            .iter()
            .map(|w| {
                acc += w / total;
                acc
            })
            .collect();
        Vocabulary {
            words: (0..SIZE).map(word).collect(),
            cdf,
        }
    }

    pub fn sample(&self, rng: &mut Rng) -> &str {
        let u = rng.unit();
        let at = self
            .cdf
            .partition_point(|c| *c < u)
            .min(self.words.len() - 1);
        &self.words[at]
    }
}

fn identifier(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => format!("fn_{}", rng.below(20_000)),
        1 => format!("src/mod{}/file{}.rs", rng.below(200), rng.below(50)),
        _ => format!("E{:04}", rng.below(800)),
    }
}

/// One synthetic record body: 20–45 tokens, 15 % identifiers or paths.
pub fn body(vocabulary: &Vocabulary, rng: &mut Rng) -> String {
    let tokens = 20 + rng.below(26);
    let mut out = Vec::with_capacity(tokens);
    for _ in 0..tokens {
        if rng.below(100) < 15 {
            out.push(identifier(rng));
        } else {
            out.push(vocabulary.sample(rng).to_owned());
        }
    }
    out.join(" ")
}

/// `n` records spread over `projects` projects (`p0`, `p1`, …), as a JSONL export.
pub fn scale_jsonl(n: usize, projects: usize, seed: u64) -> Vec<u8> {
    let vocabulary = Vocabulary::new();
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n * 300);
    for i in 0..n {
        let project = format!("p{}", i % projects.max(1));
        let record = MemoryRecord {
            id: format!("mem_{i:016x}"),
            scope: MemoryScope::Project,
            project_id: Some(project),
            kind: ["fact", "decision", "bug", "fix", "observation"][rng.below(5)].to_owned(),
            key: None,
            title: String::new(),
            body: body(&vocabulary, &mut rng),
            tags: Vec::new(),
            entities: MemoryEntities::default(),
            provenance: Default::default(),
            status: MemoryStatus::Active,
            supersedes: None,
            superseded_by: None,
            pinned: false,
            redactions: 0,
            created_at: 1_700_000_000_000 + i as i64,
            updated_at: 1_700_000_000_000 + i as i64,
        };
        let mut line = serde_json::json!(record);
        line["type"] = "record".into();
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// 3-term OR queries: two vocabulary words and an identifier (the shape measured in issue 9).
pub fn scale_queries(count: usize, seed: u64) -> Vec<String> {
    let vocabulary = Vocabulary::new();
    let mut rng = Rng::new(seed);
    (0..count)
        .map(|_| {
            format!(
                "{} {} {}",
                vocabulary.sample(&mut rng),
                vocabulary.sample(&mut rng),
                identifier(&mut rng)
            )
        })
        .collect()
}

/// One record of the quality corpus, before it is written.
#[derive(Debug, Clone)]
pub struct QualityRecord {
    pub project: &'static str,
    /// Unique per record version (`q:<n>`), to find its id after the put.
    pub tag: String,
    pub kind: &'static str,
    /// Decisions: the key their versions share.
    pub key: Option<String>,
    pub body: String,
    /// Replaces the previous version of `key`.
    pub supersedes: bool,
}

/// A query with the tags of the records that answer it.
#[derive(Debug, Clone)]
pub struct QualityCase {
    pub class: &'static str,
    pub query: String,
    /// Tags of the active records that answer it (in the target project).
    pub relevant: Vec<String>,
    /// Decisions: tags of the superseded versions, which must never rank above `relevant`.
    pub stale: Vec<String>,
}

pub const TARGET: &str = "alpha";
pub const SIBLING: &str = "beta";
pub const CLASSES: [&str; 4] = [
    "identifier",
    "file path",
    "error string",
    "current decision",
];

const VERBS: [&str; 12] = [
    "parse", "load", "flush", "spawn", "resolve", "encode", "merge", "retry", "drain", "verify",
    "render", "index",
];
const NOUNS: [&str; 10] = [
    "header", "config", "session", "pool", "token", "record", "stream", "cache", "route", "lease",
];
const MODULES: [&str; 8] = [
    "db", "http", "tasks", "workers", "config", "store", "mcp", "cli",
];
const TOPICS: [(&str, [&str; 4]); 10] = [
    (
        "job storage engine",
        ["SQLite", "Postgres", "sled", "RocksDB"],
    ),
    ("http client library", ["reqwest", "hyper", "ureq", "isahc"]),
    ("async runtime", ["tokio", "async-std", "smol", "glommio"]),
    (
        "error handling crate",
        ["thiserror", "anyhow", "snafu", "eyre"],
    ),
    (
        "search index engine",
        ["tantivy", "FTS5", "meilisearch", "sonic"],
    ),
    ("config file format", ["JSONC", "TOML", "YAML", "RON"]),
    ("logging framework", ["tracing", "log", "slog", "fern"]),
    (
        "process supervision approach",
        ["process groups", "cgroups", "systemd units", "pidfds"],
    ),
    (
        "test fixture strategy",
        [
            "fake LLM",
            "recorded cassettes",
            "mock servers",
            "snapshots",
        ],
    ),
    (
        "release packaging tool",
        ["cargo-dist", "nfpm", "goreleaser", "cargo-deb"],
    ),
];

/// The quality corpus: records (in write order) and the cases, with noise from the scale text.
pub fn quality(seed: u64, noise_per_project: usize) -> (Vec<QualityRecord>, Vec<QualityCase>) {
    let vocabulary = Vocabulary::new();
    let mut rng = Rng::new(seed);
    let mut records = Vec::new();
    let mut cases = Vec::new();
    let mut next = 0usize;
    let mut tag = || {
        next += 1;
        format!("q:{next}")
    };
    let mut add =
        |records: &mut Vec<QualityRecord>, kind, key: Option<String>, body: String, supersedes| {
            let record = QualityRecord {
                project: TARGET,
                tag: tag(),
                kind,
                key,
                body,
                supersedes,
            };
            records.push(record.clone());
            record.tag
        };
    // Identifiers and file paths, each named by one to three records.
    for (i, verb) in VERBS.iter().enumerate() {
        for (j, noun) in NOUNS.iter().enumerate().filter(|(j, _)| (i + j) % 2 == 0) {
            let symbol = format!("fn_{verb}_{noun}");
            let path = format!("src/{}/{noun}_{verb}.rs", MODULES[(i + j) % MODULES.len()]);
            let mut relevant_symbol = Vec::new();
            let mut relevant_path = Vec::new();
            let fact = add(
                &mut records,
                "fact",
                None,
                format!(
                    "{symbol} is defined in {path}; it takes the {noun} and returns a Result with the {verb}d value."
                ),
                false,
            );
            relevant_symbol.push(fact.clone());
            relevant_path.push(fact);
            if rng.below(2) == 0 {
                relevant_symbol.push(add(
                    &mut records,
                    "convention",
                    None,
                    format!(
                        "Call {symbol} only from the {} layer; it must not block.",
                        MODULES[(i + 2 * j) % MODULES.len()]
                    ),
                    false,
                ));
            }
            if rng.below(3) == 0 {
                relevant_path.push(add(&mut records, "observation", None, format!(
                    "Touched {path} while fixing the {noun} {verb} flow; tests in the same folder."
                ), false));
            }
            cases.push(QualityCase {
                class: "identifier",
                query: symbol,
                relevant: relevant_symbol,
                stale: vec![],
            });
            cases.push(QualityCase {
                class: "file path",
                query: path,
                relevant: relevant_path,
                stale: vec![],
            });
        }
    }
    // Error strings: a bug and its fix quote the exact message.
    for i in 0..40 {
        let var = format!("{}_{i}", NOUNS[i % NOUNS.len()]);
        let message = match i % 4 {
            0 => format!(
                "error[E0502]: cannot borrow `{var}` as mutable because it is also borrowed as immutable"
            ),
            1 => format!("error[E0382]: borrow of moved value: `{var}`"),
            2 => format!(
                "thread 'main' panicked at 'called `Option::unwrap()` on a `None` value' in {var}"
            ),
            _ => format!("error: connection refused (os error 111) while opening {var}"),
        };
        let file = format!("src/{}/{var}.rs", MODULES[i % MODULES.len()]);
        let bug = add(
            &mut records,
            "bug",
            None,
            format!("{message}\n  --> {file}:{}:9", 10 + i),
            false,
        );
        let fix = add(
            &mut records,
            "fix",
            None,
            format!(
                "Fixed `{message}` in {file} by restructuring the {} loop.",
                NOUNS[(i + 3) % NOUNS.len()]
            ),
            false,
        );
        cases.push(QualityCase {
            class: "error string",
            query: message,
            relevant: vec![bug, fix],
            stale: vec![],
        });
    }
    // Decisions, 20 % of them superseded one to three times.
    for (t, (topic, options)) in TOPICS.iter().enumerate() {
        let key = format!("decision:{}", topic.replace(' ', "-"));
        let versions = if t % 5 == 0 || t % 5 == 3 {
            2 + rng.below(3)
        } else {
            1
        };
        let mut tags = Vec::new();
        for v in 0..versions {
            tags.push(add(&mut records, "decision", Some(key.clone()), format!(
                "Decision on the {topic}: we chose {} over {} because it fits the hub (revision {}).",
                options[v % 4], options[(v + 1) % 4], v + 1
            ), v > 0));
        }
        let current = tags.pop().unwrap_or_default();
        cases.push(QualityCase {
            class: "current decision",
            query: (*topic).to_owned(),
            relevant: vec![current],
            stale: tags,
        });
    }
    // The sibling project holds near-duplicates of everything (the scope-leak test) …
    let copies: Vec<QualityRecord> = records
        .iter()
        .map(|r| QualityRecord {
            project: SIBLING,
            tag: format!("{}:beta", r.tag),
            body: r
                .body
                .replace("revision", "rev.")
                .replace("Fixed", "Patched"),
            ..r.clone()
        })
        .collect();
    records.extend(copies);
    // … and both carry noise.
    for project in [TARGET, SIBLING] {
        for n in 0..noise_per_project {
            records.push(QualityRecord {
                project,
                tag: format!("noise:{project}:{n}"),
                kind: "observation",
                key: None,
                body: body(&vocabulary, &mut rng),
                supersedes: false,
            });
        }
    }
    (records, cases)
}
