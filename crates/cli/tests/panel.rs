//! The control panel in a real browser: Debian's headless Chromium, driven over the DevTools
//! protocol, on the page of a real hub (started by `orchestra mcp`, logged in through
//! `orchestra panel --url`) whose workers are the pinned OpenCode on the fake LLM. One hub and
//! one browser for the whole file; each step is one thing a person does on the page.
//!
//! Chromium comes from Debian's `chromium` package (`scripts/test` installs it when missing);
//! without it this test fails and says how to install it.
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Client, World, hub_info};
use orchestra_browser::{Browser, Page};
use orchestra_testkit::opencode::{FOREIGN_CONFIG_VARS, require_opencode};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(60);
/// Long enough for a person (the test) to answer on the page, short enough to see one expire.
const ASK_TIMEOUT_MS: u64 = 15_000;

fn config() -> Value {
    json!({
        "profiles": [{"id": "coder", "onPermissionAsk": "ask"}],
        "tasks": {"permissionAskTimeoutMs": ASK_TIMEOUT_MS},
        "workflows": {"definitions": [{
            "id": "panel-flow",
            "name": "Panel flow",
            "steps": [
                {"id": "one", "title": "First", "workerId": "coder", "prompt": "SLOWMS:400:12 first {task}", "carry": true},
                {"id": "two", "title": "Second", "workerId": "coder", "prompt": "second {task}", "carry": true}
            ]
        }]}
    })
}

/// `orchestra panel <args>` as a person runs it in the project.
fn panel_command(world: &World, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orchestra"));
    for var in FOREIGN_CONFIG_VARS {
        command.env_remove(var);
    }
    command
        .arg("panel")
        .args(args)
        .arg("--project")
        .arg(&world.project.dir)
        .arg("--config")
        .arg(&world.config)
        .envs(world.home.env())
        .env("ORCHESTRA_OPENCODE_BIN", require_opencode());
    command
}

