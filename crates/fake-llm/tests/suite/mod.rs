//! The fake LLM's integration tests, compiled into one binary.

// The fake LLM over real HTTP.
mod fake_llm;
