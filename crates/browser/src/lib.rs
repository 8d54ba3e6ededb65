//! A real browser for the panel's tests and benchmark: Debian's headless Chromium, started in a
//! process group of its own with a fresh profile folder, driven over the Chrome DevTools
//! Protocol through a small client of our own (one websocket, commands matched to replies by
//! id, events fanned out). No browser is downloaded: the system's `chromium` is used, and a
//! missing one is an error that says how to install it.
//!
//! Chromium runs with the flags that work on a closed machine: `--headless --no-sandbox
//! --disable-gpu --disable-background-networking --disable-component-update --disable-sync
//! --no-first-run`, so it makes no connection of its own anywhere.

mod websocket;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};
use tokio::sync::{Mutex as AsyncMutex, broadcast, oneshot};

#[derive(Debug, thiserror::Error)]
pub enum BrowserError {
    #[error(
        "no Chromium found (looked for {looked}); install Debian's package with `apt-get install -y chromium`, or set ORCHESTRA_CHROMIUM to a Chromium binary"
    )]
    NotInstalled { looked: String },
    #[error("could not start Chromium ({binary}): {source}")]
    Spawn {
        binary: String,
        #[source]
        source: std::io::Error,
    },
    #[error("Chromium did not open its DevTools port within {0:?}; its profile folder is {1}")]
    NoDevTools(Duration, String),
    #[error("DevTools: {0}")]
    Protocol(String),
    #[error("DevTools command {method} failed: {message}")]
    Command { method: String, message: String },
    #[error("the page threw: {0}")]
    Script(String),
    #[error("waited {timeout:?} for {what}; last value: {last}")]
    Timeout {
        what: String,
        timeout: Duration,
        last: String,
    },
    #[error("could not write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Where Chromium is looked for, in order (after `ORCHESTRA_CHROMIUM`).
const CANDIDATES: [&str; 3] = [
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
];
const DEVTOOLS_WAIT: Duration = Duration::from_secs(30);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The Chromium binary this machine has, if any.
pub fn find_chromium() -> Result<PathBuf, BrowserError> {
    if let Some(path) = std::env::var_os("ORCHESTRA_CHROMIUM").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    CANDIDATES
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or_else(|| BrowserError::NotInstalled {
            looked: format!("$ORCHESTRA_CHROMIUM, {}", CANDIDATES.join(", ")),
        })
}

/// A running headless Chromium; dropping it kills its whole process group.
pub struct Browser {
    child: std::process::Child,
    conn: Arc<Connection>,
    _profile: tempfile::TempDir,
}

struct Connection {
    writer: AsyncMutex<websocket::Writer>,
    next_id: AtomicU64,
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<Value, String>>>>,
    events: broadcast::Sender<Arc<Value>>,
}

