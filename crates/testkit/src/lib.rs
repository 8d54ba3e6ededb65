//! Test support for Open Orchestra.
//!
//! * [`fake_llm`]: a real HTTP server speaking the OpenAI chat-completions dialect that OpenCode's
//!   `@ai-sdk/openai-compatible` provider accepts, scripted by directives in the prompt or by a closure.
//! * [`opencode`]: helpers to run the pinned OpenCode binary isolated from the developer's home and offline.
//! * [`fixtures`]: rewriting committed expectations on request, never under CI.
//! * [`processes`]: what is still running, read from `/proc`, for tests that prove nothing leaks.

pub mod fake_llm;
pub mod fixtures;
pub mod opencode;
pub mod processes;
