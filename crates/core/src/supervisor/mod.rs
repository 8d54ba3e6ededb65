//! Owns `opencode serve` child processes: each in its own process group, killed with the hub
//! (PR_SET_PDEATHSIG), output drained into `tracing`, reaped in the background, and only ever
//! signalled by the pgid we recorded. The hub runs each one under `orchestra __supervise`
//! (`subreaper.rs`), a child subreaper that takes every process below it down when the hub
//! dies; the group records (`ledger.rs`) are the backstop.

mod group;
mod ledger;
mod output;
mod process;
mod procfs;
mod subreaper;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

pub use ledger::{GroupLedger, ReapReport, reap_orphan_groups, reap_orphans};
pub use output::OUTPUT_TARGET;
pub use process::ServerProcess;
pub use subreaper::{SUPERVISE_ARG, run_if_selected as run_supervisor_if_selected};

/// How to start one `opencode serve`.
#[derive(Clone)]
pub struct ServeSpec {
    /// The `opencode` executable.
    pub binary: PathBuf,
    /// Project directory; also exported as `PWD`, which is what OpenCode actually reads.
    pub cwd: PathBuf,
    /// Extra environment (isolation, `OPENCODE_CONFIG_CONTENT`, …) on top of the hub's own.
    pub env: Vec<(String, String)>,
    /// Basic-auth password (`OPENCODE_SERVER_PASSWORD`); the user is `opencode`.
    pub password: String,
    /// 0 lets OpenCode pick (it tries 4096 first, then a random port).
    pub port: u16,
    /// Bound for spawn → "listening" line → healthy.
    pub startup_timeout: Duration,
    /// Worker name for logs and errors.
    pub label: String,
    /// The `orchestra` executable to run OpenCode under (`orchestra __supervise …`, see
    /// `subreaper.rs`), so that nothing OpenCode starts outlives the hub. The hub always sets
    /// it; `None` (tests and tools without the binary) starts OpenCode directly.
    pub supervisor: Option<PathBuf>,
}

// By hand: the password and the environment (which may hold provider keys) stay out of logs.
impl fmt::Debug for ServeSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeSpec")
            .field("binary", &self.binary)
            .field("cwd", &self.cwd)
            .field(
                "env",
                &self.env.iter().map(|(key, _)| key).collect::<Vec<_>>(),
            )
            .field("password", &"<redacted>")
            .field("port", &self.port)
            .field("startup_timeout", &self.startup_timeout)
            .field("label", &self.label)
            .field("supervisor", &self.supervisor)
            .finish()
    }
}

/// How a server process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitReport {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    /// When we reaped it, ms since the epoch.
    pub at_ms: i64,
}

impl fmt::Display for ExitReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.code, self.signal) {
            (Some(code), _) => write!(f, "exit code {code}"),
            (None, Some(signal)) => match nix::sys::signal::Signal::try_from(signal) {
                Ok(name) => write!(f, "killed by signal {signal} ({name})"),
                Err(_) => write!(f, "killed by signal {signal}"),
            },
            (None, None) => write!(f, "unknown exit status"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("could not start OpenCode for worker `{label}` from `{}`: {source}; {hint}", binary.display())]
    Spawn {
        label: String,
        binary: PathBuf,
        hint: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("working directory `{}` of worker `{label}` does not exist or is not a directory; create it or fix the worker's directory", cwd.display())]
    InvalidCwd { label: String, cwd: PathBuf },
    #[error(
        "OpenCode for worker `{label}` did not become ready within {timeout_ms} ms (startupTimeout): {progress}; raise startupTimeout if the machine is slow or busy; last output:\n{last_output}"
    )]
    StartupTimeout {
        label: String,
        timeout_ms: u64,
        progress: String,
        last_output: String,
    },
    #[error(
        "OpenCode for worker `{label}` exited during startup ({exit}); fix the cause shown in its last output:\n{last_output}"
    )]
    ExitedDuringStartup {
        label: String,
        exit: ExitReport,
        last_output: String,
    },
    #[error("could not signal the process group {pgid} of worker `{label}`: {source}")]
    Signal {
        label: String,
        pgid: i32,
        #[source]
        source: nix::errno::Errno,
    },
    #[error(
        "OpenCode for worker `{label}` (pid {pid}) was still running {waited_ms} ms after SIGKILL"
    )]
    StillRunning {
        label: String,
        pid: u32,
        waited_ms: u64,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_the_password_and_env_values() {
        let spec = ServeSpec {
            supervisor: None,
            binary: PathBuf::from("opencode"),
            cwd: PathBuf::from("/tmp"),
            env: vec![("OPENAI_API_KEY".into(), "sk-secret-value".into())],
            password: "hunter2-password".into(),
            port: 0,
            startup_timeout: Duration::from_secs(1),
            label: "coder".into(),
        };
        let text = format!("{spec:?}");
        assert!(
            !text.contains("hunter2") && !text.contains("sk-secret"),
            "{text}"
        );
        assert!(
            text.contains("OPENAI_API_KEY") && text.contains("<redacted>"),
            "{text}"
        );
    }

    #[test]
    fn exit_reports_read_well() {
        let killed = ExitReport {
            code: None,
            signal: Some(9),
            at_ms: 0,
        };
        assert_eq!(killed.to_string(), "killed by signal 9 (SIGKILL)");
        let failed = ExitReport {
            code: Some(1),
            signal: None,
            at_ms: 0,
        };
        assert_eq!(failed.to_string(), "exit code 1");
    }
}
