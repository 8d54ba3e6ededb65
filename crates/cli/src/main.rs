//! `orchestra`: CLI commands for people, `orchestra mcp` for agents.
//!
//! This binary only wires the library crates together; `anyhow` lives here
//! and nowhere else. In `mcp` mode stdout belongs to the protocol, so every
//! log line goes to stderr.

mod bench;
mod install;
mod launch;
mod models;
mod run;
mod workflow;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use orchestra_core::config::{self, LoadOptions, LoadedConfig};
use orchestra_core::hub::{Hub, HubOptions};
use orchestra_core::tasks::TaskEngine;
use orchestra_protocol::{ListFormat, ListView, TaskListParams};
use orchestra_store::{Store, default_store_path};

use launch::ProviderChoice;

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
    /// Serve the five task tools over MCP on stdin/stdout (what OpenCode runs).
    Mcp {
        /// Use the built-in fake model instead of your OpenCode provider.
        #[arg(long)]
        fake: bool,
    },
    /// Run the scripted OpenAI-compatible fake LLM on 127.0.0.1 until Ctrl-C.
    FakeLlm {
        #[arg(long, default_value_t = 0)]
        port: u16,
    },
    /// Workers and recent tasks.
    Status(ListArgs),
    /// Worker profiles and their state in this process.
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
    /// Add Orchestra to OpenCode's config: the MCP server, the orchestrator agent and the
    /// `orchestrator.*` commands. Keeps your comments and formatting; running it twice changes nothing.
    Install {
        /// Edit the global OpenCode config instead of the project's.
        #[arg(long)]
        global: bool,
        /// Show what would change without writing anything.
        #[arg(long)]
        dry_run: bool,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Measure the hub against plain OpenCode on the fake model (127.0.0.1 only) and print a table.
    Bench(bench::BenchArgs),
    /// Remove exactly what `orchestra install` added.
    Uninstall {
        #[arg(long)]
        global: bool,
        /// The report as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(clap::Args)]
struct ListArgs {
    /// JSON instead of a table.
    #[arg(long)]
    json: bool,
    #[arg(long)]
    limit: Option<u32>,
    /// Only tasks of this worker.
    #[arg(long)]
    worker: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Runtime::new() {
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

fn init_logging(verbose: u8) {
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
    tracing_subscriber::registry()
        .with(filter)
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
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
    match cli.command {
        Command::Run(args) => run::run(args, load()?, &project_dir).await,
        Command::Mcp { fake } => serve_mcp(load(), &project_dir, fake).await,
        Command::FakeLlm { port } => fake_llm(port).await,
        Command::Status(args) => list(load()?, &project_dir, ListView::Status, args).await,
        Command::Workers(args) => list(load()?, &project_dir, ListView::Workers, args).await,
        Command::Profiles(args) => list(load()?, &project_dir, ListView::Profiles, args).await,
        Command::Tasks(args) => list(load()?, &project_dir, ListView::Tasks, args).await,
        Command::Output(args) => list(load()?, &project_dir, ListView::Output, args).await,
        Command::Install {
            global,
            dry_run,
            json,
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
            let options = install_options(&loaded.config)?;
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
        Command::Bench(args) => bench::run(args).await,
        Command::Workflow(command) => workflow::run(command, load()?, &project_dir).await,
        Command::Models(args) => models::run(args, load()?, &project_dir).await,
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
        state_dir: orchestra_store::project_state_dir(project_dir),
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
    })
}

/// Chooses the provider: `--fake`, else the user's, else the fake.
pub async fn choose_provider(force_fake: bool) -> anyhow::Result<ProviderChoice> {
    if !force_fake && let Some(why) = launch::detect_user_provider() {
        return Ok(ProviderChoice::User(why));
    }
    let fake = orchestra_testkit::fake_llm::FakeLlm::start()
        .await
        .context("starting the built-in fake model")?;
    Ok(ProviderChoice::Fake {
        fake,
        asked: force_fake,
    })
}

pub async fn start_hub(
    loaded: LoadedConfig,
    project_dir: &std::path::Path,
    provider: &ProviderChoice,
) -> anyhow::Result<Hub> {
    let launch = launch::launch_settings(&loaded.config, project_dir, provider)?;
    let hub = Hub::start(HubOptions {
        project_dir: project_dir.to_path_buf(),
        config: loaded.config,
        launch,
    })
    .await?;
    Ok(hub)
}

/// Picks the provider, starts a hub and hands it one task. A refused task
/// shuts the hub down again, so nothing is left running. The provider is
/// returned because a fake model lives as long as its handle.
pub async fn start_on_new_hub(
    loaded: LoadedConfig,
    project_dir: &std::path::Path,
    fake: bool,
    params: orchestra_protocol::TaskStartParams,
    requested_by: &str,
) -> anyhow::Result<(ProviderChoice, Hub, orchestra_protocol::TaskStartResult)> {
    let provider = choose_provider(fake).await?;
    eprintln!("orchestra: {}", provider.describe());
    let hub = start_hub(loaded, project_dir, &provider).await?;
    match hub.engine().start(params, Some(requested_by.to_owned())) {
        Ok(started) => Ok((provider, hub, started)),
        Err(err) => {
            hub.shutdown().await;
            Err(err).context("the task was refused")
        }
    }
}

/// Serves MCP. A hub that cannot start still gets a server, whose tools
/// answer with the reason and the fix: the main agent (and through it the
/// user) sees what is wrong instead of a bare "MCP server failed".
async fn serve_mcp(
    loaded: anyhow::Result<LoadedConfig>,
    project_dir: &std::path::Path,
    fake: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let started = match loaded {
        Ok(loaded) => match choose_provider(fake).await {
            Ok(provider) => {
                tracing::info!("{}", provider.describe());
                start_hub(loaded, project_dir, &provider)
                    .await
                    .map(|hub| (provider, hub))
            }
            Err(err) => Err(err),
        },
        Err(err) => Err(err),
    };
    let (server, running) = match started {
        Ok((provider, hub)) => (
            orchestra_mcp::OrchestraMcp::new(hub.engine().clone()),
            Some((provider, hub)),
        ),
        Err(err) => {
            tracing::error!("{err:#}");
            (
                orchestra_mcp::OrchestraMcp::unavailable(format!("{err:#}")),
                None,
            )
        }
    };
    let result = tokio::select! {
        result = server.serve_stdio() => result.map_err(anyhow::Error::from),
        () = shutdown_signal() => Ok(()),
    };
    if let Some((_provider, hub)) = running {
        hub.shutdown().await;
    }
    result.map(|()| std::process::ExitCode::SUCCESS)
}

async fn fake_llm(port: u16) -> anyhow::Result<std::process::ExitCode> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    let fake = orchestra_testkit::fake_llm::FakeLlm::start_on(addr).await?;
    write_stdout(&format!(
        "fake LLM listening on {}\nOpenCode provider config: {}\n",
        fake.base_url(),
        orchestra_testkit::opencode::fake_provider_config(&fake.base_url())
    ))?;
    shutdown_signal().await;
    fake.shutdown().await;
    Ok(std::process::ExitCode::SUCCESS)
}

/// Listing commands read the store and config; they start no OpenCode.
async fn list(
    loaded: LoadedConfig,
    project_dir: &std::path::Path,
    view: ListView,
    args: ListArgs,
) -> anyhow::Result<std::process::ExitCode> {
    let config = Arc::new(loaded.config);
    let store_path = config
        .tasks
        .store_path
        .clone()
        .unwrap_or_else(|| default_store_path(project_dir));
    let store = Arc::new(Store::open(&store_path)?);
    let engine = TaskEngine::observer(config, store, project_dir.to_path_buf());
    let listing = engine
        .list(&TaskListParams {
            view,
            worker_id: args.worker,
            limit: args.limit,
            format: Some(if args.json {
                ListFormat::Json
            } else {
                ListFormat::Markdown
            }),
            ..TaskListParams::default()
        })
        .await?;
    write_stdout(&format!("{}\n", listing.text))?;
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
