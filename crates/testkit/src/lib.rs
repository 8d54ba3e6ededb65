//! Test support for Open Orchestra.
//!
//! * [`fake_llm`]: the `orchestra-fake-llm` crate: a real HTTP server speaking the OpenAI
//!   chat-completions dialect that OpenCode's `@ai-sdk/openai-compatible` provider accepts. Tests
//!   start it with [`fake_llm::FakeLlm::start_scripted`], so directives in the prompt or a
//!   closure script its replies.
//! * [`opencode`]: the pinned OpenCode binary, isolated from the developer's home and offline,
//!   and the fake configured as a user's provider where users put theirs.
//! * [`sandbox`]: that isolation itself (a throw-away HOME with OpenCode's offline switches, a
//!   throw-away git project), which [`opencode`] re-exports and the bench uses.
//! * [`proxy`]: a TCP proxy on 127.0.0.1 that can cut every connection through it and refuse
//!   new ones for a while, to test what the hub does when its link to OpenCode drops.
//! * [`fixtures`]: rewriting committed expectations on request, never under CI.
//! * [`processes`]: what is still running, read from `/proc`, for tests that prove nothing leaks
//!   (and the bench's memory and CPU figures).
//! * [`mcp`]: one MCP tool call with its text joined, as the bench and the tests make it.

pub use orchestra_fake_llm as fake_llm;
pub mod fixtures;
pub mod mcp;
pub mod opencode;
pub mod processes;
pub mod proxy;
pub mod sandbox;
mod temp_dir;