impl Browser {
    /// Starts Chromium with a window of `width`×`height`.
    pub async fn launch(width: u32, height: u32) -> Result<Browser, BrowserError> {
        use std::os::unix::process::CommandExt;
        let binary = find_chromium()?;
        let profile = tempfile::Builder::new()
            .prefix("orchestra-chromium-")
            .tempdir()
            .map_err(|source| BrowserError::Spawn {
                binary: binary.display().to_string(),
                source,
            })?;
        let child = std::process::Command::new(&binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--disable-extensions",
                "--no-first-run",
                "--no-default-browser-check",
                "--remote-debugging-port=0",
                "--hide-scrollbars",
                "--mute-audio",
                &format!("--window-size={width},{height}"),
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0)
            .spawn()
            .map_err(|source| BrowserError::Spawn {
                binary: binary.display().to_string(),
                source,
            })?;
        let (port, path) = match devtools_address(profile.path()).await {
            Ok(found) => found,
            Err(err) => {
                kill_group(child.id());
                return Err(err);
            }
        };
        let (mut reader, writer) = websocket::connect(port, &path).await?;
        let (events, _) = broadcast::channel(4096);
        let conn = Arc::new(Connection {
            writer: AsyncMutex::new(writer),
            next_id: AtomicU64::new(1),
            pending: Mutex::new(HashMap::new()),
            events,
        });
        let reading = Arc::downgrade(&conn);
        tokio::spawn(async move {
            while let Ok(Some((text, pongs))) = reader.next_text().await {
                let Some(conn) = reading.upgrade() else {
                    return;
                };
                for payload in pongs {
                    let _ = conn.writer.lock().await.pong(&payload).await;
                }
                conn.dispatch(&text);
            }
            if let Some(conn) = reading.upgrade() {
                // Every command still waiting learns the browser is gone.
                conn.lock_pending().clear();
            }
        });
        Ok(Browser {
            child,
            conn,
            _profile: profile,
        })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// One DevTools command on the browser itself (`Browser.grantPermissions`, …).
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, BrowserError> {
        self.conn.call(method, params, None).await
    }

    /// A new tab showing `about:blank`.
    pub async fn new_page(&self) -> Result<Page, BrowserError> {
        let target = self
            .conn
            .call("Target.createTarget", json!({"url": "about:blank"}), None)
            .await?;
        let target_id = str_field(&target, "targetId")?;
        let attached = self
            .conn
            .call(
                "Target.attachToTarget",
                json!({"targetId": target_id, "flatten": true}),
                None,
            )
            .await?;
        let page = Page {
            conn: self.conn.clone(),
            session: str_field(&attached, "sessionId")?,
        };
        page.call("Page.enable", json!({})).await?;
        page.call("Runtime.enable", json!({})).await?;
        Ok(page)
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        kill_group(self.child.id());
        let _ = self.child.wait();
    }
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Chromium writes `<port>\n<path>` to `DevToolsActivePort` in its profile once it listens.
async fn devtools_address(profile: &Path) -> Result<(u16, String), BrowserError> {
    let file = profile.join("DevToolsActivePort");
    let started = Instant::now();
    while started.elapsed() < DEVTOOLS_WAIT {
        if let Ok(text) = std::fs::read_to_string(&file) {
            let mut lines = text.lines();
            if let (Some(port), Some(path)) = (lines.next(), lines.next())
                && let Ok(port) = port.trim().parse::<u16>()
            {
                return Ok((port, path.trim().to_owned()));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(BrowserError::NoDevTools(
        DEVTOOLS_WAIT,
        profile.display().to_string(),
    ))
}

fn str_field(value: &Value, name: &str) -> Result<String, BrowserError> {
    value
        .get(name)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| BrowserError::Protocol(format!("no `{name}` in {value}")))
}

impl Connection {
    async fn call(
        &self,
        method: &str,
        params: Value,
        session: Option<&str>,
    ) -> Result<Value, BrowserError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.lock_pending().insert(id, tx);
        let mut message = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            message["sessionId"] = json!(session);
        }
        self.writer
            .lock()
            .await
            .send_text(&message.to_string())
            .await?;
        match tokio::time::timeout(COMMAND_TIMEOUT, rx).await {
            Ok(Ok(Ok(result))) => Ok(result),
            Ok(Ok(Err(message))) => Err(BrowserError::Command {
                method: method.to_owned(),
                message,
            }),
            Ok(Err(_)) => Err(BrowserError::Protocol(format!(
                "the browser went away during {method}"
            ))),
            Err(_) => {
                self.lock_pending().remove(&id);
                Err(BrowserError::Protocol(format!(
                    "{method} got no answer within {COMMAND_TIMEOUT:?}"
                )))
            }
        }
    }

    fn dispatch(&self, text: &str) {
        let Ok(message) = serde_json::from_str::<Value>(text) else {
            return;
        };
        if let Some(id) = message.get("id").and_then(Value::as_u64) {
            let waiting = self.lock_pending().remove(&id);
            if let Some(tx) = waiting {
                let answer = match message.get("error") {
                    Some(error) => Err(error
                        .get("message")
                        .and_then(Value::as_str)
                        .map_or_else(|| error.to_string(), str::to_owned)),
                    None => Ok(message.get("result").cloned().unwrap_or(Value::Null)),
                };
                let _ = tx.send(answer);
            }
        } else if message.get("method").is_some() {
            let _ = self.events.send(Arc::new(message));
        }
    }

    fn lock_pending(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<Result<Value, String>>>> {
        self.pending
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// One tab.
pub struct Page {
    conn: Arc<Connection>,
    session: String,
}

impl Page {
    /// One DevTools command on this tab.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, BrowserError> {
        self.conn.call(method, params, Some(&self.session)).await
    }

    /// The tab's events from now on (`{method, params, sessionId}`).
    pub fn events(&self) -> broadcast::Receiver<Arc<Value>> {
        self.conn.events.subscribe()
    }

    /// Opens `url` and waits for its `load` event.
    pub async fn goto(&self, url: &str) -> Result<(), BrowserError> {
        let mut events = self.events();
        let answer = self.call("Page.navigate", json!({"url": url})).await?;
        if let Some(error) = answer.get("errorText").and_then(Value::as_str) {
            return Err(BrowserError::Protocol(format!("opening {url}: {error}")));
        }
        let deadline = Instant::now() + COMMAND_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left, events.recv()).await {
                Ok(Ok(event)) => {
                    if event["method"] == "Page.loadEventFired"
                        && event["sessionId"] == self.session
                    {
                        return Ok(());
                    }
                }
                Ok(Err(broadcast::error::RecvError::Lagged(_))) => {}
                Ok(Err(broadcast::error::RecvError::Closed)) | Err(_) => {
                    return Err(BrowserError::Timeout {
                        what: format!("{url} to load"),
                        timeout: COMMAND_TIMEOUT,
                        last: String::new(),
                    });
                }
            }
        }
    }

    /// Evaluates `expression` in the page (promises awaited) and returns its value as JSON.
    pub async fn eval(&self, expression: &str) -> Result<Value, BrowserError> {
        let answer = self
            .call(
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
            )
            .await?;
        if let Some(exception) = answer.get("exceptionDetails") {
            let text = exception
                .pointer("/exception/description")
                .or_else(|| exception.get("text"))
                .and_then(Value::as_str)
                .unwrap_or("an exception");
            return Err(BrowserError::Script(text.to_owned()));
        }
        Ok(answer
            .pointer("/result/value")
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Evaluates `expression` every 50 ms until it is truthy, and returns that value.
    pub async fn wait_for(
        &self,
        expression: &str,
        timeout: Duration,
    ) -> Result<Value, BrowserError> {
        let deadline = Instant::now() + timeout;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            match self.eval(expression).await {
                Ok(value) if truthy(&value) => return Ok(value),
                Ok(value) => last = value,
                Err(BrowserError::Script(message)) => last = Value::String(message),
                Err(other) => return Err(other),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(BrowserError::Timeout {
            what: expression.to_owned(),
            timeout,
            last: last.to_string(),
        })
    }

    /// Clicks the first element matching `selector` (the page's own click handlers run).
    pub async fn click(&self, selector: &str) -> Result<(), BrowserError> {
        let script = format!(
            "(() => {{ const el = document.querySelector({}); if (!el) throw new Error('nothing matches ' + {0}); el.click(); return true; }})()",
            json!(selector)
        );
        self.eval(&script).await.map(drop)
    }

    /// Presses a key as a person would (keydown, char, keyup), e.g. `j`, `Enter`, `?`.
    pub async fn press(&self, key: &str) -> Result<(), BrowserError> {
        // Enter's text is a carriage return: that is what activates a focused link.
        let text = match key {
            "Enter" => "\r",
            _ if key.chars().count() == 1 => key,
            _ => "",
        };
        let code = match key {
            "Enter" => 13,
            "Escape" => 27,
            "ArrowDown" => 40,
            "ArrowUp" => 38,
            _ => 0,
        };
        let mut down = json!({"type": "keyDown", "key": key, "windowsVirtualKeyCode": code});
        if !text.is_empty() {
            down["text"] = json!(text);
        }
        self.call("Input.dispatchKeyEvent", down).await?;
        self.call(
            "Input.dispatchKeyEvent",
            json!({"type": "keyUp", "key": key, "windowsVirtualKeyCode": code}),
        )
        .await
        .map(drop)
    }

    /// The window's size as the page sees it.
    pub async fn set_viewport(&self, width: u32, height: u32) -> Result<(), BrowserError> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}),
        )
        .await
        .map(drop)
    }

    /// Writes a PNG of what the tab shows now.
    pub async fn screenshot(&self, path: &Path) -> Result<(), BrowserError> {
        let shot = self
            .call("Page.captureScreenshot", json!({"format": "png"}))
            .await?;
        let data = str_field(&shot, "data")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|e| BrowserError::Protocol(format!("the screenshot is not base64: {e}")))?;
        std::fs::write(path, bytes).map_err(|source| BrowserError::Write {
            path: path.display().to_string(),
            source,
        })
    }
}

fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}
