//! The hub's secrets, kept apart so every module that makes or checks one (access, browser
//! sessions, login files) uses this leaf and none of them uses another.

use std::sync::Mutex;
use std::time::Duration;

/// How long a login link works; it works once.
pub const LOGIN_LINK_TTL: Duration = Duration::from_secs(120);

/// Compares secrets in time independent of where they differ.
pub(crate) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// 244 random bits from the OS, as hex.
pub fn secret() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
