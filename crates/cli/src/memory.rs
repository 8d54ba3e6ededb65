//! `orchestra memory search | show | put | forget | export | import | context`: the project's
//! memory for people, through the project's hub (started in the background like the other
//! commands), so every write is announced on its event stream and every read sees the hub's
//! memory.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use futures_util::StreamExt;
use orchestra_client::HubClient;
use orchestra_protocol::memory::{
    ForgetMode, ForgetRequest, MemoryDetail, MemoryEntities, MemoryHit, MemoryPage,
    MemoryProvenance, MemoryPut, MemoryScope, MemorySearchParams,
};

use crate::hub_link::HubTarget;
use crate::write_stdout;

#[derive(clap::Args)]
pub struct MemoryArgs {
    /// JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    /// If no hub runs, start one on the built-in fake model.
    #[arg(long, global = true)]
    fake: bool,
    #[command(subcommand)]
    command: MemoryCommand,
}

#[derive(clap::Subcommand)]
enum MemoryCommand {
    /// Ranked full-text search (words, identifiers, file paths, error strings).
    Search {
        query: Vec<String>,
        /// `project` or `global` (default: both).
        #[arg(long)]
        scope: Option<String>,
        #[arg(long)]
        kind: Vec<String>,
        #[arg(long)]
        tag: Vec<String>,
        #[arg(long, default_value_t = 10)]
        limit: u32,
        /// Stop before the page exceeds this many tokens.
        #[arg(long)]
        budget: Option<u32>,
        /// `nextCursor` of the previous page.
        #[arg(long)]
        cursor: Option<String>,
        /// `index`, `summary` (default) or `full`.
        #[arg(long, default_value = "summary")]
        detail: String,
        /// Include superseded and retracted records.
        #[arg(long)]
        all: bool,
    },
    /// One record (by id or key) with its links.
    Show {
        reference: String,
        #[arg(long)]
        scope: Option<String>,
    },
    /// Write a record; with the same scope and key as an active record, update it.
    Put {
        /// The body (joined with spaces).
        body: Vec<String>,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long)]
        key: Option<String>,
        #[arg(long)]
        title: Option<String>,
        #[arg(long)]
        tag: Vec<String>,
        #[arg(long)]
        file: Vec<String>,
        #[arg(long)]
        symbol: Vec<String>,
        #[arg(long)]
        scope: Option<String>,
        /// Id or key of the record this one replaces.
        #[arg(long)]
        supersedes: Option<String>,
        /// Show it in every worker's memory block.
        #[arg(long)]
        pin: bool,
    },
    /// Retract a record (hidden, kept), or delete it (`--mode delete`: removed and scrubbed
    /// from the change log).
    Forget {
        reference: String,
        #[arg(long, default_value = "retract")]
        mode: String,
        #[arg(long)]
        scope: Option<String>,
    },
    /// Write this project's and the global records as JSONL.
    Export {
        /// A file (default: stdout).
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
    /// Read a JSONL export (`-` for stdin).
    Import { file: PathBuf },
    /// The memory block a worker would get for TASK.
    Context {
        task: Vec<String>,
        #[arg(long)]
        budget: Option<u32>,
    },
}

