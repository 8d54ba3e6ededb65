//! Many clients on a cold project at once: exactly one hub starts and every client gets it.
//! Clients probe the hub lock without taking it, so no client's look turns a starting hub
//! away; a client whose hub gave way to none starts another.
#![allow(clippy::unwrap_used)]

use super::common;

use std::time::{Duration, Instant};

use common::{World, bounded, hub_info};
use orchestra_testkit::opencode::require_opencode;
use orchestra_testkit::processes;
use serde_json::json;

const CLIENTS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_clients_on_a_cold_project_get_one_hub() {
    bounded(async {
        let world = World::new(json!({})).await;
        let files = common::hub_files(&world.home, &world.project.dir);
        let prober = OldStyleProber::start(&files.lock, Duration::from_micros(500), Duration::from_micros(500));
        let started = Instant::now();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
                    .args(["workers", "--project"])
                    .arg(&world.project.dir)
                    .envs(world.home.env())
                    .env("ORCHESTRA_OPENCODE_BIN", require_opencode())
                    .env(processes::MARKER_VAR, &world.marker)
                    .stdin(std::process::Stdio::null())
                    .output()
            })
            .collect();
        let mut failures = Vec::new();
        for (index, output) in futures_util::future::join_all(clients)
            .await
            .into_iter()
            .enumerate()
        {
            let output = output.unwrap();
            if !output.status.success() {
                failures.push(format!(
                    "client {index}: {} {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
        let took = started.elapsed();
        let looks = prober.stop();
        let hub = hub_info(&world.home, &world.project.dir).await;
        // Every hub process that is left once the starts that lost the race have exited (a
        // start tries a taken lock for a moment before it gives way).
        let serving = || -> Vec<u32> {
            processes::with_marker(&world.marker)
                .into_iter()
                .filter(|&pid| processes::cmdline(pid).contains(" serve --background"))
                .collect()
        };
        let losers: Vec<u32> = serving()
            .into_iter()
            .filter(|&pid| pid != hub.pid)
            .collect();
        let stuck = processes::wait_all_gone(&losers, Duration::from_secs(5));
        assert!(stuck.is_empty(), "starts that lost still run: {stuck:?}");
        let hubs = serving();
        eprintln!(
            "{CLIENTS} clients on a cold project (and {looks} old-style lock probes): {} succeeded in {took:?}; hubs running: {hubs:?}",
            CLIENTS - failures.len()
        );
        assert!(failures.is_empty(), "{failures:#?}");
        assert_eq!(hubs, vec![hub.pid], "exactly one hub serves");
        assert!(took < Duration::from_secs(60), "{took:?}");
    })
    .await;
}

/// A client of an older version probing the hub lock the old way, all along: taking it for
/// `hold` at a time (the review measured half a millisecond), every `hold + pause`.
struct OldStyleProber {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<u64>,
}

impl OldStyleProber {
    fn start(path: &std::path::Path, hold: Duration, pause: Duration) -> OldStyleProber {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            let path = path.to_path_buf();
            std::thread::spawn(move || {
                let mut looks = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .truncate(false)
                        .write(true)
                        .open(&path)
                        .unwrap();
                    if let Ok(lock) =
                        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
                    {
                        std::thread::sleep(hold);
                        drop(lock);
                    }
                    looks += 1;
                    std::thread::sleep(pause);
                }
                looks
            })
        };
        OldStyleProber { stop, thread }
    }

    /// Stops probing; returns how many looks it took.
    fn stop(self) -> u64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

/// One client, one start, while an old-style prober holds the lock most of the time: the start
/// retries its lock, and if it still gave way, the client starts another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_is_not_lost_to_a_client_that_takes_the_lock_to_look() {
    bounded(async {
        let world = World::new(json!({})).await;
        let files = common::hub_files(&world.home, &world.project.dir);
        let prober = OldStyleProber::start(
            &files.lock,
            Duration::from_micros(500),
            Duration::from_micros(100),
        );
        let started = Instant::now();
        let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestra"))
            .args(["workers", "--project"])
            .arg(&world.project.dir)
            .envs(world.home.env())
            .env("ORCHESTRA_OPENCODE_BIN", require_opencode())
            .env(processes::MARKER_VAR, &world.marker)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .unwrap();
        let took = started.elapsed();
        let looks = prober.stop();
        eprintln!(
            "one client under {looks} old-style lock probes: {} in {took:?}",
            output.status
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(took < Duration::from_secs(10), "{took:?}");
    })
    .await;
}
