//! The hub's HTTP server on a real socket: access rules, the event stream, the JSON API and
//! MCP over Streamable HTTP. These hubs never start OpenCode (no task reaches a worker), so
//! what is tested is the server itself; the end-to-end tests with real workers drive the
//! same routes through the `orchestra` binary.
#![allow(clippy::unwrap_used)]

mod access;
mod common;
mod corpus;
mod events;
mod hooks;
mod idle_mcp;
mod mcp;
mod memory;
mod panel;
mod sessions;
mod worker_token;
