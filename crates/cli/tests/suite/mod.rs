//! orchestra-cli's integration tests: the `orchestra` binary as people use it, one module per
//! area, compiled into one binary.

// Helpers the tests share: a world of the fake LLM, a project and an isolated home, and the hub.
mod common;

// `orchestra install`'s own module: the CLI is a binary crate, which tests cannot import, so its
// source is compiled in here. Some of it only serves the command line.
#[allow(dead_code)]
#[path = "../../src/install/mod.rs"]
mod cli_install;

// `orchestra install` / `uninstall` against real files.
mod install;
// What install writes, and the pinned OpenCode loading it.
mod install_content;
mod install_plugin;
// OpenCode V2: the plugin's module shape, V2 config writing, and a V2 end-to-end run when a V2
// binary is there (it says plainly when it is not).
mod opencode_v2;
mod opencode_v2_main;

// `orchestra doctor`: what it finds with a provider and without one.
mod doctor;

// `orchestra run`, `serve` and `mcp` with real OpenCode workers.
mod cli_run;
mod mcp_server;
mod serve;
// A burst of tasks and the hub's thread count.
mod hub_threads;

// Malformed MCP calls from `tests/corpus/`.
mod malformed_inputs;

// Lifecycles: nothing outlives a hub, and a crashed workflow step runs again.
mod background_commands;
mod cold_start;
mod presumed_dead;
mod process_cleanup;
// Everything written under the state folder is private whatever the umask.
mod private_state;
mod state_home;
mod workflow_crash;
// Task worktrees: `orchestra run` and its diffstat, `--merge`, a SIGKILLed hub's worktrees.
mod worktrees;

// Memory, providers, and OpenCode as the main agent with our MCP tools and plugin.
mod main_agent;
mod memory;
mod notify;
// Budget hits and merge conflicts reach a command hook.
mod notify_events;
mod passthrough;
mod plugin;
mod plugin_trust;
mod providers;

// The control panel in a real browser (headless Chromium).
mod panel;
// Browser sessions: a replayed cookie opens nothing, no login code on a command line.
mod panel_session;
// A task's worktree on its page: the diff, Merge and Discard in a real browser.
mod panel_worktree;
// A run its budget paused: spend against the cap, Raise and Stop in the inbox, failed notifications.
mod panel_budget;
