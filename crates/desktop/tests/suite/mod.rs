//! orchestra-desktop's integration tests, compiled into one binary.

// Xvfb, a private session bus, and a hub with the fake LLM for the window to show.
mod common;

// The window on a virtual X display.
mod window;
