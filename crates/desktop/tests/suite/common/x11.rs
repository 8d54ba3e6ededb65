//! A virtual X display (Xvfb) and what a person does with a window on it, over the X protocol:
//! find the window of a process, read its title, take a screenshot, click, and close it the way
//! a window manager does (a `WM_DELETE_WINDOW` message). No window manager runs, so nothing
//! else decorates, moves or closes windows.
#![allow(clippy::unwrap_used)]

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use x11rb::CURRENT_TIME;
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    self, AtomEnum, ClientMessageEvent, ConnectionExt as _, EventMask, ImageFormat, MapState,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::rust_connection::RustConnection;

pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    /// Xvfb on the first free display (`-displayfd` prints its number once it accepts clients).
    pub fn start() -> Xvfb {
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x900x24"])
            .args(["-nolisten", "tcp", "-noreset"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|err| {
                panic!("cannot start Xvfb ({err}); install it with scripts/install-system-deps")
            });
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let number: u32 = line
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("Xvfb printed no display number: {line:?}"));
        Xvfb {
            child,
            display: format!(":{number}"),
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A screen capture, 8-bit RGB.
pub struct Shot {
    pub width: usize,
    pub height: usize,
    pub rgb: Vec<u8>,
}

/// x, y, width, height on the screen.
pub type Rect = (usize, usize, usize, usize);

impl Shot {
    fn pixels(&self, (x, y, w, h): Rect) -> impl Iterator<Item = &[u8]> {
        let stride = self.width * 3;
        (y..(y + h).min(self.height)).flat_map(move |row| {
            let start = row * stride + x * 3;
            let end = row * stride + (x + w).min(self.width) * 3;
            self.rgb[start..end].chunks(3)
        })
    }

    pub fn distinct_colors(&self, area: Rect) -> usize {
        let mut seen = std::collections::HashSet::new();
        for pixel in self.pixels(area) {
            seen.insert([pixel[0], pixel[1], pixel[2]]);
        }
        seen.len()
    }

    pub fn differing_pixels(&self, other: &Shot, area: Rect) -> usize {
        self.pixels(area)
            .zip(other.pixels(area))
            .filter(|(a, b)| a != b)
            .count()
    }

    /// The part of the shot inside `area` (a window).
    pub fn crop(&self, area: Rect) -> Shot {
        let (x, y, w, h) = area;
        let w = w.min(self.width.saturating_sub(x));
        let h = h.min(self.height.saturating_sub(y));
        Shot {
            width: w,
            height: h,
            rgb: self.pixels((x, y, w, h)).flatten().copied().collect(),
        }
    }

    pub fn save_png(&self, path: &Path) {
        use gtk::gdk_pixbuf::{Colorspace, Pixbuf};
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        let pixbuf = Pixbuf::from_mut_slice(
            self.rgb.clone(),
            Colorspace::Rgb,
            false,
            8,
            i32::try_from(self.width).unwrap(),
            i32::try_from(self.height).unwrap(),
            i32::try_from(self.width * 3).unwrap(),
        );
        pixbuf.savev(path, "png", &[]).unwrap();
    }
}

pub struct X {
    conn: RustConnection,
    root: u32,
    width: u16,
    height: u16,
}

impl X {
    pub fn connect(display: &str) -> X {
        let (conn, screen) = x11rb::connect(Some(display)).unwrap();
        let root = &conn.setup().roots[screen];
        let (root, width, height) = (root.root, root.width_in_pixels, root.height_in_pixels);
        X {
            conn,
            root,
            width,
            height,
        }
    }

    fn atom(&self, name: &str) -> u32 {
        self.conn
            .intern_atom(false, name.as_bytes())
            .unwrap()
            .reply()
            .unwrap()
            .atom
    }

    /// The mapped top-level window of process `pid` (GTK sets `_NET_WM_PID`), waiting for it.
    pub async fn window_of(&self, pid: u32) -> u32 {
        let wm_pid = self.atom("_NET_WM_PID");
        for _ in 0..600 {
            let children = self
                .conn
                .query_tree(self.root)
                .unwrap()
                .reply()
                .unwrap()
                .children;
            for window in children {
                let Ok(cookie) = self.conn.get_window_attributes(window) else {
                    continue;
                };
                let Ok(attributes) = cookie.reply() else {
                    continue;
                };
                if attributes.map_state != MapState::VIEWABLE {
                    continue;
                }
                let owner = self
                    .conn
                    .get_property(false, window, wm_pid, AtomEnum::CARDINAL, 0, 1)
                    .unwrap()
                    .reply()
                    .ok()
                    .and_then(|p| p.value32().and_then(|mut v| v.next()));
                if owner == Some(pid) {
                    return window;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("process {pid} mapped no window within 60 s");
    }

    /// The window's title as the window manager would show it (`_NET_WM_NAME`).
    pub fn title(&self, window: u32) -> String {
        let (name, utf8) = (self.atom("_NET_WM_NAME"), self.atom("UTF8_STRING"));
        let reply = self
            .conn
            .get_property(false, window, name, utf8, 0, 4096)
            .unwrap()
            .reply()
            .unwrap();
        String::from_utf8_lossy(&reply.value).into_owned()
    }

    /// The window's place on the screen.
    pub fn rect(&self, window: u32) -> Rect {
        let at = self
            .conn
            .translate_coordinates(window, self.root, 0, 0)
            .unwrap()
            .reply()
            .unwrap();
        let size = self.conn.get_geometry(window).unwrap().reply().unwrap();
        let x = usize::try_from(at.dst_x.max(0)).unwrap();
        let y = usize::try_from(at.dst_y.max(0)).unwrap();
        (x, y, usize::from(size.width), usize::from(size.height))
    }

    pub fn screenshot(&self) -> Shot {
        let image = self
            .conn
            .get_image(
                ImageFormat::Z_PIXMAP,
                self.root,
                0,
                0,
                self.width,
                self.height,
                !0,
            )
            .unwrap()
            .reply()
            .unwrap();
        let (width, height) = (usize::from(self.width), usize::from(self.height));
        assert_eq!(
            image.data.len(),
            width * height * 4,
            "expected 32 bits per pixel (Xvfb depth 24)"
        );
        // Z pixmap at depth 24 on a little-endian server: B, G, R, unused.
        let rgb = image
            .data
            .chunks(4)
            .flat_map(|p| [p[2], p[1], p[0]])
            .collect();
        Shot { width, height, rgb }
    }

    /// A left click at a point of the screen, as a mouse would make it (XTEST).
    pub fn click(&self, x: i16, y: i16) {
        let c = &self.conn;
        c.xtest_fake_input(
            xproto::MOTION_NOTIFY_EVENT,
            0,
            CURRENT_TIME,
            self.root,
            x,
            y,
            0,
        )
        .unwrap();
        for kind in [xproto::BUTTON_PRESS_EVENT, xproto::BUTTON_RELEASE_EVENT] {
            c.xtest_fake_input(kind, 1, CURRENT_TIME, self.root, 0, 0, 0)
                .unwrap();
        }
        self.sync();
    }

    /// What a window manager sends when a person clicks the window's close button.
    pub fn close(&self, window: u32) {
        let (protocols, delete) = (self.atom("WM_PROTOCOLS"), self.atom("WM_DELETE_WINDOW"));
        let event = ClientMessageEvent::new(32, window, protocols, [delete, CURRENT_TIME, 0, 0, 0]);
        self.conn
            .send_event(false, window, EventMask::NO_EVENT, event)
            .unwrap();
        self.sync();
    }

    fn sync(&self) {
        self.conn.get_input_focus().unwrap().reply().unwrap();
    }
}
