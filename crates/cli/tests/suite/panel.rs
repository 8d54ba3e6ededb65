//! The control panel in a real browser: Debian's headless Chromium, driven over the DevTools
//! protocol, on the page of a real hub (started by `orchestra mcp`, logged in through
//! `orchestra panel --url`) whose workers are the pinned OpenCode on the fake LLM. One hub and
//! one browser for the whole file; each step is one thing a person does on the page.
//!
//! The later steps (logs, config, memory, keys, narrow window) and the helpers are in
//! `panel_steps/`.
//!
//! Chromium comes from Debian's `chromium` package (`scripts/test` installs it when missing);
//! without it this test fails and says how to install it.
#![allow(clippy::unwrap_used)]

use super::common;
pub(super) mod panel_steps;

use std::path::PathBuf;
use std::time::Duration;

use common::{Client, World, hub_info};
use orchestra_browser::{Browser, Page};
use panel_steps::{
    WAIT, go, group_of, log_in, login_link, logs_config_memory_and_keys, settled, start,
    track_api_calls, wait, worker_task,
};
use serde_json::{Value, json};

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
                // Long enough (15 s) for the page to be seen showing it running on a loaded machine.
                {"id": "one", "title": "First", "workerId": "coder", "prompt": "SLOWMS:500:30 first {task}", "carry": true},
                {"id": "two", "title": "Second", "workerId": "coder", "prompt": "second {task}", "carry": true}
            ]
        }]}
    })
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
    log_in(&page, &login_link(&world)).await;
    assert_eq!(page.eval("location.pathname").await.unwrap(), "/");

    // A task started through MCP appears while it runs and finishes there with its tokens.
    std::fs::write(
        world.project.dir.join("notes.txt"),
        "what the panel test attached\n",
    )
    .unwrap();
    let id = start(
        &client,
        json!({"kind": "worker", "workerId": "coder", "task": "SLOWMS:300:6 hello from the panel test",
               "attachments": [{"type": "file", "path": "notes.txt"}]}),
    )
    .await;
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
    let attached = page
        .eval("document.querySelector('main').innerText")
        .await
        .unwrap();
    assert!(
        attached
            .as_str()
            .unwrap()
            .contains("file: notes.txt (text/plain"),
        "{attached}"
    );
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
    track_api_calls(&page).await;
    go(&page, "#/tasks").await;
    wait(
        &page,
        "document.querySelectorAll('tr[data-task]').length >= 6",
    )
    .await;
    settled(&page).await;
    // The README's picture is refreshed only when asked (ORCHESTRA_UPDATE_DOCS=1), so a
    // test run never leaves the working tree modified.
    let shot = if std::env::var_os("ORCHESTRA_UPDATE_DOCS").is_some() {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/panel.png")
    } else {
        world.home.root.join("panel.png")
    };
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

    // "Always" is passed to OpenCode as such and recorded as such. The file lies in a folder of
    // its own, so the rule it leaves behind covers none of the questions below.
    go(page, "#/inbox").await;
    let outside = tempfile::tempdir().unwrap();
    let file = outside.path().join("always.txt");
    std::fs::write(&file, "kept outside the project\n").unwrap();
    let call = format!(
        "CALL_TOOL:read {}",
        json!({"filePath": file.to_str().unwrap()})
    );
    let id = worker_task(client, &call).await;
    wait(page, "document.querySelector('.question') !== null").await;
    page.click(".question button[data-reply=always]")
        .await
        .unwrap();
    wait(page, "document.querySelector('.question') === null").await;
    let record = client.finish(&id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    let answers = &record["progress"]["permissions"];
    assert_eq!(
        (&answers[0]["reply"], &answers[0]["by"]),
        (&json!("always"), &json!("person")),
        "{record}"
    );

    // From the keyboard: select the question (j) and reject it (r); the worker goes on.
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
    hold_first_read_of_run(page, &run).await;
    page.eval("[...document.querySelectorAll('.titlebar button')].find(b => b.textContent === 'Resume').click()")
        .await
        .unwrap();
    wait(page, "window.__runReadHeld === true").await;
    // The hub's own word that the run ended, through the runs list (a read that is not held).
    wait(
        page,
        &format!(
            "import('/assets/js/api.js').then(m => m.api.runs()).then(l => l.find(r => r.runId === '{run}')?.status === 'success')"
        ),
    )
    .await;
    // Every event the hub has sent has reached the page before the held read lands.
    wait(
        page,
        "Promise.all([import('/assets/js/api.js'), import('/assets/js/state.js')]).then(([m, s]) => m.api.health().then(h => s.state.lastEventId >= h.lastEventId))",
    )
    .await;
    page.eval("window.__releaseRunRead()").await.unwrap();
    // Resume's buttons come back once its read of the run has landed.
    wait(
        page,
        "![...document.querySelectorAll('.titlebar button')].some(b => b.disabled)",
    )
    .await;
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
        .eval(&format!(
            // Through the page's own API module, which sends the session's key.
            "import('/assets/js/api.js').then(m => m.get('/api/v1/runs/{run}'))"
        ))
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
    // A step's task page links to its run, from the task's `runId`.
    let step_task = hub_run["steps"][1]["taskId"].as_str().unwrap();
    go(page, &format!("#/tasks/{step_task}")).await;
    wait(
        page,
        &format!("document.querySelector('dl.facts a[href=\"#/runs/{run}\"]') !== null"),
    )
    .await;

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

/// A slow network for one read. The hub's answer to Resume reaches the page 500 ms late, after
/// the run's own events; the first `GET` of `run` after it is answered by the hub at once but reaches the page only when the test calls
/// `window.__releaseRunRead()`. By then the run has moved on, and events told the page so; the
/// page must not go back to the older answer (a read landing after newer events once kept a
/// running step pending in CI).
async fn hold_first_read_of_run(page: &Page, run: &str) {
    page.eval(&format!(
        r#"(() => {{
          const original = window.fetch;
          let armed = false;
          let held = false;
          window.__runReadHeld = false;
          window.fetch = (input, init) => {{
            const path = new URL(String(input?.url ?? input), location.href).pathname;
            const method = (init?.method ?? 'GET').toUpperCase();
            if (method === 'POST' && path === '/api/v1/runs/{run}/resume') {{
              // Late enough that the run's own events have reached the page first.
              return original(input, init).then((answer) => new Promise((resolve) => setTimeout(() => {{
                armed = true;
                resolve(answer);
              }}, 500)));
            }}
            if (!armed || held || method !== 'GET' || path !== '/api/v1/runs/{run}') return original(input, init);
            held = true;
            return original(input, init).then((answer) => new Promise((resolve) => {{
              window.__releaseRunRead = () => resolve(answer);
              window.__runReadHeld = true;
            }}));
          }};
        }})()"#
    ))
    .await
    .unwrap();
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
