//! The window: a tao window whose GTK box holds the webview (wry) showing the hub's page, and a
//! status bar below it — which hub, whether closing the window stops it, what runs, what waits,
//! whether notifications work — with the "Open in OpenCode" button.
//!
//! Everything here runs on the main thread (GTK's); the hub link and the notifier report through
//! the event loop's proxy as [`UserEvent`]s.

use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use anyhow::Context;
use gtk::prelude::*;
use tao::dpi::LogicalSize;
use tao::event::{Event, WindowEvent};
use tao::event_loop::{ControlFlow, EventLoopBuilder, EventLoopProxy};
use tao::platform::run_return::EventLoopExtRunReturn;
use tao::platform::unix::WindowExtUnix;
use tao::window::{Window, WindowBuilder};
use tokio_util::sync::CancellationToken;
use wry::{NewWindowResponse, WebView, WebViewBuilder, WebViewBuilderExtUnix};

use crate::follow::{self, Shared, UserEvent};
use crate::hub::{self, Setup};
use crate::notify::{Availability, Notifier};
use crate::tally::Counts;
use crate::{opencode, probe};

/// Where the window stands with its hub, for the status bar.
enum HubState {
    Connecting,
    Ready { pid: u32, owned: bool },
    Failed(String),
    Lost(String),
    Stopping,
}

struct App<'a> {
    setup: Setup,
    runtime: &'a tokio::runtime::Runtime,
    proxy: EventLoopProxy<UserEvent>,
    window: Window,
    webview: WebView,
    status: gtk::Label,
    open_button: gtk::Button,
    /// The hub's address; the webview navigates to nothing else.
    allowed_base: Rc<RefCell<String>>,
    /// The hub whose page the webview is logged in to.
    page_hub: Option<String>,
    project_name: String,
    page_title: String,
    hub: HubState,
    counts: Counts,
    notifications: Option<Availability>,
    /// The last thing the person did and how it went (opening OpenCode), or a hub warning.
    note: String,
    shared: Shared,
    stop: CancellationToken,
    follower: Option<tokio::task::JoinHandle<()>>,
    closing: bool,
    /// The close button was pressed while other clients' tasks ran on the hub this window
    /// started: the window stays, says so, and closes (stopping the hub) once they finish, or
    /// at once on a second press.
    closing_after_tasks: bool,
    probe: Option<(std::path::PathBuf, Instant)>,
}

/// Opens the window and runs it until it is closed and what it owned has stopped.
pub fn run(setup: Setup, runtime: &tokio::runtime::Runtime) -> anyhow::Result<i32> {
    let mut event_loop = EventLoopBuilder::<UserEvent>::with_user_event().build();
    let proxy = event_loop.create_proxy();
    let project_name = setup.project_dir.file_name().map_or_else(
        || setup.project_dir.display().to_string(),
        |name| name.to_string_lossy().into_owned(),
    );
    let window = WindowBuilder::new()
        .with_title(format!("Open Orchestra — {project_name} (connecting)"))
        .with_inner_size(LogicalSize::new(1200.0, 800.0))
        .build(&event_loop)
        .context("cannot create the window")?;
    let vbox = window
        .default_vbox()
        .context("the window has no GTK box to hold the webview")?;

    let status = gtk::Label::new(Some("Connecting to the project's hub…"));
    status.set_xalign(0.0);
    status.set_ellipsize(gtk::pango::EllipsizeMode::End);
    status.set_selectable(true);
    let open_button = gtk::Button::with_mnemonic("_Open in OpenCode");
    open_button.set_tooltip_text(Some(
        "A terminal running OpenCode on this project (with `orchestra install`, its tasks show here)",
    ));
    let bar = gtk::Box::new(gtk::Orientation::Horizontal, 8);
    bar.set_border_width(4);
    bar.pack_start(&status, true, true, 0);
    bar.pack_end(&open_button, false, false, 0);
    vbox.pack_end(&bar, false, false, 0);

    let allowed_base = Rc::new(RefCell::new(String::new()));
    let webview = build_webview(vbox, &setup.project_dir, &allowed_base, &proxy)?;
    bar.show_all();

    let clicked = proxy.clone();
    open_button.connect_clicked(move |_| {
        let _ = clicked.send_event(UserEvent::OpenInOpenCode);
    });
    runtime.spawn(close_on_signal(proxy.clone()));
    let reporter = proxy.clone();
    let notifier = Notifier::start(project_name.clone(), move |state| {
        let _ = reporter.send_event(UserEvent::Notifications(state));
    });
    let shared = Shared::default();
    let stop = CancellationToken::new();
    let follower = runtime.spawn(follow::run(
        setup.clone(),
        proxy.clone(),
        shared.clone(),
        stop.clone(),
        notifier,
    ));

    let mut app = App {
        setup,
        runtime,
        proxy,
        window,
        webview,
        status,
        open_button,
        allowed_base,
        page_hub: None,
        project_name,
        page_title: String::new(),
        hub: HubState::Connecting,
        counts: Counts::default(),
        notifications: None,
        note: String::new(),
        shared,
        stop,
        follower: Some(follower),
        closing: false,
        closing_after_tasks: false,
        probe: probe::file().map(|file| (file, Instant::now())),
    };
    app.refresh();
    Ok(event_loop.run_return(move |event, _target, control_flow| {
        app.handle(event, control_flow);
    }))
}

