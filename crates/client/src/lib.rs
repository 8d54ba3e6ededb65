//! Talking to a project's Open Orchestra hub.
//!
//! One hub serves each project (`orchestra serve`); everything else — `orchestra mcp`, the
//! CLI commands, the desktop shell — is its client. This crate finds the hub through the
//! project's state folder ([`discovery`]), starts one in the background when none serves
//! ([`connect`]), and calls its HTTP API and event stream ([`HubClient`]).
//!
//! # Layout
//! - [`discovery`]: `hub.lock`, `hub.json`, `hub.log`; the environment fingerprint.
//! - [`connect`]: find or start the hub.
//! - `api`: [`HubClient`], typed calls and the event stream.
//! - `memory`: the memory API's calls on [`HubClient`] (search, records, context, export, import).

mod api;
pub mod connect;
pub mod discovery;
mod lock_probe;
mod memory;

use std::path::PathBuf;

pub use api::{HubClient, ListingReply};
pub use connect::{ConnectOptions, Connection, connect};
pub use discovery::{HubFiles, HubInfo, HubLock};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot use {}: {source}; check the permissions of the folder", path.display())]
    Files {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no Open Orchestra hub serves {}; start one with `orchestra serve` in that project", project.display())]
    NoHub { project: PathBuf },
    #[error("could not start the hub ({}): {source}; check that the orchestra binary is there and executable", exe.display())]
    Spawn {
        exe: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the project's hub stopped while starting (exit code {}); its log ({}) says:\n{tail}",
        code.map_or_else(|| "none: killed by a signal".to_owned(), |c| c.to_string()),
        log.display()
    )]
    HubFailed {
        code: Option<i32>,
        log: PathBuf,
        tail: String,
    },
    #[error(
        "the project's hub did not come up within 30 s; see its log ({}):\n{tail}",
        log.display()
    )]
    StartTimedOut { log: PathBuf, tail: String },
    #[error(
        "the project's hub (pid {pid}, {url}) holds the hub lock but does not answer; if it is stuck, stop it with `kill {pid}` and try again"
    )]
    HubNotAnswering { pid: u32, url: String },
    #[error(
        "the project's hub (pid {pid}) runs {}; stop it with `orchestra stop` first, then start again {}",
        if *hub_fake { "on the built-in fake model (--fake)" } else { "on your OpenCode providers" },
        if *hub_fake { "without --fake" } else { "with --fake" }
    )]
    ModeMismatch { pid: u32, hub_fake: bool },
    #[error("{what} failed: {message}; is the hub still running? (`orchestra status`)")]
    Http { what: String, message: String },
    #[error(
        "the hub at {url} is not reachable ({message}); it may have stopped — the next call starts a new one"
    )]
    Unreachable { url: String, message: String },
    #[error("{what}: the hub answered {status}: {message}")]
    Api {
        what: String,
        status: u16,
        message: String,
    },
}
