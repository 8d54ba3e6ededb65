//! Tests that compare against a committed file can rewrite it on request; CI must never do so,
//! or a stale file would pass by being overwritten.

/// True when the environment variable `var` asks the test to rewrite its committed expectation
/// (any value but empty or `0`). Panics when that happens under CI (`CI` set), because there the
/// rewrite would turn a real difference into a pass.
pub fn update_requested(var: &str) -> bool {
    let requested = std::env::var_os(var).is_some_and(|v| !v.is_empty() && v != "0");
    if requested && std::env::var_os("CI").is_some_and(|v| !v.is_empty()) {
        panic!(
            "{var} is set under CI: this test would rewrite its committed expectation and pass; \
             unset {var} in CI and commit the regenerated file instead"
        );
    }
    requested
}