fn build_webview(
    vbox: &gtk::Box,
    project_dir: &Path,
    allowed_base: &Rc<RefCell<String>>,
    proxy: &EventLoopProxy<UserEvent>,
) -> anyhow::Result<WebView> {
    let allowed = allowed_base.clone();
    let titles = proxy.clone();
    WebViewBuilder::new()
        .with_html(page(
            "Connecting",
            &format!(
                "Connecting to the hub of <code>{}</code>…",
                escape(&project_dir.display().to_string())
            ),
        ))
        // Nothing of the session (the login cookie) is written to disk.
        .with_incognito(true)
        .with_navigation_handler(move |url| {
            let base = allowed.borrow();
            let ours = url.starts_with("about:")
                || (!base.is_empty() && (url == *base || url.starts_with(&format!("{base}/"))));
            if !ours {
                open_in_browser(&url);
            }
            ours
        })
        .with_new_window_req_handler(|url, _features| {
            open_in_browser(&url);
            NewWindowResponse::Deny
        })
        .with_document_title_changed_handler(move |title| {
            let _ = titles.send_event(UserEvent::PageTitle(title));
        })
        .build_gtk(vbox)
        .context("cannot create the webview (WebKitGTK)")
}

impl App<'_> {
    fn handle(&mut self, event: Event<'_, UserEvent>, control_flow: &mut ControlFlow) {
        match event {
            Event::WindowEvent {
                event: WindowEvent::CloseRequested,
                ..
            } => {
                self.close_button();
                self.refresh();
            }
            Event::UserEvent(event) => {
                if let Some(code) = self.on_user_event(event) {
                    *control_flow = ControlFlow::ExitWithCode(code);
                    return;
                }
            }
            _ => {}
        }
        *control_flow = match &mut self.probe {
            Some((file, next)) => {
                if Instant::now() >= *next {
                    *next = Instant::now() + probe::PERIOD;
                    let file = file.clone();
                    self.write_probe(file);
                }
                match &self.probe {
                    Some((_, next)) => ControlFlow::WaitUntil(*next),
                    None => ControlFlow::Wait,
                }
            }
            None => ControlFlow::Wait,
        };
    }

    /// Handles one event; `Some(exit code)` when the process should end.
    fn on_user_event(&mut self, event: UserEvent) -> Option<i32> {
        match event {
            UserEvent::HubReady {
                login_url,
                base_url,
                hub_id,
                pid,
                owned,
                warnings,
            } => {
                self.note = warnings.join("; ");
                self.hub = HubState::Ready { pid, owned };
                let same_hub = self.page_hub.as_deref() == Some(hub_id.as_str());
                if !same_hub && !self.closing {
                    *self.allowed_base.borrow_mut() = base_url;
                    self.page_hub = Some(hub_id);
                    if let Err(err) = self.webview.load_url(&login_url) {
                        self.note = format!("cannot load the panel: {err}");
                    }
                }
            }
            UserEvent::HubFailed(message) => {
                if !self.closing {
                    let body = format!(
                        "<p>The window cannot reach or start the project's hub; it tries again.</p><pre>{}</pre>",
                        escape(&message)
                    );
                    let _ = self.webview.load_html(&page("No hub", &body));
                    self.allowed_base.borrow_mut().clear();
                    self.page_hub = None;
                }
                self.hub = HubState::Failed(message);
            }
            UserEvent::HubLost(reason) => {
                self.hub = HubState::Lost(reason);
                self.counts = Counts::default();
                if self.closing_after_tasks {
                    self.close();
                }
            }
            UserEvent::Counts(counts) => {
                self.counts = counts;
                if self.closing_after_tasks && self.counts.running == 0 {
                    self.close();
                }
            }
            UserEvent::Notifications(state) => self.notifications = Some(state),
            UserEvent::PageTitle(title) => self.page_title = title,
            UserEvent::OpenInOpenCode => {
                self.note = match opencode::open(&self.setup.project_dir) {
                    Ok(done) => done,
                    Err(err) => {
                        tracing::warn!("{err:#}");
                        format!("cannot open OpenCode: {err:#}")
                    }
                };
            }
            UserEvent::CloseRequested => self.close(),
            UserEvent::Released => return Some(0),
        }
        self.refresh();
        None
    }

    /// The person pressed close. Tasks running on a hub this window started belong to other
    /// clients (the window starts none): closing now would stop them, so the first press keeps
    /// the window open and says so, and the window closes when they have finished; a second
    /// press closes at once. A signal (`close_on_signal`) always closes at once.
    fn close_button(&mut self) {
        let owned = matches!(self.hub, HubState::Ready { owned: true, .. });
        if self.closing_after_tasks || !owned || self.counts.running == 0 {
            self.close();
            return;
        }
        tracing::info!(
            running = self.counts.running,
            "the window stays until the other clients' tasks on its hub finish"
        );
        self.closing_after_tasks = true;
    }

    /// Stop following the hub, stop the hub if this window started it, then end. The window
    /// hides at once; the process ends when the hub has let go of the project.
    fn close(&mut self) {
        if self.closing {
            return;
        }
        self.closing = true;
        self.hub = HubState::Stopping;
        self.window.set_visible(false);
        self.stop.cancel();
        let follower = self.follower.take();
        let shared = self.shared.clone();
        let project_dir = self.setup.project_dir.clone();
        let proxy = self.proxy.clone();
        self.runtime.spawn(async move {
            // The link hands over the hub it holds before it ends.
            if let Some(follower) = follower {
                let _ = follower.await;
            }
            let current = follow::lock(&shared).take();
            hub::release(current, &project_dir).await;
            let _ = proxy.send_event(UserEvent::Released);
        });
    }

    fn refresh(&self) {
        self.window.set_title(&self.title());
        self.status.set_text(&self.status_text());
    }

    /// `<page title> — <project> · 2 running · 1 needs input`
    fn title(&self) -> String {
        let page = if self.page_title.trim().is_empty() {
            "Open Orchestra"
        } else {
            self.page_title.trim()
        };
        let counts = self.counts.describe();
        match (&self.hub, counts.is_empty()) {
            (HubState::Ready { .. }, true) => format!("{page} — {}", self.project_name),
            (HubState::Ready { .. }, false) => {
                format!("{page} — {} · {counts}", self.project_name)
            }
            (HubState::Connecting, _) => format!("{page} — {} (connecting)", self.project_name),
            (HubState::Failed(_) | HubState::Lost(_), _) => {
                format!("{page} — {} (no hub)", self.project_name)
            }
            (HubState::Stopping, _) => format!("{page} — {} (stopping)", self.project_name),
        }
    }

    fn status_text(&self) -> String {
        let hub = match &self.hub {
            HubState::Connecting => "Connecting to the project's hub…".to_owned(),
            HubState::Ready { pid, owned: true } if self.closing_after_tasks => format!(
                "Closing: hub {pid} keeps running while {} task(s) of other clients run on it; \
                 this window closes and stops it when they finish (close again to stop it now)",
                self.counts.running
            ),
            HubState::Ready { pid, owned: true } => format!(
                "Hub {pid}, started by this window: closing the window stops it and its workers"
            ),
            HubState::Ready { pid, owned: false } => {
                format!("Hub {pid}, already running: it keeps running when this window closes")
            }
            HubState::Failed(message) => format!("No hub: {message}"),
            HubState::Lost(reason) => format!("The hub stopped ({reason}); starting it again…"),
            HubState::Stopping => "Stopping the hub and its workers…".to_owned(),
        };
        let mut parts = vec![hub];
        let counts = self.counts.describe();
        parts.push(if counts.is_empty() {
            "nothing running".to_owned()
        } else {
            counts
        });
        if let Some(latest) = &self.counts.latest {
            parts.push(latest.describe());
        }
        if let Some(notifications) = &self.notifications {
            parts.push(notifications.describe());
        }
        if !self.note.is_empty() {
            parts.push(self.note.clone());
        }
        parts.join(" · ")
    }

    fn write_probe(&self, file: std::path::PathBuf) {
        let toplevel = self.window.gtk_window();
        let (x, y) = self
            .open_button
            .translate_coordinates(toplevel, 0, 0)
            .unwrap_or((-1, -1));
        let size = self.open_button.allocation();
        let (hub_pid, hub_owned) = match &self.hub {
            HubState::Ready { pid, owned } => (Some(*pid), Some(*owned)),
            HubState::Connecting | HubState::Failed(_) | HubState::Lost(_) | HubState::Stopping => {
                (None, None)
            }
        };
        let shell = probe::Shell {
            window_title: self.window.title(),
            status: self.status.text().to_string(),
            open_button: (x, y, size.width(), size.height()),
            hub_pid,
            hub_owned,
            project: self.setup.project_dir.display().to_string(),
        };
        let written = self
            .webview
            .evaluate_script_with_callback(probe::script(), move |page| {
                probe::write(&file, &shell, &page);
            });
        if let Err(err) = written {
            tracing::warn!("probe: cannot run the page script: {err}");
        }
    }
}

