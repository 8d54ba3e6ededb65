//! A private D-Bus session bus (dbus-daemon) and a notification service on it that records what
//! it is asked to show — the freedesktop `org.freedesktop.Notifications` interface, served with
//! gio the way a real notification daemon serves it.
#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gtk::gio;
use gtk::glib::{self, ToVariant};

pub struct SessionBus {
    child: Child,
    pub address: String,
}

impl SessionBus {
    pub fn start() -> SessionBus {
        let mut child = Command::new("dbus-daemon")
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!(
                    "cannot start dbus-daemon ({err}); install it with scripts/install-system-deps"
                )
            });
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let address = line.trim().to_owned();
        assert!(!address.is_empty(), "dbus-daemon printed no address");
        SessionBus { child, address }
    }
}

impl Drop for SessionBus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `Notify` call: summary, body, urgency hint.
#[derive(Debug, Clone)]
pub struct Shown {
    pub summary: String,
    pub body: String,
    pub urgency: Option<u8>,
}

const INTERFACE: &str = r#"<node><interface name="org.freedesktop.Notifications">
  <method name="Notify">
    <arg type="s" direction="in"/><arg type="u" direction="in"/><arg type="s" direction="in"/>
    <arg type="s" direction="in"/><arg type="s" direction="in"/><arg type="as" direction="in"/>
    <arg type="a{sv}" direction="in"/><arg type="i" direction="in"/><arg type="u" direction="out"/>
  </method>
  <method name="GetServerInformation">
    <arg type="s" direction="out"/><arg type="s" direction="out"/>
    <arg type="s" direction="out"/><arg type="s" direction="out"/>
  </method>
  <method name="GetCapabilities"><arg type="as" direction="out"/></method>
  <method name="CloseNotification"><arg type="u" direction="in"/></method>
</interface></node>"#;

/// The name this fake gives as its server name.
pub const SERVER_NAME: &str = "orchestra-test-notifications";

pub struct Notifications {
    shown: Arc<Mutex<Vec<Shown>>>,
    main_loop: glib::MainLoop,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Notifications {
    /// Serves the interface on the bus at `address` and owns its name before returning.
    pub fn start(address: &str) -> Notifications {
        let shown = Arc::new(Mutex::new(Vec::new()));
        let context = glib::MainContext::new();
        let main_loop = glib::MainLoop::new(Some(&context), false);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = {
            let (address, shown, main_loop) =
                (address.to_owned(), shown.clone(), main_loop.clone());
            std::thread::spawn(move || {
                context
                    .with_thread_default(|| {
                        let _bus = serve(&address, shown);
                        ready_tx.send(()).unwrap();
                        main_loop.run();
                    })
                    .unwrap();
            })
        };
        ready_rx.recv_timeout(Duration::from_secs(10)).unwrap();
        Notifications {
            shown,
            main_loop,
            thread: Some(thread),
        }
    }

    pub fn shown(&self) -> Vec<Shown> {
        self.shown.lock().unwrap().clone()
    }

    /// Waits up to 30 s for a notification `matches` accepts.
    pub async fn wait_for(&self, what: &str, matches: impl Fn(&Shown) -> bool) -> Shown {
        for _ in 0..300 {
            if let Some(found) = self.shown().into_iter().find(&matches) {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no notification {what}; shown: {:?}", self.shown());
    }
}

impl Drop for Notifications {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(address: &str, shown: Arc<Mutex<Vec<Shown>>>) -> gio::DBusConnection {
    let flags = gio::DBusConnectionFlags::AUTHENTICATION_CLIENT
        | gio::DBusConnectionFlags::MESSAGE_BUS_CONNECTION;
    let bus =
        gio::DBusConnection::for_address_sync(address, flags, None, None::<&gio::Cancellable>)
            .unwrap();
    let node = gio::DBusNodeInfo::for_xml(INTERFACE).unwrap();
    let interface = node
        .lookup_interface("org.freedesktop.Notifications")
        .unwrap();
    bus.register_object(
        "/org/freedesktop/Notifications",
        &interface,
        move |_, _, _, _, method, params, invocation| match method {
            "Notify" => {
                let summary = params.child_value(3).get::<String>().unwrap_or_default();
                let body = params.child_value(4).get::<String>().unwrap_or_default();
                let urgency = params
                    .child_value(6)
                    .get::<std::collections::HashMap<String, glib::Variant>>()
                    .and_then(|hints| hints.get("urgency").and_then(glib::Variant::get::<u8>));
                let mut shown = shown.lock().unwrap();
                shown.push(Shown {
                    summary,
                    body,
                    urgency,
                });
                let id = u32::try_from(shown.len()).unwrap();
                invocation.return_value(Some(&(id,).to_variant()));
            }
            "GetServerInformation" => invocation.return_value(Some(
                &(SERVER_NAME, "open-orchestra", "1", "1.2").to_variant(),
            )),
            "GetCapabilities" => {
                invocation.return_value(Some(&(vec!["body".to_owned()],).to_variant()));
            }
            _ => invocation.return_value(None),
        },
        |_, _, _, _, _| ().to_variant(),
        |_, _, _, _, _, _| false,
    )
    .unwrap();
    // RequestName with DO_NOT_QUEUE (4): 1 means we are the primary owner.
    let reply = bus
        .call_sync(
            Some("org.freedesktop.DBus"),
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus",
            "RequestName",
            Some(&("org.freedesktop.Notifications", 4u32).to_variant()),
            None,
            gio::DBusCallFlags::NONE,
            5000,
            None::<&gio::Cancellable>,
        )
        .unwrap();
    assert_eq!(reply.get::<(u32,)>(), Some((1,)), "could not own the name");
    bus
}
