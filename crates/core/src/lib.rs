//! The Open Orchestra engine.
//!
//! # Layout
//! - [`config`]: `orchestrator.json` discovery, validation, built-in and user profiles.
//! - [`opencode`]: our thin typed client for OpenCode's HTTP API and SSE event stream.
//! - [`supervisor`]: owns `opencode serve` child processes (process groups, death signal, logs).
//! - [`models`]: the model catalog from OpenCode and tag/reference resolution.
//! - [`workers`]: the worker pool — servers, profiles as OpenCode agents, restarts.
//! - [`tasks`]: the task engine behind the five task tools.
//! - [`workflows`]: multi-step workflows run across workers, persisted, resumable.
//! - [`hub`]: ties config, store, workers and tasks together for one project.

pub mod config;
pub mod hub;
pub mod models;
pub mod opencode;
pub mod supervisor;
pub mod tasks;
pub mod workers;
pub mod workflows;
