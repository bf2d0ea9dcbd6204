//! berth's metadata database: one SQLite file under the data root, in WAL
//! mode, with one writer. Each domain crate (images, containers, volumes,
//! networks) owns its tables and registers its migrations here; every change
//! it makes goes through [`Db::tx`], so a daemon killed mid-operation leaves
//! either the old or the new state, never half of it (Podman moved from
//! BoltDB to SQLite for exactly this).

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use berth_error::ErrorKind;
pub use rusqlite;
use rusqlite::{Connection, OptionalExtension, Transaction};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("metadata database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("metadata database lock poisoned")]
    Poisoned,
    #[error("metadata schema of {component} is version {found}, newer than this berth knows ({known}); refusing to touch it")]
    TooNew { component: String, found: i64, known: i64 },
}

impl Error {
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Sqlite(rusqlite::Error::QueryReturnedNoRows) => ErrorKind::NotFound,
            Error::Sqlite(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::ConstraintViolation =>
            {
                ErrorKind::Conflict
            }
            _ => ErrorKind::Internal,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// A handle on the metadata database. Cheap to share in an `Arc`.
#[derive(Debug)]
pub struct Db {
    conn: Mutex<Connection>,
}

impl Db {
    /// Opens (creating if needed) the database file.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)?;
        Self::setup(conn)
    }

    /// An in-memory database, for unit tests of the domain crates.
    pub fn open_in_memory() -> Result<Self> {
        Self::setup(Connection::open_in_memory()?)
    }

    fn setup(conn: Connection) -> Result<Self> {
        // WAL: readers never block the writer. synchronous=NORMAL: a commit
        // is durable once it is in the WAL file, so a daemon killed at any
        // point (even -9) keeps every committed transaction; only a crash of
        // the machine itself can lose the last few, and never corrupts the
        // file. FULL would add an fsync to each of the five or so commits of
        // a `run --rm`, which is most of a container's start budget.
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS schema_versions (
                component TEXT PRIMARY KEY,
                version INTEGER NOT NULL
            );",
        )?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn lock(&self) -> Result<MutexGuard<'_, Connection>> {
        self.conn.lock().map_err(|_| Error::Poisoned)
    }

    /// Applies the migrations of one component that have not run yet. Each
    /// migration runs in its own transaction together with the version bump.
    pub fn migrate(&self, component: &str, migrations: &[&str]) -> Result<()> {
        let mut conn = self.lock()?;
        let tx = conn.transaction()?;
        let current: i64 = tx
            .query_row("SELECT version FROM schema_versions WHERE component = ?1", [component], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let known = migrations.len() as i64;
        if current > known {
            return Err(Error::TooNew { component: component.into(), found: current, known });
        }
        for (i, sql) in migrations.iter().enumerate().skip(current as usize) {
            tx.execute_batch(sql)?;
            tx.execute(
                "INSERT INTO schema_versions(component, version) VALUES (?1, ?2)
                 ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                rusqlite::params![component, i as i64 + 1],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Runs `f` in one transaction: committed if it returns Ok, rolled back otherwise.
    pub fn tx<T, E>(&self, f: impl FnOnce(&Transaction<'_>) -> std::result::Result<T, E>) -> std::result::Result<T, E>
    where
        E: From<Error>,
    {
        let mut conn = self.lock()?;
        let tx = conn.transaction().map_err(Error::from)?;
        let out = f(&tx)?;
        tx.commit().map_err(Error::from)?;
        Ok(out)
    }

    /// Runs read-only queries.
    pub fn read<T, E>(&self, f: impl FnOnce(&Connection) -> std::result::Result<T, E>) -> std::result::Result<T, E>
    where
        E: From<Error>,
    {
        let conn = self.lock()?;
        f(&conn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_tx_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("m.db")).unwrap();
        let migs = ["CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)", "ALTER TABLE t ADD COLUMN w TEXT"];
        db.migrate("test", &migs).unwrap();
        db.migrate("test", &migs).unwrap();
        db.tx(|tx| tx.execute("INSERT INTO t(k, v) VALUES ('a', 1)", []).map_err(Error::from)).unwrap();
        let r: Result<()> = db.tx(|tx| {
            tx.execute("INSERT INTO t(k, v) VALUES ('b', 2)", [])?;
            Err(Error::Poisoned)
        });
        assert!(r.is_err());
        let n: i64 = db.read(|c| c.query_row("SELECT count(*) FROM t", [], |r| r.get(0)).map_err(Error::from)).unwrap();
        assert_eq!(n, 1);
        let dup = db.tx(|tx| tx.execute("INSERT INTO t(k, v) VALUES ('a', 1)", []).map_err(Error::from));
        assert_eq!(dup.unwrap_err().kind(), ErrorKind::Conflict);
        assert!(matches!(db.migrate("test", &migs[..1]), Err(Error::TooNew { .. })));
    }
}
