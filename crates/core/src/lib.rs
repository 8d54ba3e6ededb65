//! The Open Orchestra engine.
//!
//! # Layout
//! - [`config`]: `orchestrator.json` discovery, validation, built-in and user profiles.
//! - [`worktree`]: git worktrees for tasks — create, commit, diff, merge, discard, reconcile.
//! - [`opencode`]: our thin typed client for OpenCode's HTTP API and SSE event stream.
//! - [`supervisor`]: owns `opencode serve` child processes (process groups, death signal, logs).
//! - [`models`]: the model catalog from OpenCode and tag/reference resolution.
//! - [`events`]: the event bus — every change as one event with an increasing id.
//! - [`workers`]: the worker pool — servers, profiles as OpenCode agents, restarts.
//! - [`jobs`]: the job runtime — live jobs, the runner that drives one session, attachments.
//! - [`memory`]: the project's memory in the hub — ops, the injected block, automatic records.
//! - [`workflows`]: multi-step workflows run as jobs across workers, persisted, resumable.
//! - [`tasks`]: the facade behind the five task tools: validation, routing, ops, views.
//! - [`chat`]: what the hooks of Orchestra's OpenCode plugin do (vision on pasted images, the
//!   running-task line, results delivered into the session, idle notifications).
//! - [`notify`]: the hub sends its events to the user's `notify` targets (desktop, webhook,
//!   command), recording every delivery in the store.
//! - [`hub`]: owns all of the above for one project.
//!
//! Imports go one way, down this list (config lowest, hub highest); `scripts/check-layers`
//! fails the build when a module imports one above it.

pub mod chat;
pub mod config;
pub mod events;
pub mod hub;
pub mod jobs;
pub mod memory;
pub mod models;
pub mod notify;
pub mod opencode;
pub mod supervisor;
pub mod tasks;
pub mod workers;
pub mod workflows;
pub mod worktree;
