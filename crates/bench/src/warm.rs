//! One warm OpenCode that we started ourselves, reached two ways: directly, and through an
//! `orchestra mcp` hub attached to it (`runtime.isolation: attach`). Both paths hit the same
//! server, so their difference is what the hub adds.

use std::time::{Duration, Instant};

use anyhow::bail;
use orchestra_core::supervisor::ServerProcess;
use serde_json::{Value, json};

use super::direct::{Direct, DirectSample};
use super::harness::{Hub, World, succeeded};

pub struct Warm {
    pub world: World,
    pub server: ServerProcess,
    pub direct: Direct,
    /// The relay (`orchestra mcp`) our MCP session talks to.
    pub hub: Hub,
    /// The hub process the relay started.
    pub hub_pid: u32,
}

/// One task through the hub: `task_start` + `task_await` over MCP.
pub struct HubSample {
    pub total: Duration,
    /// How long `task_start` itself took (the MCP call through the relay, answered once the
    /// job's record exists).
    pub start: Duration,
    pub record: Value,
}

impl Warm {
    /// Starts everything, then warms both paths (3 prompts each, not measured).
    pub async fn start() -> anyhow::Result<Warm> {
        let world = World::new().await?;
        let server = world.serve("bench-warm").await?;
        let direct = Direct::connect(&server, &world.project.dir).await?;
        // The coder works in the checkout, as the direct path's prompts do: these groups measure
        // what the hub adds, not a worktree per task (the `worktrees` group and
        // `--soak-workspace worktree` measure that; dispatch adds a row for it).
        let attach = json!({"runtime": {
            "isolation": "attach",
            "attachUrl": server.url(),
            "attachPasswordEnv": "BENCH_OC_PASSWORD",
        }, "profiles": [{"id": "coder", "workspace": "checkout"}]});
        let hub = world
            .hub(
                &attach,
                &[("BENCH_OC_PASSWORD".into(), server.password().into())],
            )
            .await?;
        let hub_pid = world.hub_info().await?.pid;
        let warm = Warm {
            world,
            server,
            direct,
            hub,
            hub_pid,
        };
        for i in 0..3 {
            warm.direct(&format!("warm-up direct {i}")).await?;
            warm.through_hub(&format!("warm-up hub {i}")).await?;
        }
        Ok(warm)
    }

    pub async fn through_hub(&self, text: &str) -> anyhow::Result<HubSample> {
        self.timed(
            text,
            json!({"kind": "worker", "workerId": "coder", "task": text}),
        )
        .await
    }

    /// One task through the hub in a worktree of its own (the default for a coder in a git
    /// repository): the hub's part plus git and OpenCode's instance for the new directory.
    pub async fn through_hub_in_worktree(&self, text: &str) -> anyhow::Result<HubSample> {
        self.timed(
            text,
            json!({"kind": "worker", "workerId": "coder", "task": text, "workspace": "worktree"}),
        )
        .await
    }

    /// `task_start` with `arguments`, then `task_await` until the task is final; it must have
    /// echoed `text`.
    async fn timed(&self, text: &str, arguments: Value) -> anyhow::Result<HubSample> {
        let began = Instant::now();
        let id = super::harness::start_with(&self.hub.peer(), arguments).await?;
        let start = began.elapsed();
        let record = self.hub.finish(&id).await?;
        let total = began.elapsed();
        succeeded(&record)?;
        expect_echo(record["responseText"].as_str().unwrap_or(""), text)?;
        Ok(HubSample {
            total,
            start,
            record,
        })
    }

    pub async fn direct(&self, text: &str) -> anyhow::Result<DirectSample> {
        let sample = self.direct.prompt(text).await?;
        expect_echo(&sample.text, text)?;
        Ok(sample)
    }

    pub async fn close(self) {
        self.hub.close().await;
        drop(self.direct);
        let _ = self.server.stop(Duration::from_secs(5)).await;
    }
}

/// Both paths must get the fake's echo, or they did not do the same work.
fn expect_echo(got: &str, sent: &str) -> anyhow::Result<()> {
    if got.trim() == format!("ECHO: {sent}") {
        Ok(())
    } else {
        bail!("expected the fake's echo of `{sent}`, got `{got}`")
    }
}
