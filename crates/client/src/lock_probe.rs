//! Whether some process holds a file's `flock`, asked without taking the lock.
//!
//! Taking the lock to test it (and dropping it at once) is not a probe: a hub starting in that
//! instant fails its own lock and gives up. The kernel lists every held lock in `/proc/locks`
//! with the device and inode of its file, so that is read instead.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// `Some(true)` while a process holds a `flock` on the file at `path`, `Some(false)` when none
/// does (or the file does not exist); `None` when `/proc/locks` cannot say.
pub(crate) fn flock_held(path: &Path) -> Option<bool> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Some(false),
        Err(_) => return None,
    };
    let dev = meta.dev();
    let file = FileId {
        major: nix::sys::stat::major(dev),
        minor: nix::sys::stat::minor(dev),
        inode: meta.ino(),
    };
    // `/proc/locks` is read a page at a time, and locks taken or dropped between two pages
    // (SQLite takes and drops them all the time) shift the listing: a held lock can be
    // skipped. It cannot be listed when it is not held, so only a miss is read again.
    for _ in 0..READS_ON_MISS {
        let locks = std::fs::read_to_string("/proc/locks").ok()?;
        if locks.lines().any(|line| held_by_line(line) == Some(file)) {
            return Some(true);
        }
    }
    Some(false)
}

/// Reads of `/proc/locks` before a lock is taken as not held.
const READS_ON_MISS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    major: u64,
    minor: u64,
    inode: u64,
}

/// The file a `/proc/locks` line says a FLOCK is *held* on (`1: FLOCK ADVISORY WRITE 4242
/// 00:2d:1234 0 EOF`); `None` for other lock kinds and for waiters (`1: -> FLOCK …`).
fn held_by_line(line: &str) -> Option<FileId> {
    let mut fields = line.split_whitespace().skip(1);
    if fields.next()? != "FLOCK" {
        return None;
    }
    // ADVISORY/MANDATORY, READ/WRITE, pid, then major:minor:inode (major and minor in hex).
    let id = fields.nth(3)?;
    let mut parts = id.split(':');
    let major = u64::from_str_radix(parts.next()?, 16).ok()?;
    let minor = u64::from_str_radix(parts.next()?, 16).ok()?;
    let inode = parts.next()?.parse().ok()?;
    Some(FileId {
        major,
        minor,
        inode,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use nix::fcntl::{Flock, FlockArg};

    #[test]
    fn reads_held_locks_and_skips_waiters() {
        let held = held_by_line("7: FLOCK  ADVISORY  WRITE 4242 fd:0a:1234567 0 EOF").unwrap();
        assert_eq!(
            held,
            FileId {
                major: 0xfd,
                minor: 0x0a,
                inode: 1_234_567
            }
        );
        assert_eq!(
            held_by_line("7: -> FLOCK  ADVISORY  WRITE 4243 fd:0a:1234567 0 EOF"),
            None
        );
        assert_eq!(
            held_by_line("8: POSIX  ADVISORY  WRITE 4242 fd:0a:1234567 0 EOF"),
            None
        );
        assert_eq!(held_by_line("garbage"), None);
    }

    #[test]
    fn sees_a_held_flock_without_taking_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hub.lock");
        assert_eq!(flock_held(&path), Some(false));
        let file = std::fs::File::create(&path).unwrap();
        assert_eq!(flock_held(&path), Some(false));
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock).unwrap();
        assert_eq!(flock_held(&path), Some(true));
        // The probe took nothing: the lock can be dropped and taken again by someone else.
        drop(lock);
        assert_eq!(flock_held(&path), Some(false));
        let again = std::fs::File::open(&path).unwrap();
        assert!(Flock::lock(again, FlockArg::LockExclusiveNonblock).is_ok());
    }

    #[test]
    fn a_held_lock_is_seen_while_other_locks_come_and_go() {
        let dir = tempfile::tempdir().unwrap();
        let lock_file = |name: String| {
            let file = std::fs::File::create(dir.path().join(name)).unwrap();
            Flock::lock(file, FlockArg::LockExclusiveNonblock).unwrap()
        };
        // Enough held locks that /proc/locks takes several pages to read.
        let _held: Vec<_> = (0..300).map(|i| lock_file(format!("held-{i}"))).collect();
        let path = dir.path().join("hub.lock");
        let _hub = lock_file("hub.lock".into());
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let churn = {
            let stop = stop.clone();
            let dir = dir.path().to_owned();
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let file =
                        std::fs::File::create(dir.join(format!("churn-{}", n % 50))).unwrap();
                    drop(Flock::lock(file, FlockArg::LockExclusiveNonblock).unwrap());
                    n += 1;
                }
            })
        };
        let missed = (0..200).filter(|_| flock_held(&path) != Some(true)).count();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        churn.join().unwrap();
        assert_eq!(
            missed, 0,
            "a held lock was reported free {missed} times in 200"
        );
    }
}
