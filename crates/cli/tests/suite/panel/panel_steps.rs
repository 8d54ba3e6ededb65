//! Helpers of the panel's story test (`suite/panel.rs`) and its later steps: the login links
//! `orchestra panel` gives, waiting on the page, and the logs, config, memory and keyboard steps.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use crate::suite::common::{Client, World};
use orchestra_browser::Page;
use orchestra_testkit::opencode::{FOREIGN_CONFIG_VARS, require_opencode};
use serde_json::{Value, json};

pub const WAIT: Duration = Duration::from_secs(60);

/// `orchestra panel <args>` as a person runs it in the project.
pub fn panel_command(world: &World, args: &[&str]) -> std::process::Command {
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
pub fn login_link(world: &World) -> String {
    let out = panel_command(world, &["--url"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `orchestra panel` with `BROWSER` set to a shell script of `body` in `dir` (it is given what
/// to open as `$1`), which must say it opened the panel and print nothing.
pub fn panel_with_browser(world: &World, dir: &std::path::Path, body: &str) {
    let script = dir.join("browser");
    std::fs::write(&script, format!("#!/bin/sh\n{body}")).unwrap();
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
}

/// `orchestra panel`: opens a private login file in the user's browser — here a `BROWSER` that
/// writes down what it was given (a file's path, never the link: see `panel_session.rs`); the
/// `file://` address to open.
pub fn opened_link(world: &World) -> String {
    let dir = tempfile::tempdir().unwrap();
    let seen = dir.path().join("seen");
    panel_with_browser(
        world,
        dir.path(),
        &format!("printf '%s' \"$1\" > '{}'\n", seen.display()),
    );
    let path = std::fs::read_to_string(&seen).unwrap();
    assert!(
        path.starts_with('/') && path.ends_with(".html") && !path.contains("code="),
        "{path}"
    );
    format!("file://{path}")
}

pub async fn start(client: &Client, args: Value) -> String {
    let started = client.call_json("task_start", args).await;
    started["taskId"].as_str().unwrap().to_owned()
}

pub async fn worker_task(client: &Client, task: &str) -> String {
    start(
        client,
        json!({"kind": "worker", "workerId": "coder", "task": task}),
    )
    .await
}

/// Opens a login address (a link, or a login file's `file://` address) and waits until the
/// panel it leads to is live. The browser goes through up to three pages (file, `/login`,
/// `/`); a look at the page while one is replaced fails, and is tried again.
pub async fn log_in(page: &Page, address: &str) {
    page.goto(address).await.unwrap();
    let live = "location.pathname === '/' && document.querySelector('#conn.live') !== null";
    let deadline = std::time::Instant::now() + WAIT;
    let mut last = String::new();
    while std::time::Instant::now() < deadline {
        match page.eval(live).await {
            Ok(Value::Bool(true)) => return,
            Ok(other) => last = other.to_string(),
            Err(err) => last = err.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let shown = page
        .eval("location.href + '\\n' + document.body.innerText")
        .await
        .unwrap_or_default();
    panic!("logging in through {address} never showed the live panel ({last}); the page: {shown}");
}

/// Waits for `expression` to be truthy; on a timeout the failure shows what the page showed.
pub async fn wait(page: &Page, expression: &str) -> Value {
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

/// Counts the page's API calls in flight (`window.__apiCalls`), each until its body is read, so
/// [`settled`] waits for a view's data rather than a guessed time. Once per page load.
pub async fn track_api_calls(page: &Page) {
    page.eval(
        r#"(() => {
          if (window.__apiCalls !== undefined) return;
          window.__apiCalls = 0;
          const original = window.fetch;
          window.fetch = async (...args) => {
            window.__apiCalls += 1;
            try {
              const response = await original(...args);
              const empty = [101, 204, 205, 304].includes(response.status);
              const body = empty ? null : await response.arrayBuffer();
              const { status, statusText, headers } = response;
              return new Response(body, { status, statusText, headers });
            } finally {
              window.__apiCalls -= 1;
            }
          };
        })()"#,
    )
    .await
    .unwrap();
}

/// Waits until no API call is in flight and two frames were painted since: the view on screen
/// shows its data, laid out, for pixel and overflow checks. Needs [`track_api_calls`].
pub async fn settled(page: &Page) {
    wait(
        page,
        "window.__apiCalls === 0 && new Promise((done) => requestAnimationFrame(() => \
         requestAnimationFrame(() => done(window.__apiCalls === 0))))",
    )
    .await;
}

pub async fn go(page: &Page, hash: &str) {
    page.eval(&format!("location.hash = {}", json!(hash)))
        .await
        .unwrap();
    // The view for this address is on screen (not the one before it, still rendered).
    wait(
        page,
        &format!("document.body.dataset.route === {}", json!(hash)),
    )
    .await;
}

/// The group (`g-running`, `g-done`, …) a task's row is in, or "" while it is not on the page.
pub fn group_of(id: &str) -> String {
    format!(
        "(document.querySelector('tr[data-task=\"{id}\"]')?.closest('section.group')?.className ?? '')"
    )
}
pub async fn logs_config_memory_and_keys(
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
    log_in(page, &link).await;
    let base = wait(page, "location.protocol === 'http:' && location.origin").await;
    let base = base.as_str().unwrap();
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
    track_api_calls(page).await;
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
        settled(page).await;
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
pub async fn memory_view(page: &Page, first_task: &str) -> String {
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
            "import('/assets/js/api.js').then(m => m.post('/api/v1/memory/records', {put}))"
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
        .eval("import('/assets/js/api.js').then(m => m.post('/api/v1/memory/search', {query: 'model catalog'}))")
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
