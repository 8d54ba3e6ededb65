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
mod install_plugin;

// `orchestra run`, `serve` and `mcp` with real OpenCode workers.
mod cli_run;
mod mcp_server;
mod serve;

// Malformed MCP calls from `tests/corpus/`.
mod malformed_inputs;

// Lifecycles: nothing outlives a hub, and a crashed workflow step runs again.
mod background_commands;
mod cold_start;
mod process_cleanup;
mod state_home;
mod workflow_crash;

// Memory, providers, and OpenCode as the main agent with our MCP tools and plugin.
mod main_agent;
mod memory;
mod plugin;
mod providers;

// The control panel in a real browser (headless Chromium).
mod panel;
