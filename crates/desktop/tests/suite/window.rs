//! `orchestra-desktop` in a real window on a virtual X display (Xvfb), against a real hub, the
//! pinned OpenCode and the fake LLM: it shows the panel logged in, follows a task started through
//! MCP live, notifies a failed task through the session bus, opens OpenCode in a terminal, and
//! owns exactly the processes it started — closing the window or SIGKILLing the process leaves
//! nothing running, and a hub it only attached to keeps running.
//!
//! `ORCHESTRA_UPDATE_DOCS=1` also writes the screenshot the README shows (docs/desktop.png).
#![allow(clippy::unwrap_used)]

use super::common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use common::bus::{Notifications, SERVER_NAME, SessionBus};
use common::x11::{Rect, Shot, X, Xvfb};
use common::{SERIAL, World, bounded};
use orchestra_testkit::processes;
use serde_json::Value;

fn text(report: &Value, pointer: &str) -> String {
    report
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The panel is on screen and logged in: the hub's page (not the window's own), and the page's
/// own requests to the hub's API are authorized by its session (cookie and key).
fn logged_in(report: &Value) -> bool {
    let page_url = text(report, "/page/url");
    report["page"]["api"] == 200
        && page_url.starts_with("http://127.0.0.1:")
        && !page_url.contains("/login")
        && text(report, "/page/title").contains("Open Orchestra")
}

/// The window's status bar: its bottom 48 pixels.
fn status_bar((x, y, w, h): Rect) -> Rect {
    (x, y + h - 48, w, 48)
}

/// The webview: the window above its status bar.
fn page_area((x, y, w, h): Rect) -> Rect {
    (x, y, w, h - 48)
}

