//! Desktop notifications through the freedesktop notification service
//! (`org.freedesktop.Notifications` on the session bus), called over D-Bus with gio — already
//! linked through GTK, so no `notify-send` and no second D-Bus stack.
//!
//! The service may be missing (no session bus, a bare window manager, a server over SSH); the
//! window then says so in its status bar and the log, once, and keeps showing the counts.

use std::collections::HashMap;
use std::sync::mpsc;

use gtk::gio;
use gtk::glib::{self, ToVariant};

use crate::tally::Alert;

const SERVICE: &str = "org.freedesktop.Notifications";
const PATH: &str = "/org/freedesktop/Notifications";
/// A D-Bus call to the service taking longer than this counts as failed.
const CALL_TIMEOUT_MS: i32 = 5_000;

/// Whether notifications can be shown, for the status bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    /// The service answers; its name (`dunst`, `gnome-shell`, …).
    Ready { server: String },
    /// `reason` is short, for the status bar; `detail` names the fix, for the log.
    Unavailable { reason: String, detail: String },
}

impl Availability {
    pub fn describe(&self) -> String {
        match self {
            Availability::Ready { server } => format!("notifications: {server}"),
            Availability::Unavailable { reason, .. } => format!("notifications off: {reason}"),
        }
    }
}

/// Raises notifications from a thread of its own (D-Bus calls block).
pub struct Notifier {
    alerts: mpsc::Sender<Alert>,
}

impl Notifier {
    /// Starts the notifier; `report` hears whether notifications work, first once the service
    /// was looked up, then whenever that changes.
    pub fn start(project: String, report: impl Fn(Availability) + Send + 'static) -> Notifier {
        let (alerts, inbox) = mpsc::channel::<Alert>();
        let spawned = std::thread::Builder::new()
            .name("notifier".into())
            .spawn(move || serve(&project, &inbox, &report));
        if let Err(err) = spawned {
            tracing::warn!("cannot start the notifier thread ({err}); no desktop notifications");
        }
        Notifier { alerts }
    }

    pub fn send(&self, alert: Alert) {
        // The thread only ends with the process; a failed send loses one notification.
        let _ = self.alerts.send(alert);
    }
}

fn serve(project: &str, inbox: &mpsc::Receiver<Alert>, report: &dyn Fn(Availability)) {
    let bus = match gio::bus_get_sync(gio::BusType::Session, None::<&gio::Cancellable>) {
        Ok(bus) => Some(bus),
        Err(err) => {
            say(
                report,
                Availability::Unavailable {
                    reason: "no D-Bus session bus".into(),
                    detail: format!(
                        "{}; desktop notifications need a session bus with a notification \
                         service (a desktop session, or dunst/mako)",
                        err.message()
                    ),
                },
            );
            None
        }
    };
    let mut last = bus.as_ref().map(|bus| {
        let state = lookup(bus);
        say(report, state.clone());
        state
    });
    while let Ok(alert) = inbox.recv() {
        let Some(bus) = &bus else { continue };
        let state = match notify(bus, project, &alert) {
            Ok(()) => match &last {
                Some(Availability::Ready { .. }) => continue,
                // It came up after we looked: say so once.
                Some(Availability::Unavailable { .. }) | None => lookup(bus),
            },
            Err(err) => Availability::Unavailable {
                reason: "the notification service failed".into(),
                detail: format!("it did not take a notification: {}", err.message()),
            },
        };
        if last.as_ref() != Some(&state) {
            say(report, state.clone());
            last = Some(state);
        }
    }
}

fn say(report: &dyn Fn(Availability), state: Availability) {
    match &state {
        Availability::Ready { server } => tracing::info!("desktop notifications go to {server}"),
        Availability::Unavailable { reason, detail } => {
            tracing::warn!("no desktop notifications: {reason}: {detail}");
        }
    }
    report(state);
}

/// Whether a notification service runs (or can be started by the bus), and its name.
fn lookup(bus: &gio::DBusConnection) -> Availability {
    let owned = call_bus(bus, "NameHasOwner", &(SERVICE,).to_variant())
        .and_then(|reply| reply.get::<(bool,)>())
        .is_some_and(|(owned,)| owned);
    let activatable = || {
        call_bus(bus, "ListActivatableNames", &().to_variant())
            .and_then(|reply| reply.get::<(Vec<String>,)>())
            .is_some_and(|(names,)| names.iter().any(|n| n == SERVICE))
    };
    if !owned && !activatable() {
        return Availability::Unavailable {
            reason: "no notification service".into(),
            detail: format!(
                "nothing owns {SERVICE} on the session bus; start a notification service \
                 (your desktop's, or dunst/mako)"
            ),
        };
    }
    let info = bus.call_sync(
        Some(SERVICE),
        PATH,
        SERVICE,
        "GetServerInformation",
        None,
        None,
        gio::DBusCallFlags::NONE,
        CALL_TIMEOUT_MS,
        None::<&gio::Cancellable>,
    );
    match info.map(|reply| reply.get::<(String, String, String, String)>()) {
        Ok(Some((name, ..))) => Availability::Ready { server: name },
        Ok(None) => Availability::Ready {
            server: SERVICE.to_owned(),
        },
        Err(err) => Availability::Unavailable {
            reason: "the notification service does not answer".into(),
            detail: err.message().to_owned(),
        },
    }
}

fn call_bus(
    bus: &gio::DBusConnection,
    method: &str,
    args: &glib::Variant,
) -> Option<glib::Variant> {
    bus.call_sync(
        Some("org.freedesktop.DBus"),
        "/org/freedesktop/DBus",
        "org.freedesktop.DBus",
        method,
        Some(args),
        None,
        gio::DBusCallFlags::NONE,
        CALL_TIMEOUT_MS,
        None::<&gio::Cancellable>,
    )
    .ok()
}

/// `Notify(app_name, replaces_id, app_icon, summary, body, actions, hints, expire_timeout)`.
fn notify(bus: &gio::DBusConnection, project: &str, alert: &Alert) -> Result<(), glib::Error> {
    let mut hints: HashMap<String, glib::Variant> = HashMap::new();
    hints.insert(
        "urgency".into(),
        (if alert.urgent { 2u8 } else { 1u8 }).to_variant(),
    );
    hints.insert("desktop-entry".into(), "orchestra-desktop".to_variant());
    let icon = if alert.urgent {
        "dialog-question"
    } else {
        "dialog-error"
    };
    // Urgent ones stay until dismissed; the others for the service's default time.
    let expire_ms: i32 = if alert.urgent { 0 } else { -1 };
    let args = (
        "Open Orchestra",
        0u32,
        icon,
        format!("{project}: {}", alert.summary),
        alert.body.as_str(),
        Vec::<String>::new(),
        hints,
        expire_ms,
    )
        .to_variant();
    bus.call_sync(
        Some(SERVICE),
        PATH,
        SERVICE,
        "Notify",
        Some(&args),
        None,
        gio::DBusCallFlags::NONE,
        CALL_TIMEOUT_MS,
        None::<&gio::Cancellable>,
    )
    .map(|_| ())
}
