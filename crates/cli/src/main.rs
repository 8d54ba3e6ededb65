//! `orchestra`: CLI commands for people, `orchestra mcp` for agents.
//!
//! One hub serves each project (`orchestra serve`); every other command is its client and
//! starts it in the background when none runs. This binary only wires the library crates
//! together; `anyhow` lives here and nowhere else. In `mcp` mode stdout belongs to the
//! protocol, so every log line goes to stderr.

mod doctor;
mod follow;
mod hub_link;
mod install;
mod launch;
mod log_capture;
mod malloc;
mod memory;
mod models;
mod opencode_bin;
mod owner;
mod quickstart;
mod relay;
mod run;
mod run_worktree;
mod serve;
mod workflow;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use orchestra_core::config::{self, LoadOptions, LoadedConfig};
use orchestra_protocol::ListView;

use hub_link::{HubTarget, ListArgs};

#[derive(Parser)]
#[command(
    name = "orchestra",
    version,
    about = "Open Orchestra: specialised OpenCode workers, coordinated"
)]
struct Cli {
    /// Project directory (default: the current directory).
    #[arg(long, global = true)]
    project: Option<PathBuf>,
    /// An extra orchestrator.json merged last.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// More logging on stderr (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one task on one worker and print its answer.
    Run(run::RunArgs),
    /// Run the project's hub: the workers, the store, the event stream, the HTTP API, MCP
    /// over HTTP and the panel, on 127.0.0.1. One per project.
    Serve(serve::ServeArgs),
    /// Stop the project's hub (its running tasks are canceled, its workers stopped).
    Stop,
    /// Open the control panel in your browser, logged in (starts the hub if none runs).
    Panel {
        /// Only print the one-time login URL.
        #[arg(long)]
        url: bool,
        /// A hub on the built-in fake model, if one has to be started.
        #[arg(long)]
        fake: bool,
    },
    /// Serve the five task tools over MCP on stdin/stdout (what OpenCode runs); a relay to the
    /// project's hub.
    Mcp {
        /// Run the workers on the built-in fake model (it echoes prompts) instead of the
        /// providers your OpenCode configuration offers.
        #[arg(long)]
        fake: bool,
    },
    /// Print the project's hub (started if none runs) as JSON with its token: what
    /// Orchestra's OpenCode plugin asks to find the hub.
    Endpoint {
        /// Only a hub that runs already; none is started (exit code 1 when none runs).
        #[arg(long)]
        no_start: bool,
    },
    /// Run the OpenAI-compatible fake LLM on 127.0.0.1 until Ctrl-C (it echoes prompts).
    FakeLlm {
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Let directives in the prompt (`CALL_TOOL:`, `SLOW:`, `FAIL:` …) script the replies.
        /// Off by default: with it, text in a prompt can make an OpenCode agent run tools.
        #[arg(long)]
        directives: bool,
        /// How many requests the fake keeps in its log (a ring; it is only read in-process).
        #[arg(long, default_value_t = orchestra_fake_llm::DEFAULT_LOG_CAPACITY)]
        keep_requests: usize,
    },
    /// Workers and recent tasks.
    Status(ListArgs),
    /// The hub's workers and their state.
    Workers(ListArgs),
    /// Worker profiles: model, access, purpose.
    Profiles(ListArgs),
    /// Recent tasks from the job store.
    Tasks(ListArgs),
    /// Recent tasks and the hub's log.
    Output(ListArgs),
    /// Workflows: list them, run one with live per-step progress, resume a paused run.
    #[command(subcommand)]
    Workflow(workflow::WorkflowCommand),
    /// The models OpenCode offers the workers (starts one worker server to ask it).
    Models(models::ModelsArgs),
    /// Print the JSON Schema of orchestrator.json.
    Schema,
    /// Add Orchestra to OpenCode's config: the MCP server, the orchestrator agent, the
    /// `orchestrator.*` commands and the OpenCode plugin. Keeps your comments and formatting; running it twice changes nothing.
    Install {
        /// Edit the global OpenCode config instead of the project's.
        #[arg(long)]
        global: bool,
        /// Show what would change without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// Leave out the OpenCode plugin (chat hooks: images, running-task line, results
        /// delivered into the session, idle notifications).
        #[arg(long)]
        no_plugin: bool,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
        /// Write the config for this OpenCode line (default: the version of `opencode` on PATH).
        #[arg(long, value_enum)]
        opencode: Option<install::OpenCodeLine>,
    },
    /// Project memory: search, show, put, forget, export, import (JSONL), context.
    Memory(memory::MemoryArgs),
    /// The first task: on your OpenCode providers, or, when none is configured or reachable,
    /// on the built-in echo model, labelled as such (says why and how to fix it).
    Quickstart(quickstart::QuickstartArgs),
    /// Check OpenCode, the providers, the hub, the plugin and the state folder; each failure
    /// with its fix (exit code 1 when something is broken).
    Doctor(doctor::DoctorArgs),
    /// Remove exactly what `orchestra install` added.
    Uninstall {
        #[arg(long)]
        global: bool,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Threads for blocking work (SQLite, the memory index, redaction). Without a bound a burst of
/// task starts made one each (about 70 in a 64-task soak), and each thread the process keeps
/// holds a stack and an allocator cache: the hub's memory grew with the bursts it had seen. The
/// work mostly waits on one SQLite connection anyway, so more threads did not do more.
const MAX_BLOCKING_THREADS: usize = 16;

/// The hub and the relay run their async work on one thread. Both wait on I/O almost all the
/// time (a 64-task soak keeps the hub's thread under a tenth busy), and a second worker thread
/// only adds wake-ups and hand-overs between the two: in the 1,000-task soak, the same build run
/// both ways in alternating order, hub and relay used 13 % and 22 % less CPU a task on one
/// thread (two sets of four runs; issue 20). Blocking work (SQLite batches, the memory index,
/// redaction) still goes to the blocking pool.
fn runs_on_one_thread(command: &Command) -> bool {
    matches!(command, Command::Serve(_) | Command::Mcp { .. })
}

fn main() -> std::process::ExitCode {
    // The hidden supervisor mode every OpenCode server runs under: before clap, logging and
    // the async runtime, since it must be the only thread (it takes signals with sigwait).
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if let Some(code) = orchestra_core::supervisor::run_supervisor_if_selected(&args) {
        return std::process::ExitCode::from(code);
    }
    // Before any thread or file: what this process writes in the state folder is the user's
    // alone. (The supervisor above runs before it, so OpenCode keeps the user's umask.)
    orchestra_state_dir::private::restrict_umask();
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Schema | Command::FakeLlm { .. })
        && let Err(err) = orchestra_state_dir::check_state_home()
    {
        eprintln!("error: {err}");
        return std::process::ExitCode::FAILURE;
    }
    init_logging(cli.verbose, matches!(cli.command, Command::Serve(_)));
    if matches!(cli.command, Command::Serve(_)) {
        malloc::tune();
    }
    let mut builder = if runs_on_one_thread(&cli.command) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder
        .enable_all()
        .max_blocking_threads(MAX_BLOCKING_THREADS)
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: could not start the async runtime: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

type FilterHandle =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// Set when neither `ORCHESTRA_LOG` nor `-v` chose the log level, so `ui.debug` may raise it.
static DEBUG_SWITCH: std::sync::OnceLock<FilterHandle> = std::sync::OnceLock::new();

/// What `ui.debug: true` turns on: our own crates at debug, everything else at info.
const UI_DEBUG_FILTER: &str =
    "info,orchestra=debug,orchestra_core=debug,orchestra_store=debug,orchestra_mcp=debug";

/// Logging on stderr at the chosen level; a hub (`serve`) also captures lines for the panel
/// (`log_capture`), whatever stderr shows.
fn init_logging(verbose: u8, hub: bool) {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let default = match verbose {
        0 => "warn",
        1 => "info,orchestra=info",
        _ => "debug",
    };
    let from_env = tracing_subscriber::EnvFilter::try_from_env("ORCHESTRA_LOG").ok();
    let chosen = from_env.is_some() || verbose > 0;
    let filter = from_env.unwrap_or_else(|| tracing_subscriber::EnvFilter::new(default));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let capture = hub.then(|| {
        log_capture::Capture.with_filter(tracing_subscriber::filter::filter_fn(log_capture::wanted))
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .with(capture)
        .init();
    if !chosen {
        let _ = DEBUG_SWITCH.set(handle);
    }
}

/// `ui.debug`: verbose logging, unless `ORCHESTRA_LOG` or `-v` already chose the level.
fn apply_ui_debug(config: &config::Config) {
    if config.ui.debug
        && let Some(handle) = DEBUG_SWITCH.get()
        && let Err(err) = handle.reload(tracing_subscriber::EnvFilter::new(UI_DEBUG_FILTER))
    {
        tracing::warn!(error = %err, "could not raise the log level for ui.debug");
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<std::process::ExitCode> {
    let project_dir = match &cli.project {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("reading the current directory")?,
    };
    let project_dir = project_dir
        .canonicalize()
        .with_context(|| format!("project directory {} does not exist", project_dir.display()))?;
    let load = || load_config(&project_dir, cli.config.clone());
    let hub = |fake: bool| HubTarget {
        project_dir: project_dir.clone(),
        config_file: cli.config.clone(),
        fake,
    };
    match cli.command {
        Command::Run(args) => {
            let target = hub(args.fake);
            run::run(args, &target).await
        }
        Command::Serve(args) => {
            let candidates = config::candidate_files(&LoadOptions {
                project_dir: project_dir.clone(),
                global_dir: None,
                extra_file: cli.config.clone(),
            });
            let sources = serve::ConfigSources::stamp(
                candidates.iter().map(|p| p.display().to_string()).collect(),
            );
            serve::serve(args, sources, load(), &project_dir).await
        }
        Command::Stop => hub_link::stop(&hub(false)).await,
        Command::Panel { url, fake } => hub_link::panel(&hub(fake), url).await,
        Command::Endpoint { no_start } => hub_link::endpoint(&hub(false), !no_start).await,
        Command::Mcp { fake } => {
            relay::serve_mcp(project_dir.clone(), cli.config.clone(), fake).await
        }
        Command::FakeLlm {
            port,
            directives,
            keep_requests,
        } => fake_llm(port, directives, keep_requests).await,
        Command::Status(args) => hub_link::list(&hub(args.fake), ListView::Status, args).await,
        Command::Workers(args) => hub_link::list(&hub(args.fake), ListView::Workers, args).await,
        Command::Profiles(args) => hub_link::list(&hub(args.fake), ListView::Profiles, args).await,
        Command::Tasks(args) => hub_link::list(&hub(args.fake), ListView::Tasks, args).await,
        Command::Output(args) => hub_link::list(&hub(args.fake), ListView::Output, args).await,
        Command::Install {
            global,
            dry_run,
            no_plugin,
            json,
            opencode,
        } => {
            let loaded = load()?;
            if global
                && let Some(key) = loaded
                    .project_keys
                    .iter()
                    .find(|k| matches!(k.as_str(), "agent" | "commands"))
            {
                anyhow::bail!(
                    "this project's orchestrator.json sets `{key}`, and `install --global` would \
                     write it into your global OpenCode config, for every project; run \
                     `orchestra install --global` outside this project, or move `{key}` to \
                     ~/.config/opencode/orchestrator.json"
                );
            }
            let scope = install_scope(&project_dir, global)?;
            let mut options = install_options(&loaded.config)?;
            options.plugin = !no_plugin;
            let (line, why) = opencode_bin::line_for_install(opencode).await;
            options.opencode = line;
            eprintln!("orchestra: writing the config {why}");
            let report = if dry_run {
                install::install_dry_run(&scope, &options)?
            } else {
                install::install(&scope, &options)?
            };
            print_report(&report, json)
        }
        Command::Uninstall { global, json } => {
            let report = install::uninstall(&install_scope(&project_dir, global)?)?;
            print_report(&report, json)
        }
        Command::Quickstart(args) => quickstart::run(args, &hub(false)).await,
        Command::Doctor(args) => doctor::run(args, load().map(|l| l.config), &hub(false)).await,
        Command::Memory(args) => memory::run(args, &hub(false)).await,
        Command::Workflow(command) => workflow::run(command, &hub(false)).await,
        Command::Models(args) => {
            let target = hub(args.fake);
            models::run(args, &target).await
        }
        Command::Schema => {
            let schema = serde_json::to_string_pretty(&config::json_schema())?;
            write_stdout(&format!("{schema}\n"))?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

fn load_config(
    project_dir: &std::path::Path,
    extra: Option<PathBuf>,
) -> anyhow::Result<LoadedConfig> {
    let loaded = config::load(&LoadOptions {
        project_dir: project_dir.to_path_buf(),
        global_dir: None,
        extra_file: extra,
    })?;
    apply_ui_debug(&loaded.config);
    for warning in &loaded.warnings {
        tracing::warn!("{warning}");
    }
    Ok(loaded)
}

fn print_report(
    report: &install::InstallReport,
    json: bool,
) -> anyhow::Result<std::process::ExitCode> {
    if json {
        write_stdout(&format!("{}\n", serde_json::to_string_pretty(report)?))?;
    } else {
        write_stdout(&format!("{report}\n"))?;
    }
    Ok(std::process::ExitCode::SUCCESS)
}

fn install_scope(project_dir: &std::path::Path, global: bool) -> anyhow::Result<install::Scope> {
    if global {
        let dir = config::default_global_dir()
            .context("cannot find the global OpenCode config directory (HOME is not set)")?;
        return Ok(install::Scope::Global(dir));
    }
    Ok(install::Scope::Project {
        dir: project_dir.to_path_buf(),
        state_dir: orchestra_state_dir::project_state_dir(project_dir),
    })
}

fn install_options(config: &config::Config) -> anyhow::Result<install::InstallOptions> {
    let exe = std::env::current_exe().context("cannot find the path of this orchestra binary")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let agent = config.agent.enabled.then(|| install::AgentSpec {
        name: config.agent.name.clone(),
        mode: match config.agent.mode {
            config::AgentMode::Primary => "primary",
            config::AgentMode::Subagent => "subagent",
            config::AgentMode::All => "all",
        }
        .to_owned(),
        model: config.agent.model.clone(),
        prompt: config
            .agent
            .prompt
            .clone()
            .unwrap_or_else(|| install::default_orchestrator_prompt().to_owned()),
        color: config.agent.color.clone(),
        tools: config.agent.tools.clone().unwrap_or_default(),
        permission: config.agent.permission.clone().unwrap_or_default(),
    });
    Ok(install::InstallOptions {
        orchestra_command: vec![exe.display().to_string(), "mcp".to_owned()],
        agent,
        commands_prefix: config
            .commands
            .enabled
            .then(|| config.commands.prefix.clone()),
        plugin: true,
        opencode: install::OpenCodeLine::V1,
    })
}

async fn fake_llm(
    port: u16,
    directives: bool,
    keep_requests: usize,
) -> anyhow::Result<std::process::ExitCode> {
    use orchestra_fake_llm::{Directives, FakeLlm, FakeLlmConfig};
    let fake = FakeLlm::start_with(FakeLlmConfig {
        addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        directives: if directives {
            Directives::On
        } else {
            Directives::Off
        },
        log_capacity: keep_requests,
        ..FakeLlmConfig::default()
    })
    .await?;
    let mode = if directives {
        "directives in prompts script the replies"
    } else {
        "it echoes prompts"
    };
    write_stdout(&format!(
        "fake LLM listening on {} ({mode})\nOpenCode provider config: {}\n",
        fake.base_url(),
        orchestra_fake_llm::opencode::fake_mode_config(&fake.base_url())
    ))?;
    shutdown_signal().await;
    fake.shutdown().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// The one place this binary writes to stdout.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
