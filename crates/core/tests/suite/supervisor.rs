#![allow(clippy::unwrap_used)]
//! `ServerProcess` against the real pinned OpenCode: readiness, stop, crash reporting, drop,
//! and the startup errors.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use orchestra_core::supervisor::{ServeSpec, ServerProcess, SupervisorError};
use orchestra_testkit::fake_llm::FakeLlm;
use orchestra_testkit::opencode::{
    IsolatedHome, TestProject, fake_provider_config, require_opencode,
};

const PASSWORD: &str = "supervisor-secret";

/// Everything one OpenCode needs; keep it alive as long as the server.
struct Setup {
    fake: FakeLlm,
    home: IsolatedHome,
    project: TestProject,
}

impl Setup {
    async fn new() -> Setup {
        Setup {
            fake: FakeLlm::start_scripted().await.unwrap(),
            home: IsolatedHome::new().unwrap(),
            project: TestProject::new().unwrap(),
        }
    }

    fn spec(&self, label: &str) -> ServeSpec {
        let mut env = self.home.env();
        env.push((
            "OPENCODE_CONFIG_CONTENT".to_owned(),
            fake_provider_config(&self.fake.base_url()).to_string(),
        ));
        ServeSpec {
            supervisor: None,
            binary: require_opencode(),
            cwd: self.project.dir.clone(),
            env,
            password: PASSWORD.to_owned(),
            port: 0,
            startup_timeout: Duration::from_secs(60),
            label: label.to_owned(),
        }
    }
}

fn group_is_empty(pid: u32) -> bool {
    let pgid = Pid::from_raw(i32::try_from(pid).unwrap());
    killpg(pgid, None) == Err(Errno::ESRCH)
}

fn proc_gone(pid: u32) -> bool {
    !Path::new(&format!("/proc/{pid}")).exists()
}

