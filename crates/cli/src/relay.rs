//! `orchestra mcp`: the MCP server OpenCode (or any MCP client) starts over stdio. It holds
//! no hub of its own: every tool call goes to the project's hub, which it finds — or starts in
//! the background — through the hub's state files. Two OpenCode windows on one project thus
//! share one hub, one worker pool and one OpenCode worker server.
//!
//! The relay keeps an event stream open while it lives (a presence stream, which carries no
//! events), so the hub counts it as a client and does not stop for idleness under it. When the
//! hub goes away (stopped, or killed), the next call finds or starts a new one; a call that never
//! reached the hub is repeated there, any other fails with the reason.

use std::path::PathBuf;
use std::sync::Arc;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use orchestra_client::{ClientError, ConnectOptions, HubClient, connect};
use orchestra_mcp::{OrchestraMcp, ToolBackend};
use orchestra_protocol::ToolReply;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::shutdown_signal;

pub async fn serve_mcp(
    project_dir: PathBuf,
    config_file: Option<PathBuf>,
    fake: bool,
) -> anyhow::Result<std::process::ExitCode> {
    let relay = Arc::new(Relay {
        options: ConnectOptions {
            project_dir,
            orchestra_exe: std::env::current_exe()?,
            fake,
            any_mode: false,
            config_file,
            start: true,
            owner_pid: None,
        },
        hub: Mutex::new(None),
    });
    // OpenCode starts MCP servers when it starts, so bringing the hub (and its worker server)
    // up now means the first task does not wait for a cold OpenCode.
    let warm = relay.clone();
    tokio::spawn(async move {
        if let Err(err) = warm.client().await {
            tracing::warn!("{err}");
        }
    });
    let server = OrchestraMcp::new(Arc::new(RelayTools(relay)));
    tokio::select! {
        served = server.serve_stdio() => served?,
        () = shutdown_signal() => {}
    }
    Ok(std::process::ExitCode::SUCCESS)
}

struct Relay {
    options: ConnectOptions,
    /// The hub in use, and the task keeping its event stream open.
    hub: Mutex<Option<Attached>>,
}

struct Attached {
    client: HubClient,
    /// The hub process this client talks to.
    pid: u32,
    presence: tokio::task::JoinHandle<()>,
}

impl Drop for Attached {
    fn drop(&mut self) {
        self.presence.abort();
    }
}

impl Relay {
    /// The hub, found or started; reconnects when the one in use went away.
    async fn client(&self) -> Result<(HubClient, u32), ClientError> {
        let mut hub = self.hub.lock().await;
        if let Some(attached) = hub.as_ref()
            && !attached.presence.is_finished()
        {
            return Ok((attached.client.clone(), attached.pid));
        }
        *hub = None;
        let connection = connect(&self.options).await?;
        for warning in &connection.warnings {
            tracing::warn!("{warning}");
        }
        if connection.started {
            tracing::info!(
                pid = connection.info.pid,
                url = %connection.info.url,
                "started the project's hub"
            );
        }
        let client = connection.client;
        // The open stream is what tells the hub a client is here; its end tells us the hub is
        // gone. It carries no events: the relay has no use for them. A hub older than presence
        // streams refuses the query; its full stream does the same job.
        let events = match client.presence().await {
            Ok(events) => events.boxed(),
            Err(ClientError::Api { status: 400, .. }) => client.events(None).await?.boxed(),
            Err(err) => return Err(err),
        };
        let presence = tokio::spawn(async move {
            let mut events = events;
            while let Some(event) = events.next().await {
                if event.is_err() {
                    break;
                }
            }
        });
        let pid = connection.info.pid;
        *hub = Some(Attached {
            client: client.clone(),
            pid,
            presence,
        });
        Ok((client, pid))
    }

    async fn forget(&self) {
        *self.hub.lock().await = None;
    }

    async fn call(&self, name: &str, args: &Value, caller: Option<&str>) -> ToolReply {
        for attempt in 0..2 {
            let (client, pid) = match self.client().await {
                Ok(found) => found,
                Err(err) => {
                    return refused(format!("Open Orchestra could not reach its hub: {err}"));
                }
            };
            match client.tool(name, args, caller).await {
                Ok(reply) => return reply,
                // Nothing reached the hub: safe to repeat on a fresh one.
                Err(ClientError::Unreachable { .. }) if attempt == 0 => self.forget().await,
                // The hub died under the call: whatever it had started is marked interrupted by
                // the next hub, so the call is repeated there once.
                Err(ClientError::Http { .. })
                    if attempt == 0 && !orchestra_store::pid_is_alive(pid) =>
                {
                    tracing::warn!(pid, "the hub died during a call; repeating it on a new hub");
                    self.forget().await;
                }
                Err(err) => {
                    self.forget().await;
                    return refused(format!(
                        "the call to Open Orchestra's hub failed: {err}; task_list shows whether the task started"
                    ));
                }
            }
        }
        refused(
            "Open Orchestra's hub could not be reached twice in a row; see `orchestra status`"
                .into(),
        )
    }
}

fn refused(text: String) -> ToolReply {
    ToolReply {
        text,
        is_error: true,
    }
}

/// The relay as the MCP server's backend; each call owns a handle on it.
struct RelayTools(Arc<Relay>);

impl ToolBackend for RelayTools {
    fn call(
        &self,
        name: String,
        args: Value,
        client: Option<String>,
    ) -> BoxFuture<'static, ToolReply> {
        let relay = self.0.clone();
        Box::pin(async move { relay.call(&name, &args, client.as_deref()).await })
    }
}