/// Waits up to 30 s for the webview to show more than a blank page; the screenshot.
async fn wait_painted(x: &X, area: Rect, title: &str) -> Shot {
    let mut colors = 0;
    for _ in 0..300 {
        let shot = x.screenshot();
        colors = shot.distinct_colors(page_area(area));
        if colors > 16 {
            return shot;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the page looks blank ({title}): {colors} colour(s) above the status bar");
}

async fn wait_title(x: &X, window: u32, what: &str, ok: impl Fn(&str) -> bool) -> String {
    for _ in 0..600 {
        let title = x.title(window);
        if ok(&title) {
            return title;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "the window's title never showed {what}; it is {:?}",
        x.title(window)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_shows_live_and_closing_the_window_stops_the_hub_it_started() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let world = World::new().await;
        let xvfb = Xvfb::start();
        let x = X::connect(&xvfb.display);
        let blank = x.screenshot();
        let bus = SessionBus::start();
        let notifications = Notifications::start(&bus.address);
        // A terminal that records how it was asked to run OpenCode, and where.
        let asked = world.home.root.join("terminal-asked.txt");
        let terminal = world.home.root.join("fake-terminal");
        std::fs::write(
            &terminal,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$PWD\" \"$@\" > '{}'\n",
                asked.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&terminal, std::fs::Permissions::from_mode(0o755)).unwrap();

        let mut desktop = world.launch(
            &xvfb.display,
            Some(&bus.address),
            Some(&world.project.dir),
            &[("TERMINAL", terminal.to_str().unwrap())],
        );
        let report = desktop.wait_probe("panel, logged in", logged_in).await;
        let page = text(&report, "/page/text");
        assert!(!page.contains("Not logged in"), "{page}");
        assert_eq!(report["shell"]["hubOwned"], true, "{report:#}");
        let info = world.hub_info();
        assert_eq!(report["shell"]["hubPid"], info.pid);
        // A hub the window started stops with the window, however the window ends.
        let hub_args = processes::cmdline(info.pid);
        assert!(
            hub_args.contains(&format!("--owner-pid {}", desktop.pid)),
            "{hub_args}"
        );
        // The token and the one-time code never show in a command line.
        for pid in world.processes() {
            let args = processes::cmdline(pid);
            assert!(
                !args.contains(&info.token) && !args.contains("code="),
                "{pid}: {args}"
            );
        }
        let status = desktop
            .wait_probe("notification service found", |r| {
                text(r, "/shell/status").contains(SERVER_NAME)
            })
            .await;
        assert!(
            text(&status, "/shell/status").contains("started by this window"),
            "{status:#}"
        );

        let window = x.window_of(desktop.pid).await;
        let project_name = world
            .project
            .dir
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // `<page title> — <project>`: the hub's page is titled "Open Orchestra" (the status page)
        // or "<view> · Open Orchestra" (the control panel).
        let title = wait_title(&x, window, "the page's title", |t| {
            t.contains("Open Orchestra") && t.ends_with(&format!(" — {project_name}"))
        })
        .await;
        let area = x.rect(window);
        // The page itself is drawn (the webview paints a moment after the page is ready; a
        // blank webview above a drawn status bar must fail this).
        let shown = wait_painted(&x, area, &title).await;
        let changed = shown.differing_pixels(&blank, page_area(area));
        assert!(
            changed > area.2 * area.3 / 4,
            "only {changed} pixels of the page differ from an empty screen"
        );

        // A task started through MCP shows in the window while it runs.
        let agent = world.mcp().await;
        let task = agent.start("SLOW:6 seen from the desktop").await;
        let running = wait_title(&x, window, "the running task", |t| {
            t.ends_with("· 1 running")
        })
        .await;
        desktop
            .wait_probe("the running task's id in the status bar", |r| {
                text(r, "/shell/status").contains(&format!("task {task} on coder: running"))
            })
            .await;
        // The panel lists it (by the short id it shows), live, and draws it.
        let short_id: String = task.chars().take(8).collect();
        desktop
            .wait_probe("the running task in the panel", |r| {
                text(r, "/page/text").contains(&short_id)
            })
            .await;
        let mut during = x.screenshot();
        for _ in 0..100 {
            if during.differing_pixels(&shown, page_area(area)) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            during = x.screenshot();
        }
        assert!(
            during.differing_pixels(&shown, page_area(area)) > 0,
            "the page did not change on screen while the task ran"
        );
        assert!(
            during.differing_pixels(&shown, status_bar(area)) > 0,
            "the status bar did not change while the task ran ({running})"
        );
        let window_shot = during.crop(area);
        window_shot
            .save_png(&std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("desktop.png"));
        if std::env::var_os("ORCHESTRA_UPDATE_DOCS").is_some() {
            window_shot.save_png(
                &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/desktop.png"),
            );
        }
        let record = agent.finish(&task).await;
        assert_eq!(record["status"], "succeeded", "{record:#}");
        wait_title(&x, window, "the task's end", |t| !t.contains("running")).await;
        desktop
            .wait_probe("the finished task in the status bar", |r| {
                text(r, "/shell/status").contains(&format!("task {task} on coder: succeeded"))
            })
            .await;

        // A failed task raises a desktop notification naming it and its error.
        let failed = agent
            .start("FAIL:400 the desktop should hear of this")
            .await;
        let record = agent.finish(&failed).await;
        assert_eq!(record["status"], "failed", "{record:#}");
        let shown = notifications
            .wait_for("for the failed task", |n| n.body.contains(&failed))
            .await;
        assert!(shown.summary.contains("Task failed on coder"), "{shown:?}");
        assert!(shown.body.contains("fake failure 400"), "{shown:?}");
        assert_eq!(shown.urgency, Some(1));
        assert_eq!(
            notifications.shown().len(),
            1,
            "{:?}",
            notifications.shown()
        );
        agent.close().await;

        // The button opens the project in OpenCode, in a terminal, in the project.
        let (bx, by, bw, bh) =
            serde_json::from_value::<(i64, i64, i64, i64)>(report["shell"]["openButton"].clone())
                .unwrap();
        let to_i16 = |v: i64| i16::try_from(v).unwrap();
        x.click(
            to_i16(i64::try_from(area.0).unwrap() + bx + bw / 2),
            to_i16(i64::try_from(area.1).unwrap() + by + bh / 2),
        );
        for _ in 0..100 {
            if asked.exists() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let lines: Vec<String> = std::fs::read_to_string(&asked)
            .unwrap_or_else(|_| panic!("the terminal was not started; log:\n{}", desktop.log()))
            .lines()
            .map(str::to_owned)
            .collect();
        let project = world.project.dir.canonicalize().unwrap();
        let opencode = orchestra_testkit::opencode::require_opencode();
        assert_eq!(
            lines,
            [
                project.display().to_string(),
                "-e".to_owned(),
                opencode.display().to_string(),
                project.display().to_string(),
            ]
        );

        // Closing the window stops the hub it started, with its workers: nothing is left.
        let hub_pid = info.pid;
        x.close(window);
        let status = desktop.wait_exit(60).await;
        assert!(status.success(), "{status}; log:\n{}", desktop.log());
        assert!(!processes::running(hub_pid), "the hub {hub_pid} still runs");
        assert!(!world.hub_files().is_locked().unwrap());
        world.assert_nothing_left(10);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_it_attached_to_keeps_running_and_the_last_project_is_remembered() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let world = World::new().await;
        let xvfb = Xvfb::start();
        let x = X::connect(&xvfb.display);
        // A bus with no notification service on it.
        let bus = SessionBus::start();
        let mut serve = world.serve();
        let hub = common::wait_for_hub(&world).await;

        let mut desktop = world.launch(
            &xvfb.display,
            Some(&bus.address),
            Some(&world.project.dir),
            &[],
        );
        let report = desktop.wait_probe("panel, logged in", logged_in).await;
        assert_eq!(report["shell"]["hubOwned"], false, "{report:#}");
        assert_eq!(report["shell"]["hubPid"], serve.id());
        let report = desktop
            .wait_probe("the missing notification service", |r| {
                text(r, "/shell/status").contains("notifications off: no notification service")
            })
            .await;
        assert!(
            text(&report, "/shell/status").contains("keeps running when this window closes"),
            "{report:#}"
        );
        assert!(
            desktop
                .log()
                .contains("nothing owns org.freedesktop.Notifications"),
            "{}",
            desktop.log()
        );
        let window = x.window_of(desktop.pid).await;
        x.close(window);
        assert!(desktop.wait_exit(30).await.success(), "{}", desktop.log());
        let health = hub.client.health().await.unwrap();
        assert_eq!(health.pid, serve.id(), "the attached hub was stopped");

        // No project named: the last one opened.
        let mut again = world.launch(&xvfb.display, Some(&bus.address), None, &[]);
        let report = again.wait_probe("panel, logged in", logged_in).await;
        assert_eq!(
            text(&report, "/shell/project"),
            world
                .project
                .dir
                .canonicalize()
                .unwrap()
                .display()
                .to_string()
        );
        assert_eq!(report["shell"]["hubOwned"], false, "{report:#}");
        // Killed outright, it takes nothing of the hub with it, and leaves nothing of its own.
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(again.pid).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        again.wait_exit(10).await;
        assert!(
            hub.client.health().await.is_ok(),
            "the attached hub died with the window"
        );
        let hub_tree = processes::descendants(serve.id());
        let ours: Vec<u32> = world
            .processes()
            .into_iter()
            .filter(|pid| *pid != serve.id() && !hub_tree.contains(pid))
            .collect();
        let left = processes::wait_all_gone(&ours, Duration::from_secs(10));
        assert!(left.is_empty(), "left by the killed window: {left:?}");

        hub.client.shutdown().await.unwrap();
        serve.wait().unwrap();
        world.assert_nothing_left(10);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_desktop_stops_the_hub_it_started() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let world = World::new().await;
        let xvfb = Xvfb::start();
        // No session bus at all.
        let mut desktop = world.launch(&xvfb.display, None, Some(&world.project.dir), &[]);
        let report = desktop.wait_probe("panel, logged in", logged_in).await;
        assert_eq!(report["shell"]["hubOwned"], true, "{report:#}");
        desktop
            .wait_probe("the missing session bus", |r| {
                text(r, "/shell/status").contains("notifications off: no D-Bus session bus")
            })
            .await;
        // Its worker server is up (the hub starts it at once): a whole tree to clean up.
        let hub_pid = world.hub_info().pid;
        for _ in 0..600 {
            if !processes::children(hub_pid).is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            !processes::children(hub_pid).is_empty(),
            "the hub started no worker server"
        );
        // A task in the middle of its model call when the window dies.
        let agent = world.mcp().await;
        let task = agent.start("SLOW:120 cut short by a killed window").await;
        desktop
            .wait_probe("the running task", |r| {
                text(r, "/shell/status").contains(&format!("task {task} on coder: running"))
            })
            .await;
        // Its model call has reached the model.
        let asked = |r: &orchestra_testkit::fake_llm::RecordedRequest| {
            r.last_user_text.contains("cut short by a killed window")
        };
        for _ in 0..600 {
            if world.fake.requests().iter().any(asked) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(
            world.fake.requests().iter().any(asked),
            "the task never reached the model"
        );
        let everything = world.processes();
        assert!(everything.len() >= 6, "{everything:?}");

        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(i32::try_from(desktop.pid).unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        )
        .unwrap();
        desktop.wait_exit(10).await;
        // The hub notices its owner is gone and stops: the task's model call is cut.
        let cut = world
            .fake
            .wait_for_disconnect(Duration::from_secs(30))
            .await
            .unwrap();
        assert!(
            cut.last_user_text.contains("cut short by a killed window"),
            "{}",
            cut.last_user_text
        );
        assert!(processes::wait_all_gone(&[hub_pid], Duration::from_secs(30)).is_empty());
        // The agent's relay is the test's own (a person's OpenCode would keep it); close it.
        agent.close().await;
        world.assert_nothing_left(30);
        assert!(!world.hub_files().is_locked().unwrap());
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_hub_it_attached_to_stops_it_starts_its_own_and_stops_that_one() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let world = World::new().await;
        let xvfb = Xvfb::start();
        let x = X::connect(&xvfb.display);
        let mut serve = world.serve();
        let hub = common::wait_for_hub(&world).await;
        let mut desktop = world.launch(&xvfb.display, None, Some(&world.project.dir), &[]);
        let report = desktop.wait_probe("panel, logged in", logged_in).await;
        assert_eq!(report["shell"]["hubPid"], serve.id(), "{report:#}");

        // `orchestra stop` on the hub the window shows: the window brings up a hub of its own
        // and logs in to it.
        hub.client.shutdown().await.unwrap();
        serve.wait().unwrap();
        let report = desktop
            .wait_probe("the panel of a hub of its own", |r| {
                logged_in(r) && r["shell"]["hubOwned"] == true
            })
            .await;
        let own = world.hub_info();
        assert_ne!(own.pid, serve.id());
        assert_eq!(report["shell"]["hubPid"], own.pid, "{report:#}");
        assert!(
            text(&report, "/page/url").starts_with(own.url.trim_end_matches('/')),
            "{report:#}"
        );

        let window = x.window_of(desktop.pid).await;
        x.close(window);
        assert!(desktop.wait_exit(60).await.success(), "{}", desktop.log());
        assert!(
            !processes::running(own.pid),
            "the hub {} still runs",
            own.pid
        );
        world.assert_nothing_left(10);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_question_for_a_person_raises_a_notification_and_waits_in_the_status_bar() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let world = World::new().await;
        // The project's coder asks a person instead of answering by rule.
        let config = world.project.dir.join(".opencode/orchestrator.json");
        std::fs::create_dir_all(config.parent().unwrap()).unwrap();
        std::fs::write(
            &config,
            r#"{"profiles": [{"id": "coder", "onPermissionAsk": "ask"}], "tasks": {"permissionAskTimeoutMs": 120000}}"#,
        )
        .unwrap();
        let xvfb = Xvfb::start();
        let x = X::connect(&xvfb.display);
        let bus = SessionBus::start();
        let notifications = Notifications::start(&bus.address);
        let mut desktop = world.launch(
            &xvfb.display,
            Some(&bus.address),
            Some(&world.project.dir),
            &[],
        );
        desktop.wait_probe("panel, logged in", logged_in).await;
        let window = x.window_of(desktop.pid).await;

        // Reading a file outside the project needs a permission the profile leaves to a person.
        let agent = world.mcp().await;
        let task = agent
            .start(r#"CALL_TOOL:read {"filePath": "/etc/hostname"}"#)
            .await;
        let shown = notifications
            .wait_for("for the question", |n| n.body.contains(&task))
            .await;
        assert!(
            shown.summary.contains("Worker coder needs your answer"),
            "{shown:?}"
        );
        assert!(shown.body.contains("external_directory"), "{shown:?}");
        assert_eq!(shown.urgency, Some(2), "{shown:?}");
        wait_title(&x, window, "the question", |t| {
            t.ends_with("· 1 running · 1 needs input")
        })
        .await;

        // Cancelling the task takes its question with it.
        agent
            .call_json("task_cancel", serde_json::json!({"taskId": task}))
            .await;
        wait_title(&x, window, "no question left", |t| !t.contains("needs input")).await;
        agent.close().await;
        x.close(window);
        assert!(desktop.wait_exit(60).await.success(), "{}", desktop.log());
        world.assert_nothing_left(10);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closing_while_other_clients_run_tasks_keeps_the_hub_until_they_finish() {
    let _serial = SERIAL.lock().await;
    bounded(async {
        let world = World::new().await;
        let xvfb = Xvfb::start();
        let x = X::connect(&xvfb.display);
        let mut desktop = world.launch(&xvfb.display, None, Some(&world.project.dir), &[]);
        let report = desktop.wait_probe("panel, logged in", logged_in).await;
        assert_eq!(report["shell"]["hubOwned"], true, "{report:#}");
        let hub_pid = world.hub_info().pid;
        let window = x.window_of(desktop.pid).await;

        // Another client (an OpenCode window's agent) has a task running on the hub.
        let agent = world.mcp().await;
        let task = agent.start("SLOW:12 outlives a closed window").await;
        desktop
            .wait_probe("the running task", |r| {
                text(r, "/shell/status").contains(&format!("task {task} on coder: running"))
            })
            .await;

        // The close button: the window stays and says why; the hub and the task go on.
        x.close(window);
        desktop
            .wait_probe("the window saying it waits for the task", |r| {
                text(r, "/shell/status").contains("keeps running while 1 task(s) of other clients")
            })
            .await;
        assert!(processes::running(hub_pid), "the hub was stopped");
        let record = agent.finish(&task).await;
        assert_eq!(record["status"], "succeeded", "{record:#}");

        // Once the task is over, the window closes and stops the hub it started.
        let status = desktop.wait_exit(60).await;
        assert!(status.success(), "{status}; log:\n{}", desktop.log());
        assert!(processes::wait_all_gone(&[hub_pid], Duration::from_secs(30)).is_empty());
        agent.close().await;
        world.assert_nothing_left(30);
    })
    .await;
}