async fn eventually(what: &str, within: Duration, check: impl Fn() -> bool) {
    let deadline = Instant::now() + within;
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Processes whose working directory is `dir` (to prove a failed start left nothing behind).
fn processes_in(dir: &Path) -> Vec<u32> {
    let dir = std::fs::canonicalize(dir).unwrap();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd"))
                .ok()
                .as_deref()
                == Some(&dir)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawns_answers_health_and_stops_the_whole_group() {
    let setup = Setup::new().await;
    let started = Instant::now();
    let server = ServerProcess::spawn(setup.spec("stopper")).await.unwrap();
    let ready_after = started.elapsed();
    eprintln!("ready after {ready_after:?} at {}", server.url());

    assert!(
        server.url().starts_with("http://127.0.0.1:"),
        "{}",
        server.url()
    );
    assert_eq!(server.password(), PASSWORD);
    let health = server
        .client(None)
        .unwrap()
        .health(Duration::from_secs(2))
        .await
        .unwrap();
    assert!(health.healthy);
    assert_eq!(health.version, "1.18.33");
    assert!(
        server
            .recent_output()
            .iter()
            .any(|line| line.contains("opencode server listening on http://127.0.0.1:")),
        "{:?}",
        server.recent_output()
    );
    let pid = server.pid();
    assert!(!proc_gone(pid));
    assert!(server.exit_watch().borrow().is_none());

    let stopping = Instant::now();
    server.stop(Duration::from_secs(5)).await.unwrap();
    eprintln!("stopped in {:?}", stopping.elapsed());
    assert!(proc_gone(pid), "/proc/{pid} still exists after stop()");
    assert!(
        group_is_empty(pid),
        "process group {pid} not empty after stop()"
    );
    let report = server.exit_watch().borrow().unwrap();
    assert!(report.at_ms > 0);
    // Idempotent, and it never signals the (possibly recycled) pgid again.
    server.stop(Duration::from_secs(5)).await.unwrap();
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_watch_reports_a_sigkill_and_drop_kills_a_live_server() {
    let setup = Setup::new().await;
    let server = ServerProcess::spawn(setup.spec("crasher")).await.unwrap();
    let pid = server.pid();
    let mut exit = server.exit_watch();

    kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(5), exit.wait_for(Option::is_some))
        .await
        .expect("exit_watch did not report the SIGKILL")
        .unwrap()
        .unwrap();
    assert_eq!(report.signal, Some(9), "{report:?}");
    assert_eq!(report.code, None);
    assert_eq!(report.to_string(), "killed by signal 9 (SIGKILL)");
    assert!(proc_gone(pid));
    eventually(
        "the crashed server's group to empty",
        Duration::from_secs(5),
        || group_is_empty(pid),
    )
    .await;
    server.stop(Duration::from_secs(1)).await.unwrap();

    // Second server in the same home: dropping it kills it.
    let server = ServerProcess::spawn(setup.spec("dropped")).await.unwrap();
    let pid = server.pid();
    drop(server);
    eventually(
        "the dropped server to be reaped",
        Duration::from_secs(5),
        || proc_gone(pid),
    )
    .await;
    assert!(group_is_empty(pid));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_timeout_names_the_timeout_and_leaves_nothing_running() {
    let setup = Setup::new().await;
    let mut spec = setup.spec("impatient");
    spec.startup_timeout = Duration::from_millis(50);
    let started = Instant::now();
    let error = ServerProcess::spawn(spec).await.unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(
            error,
            SupervisorError::StartupTimeout { timeout_ms: 50, .. }
        ),
        "{error:?}"
    );
    assert!(
        message.contains("within 50 ms (startupTimeout)"),
        "{message}"
    );
    assert!(message.contains("last output"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(processes_in(&setup.project.dir), Vec::<u32>::new());
}

/// Set in the re-executed test binary that plays the hub in the next test.
const HUB_PID_FILE_ENV: &str = "ORCHESTRA_TEST_HUB_PID_FILE";

/// Dead means gone, or a zombie waiting for a reaper we do not control (PID 1 in containers).
fn is_dead(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// This test's name as the test harness knows it (`suite::supervisor::…`, the path below the
/// binary's crate root), to run it alone in the re-executed binary.
fn own_test_name() -> String {
    let module = module_path!().split_once("::").map_or("", |(_, rest)| rest);
    format!("{module}::server_dies_with_a_sigkilled_hub")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_dies_with_a_sigkilled_hub() {
    if let Some(pid_file) = std::env::var_os(HUB_PID_FILE_ENV) {
        // Child mode: be the hub, report OpenCode's pid, then wait to be SIGKILLed.
        let setup = Setup::new().await;
        let server = ServerProcess::spawn(setup.spec("orphan")).await.unwrap();
        std::fs::write(pid_file, server.pid().to_string()).unwrap();
        tokio::time::sleep(Duration::from_secs(120)).await;
        return;
    }

    let scratch = TestProject::new().unwrap();
    let pid_file = scratch.dir.join("opencode.pid");
    let mut hub = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", &own_test_name(), "--test-threads=1"])
        .env(HUB_PID_FILE_ENV, &pid_file)
        // The SIGKILLed hub cannot clean up its temp dirs; keep them inside ours.
        .env("TMPDIR", &scratch.dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let opencode_pid: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.parse().ok())
        {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the hub child never started OpenCode"
        );
        assert!(
            hub.try_wait().unwrap().is_none(),
            "the hub child exited early"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // If the death signal did not work, do not leak the server.
    struct KillOnFailure(u32);
    impl Drop for KillOnFailure {
        fn drop(&mut self) {
            let _ = killpg(
                Pid::from_raw(i32::try_from(self.0).unwrap()),
                Signal::SIGKILL,
            );
        }
    }
    let guard = KillOnFailure(opencode_pid);
    assert!(!is_dead(opencode_pid));

    hub.start_kill().unwrap();
    hub.wait().await.unwrap();
    let killed_at = Instant::now();
    eventually(
        "OpenCode to die with its hub",
        Duration::from_secs(5),
        || is_dead(opencode_pid),
    )
    .await;
    eprintln!("OpenCode died {:?} after its hub", killed_at.elapsed());
    std::mem::forget(guard);
}

#[tokio::test]
async fn a_bogus_binary_gives_a_clear_error() {
    let project = TestProject::new().unwrap();
    let spec = ServeSpec {
        supervisor: None,
        binary: PathBuf::from("/nonexistent/bin/opencode"),
        cwd: project.dir.clone(),
        env: Vec::new(),
        password: PASSWORD.to_owned(),
        port: 0,
        startup_timeout: Duration::from_secs(5),
        label: "ghost".to_owned(),
    };
    let error = ServerProcess::spawn(spec.clone()).await.unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, SupervisorError::Spawn { .. }), "{error:?}");
    assert!(message.contains("/nonexistent/bin/opencode"), "{message}");
    assert!(message.contains("worker `ghost`"), "{message}");
    assert!(message.contains("scripts/install-opencode"), "{message}");

    let error = ServerProcess::spawn(ServeSpec {
        supervisor: None,
        cwd: project.dir.join("missing"),
        ..spec
    })
    .await
    .unwrap_err();
    assert!(
        matches!(error, SupervisorError::InvalidCwd { .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("missing"), "{error}");
}

#[tokio::test]
async fn a_binary_that_exits_early_reports_its_output() {
    let project = TestProject::new().unwrap();
    let script = project.dir.join("fake-opencode.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\necho \"starting $1 in $PWD\"\necho 'Error: boom, bad config' >&2\nexit 3\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let error = ServerProcess::spawn(ServeSpec {
        supervisor: None,
        binary: script,
        cwd: project.dir.clone(),
        env: Vec::new(),
        password: PASSWORD.to_owned(),
        port: 0,
        startup_timeout: Duration::from_secs(10),
        label: "early-exit".to_owned(),
    })
    .await
    .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(error, SupervisorError::ExitedDuringStartup { .. }),
        "{error:?}"
    );
    assert!(message.contains("exit code 3"), "{message}");
    assert!(message.contains("Error: boom, bad config"), "{message}");
    let cwd = std::fs::canonicalize(&project.dir).unwrap();
    assert!(
        message.contains(&format!("starting serve in {}", cwd.display())),
        "PWD must be the canonical cwd: {message}"
    );
}
