//! `orchestra memory search | show | put | forget | export | import`: the project's memory for
//! people. For now this opens the memory service directly (the project's store and the
//! user-level global store); once the hub's API serves memory it goes through the hub.

use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use orchestra_core::config::{Config, LoadedConfig, MemoryScope as ConfigScope};
use orchestra_memory::{MemoryService, MemorySettings};
use orchestra_protocol::memory::{
    ForgetMode, MemoryDetail, MemoryEntities, MemoryHit, MemoryProvenance, MemoryPut, MemoryScope,
    MemorySearchParams,
};
use orchestra_store::Store;

use crate::write_stdout;

#[derive(clap::Args)]
pub struct MemoryArgs {
    /// The store holding this project's memory (default: `tasks.storePath`, else the project's
    /// state folder).
    #[arg(long, global = true)]
    store: Option<PathBuf>,
    /// The user-level store holding global memory (default:
    /// `$XDG_STATE_HOME/orchestra/global/memory.db`).
    #[arg(long, global = true)]
    global_store: Option<PathBuf>,
    /// JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
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
    /// For `orchestra bench`: open the stores, run the searches in QUERIES (one a line) and
    /// print this process's RSS, so the bench measures memory in a process of its own.
    #[command(hide = true)]
    Probe {
        #[arg(long)]
        project_id: String,
        #[arg(long)]
        queries: PathBuf,
    },
    /// The memory block a worker would get for TASK.
    Context {
        task: Vec<String>,
        #[arg(long)]
        budget: Option<u32>,
    },
}

/// The engine's settings from the `memory.*` keys (see the README's memory section).
pub fn memory_settings(config: &Config) -> MemorySettings {
    let memory = &config.memory;
    MemorySettings {
        default_scope: match memory.scope {
            ConfigScope::Project => MemoryScope::Project,
            ConfigScope::Global => MemoryScope::Global,
        },
        max_body_chars: usize::try_from(memory.max_chars).unwrap_or(usize::MAX),
        inject_budget_tokens: u32::try_from(memory.inject.max_chars.div_ceil(4))
            .unwrap_or(u32::MAX),
        inject_max_entries: usize::try_from(memory.inject.max_entries).unwrap_or(usize::MAX),
        inject_include_global: memory.inject.include_global,
        inject_max_global_entries: usize::try_from(memory.inject.max_global_entries)
            .unwrap_or(usize::MAX),
        inject_project_summary: memory.inject.include_project_summary,
    }
}

fn scope(text: Option<&str>) -> anyhow::Result<Option<MemoryScope>> {
    text.map(|t| {
        MemoryScope::parse(t).with_context(|| format!("`--scope {t}`: use `project` or `global`"))
    })
    .transpose()
}

fn open(args: &MemoryArgs, config: &Config, project_dir: &Path) -> anyhow::Result<MemoryService> {
    if !config.memory.enabled {
        tracing::warn!("`memory.enabled` is false: the hub neither injects nor records memory");
    }
    let store_path = args
        .store
        .clone()
        .or_else(|| config.tasks.store_path.clone())
        .unwrap_or_else(|| orchestra_store::default_store_path(project_dir));
    let global_path = args
        .global_store
        .clone()
        .unwrap_or_else(orchestra_memory::global_store_path);
    let store = Arc::new(Store::open(&store_path)?);
    let global = Arc::new(Store::open(&global_path)?);
    Ok(MemoryService::open(
        store,
        orchestra_store::project_id(project_dir),
        Some(global),
        memory_settings(config),
    )?)
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

fn status_kb(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse().ok())
        })
        .unwrap_or(0)
}

fn probe(
    args: &MemoryArgs,
    config: &Config,
    project_id: &str,
    queries: &Path,
) -> anyhow::Result<std::process::ExitCode> {
    let store_path = args.store.clone().context("probe needs --store")?;
    let global_path = args
        .global_store
        .clone()
        .context("probe needs --global-store")?;
    let memory = MemoryService::open(
        Arc::new(Store::open(&store_path)?),
        project_id,
        Some(Arc::new(Store::open(&global_path)?)),
        memory_settings(config),
    )?;
    let opened_kb = status_kb("VmRSS:");
    let text = std::fs::read_to_string(queries)
        .with_context(|| format!("cannot read {}", queries.display()))?;
    let mut searches = 0;
    for query in text.lines() {
        memory.search(&MemorySearchParams {
            query: query.to_owned(),
            ..Default::default()
        })?;
        searches += 1;
    }
    print_json(&serde_json::json!({
        "searches": searches,
        "openedRssKb": opened_kb,
        "rssKb": status_kb("VmRSS:"),
        "hwmKb": status_kb("VmHWM:"),
    }))?;
    Ok(std::process::ExitCode::SUCCESS)
}

pub fn run(
    args: MemoryArgs,
    loaded: LoadedConfig,
    project_dir: &Path,
) -> anyhow::Result<std::process::ExitCode> {
    if let MemoryCommand::Probe {
        project_id,
        queries,
    } = &args.command
    {
        return probe(&args, &loaded.config, project_id, queries);
    }
    let memory = open(&args, &loaded.config, project_dir)?;
    let json = args.json;
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
            let page = memory.search(&MemorySearchParams {
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
            })?;
            if json {
                return print_json(&page).map(|()| std::process::ExitCode::SUCCESS);
            }
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
            write_stdout(&text)?;
        }
        MemoryCommand::Show {
            reference,
            scope: which,
        } => {
            let found = memory.get_with_links(&reference, scope(which.as_deref())?, None)?;
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
            let result = memory.put(MemoryPut {
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
            })?;
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
            let result = memory.forget(&reference, scope(which.as_deref())?, mode)?;
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
            let report = match &output {
                Some(path) => {
                    let file = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let mut out = std::io::BufWriter::new(file);
                    let report = memory.export_jsonl(&mut out)?;
                    out.flush()?;
                    report
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut out = std::io::BufWriter::new(stdout.lock());
                    memory.export_jsonl(&mut out)?
                }
            };
            eprintln!(
                "exported {} records and {} links{}",
                report.records,
                report.links,
                if report.skipped.is_empty() {
                    String::new()
                } else {
                    format!("; skipped unreadable: {}", report.skipped.join(", "))
                }
            );
        }
        MemoryCommand::Import { file } => {
            let report = if file.as_os_str() == "-" {
                let stdin = std::io::stdin();
                memory.import_jsonl(&mut stdin.lock())?
            } else {
                let opened = std::fs::File::open(&file)
                    .with_context(|| format!("cannot open {}", file.display()))?;
                memory.import_jsonl(&mut BufReader::new(opened))?
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
        MemoryCommand::Probe { .. } => {}
        MemoryCommand::Context { task, budget } => {
            let block = memory.render_context(&task.join(" "), budget)?;
            if json {
                print_json(&block)?;
            } else {
                write_stdout(&block.text)?;
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
