//! The [`Store`] handle: opening a database and configuring its connection.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;
use crate::schema;

/// How long a statement waits for another process's write lock before
/// giving up with [`StoreError::Busy`].
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// A handle on one SQLite store. `Send + Sync`; share it as `Arc<Store>`.
///
/// The connection sits behind a `std::sync::Mutex` rather than a tokio one:
/// no method awaits while holding it and every call is a short query, so a
/// blocking lock is cheaper than an async one and cannot be held across an
/// `.await` by mistake.
pub struct Store {
    conn: Mutex<Connection>,
    path: PathBuf,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store at `path`, creating its parent
    /// directories, and upgrades its schema.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            orchestra_state_dir::private::create_private_dir(parent).map_err(|source| {
                StoreError::CreateDir {
                    path: path.to_owned(),
                    source,
                }
            })?;
        }
        make_private(path)?;
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open_error)?;
        configure(&conn, path).map_err(open_error)?;
        Store::from_connection(conn, path.to_owned())
    }

    /// A private, empty store that lives as long as the handle. For tests.
    pub fn open_in_memory() -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let open_error = |source| StoreError::Open {
            path: path.clone(),
            source,
        };
        let conn = Connection::open_in_memory().map_err(open_error)?;
        configure(&conn, &path).map_err(open_error)?;
        Store::from_connection(conn, path)
    }

    fn from_connection(mut conn: Connection, path: PathBuf) -> Result<Store, StoreError> {
        schema::migrate(&mut conn, &path)?;
        Ok(Store {
            conn: Mutex::new(conn),
            path,
        })
    }

    /// The file this store was opened from (`:memory:` for in-memory stores).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The connection, for one short call. A panic in another thread while
    /// it held the lock cannot leave the connection mid-transaction (an
    /// unfinished `Transaction` rolls back on drop), so poisoning is ignored.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn configure(conn: &Connection, path: &Path) -> rusqlite::Result<()> {
    // First, so that switching to WAL below already waits for other openers.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Switching to WAL takes an exclusive lock, and SQLite answers "database is locked" at once
    // (without the busy handler) when another opener holds one meanwhile: wait for it here.
    let began = std::time::Instant::now();
    let mode: String = loop {
        match conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0)) {
            Err(err)
                if err.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && began.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            switched => break switched?,
        }
    };
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        tracing::warn!(
            path = %path.display(),
            mode,
            "store could not switch to WAL; two hubs on this store will wait on each other more"
        );
    }
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Creates the database file 0600 before SQLite does (its WAL and SHM files then take the same
/// mode) and narrows the three files a store made by an older version left wider.
fn make_private(path: &Path) -> Result<(), StoreError> {
    let error = |source| StoreError::MakePrivate {
        path: path.to_owned(),
        source,
    };
    orchestra_state_dir::private::create_private_file(path).map_err(error)?;
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        orchestra_state_dir::private::narrow(Path::new(&side)).map_err(error)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn store_is_send_and_sync() {
        assert_send_sync::<Store>();
    }

    #[test]
    fn open_creates_parent_dirs_and_uses_wal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a").join("b").join("orchestra.db");
        let store = Store::open(&path).unwrap();
        assert!(path.exists());
        let conn = store.conn();
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let fk: i64 = conn
            .pragma_query_value(None, "foreign_keys", |row| row.get(0))
            .unwrap();
        assert_eq!(fk, 1);
    }

    #[test]
    fn the_store_and_its_wal_are_private_and_an_older_wide_store_is_narrowed() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("orchestra.db");
        {
            let store = Store::open(&path).unwrap();
            store.conn().execute_batch("CREATE TABLE t(x)").unwrap();
            assert_eq!(mode(&path), 0o600);
            assert_eq!(mode(&dir.path().join("orchestra.db-wal")), 0o600);
        }
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        drop(Store::open(&path).unwrap());
        assert_eq!(mode(&path), 0o600);
    }
}