async fn close_on_signal(proxy: EventLoopProxy<UserEvent>) {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        SignalKind::terminate(),
        SignalKind::interrupt(),
        SignalKind::hangup(),
    ];
    let mut streams = Vec::new();
    for kind in kinds {
        match signal(kind) {
            Ok(stream) => streams.push(stream),
            Err(err) => tracing::warn!("cannot watch a signal: {err}"),
        }
    }
    if streams.is_empty() {
        return;
    }
    futures_util::future::select_all(streams.iter_mut().map(|s| Box::pin(s.recv()))).await;
    tracing::info!("signal: closing the window");
    let _ = proxy.send_event(UserEvent::CloseRequested);
}

/// Links out of the hub's page open in the person's browser, not in this window.
fn open_in_browser(url: &str) {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        tracing::info!(url, "ignored a navigation away from the panel");
        return;
    }
    let mut command = std::process::Command::new("xdg-open");
    command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    orchestra_state_dir::private::keep_user_umask(&mut command);
    let spawned = command.spawn();
    match spawned {
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(err) => tracing::warn!(url, "cannot open the link in a browser (xdg-open: {err})"),
    }
}

/// A page of the window's own (before the hub's page loads, or when there is no hub).
fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>{title}</title><style>\
         body{{font:15px system-ui,sans-serif;margin:3em;color:#222}}pre{{white-space:pre-wrap}}\
         </style></head><body><h1>Open Orchestra</h1>{body}</body></html>"
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