/// `orchestra panel --url`: a one-time login link, printed.
fn login_link(world: &World) -> String {
    let out = panel_command(world, &["--url"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `orchestra panel`: opens the link in the user's browser — here a `BROWSER` that writes down
/// the link it was given.
fn opened_link(world: &World) -> String {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("browser");
    let seen = dir.path().join("seen");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s' \"$1\" > '{}'\n", seen.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = panel_command(world, &[])
        .env("BROWSER", &script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.contains("opened the panel"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty(), "the link goes to the browser only");
    std::fs::read_to_string(&seen).unwrap()
}

async fn start(client: &Client, args: Value) -> String {
    let started = client.call_json("task_start", args).await;
    started["taskId"].as_str().unwrap().to_owned()
}

async fn worker_task(client: &Client, task: &str) -> String {
    start(
        client,
        json!({"kind": "worker", "workerId": "coder", "task": task}),
    )
    .await
}

/// Waits for `expression` to be truthy; on a timeout the failure shows what the page showed.
async fn wait(page: &Page, expression: &str) -> Value {
    match page.wait_for(expression, WAIT).await {
        Ok(value) => value,
        Err(err) => {
            let shown = page
                .eval("document.querySelector('main')?.innerText")
                .await
                .unwrap_or_default();
            panic!("{err}\nthe page showed:\n{}", shown.as_str().unwrap_or(""));
        }
    }
}

async fn go(page: &Page, hash: &str) {
    page.eval(&format!("location.hash = {}", json!(hash)))
        .await
        .unwrap();
}

/// The group (`g-running`, `g-done`, …) a task's row is in, or "" while it is not on the page.
fn group_of(id: &str) -> String {
    format!(
        "(document.querySelector('tr[data-task=\"{id}\"]')?.closest('section.group')?.className ?? '')"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_shows_live_work_and_acts_on_it() {
    tokio::time::timeout(Duration::from_secs(400), scenario())
        .await
        .expect("the panel scenario took longer than 400 s");
}

async fn scenario() {
    let world = World::new(config()).await;
    let client = world.connect().await;
    let info = hub_info(&world.home, &world.project.dir).await;
    let browser = Browser::launch(1280, 800).await.unwrap();
    let page = browser.new_page().await.unwrap();
    page.set_viewport(1280, 800).await.unwrap();
    // As a person's browser asks once: the page may use the clipboard (the logs' Copy).
    browser
        .call(
            "Browser.grantPermissions",
            json!({"origin": info.url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]}),
        )
        .await
        .unwrap();
    page.call(
        "Emulation.setFocusEmulationEnabled",
        json!({"enabled": true}),
    )
    .await
    .unwrap();

    // Without the one-time link, neither the page nor the API shows anything.
    page.goto(&format!("{}/", info.url)).await.unwrap();
    let body = page.eval("document.body.innerText").await.unwrap();
    let body = body.as_str().unwrap();
    assert!(
        body.contains("Not logged in") && !body.contains(&info.hub_id),
        "{body}"
    );
    let health = page
        .eval("fetch('/api/v1/health').then(async r => [r.status, await r.text()])")
        .await
        .unwrap();
    assert_eq!(health[0], 401);
    assert!(
        !health[1].as_str().unwrap().contains(&info.hub_id),
        "{health}"
    );
    let tasks = page
        .eval("fetch('/api/v1/list', {method: 'POST', body: '{}'}).then(r => r.status)")
        .await
        .unwrap();
    assert_eq!(tasks, 401);

    // Logged in through the link `orchestra panel --url` prints.
    page.goto(&login_link(&world)).await.unwrap();
    wait(&page, "document.querySelector('#conn.live') !== null").await;
    assert_eq!(page.eval("location.pathname").await.unwrap(), "/");

    // A task started through MCP appears while it runs and finishes there with its tokens.
    let id = worker_task(&client, "SLOWMS:300:6 hello from the panel test").await;
    wait(&page, &format!("{}.includes('g-running')", group_of(&id))).await;
    wait(&page, &format!("{}.includes('g-done')", group_of(&id))).await;
    let record = client.finish(&id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    let input = record["usage"]["input"].as_u64().unwrap();
    assert!(input > 0, "{record}");
    let cells = page
        .eval(&format!(
            "[...document.querySelector('tr[data-task=\"{id}\"]').cells].map(c => c.textContent)"
        ))
        .await
        .unwrap();
    assert!(
        cells[5]
            .as_str()
            .unwrap()
            .starts_with(&format!("{input} / ")),
        "{cells} vs {}",
        record["usage"]
    );

    // Its page: the model and why, the streamed text, and the prompt kept folded.
    go(&page, &format!("#/tasks/{id}")).await;
    wait(
        &page,
        "document.querySelector('pre.peek')?.textContent.includes('chunk6')",
    )
    .await;
    let facts = page
        .eval("document.querySelector('dl.facts').innerText")
        .await
        .unwrap();
    let facts = facts.as_str().unwrap();
    assert!(facts.contains(record["model"].as_str().unwrap()), "{facts}");
    assert!(facts.contains("Why this model"), "{facts}");
    assert_eq!(
        page.eval("document.querySelector('pre.text') === null")
            .await
            .unwrap(),
        true,
        "the prompt must stay folded until asked for"
    );

    cancel_from_the_page(&world, &client, &page).await;
    answer_a_question(&client, &page).await;
    // A question nobody answers is rejected after tasks.permissionAskTimeoutMs; it waits while
    // the workflow runs go by.
    let unanswered =
        worker_task(&client, r#"CALL_TOOL:read {"filePath": "/etc/os-release"}"#).await;
    wait(
        &page,
        "document.getElementById('count-inbox').textContent === '1'",
    )
    .await;
    workflow_runs(&client, &page).await;
    let record = client.finish(&unanswered).await;
    let answers = &record["progress"]["permissions"];
    assert_eq!(
        (&answers[0]["reply"], &answers[0]["by"]),
        (&json!("reject"), &json!("timeout")),
        "{record}"
    );
    wait(
        &page,
        "document.getElementById('count-inbox').textContent === ''",
    )
    .await;
    restart_a_worker(&client, &page).await;
    logs_config_memory_and_keys(&world, &client, &page, &id).await;

    // A screenshot of the panel with this run's real data, for the README.
    page.set_viewport(1280, 800).await.unwrap();
    go(&page, "#/tasks").await;
    wait(
        &page,
        "document.querySelectorAll('tr[data-task]').length >= 6",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/panel.png");
    page.screenshot(&shot).await.unwrap();
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000);
    drop(browser);
    client.close().await;
}

/// Cancel on a running task's page aborts the worker's session: the fake model sees its stream
/// closed, and the page shows the outcome.
async fn cancel_from_the_page(world: &World, client: &Client, page: &Page) {
    let before = world.fake.requests().len();
    let id = worker_task(client, "SLOW:60 cancel me").await;
    world
        .fake
        .wait_for_requests(before + 1, WAIT)
        .await
        .unwrap();
    go(page, &format!("#/tasks/{id}")).await;
    // The live peek streams the text as the model writes it.
    wait(
        page,
        "document.querySelector('pre.peek')?.textContent.includes('chunk2')",
    )
    .await;
    page.press("x").await.unwrap();
    wait(
        page,
        "document.querySelector('.titlebar button.danger')?.textContent === 'Really cancel?'",
    )
    .await;
    page.click(".titlebar button.danger").await.unwrap();
    let outcome = wait(page, "document.querySelector('.outcome p.ok')?.textContent").await;
    assert!(
        outcome.as_str().unwrap().starts_with("Canceled"),
        "{outcome}"
    );
    let cut = world
        .fake
        .wait_for_disconnect(Duration::from_secs(10))
        .await
        .unwrap();
    assert!(
        cut.last_user_text.contains("cancel me"),
        "{}",
        cut.last_user_text
    );
    let record = client.finish(&id).await;
    assert_eq!(record["status"], "canceled", "{record}");
    wait(
        page,
        "document.querySelector('.titlebar .badge')?.textContent === 'canceled'",
    )
    .await;
}

/// A worker whose profile says `ask` waits for a person: the question shows under Needs input
/// and in the inbox, the answer from the page reaches OpenCode, and the worker goes on.
async fn answer_a_question(client: &Client, page: &Page) {
    let id = worker_task(client, r#"CALL_TOOL:read {"filePath": "/etc/hostname"}"#).await;
    go(page, "#/tasks").await;
    wait(
        page,
        &format!("{}.includes('g-needs-input')", group_of(&id)),
    )
    .await;
    wait(
        page,
        "document.getElementById('count-inbox').textContent === '1'",
    )
    .await;
    page.press("2").await.unwrap();
    wait(page, "location.hash === '#/inbox'").await;
    let card = wait(page, "document.querySelector('.question')?.innerText").await;
    let card = card.as_str().unwrap();
    assert!(
        card.contains("external_directory") && card.contains("coder"),
        "{card}"
    );
    page.click(".question button[data-reply=once]")
        .await
        .unwrap();
    wait(page, "document.querySelector('.question') === null").await;
    let record = client.finish(&id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert!(
        record["responseText"]
            .as_str()
            .unwrap()
            .starts_with("TOOL_RESULT_SEEN"),
        "{record}"
    );
    let answers = &record["progress"]["permissions"];
    assert_eq!(answers[0]["reply"], "once", "{record}");
    assert_eq!(answers[0]["by"], "person", "{record}");
    // Its page lists the tool call it made and how the question was answered.
    go(page, &format!("#/tasks/{id}")).await;
    let tools = wait(
        page,
        "document.querySelector('table.tools tbody')?.innerText",
    )
    .await;
    assert!(tools.as_str().unwrap().contains("read"), "{tools}");

    // From the keyboard: select the question (j) and reject it (r); the worker goes on.
    go(page, "#/inbox").await;
    let id = worker_task(client, r#"CALL_TOOL:read {"filePath": "/etc/passwd"}"#).await;
    wait(page, "document.querySelector('.question') !== null").await;
    page.eval("document.activeElement?.blur()").await.unwrap();
    page.press("j").await.unwrap();
    page.press("r").await.unwrap();
    wait(page, "document.querySelector('.question') === null").await;
    let record = client.finish(&id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    let answers = &record["progress"]["permissions"];
    assert_eq!(
        (&answers[0]["reply"], &answers[0]["by"]),
        (&json!("reject"), &json!("person")),
        "{record}"
    );
}

/// A workflow run's steps appear in order on its waterfall, with their tasks, tokens and carry;
/// Pause stops it, Resume finishes it, Cancel ends another for good.
async fn workflow_runs(client: &Client, page: &Page) {
    let started = client
        .call_json(
            "task_start",
            json!({"kind": "workflow", "workflowId": "panel-flow", "task": "through the panel"}),
        )
        .await;
    let run = started["continueRunId"].as_str().unwrap().to_owned();
    go(page, "#/runs").await;
    wait(
        page,
        &format!("document.querySelector('tr[data-run=\"{run}\"]') !== null"),
    )
    .await;
    go(page, &format!("#/runs/{run}")).await;
    wait(
        page,
        "document.querySelector('.wf-row[data-step=\"one\"]')?.dataset.status === 'running'",
    )
    .await;
    page.click(".titlebar button:not([hidden])").await.unwrap();
    wait(
        page,
        "document.querySelector('.titlebar .badge')?.textContent === 'paused'",
    )
    .await;
    wait(page, "[...document.querySelectorAll('.titlebar button')].find(b => b.textContent === 'Resume' && !b.hidden && !b.disabled) !== undefined").await;
    page.eval("[...document.querySelectorAll('.titlebar button')].find(b => b.textContent === 'Resume').click()")
        .await
        .unwrap();
    wait(
        page,
        "document.querySelector('.titlebar .badge')?.textContent === 'success'",
    )
    .await;
    let steps = wait(
        page,
        "(() => { const rows = [...document.querySelectorAll('.wf-row')]; \
           return rows.every(r => r.dataset.status === 'success' && r.lastChild.textContent.endsWith('chars')) && rows.map(r => [r.dataset.step, r.querySelector('.bar').style.left, r.lastChild.textContent]); })()",
    )
    .await;
    let steps = steps.as_array().unwrap();
    assert_eq!(steps.len(), 2, "{steps:?}");
    assert_eq!(steps[0][0], "one");
    assert_eq!(steps[1][0], "two");
    let left = |s: &Value| {
        s[1].as_str()
            .unwrap()
            .trim_end_matches('%')
            .parse::<f64>()
            .unwrap()
    };
    assert!(left(&steps[1]) > left(&steps[0]), "{steps:?}");
    assert!(
        steps[1][2].as_str().unwrap().ends_with("chars"),
        "{steps:?}"
    );
    // The run's totals: the tokens of its steps, summed by the hub.
    let hub_run = page
        .eval(&format!("fetch('/api/v1/runs/{run}').then(r => r.json())"))
        .await
        .unwrap();
    let input = hub_run["usage"]["input"].as_u64().unwrap();
    let shown = if input < 1000 {
        input.to_string()
    } else {
        format!("{:.1}k", input as f64 / 1000.0)
    };
    let facts = page
        .eval("document.querySelector('dl.facts').innerText")
        .await
        .unwrap();
    assert!(
        input > 0 && facts.as_str().unwrap().contains(&format!("{shown} in")),
        "{facts} / {hub_run}"
    );

    // Cancel ends a run for good.
    let started = client
        .call_json(
            "task_start",
            json!({"kind": "workflow", "workflowId": "panel-flow", "task": "to be canceled"}),
        )
        .await;
    let run = started["continueRunId"].as_str().unwrap().to_owned();
    go(page, &format!("#/runs/{run}")).await;
    wait(
        page,
        "document.querySelector('.wf-row[data-step=\"one\"]')?.dataset.status === 'running'",
    )
    .await;
    page.click(".titlebar button.danger").await.unwrap();
    page.click(".titlebar button.danger").await.unwrap();
    wait(
        page,
        "document.querySelector('.titlebar .badge')?.textContent === 'error'",
    )
    .await;
    let reason = page
        .eval("document.querySelector('dl.facts').innerText")
        .await
        .unwrap();
    assert!(
        reason.as_str().unwrap().contains("canceled by a person"),
        "{reason}"
    );
}

/// Restart on the workers view: the task running on the server fails saying why, and a new
/// server takes over.
async fn restart_a_worker(client: &Client, page: &Page) {
    go(page, "#/workers").await;
    let before = wait(page, "document.querySelector('tr[data-worker=\"coder\"] td.num.mono')?.textContent.match(/^\\d+$/)?.[0]").await;
    let id = worker_task(client, "SLOW:60 running while the server restarts").await;
    wait(
        page,
        "document.querySelector('tr[data-worker=\"coder\"] .badge')?.textContent === 'busy'",
    )
    .await;
    // Port, model, one session running, RSS and uptime, as the pool reports them.
    let cells = wait(
        page,
        "(() => { const c = [...document.querySelector('tr[data-worker=\"coder\"]').cells].map(c => c.textContent); \
           return c[5] === '1' && c; })()",
    )
    .await;
    let cells: Vec<&str> = cells
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(cells[3].parse::<u16>().is_ok(), "port: {cells:?}");
    assert!(cells[4].contains("fake"), "model: {cells:?}");
    assert!(cells[6].ends_with("MB"), "RSS: {cells:?}");
    assert!(
        cells[7].chars().next().is_some_and(|c| c.is_ascii_digit()),
        "uptime: {cells:?}"
    );
    page.click("tr[data-worker=\"coder\"] button")
        .await
        .unwrap();
    page.click("tr[data-worker=\"coder\"] button")
        .await
        .unwrap();
    let note = wait(page, "document.querySelector('.note p.ok')?.textContent").await;
    assert!(note.as_str().unwrap().contains("was restarted"), "{note}");
    let after = wait(page, "document.querySelector('tr[data-worker=\"coder\"] td.num.mono')?.textContent.match(/^\\d+$/)?.[0]").await;
    assert_ne!(before, after, "the server's pid must change");
    let record = client.finish(&id).await;
    assert_eq!(record["status"], "failed", "{record}");
    assert!(
        record["error"]
            .as_str()
            .unwrap()
            .contains("restarted by a person"),
        "{record}"
    );
    wait(
        page,
        "document.querySelector('tr[data-worker=\"coder\"] .badge')?.textContent === 'ready'",
    )
    .await;
}

async fn logs_config_memory_and_keys(
    world: &World,
    client: &Client,
    page: &Page,
    first_task: &str,
) {
    // Logs: filtered to one task, only that task's lines remain.
    go(page, "#/logs").await;
    wait(
        page,
        "document.querySelector('input[aria-label=task]') !== null",
    )
    .await;
    let set = |label: &str, value: &str| {
        format!(
            "(() => {{ const el = document.querySelector('[aria-label={label}]'); el.value = {}; el.dispatchEvent(new Event('change')); }})()",
            json!(value)
        )
    };
    page.eval(&set("task", first_task)).await.unwrap();
    let lines = wait(
        page,
        &format!(
            "(() => {{ const rows = [...document.querySelectorAll('ol.log li')]; \
               return rows.length > 0 && rows.every(r => r.querySelector('a.who')?.getAttribute('href') === '#/tasks/{first_task}') \
               && document.querySelector('ol.log').innerText.includes('{first_task} succeeded') && document.querySelector('ol.log').innerText; }})()"
        ),
    )
    .await;
    assert!(
        !lines.as_str().unwrap().contains("restarted"),
        "filtered to one task: {lines}"
    );

    // Follow mode: with a text filter, a new task's outcome line arrives without a reload.
    page.eval(&set("task", "")).await.unwrap();
    page.eval(&set("text", "succeeded on coder")).await.unwrap();
    wait(
        page,
        "document.querySelector('.toolbar span.dim')?.textContent.endsWith('lines')",
    )
    .await;
    let id = worker_task(client, "followed in the log").await;
    client.finish(&id).await;
    wait(
        page,
        &format!("document.querySelector('ol.log').innerText.includes('{id} succeeded on coder')"),
    )
    .await;
    let rows = page
        .eval("[...document.querySelectorAll('ol.log li .msg')].map(m => m.textContent)")
        .await
        .unwrap();
    assert!(
        rows.as_array()
            .unwrap()
            .iter()
            .all(|m| m.as_str().unwrap().contains("succeeded on coder")),
        "{rows}"
    );

    // Copy and Download hand over exactly the lines on screen.
    page.click(".toolbar button:nth-of-type(1)").await.unwrap();
    wait(
        page,
        "document.querySelector('.toolbar span.dim')?.textContent.startsWith('copied')",
    )
    .await;
    let copied = page.eval("navigator.clipboard.readText()").await.unwrap();
    assert!(
        copied
            .as_str()
            .unwrap()
            .contains(&format!("{id} succeeded on coder")),
        "{copied}"
    );
    let saved = page
        .eval(
            "new Promise(resolve => { const make = URL.createObjectURL; let blob = null; \
               URL.createObjectURL = (b) => { blob = b; URL.createObjectURL = make; return make(b); }; \
               const click = HTMLAnchorElement.prototype.click; \
               HTMLAnchorElement.prototype.click = function () { HTMLAnchorElement.prototype.click = click; \
                 blob.text().then(text => resolve([this.download, text])); }; \
               [...document.querySelectorAll('.toolbar button')].find(b => b.textContent === 'Download').click(); })",
        )
        .await
        .unwrap();
    assert!(
        saved[0].as_str().unwrap().starts_with("orchestra-log-"),
        "{saved}"
    );
    let text = saved[1].as_str().unwrap();
    assert_eq!(
        text.lines().count(),
        rows.as_array().unwrap().len(),
        "{text}"
    );
    assert!(text.contains(&format!("{id} succeeded on coder")), "{text}");

    // Config: where the `ask` came from.
    go(page, "#/config").await;
    let keys = wait(page, "document.querySelector('table.keys')?.innerText").await;
    let keys = keys.as_str().unwrap();
    assert!(
        keys.contains("profiles.coder.onPermissionAsk")
            && keys.contains(&world.config.display().to_string()),
        "{keys}"
    );
    let profiles = page
        .eval("document.querySelector('table.profiles').innerText")
        .await
        .unwrap();
    assert!(profiles.as_str().unwrap().contains("ask"), "{profiles}");

    let record = memory_view(page, first_task).await;

    // `orchestra panel` hands the browser a fresh one-time link; a deep link to a record then
    // opens straight on that record.
    let link = opened_link(world);
    assert!(link.contains("/login?code="), "{link}");
    page.goto(&link).await.unwrap();
    wait(page, "document.querySelector('#conn.live') !== null").await;
    let base = link.split("/login").next().unwrap().to_owned();
    // From another page, so the deep link is a fresh load, not a hash change.
    page.goto("about:blank").await.unwrap();
    page.goto(&format!("{base}/#/memory/{record}"))
        .await
        .unwrap();
    let title = wait(page, "document.querySelector('dl.facts') && document.querySelector('.record pre.text')?.textContent").await;
    assert!(
        title.as_str().unwrap().contains("per worker server"),
        "{title}"
    );

    // The keyboard: views by number, rows with j, Enter opens one, u goes back.
    page.press("1").await.unwrap();
    wait(
        page,
        "location.hash === '#/tasks' && document.querySelector('tr[data-task]') !== null",
    )
    .await;
    page.eval("document.activeElement?.blur()").await.unwrap();
    page.press("j").await.unwrap();
    page.press("Enter").await.unwrap();
    wait(page, "location.hash.startsWith('#/tasks/')").await;
    page.press("u").await.unwrap();
    wait(page, "location.hash === '#/tasks'").await;

    // Everything the page loaded came from the hub itself.
    let foreign = page
        .eval("performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith(location.origin))")
        .await
        .unwrap();
    assert_eq!(foreign, json!([]), "the page fetched from elsewhere");

    // A narrow window: one column, nothing wider than the window, on every view (wide tables
    // and the waterfall scroll inside themselves).
    page.set_viewport(420, 900).await.unwrap();
    let task_page = format!("#/tasks/{first_task}");
    for view in [
        "#/tasks",
        "#/inbox",
        "#/workers",
        "#/runs",
        "#/memory",
        "#/logs",
        "#/config",
        &task_page,
    ] {
        go(page, view).await;
        wait(page, "document.querySelector('main section.view') !== null").await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let overflow = page
            .eval("document.documentElement.scrollWidth - window.innerWidth")
            .await
            .unwrap();
        assert!(
            overflow.as_i64().unwrap() <= 0,
            "{view} is {overflow} px too wide at 420 px"
        );
    }
}

/// Memory: a record the first task wrote turns up in a filtered search without a reload, its
/// page links that task, Supersede writes the corrected record, Retract hides it.
async fn memory_view(page: &Page, first_task: &str) -> String {
    go(page, "#/memory").await;
    wait(
        page,
        "document.querySelector('select[aria-label=kind]') !== null",
    )
    .await;
    page.eval(
        "(() => { const k = document.querySelector('select[aria-label=kind]'); k.value = 'decision'; k.dispatchEvent(new Event('change')); })()",
    )
    .await
    .unwrap();
    let put = json!({
        "kind": "decision",
        "key": "panel:cache",
        "title": "Cache the model catalog per server",
        "body": "Cache the model catalog per worker server; refresh it when the server restarts.",
        "provenance": {"taskId": first_task, "worker": "coder"},
    });
    let written = page
        .eval(&format!(
            "fetch('/api/v1/memory/records', {{method: 'POST', headers: {{'content-type': 'application/json'}}, body: JSON.stringify({put})}}).then(r => r.json())"
        ))
        .await
        .unwrap();
    let id = written["record"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{written}"))
        .to_owned();
    // The search on screen (kind = decision) picks the record up from the event stream.
    let hit = format!("document.querySelector('.results a[href=\"#/memory/{id}\"]')");
    wait(page, &format!("{hit} !== null")).await;
    page.eval(&format!("{hit}.click()")).await.unwrap();
    let by = wait(page, "document.querySelector('dd.written-by')?.innerText").await;
    let by = by.as_str().unwrap();
    assert!(by.contains("succeeded") && by.contains("coder"), "{by}");
    assert_eq!(
        page.eval("document.querySelector('dd.written-by a').getAttribute('href')")
            .await
            .unwrap(),
        format!("#/tasks/{first_task}")
    );

    // Supersede from the page: the old record says so and links the new one.
    page.click(".record details summary").await.unwrap();
    page.eval(
        "(() => { const b = document.querySelector('textarea[aria-label=\"new body\"]'); b.value = 'Cache the model catalog per worker server, keyed by the server pid.'; document.querySelector('form.supersede button').click(); })()",
    )
    .await
    .unwrap();
    let next = wait(
        page,
        "document.querySelector('.outcome p.ok a')?.getAttribute('href')",
    )
    .await;
    let next = next
        .as_str()
        .unwrap()
        .trim_start_matches("#/memory/")
        .to_owned();
    wait(page, "[...document.querySelectorAll('dl.facts .badge')].some(b => b.textContent === 'superseded')").await;
    let links = page
        .eval("document.querySelector('ul.links')?.innerText ?? ''")
        .await
        .unwrap();
    assert!(links.as_str().unwrap().contains(&next), "{links}");

    // Retract the new record from its page: it leaves the search.
    go(page, &format!("#/memory/{next}")).await;
    wait(
        page,
        "document.querySelector('.buttons button.danger:not([hidden])') !== null",
    )
    .await;
    page.click(".buttons button.danger").await.unwrap();
    wait(
        page,
        "document.querySelector('.outcome p.ok')?.textContent.startsWith('Retracted')",
    )
    .await;
    let found = page
        .eval("fetch('/api/v1/memory/search', {method: 'POST', headers: {'content-type': 'application/json'}, body: JSON.stringify({query: 'model catalog'})}).then(r => r.json())")
        .await
        .unwrap();
    let ids: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|h| h["id"].as_str())
        .collect();
    assert!(
        !ids.contains(&next.as_str()) && !ids.contains(&id.as_str()),
        "{found}"
    );
    id
}