fn scope(text: Option<&str>) -> anyhow::Result<Option<MemoryScope>> {
    text.map(|t| {
        MemoryScope::parse(t).with_context(|| format!("`--scope {t}`: use `project` or `global`"))
    })
    .transpose()
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    write_stdout(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

fn hit_line(hit: &MemoryHit) -> String {
    let key = hit
        .key
        .as_deref()
        .map(|k| format!(" {k}"))
        .unwrap_or_default();
    let status = match hit.status {
        orchestra_protocol::memory::MemoryStatus::Active => String::new(),
        other => format!(" ({})", other.as_str()),
    };
    let mut line = format!("{}  [{}]{key}{status}  {}\n", hit.id, hit.kind, hit.title);
    if let Some(snippet) = &hit.snippet {
        line.push_str(&format!("    {snippet}\n"));
    }
    if let Some(record) = &hit.record {
        line.push_str(&format!("    {}\n", record.body.replace('\n', "\n    ")));
    }
    line
}

/// `orchestra memory …`, through the project's hub.
pub async fn run(args: MemoryArgs, target: &HubTarget) -> anyhow::Result<std::process::ExitCode> {
    let json = args.json;
    let target = HubTarget {
        fake: args.fake || target.fake,
        ..target.clone()
    };
    let hub = target.connect_any().await?;
    let client = &hub.client;
    match args.command {
        MemoryCommand::Search {
            query,
            scope: which,
            kind,
            tag,
            limit,
            budget,
            cursor,
            detail,
            all,
        } => {
            let detail = match detail.as_str() {
                "index" => MemoryDetail::Index,
                "summary" => MemoryDetail::Summary,
                "full" => MemoryDetail::Full,
                other => anyhow::bail!("`--detail {other}`: use index, summary or full"),
            };
            let page = client
                .memory_search(&MemorySearchParams {
                    query: query.join(" "),
                    scopes: scope(which.as_deref())?.into_iter().collect(),
                    kinds: kind,
                    tags: tag,
                    include_superseded: all,
                    include_retracted: all,
                    limit: Some(limit),
                    budget_tokens: budget,
                    cursor,
                    detail,
                })
                .await?;
            if json {
                print_json(&page)?;
            } else {
                write_stdout(&page_text(&page))?;
            }
        }
        MemoryCommand::Show {
            reference,
            scope: which,
        } => {
            let found = client
                .memory_show(&reference, scope(which.as_deref())?)
                .await?;
            print_json(&found)?;
        }
        MemoryCommand::Put {
            body,
            kind,
            key,
            title,
            tag,
            file,
            symbol,
            scope: which,
            supersedes,
            pin,
        } => {
            let result = client
                .memory_put(&MemoryPut {
                    scope: scope(which.as_deref())?,
                    kind,
                    key,
                    title,
                    body: body.join(" "),
                    tags: tag,
                    entities: MemoryEntities {
                        files: file,
                        symbols: symbol,
                    },
                    provenance: MemoryProvenance {
                        producer: Some("user".to_owned()),
                        ..Default::default()
                    },
                    supersedes,
                    pinned: pin.then_some(true),
                })
                .await?;
            if json {
                print_json(&result)?;
            } else {
                let outcome = serde_json::to_value(result.outcome)?;
                let outcome = outcome.as_str().unwrap_or_default();
                write_stdout(&format!("{} {outcome}\n", result.record.id))?;
            }
        }
        MemoryCommand::Forget {
            reference,
            mode,
            scope: which,
        } => {
            let mode = match mode.as_str() {
                "retract" => ForgetMode::Retract,
                "delete" => ForgetMode::Delete,
                other => anyhow::bail!("`--mode {other}`: use retract or delete"),
            };
            let result = client
                .memory_forget(
                    &reference,
                    &ForgetRequest {
                        mode,
                        scope: scope(which.as_deref())?,
                    },
                )
                .await?;
            if json {
                print_json(&result)?;
            } else {
                let what = match (mode, result.changed) {
                    (ForgetMode::Retract, true) => "retracted",
                    (ForgetMode::Retract, false) => "was already retracted",
                    (ForgetMode::Delete, _) => "deleted",
                };
                write_stdout(&format!("{} {what}\n", result.id))?;
            }
        }
        MemoryCommand::Export { output } => {
            let counts = export(client, output.as_deref()).await?;
            eprintln!(
                "exported {} records and {} links",
                counts.records, counts.links
            );
        }
        MemoryCommand::Import { file } => {
            let report = if file.as_os_str() == "-" {
                // The hub reads a file as it streams; stdin is spooled to one first.
                let spooled = tempfile_for_stdin()?;
                client.memory_import(spooled.path()).await?
            } else {
                client.memory_import(&file).await?
            };
            if json {
                print_json(&report)?;
            } else {
                let mut text = format!(
                    "imported {} records ({} already there) and {} links; {} lines rejected\n",
                    report.records, report.existing, report.links, report.rejected_count
                );
                for line in &report.rejected {
                    text.push_str(&format!("  {line}\n"));
                }
                write_stdout(&text)?;
            }
        }
        MemoryCommand::Context { task, budget } => {
            let block = client.memory_context(&task.join(" "), budget).await?;
            if json {
                print_json(&block)?;
            } else {
                write_stdout(&block.text)?;
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn page_text(page: &MemoryPage<MemoryHit>) -> String {
    let mut text: String = page.items.iter().map(hit_line).collect();
    if page.items.is_empty() {
        text.push_str("no matching memory\n");
    }
    if let Some(need) = page.needs_budget_tokens {
        text.push_str(&format!(
            "the next record needs a budget of {need} tokens (--budget)\n"
        ));
    }
    for skipped in &page.skipped {
        text.push_str(&format!("skipped {}: {}\n", skipped.id, skipped.reason));
    }
    if let Some(next) = &page.next_cursor {
        text.push_str(&format!("more: --cursor {next}\n"));
    }
    text
}

/// Records and links in an export, counted as it streams by.
#[derive(Default)]
struct ExportCounts {
    records: u64,
    links: u64,
}

async fn export(client: &HubClient, output: Option<&Path>) -> anyhow::Result<ExportCounts> {
    let mut out: Box<dyn Write> = match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    };
    let mut counts = ExportCounts::default();
    let mut line_start = true;
    let mut chunks = std::pin::pin!(client.memory_export().await?);
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.context(
            "the export stopped before its end; nothing is missing from the hub, export again",
        )?;
        for (at, byte) in chunk.iter().enumerate() {
            if line_start {
                let rest = &chunk[at..];
                if rest.starts_with(b"{\"type\":\"record\"") {
                    counts.records += 1;
                } else if rest.starts_with(b"{\"type\":\"link\"") {
                    counts.links += 1;
                }
            }
            line_start = *byte == b'\n';
        }
        out.write_all(&chunk)?;
    }
    out.flush()?;
    Ok(counts)
}

/// Stdin copied to a temporary file (removed when dropped).
fn tempfile_for_stdin() -> anyhow::Result<SpooledInput> {
    let path = std::env::temp_dir().join(format!(
        "orchestra-import-{}-{}.jsonl",
        std::process::id(),
        orchestra_protocol::now_ms()
    ));
    let mut file = std::fs::File::create(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    std::io::copy(&mut std::io::stdin().lock(), &mut file)?;
    Ok(SpooledInput { path })
}

struct SpooledInput {
    path: PathBuf,
}

impl SpooledInput {
    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SpooledInput {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
