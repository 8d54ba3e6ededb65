//! orchestra-desktop's integration tests, compiled into one binary. The window runs on Xvfb
//! with a private dbus-daemon and a notification service of the tests' own (gio); the tests
//! read its title and pixels, click and close it over the X protocol (x11rb; no window manager,
//! no X tools), and find processes through the test marker.

// Xvfb, a private session bus, and a hub with the fake LLM for the window to show.
mod common;

// The window on a virtual X display.
mod window;
