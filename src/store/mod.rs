//! The database: connection (SQLite by default, PostgreSQL as the other backend), migrations,
//! and the sea-orm entities. Every command calls [`open`], which creates the database file and
//! applies pending migrations, so an install can be provisioned before the daemon first runs.
//!
//! Storage faults: a connection goes back to the pool only when it is outside any transaction
//! (see [`connection_is_clean`]); one that a failed commit or a failed statement left inside
//! one is closed, which rolls it back and frees SQLite's write lock.

pub mod batch;
pub mod entity;
pub mod migration;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use sea_orm_migration::MigratorTrait;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("cannot open database {url}: {source}")]
    Connect { url: String, source: DbErr },
    #[error("cannot migrate database {url}: {source}")]
    Migrate { url: String, source: DbErr },
    #[error("cannot create directory for {path}: {source}")]
    Dir {
        path: String,
        source: std::io::Error,
    },
}

/// Opens the database and brings its schema up to date.
pub async fn open(url: &str) -> Result<DatabaseConnection, StoreError> {
    let url = normalise_url(url)?;
    let failures = Arc::new(FailureClock::new());
    let mut opts = ConnectOptions::new(url.clone());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(15));
    if url.starts_with("sqlite:") {
        // WAL lets the CLI read while the daemon writes; FULL makes every commit durable
        // before we answer 250; the busy timeout lets CLI and daemon share the file.
        opts.max_connections(8).min_connections(1);
        opts.map_sqlx_sqlite_opts(|o| {
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(15))
                .foreign_keys(true)
        });
        let clock = failures.clone();
        opts.map_sqlx_sqlite_pool_opts(move |o| {
            let clock = clock.clone();
            let released = clock.clone();
            o.after_release(move |conn, _| {
                // Asking SQLite itself is a round trip to the connection's worker thread,
                // and this runs after every statement: done only when sqlx's own depth says
                // a transaction is open or a statement failed lately (the states that
                // `connection_is_clean` looks for all follow a failed statement, COMMIT or
                // ROLLBACK, and a failed COMMIT or ROLLBACK leaves the depth above 0).
                use sea_orm::sqlx::Connection as _;
                let ask = conn.is_in_transaction() || released.failed_within(RECENT_FAILURE);
                Box::pin(async move {
                    if ask {
                        sqlite_connection_is_clean(conn).await
                    } else {
                        Ok(true)
                    }
                })
            })
            .before_acquire(move |conn, meta| {
                let fresh = clock.opened_since_last_failure(meta.age);
                Box::pin(
                    async move { Ok(fresh && connection_is_clean(&*conn, SqliteState::CLEAN)) },
                )
            })
        });
    } else {
        opts.max_connections(16);
        opts.map_sqlx_postgres_pool_opts(|o| {
            o.after_release(|conn, _| {
                Box::pin(async move { Ok(connection_is_clean(&*conn, SqliteState::CLEAN)) })
            })
            .before_acquire(|conn, _| {
                Box::pin(async move { Ok(connection_is_clean(&*conn, SqliteState::CLEAN)) })
            })
        });
    }
    let mut db = Database::connect(opts)
        .await
        .map_err(|source| StoreError::Connect {
            url: redact(&url),
            source,
        })?;
    if url.starts_with("sqlite:") {
        db.set_metric_callback(move |info| {
            if info.failed {
                failures.note();
            }
        });
    }
    migration::Migrator::up(&db, None)
        .await
        .map_err(|source| StoreError::Migrate {
            url: redact(&url),
            source,
        })?;
    Ok(db)
}

/// Whether a pooled connection may be used again: sqlx's transaction depth is 0 and, on
/// SQLite, the database itself is in autocommit mode and writable (`sqlite`).
///
/// Why: SQLite rolls a transaction back by itself on some errors (disk full, I/O error), so
/// the ROLLBACK that follows fails and sqlx's depth stays at 1 while SQLite is outside any
/// transaction. The next `BEGIN` on that connection is then a `SAVEPOINT`, and after one more
/// failure a `ROLLBACK TO` leaves the transaction open: the next "commit" is a `RELEASE` that
/// commits nothing (a false 250) while the connection keeps the write lock (every other
/// writer gets "database is locked"). And a connection opened while the database file could
/// not be written is opened read-only by SQLite, and would stay so after the fault is gone.
/// A connection found in any of these states is closed (closing rolls back whatever is
/// open); the pool opens a fresh one. On PostgreSQL a failed COMMIT ends the transaction on
/// the server, but a connection whose depth is off is closed all the same.
pub fn connection_is_clean<C: sea_orm::sqlx::Connection>(conn: &C, sqlite: SqliteState) -> bool {
    let clean = !conn.is_in_transaction() && sqlite.autocommit && !sqlite.read_only;
    if !clean {
        tracing::warn!(
            depth_nonzero = conn.is_in_transaction(),
            sqlite_autocommit = sqlite.autocommit,
            sqlite_read_only = sqlite.read_only,
            "database connection left in a transaction or read-only after an error: closed, not reused"
        );
    }
    clean
}

/// How long after a failed statement every released SQLite connection is asked for its state.
const RECENT_FAILURE: Duration = Duration::from_secs(60);

/// When a statement last failed on a SQLite pool. A connection that SQLite opened while the
/// database or its WAL file could not be written is read-only for good (SQLite falls back to
/// read-only when a read-write open fails), and nothing in its state says so after the
/// fault; so every connection opened before the latest failed statement is replaced at its
/// next use. During a fault this reopens connections; once it is gone, each stale connection
/// fails at most once more.
struct FailureClock {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last failure, plus one; 0 when none.
    last: AtomicU64,
}

impl FailureClock {
    fn new() -> Self {
        FailureClock {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn note(&self) {
        self.last.store(self.now_ms() + 1, Ordering::Release);
    }

    /// Whether a statement failed within the last `window`.
    fn failed_within(&self, window: Duration) -> bool {
        let last = self.last.load(Ordering::Acquire);
        last != 0 && self.now_ms() < last.saturating_add(window.as_millis() as u64)
    }

    /// Whether a connection of this age was opened after the last failure.
    fn opened_since_last_failure(&self, age: Duration) -> bool {
        let last = self.last.load(Ordering::Acquire);
        if last == 0 {
            return true;
        }
        let opened = self.now_ms().saturating_sub(age.as_millis() as u64);
        let fresh = opened + 1 > last;
        if !fresh {
            tracing::debug!("database connection older than the last failed statement: reopened");
        }
        fresh
    }
}

/// What SQLite itself says about a connection (all clean for PostgreSQL).
#[derive(Debug, Clone, Copy)]
pub struct SqliteState {
    pub autocommit: bool,
    pub read_only: bool,
}

impl SqliteState {
    pub const CLEAN: SqliteState = SqliteState {
        autocommit: true,
        read_only: false,
    };
}

/// [`connection_is_clean`] for SQLite, asking SQLite whether a transaction is open and
/// whether the main database was opened read-only.
async fn sqlite_connection_is_clean(
    conn: &mut sea_orm::sqlx::sqlite::SqliteConnection,
) -> Result<bool, sea_orm::sqlx::Error> {
    // Taking the handle waits for the connection's worker to finish what was queued before
    // (a rollback queued when a transaction was dropped), so the answers are current.
    let mut handle = conn.lock_handle().await?;
    let raw = handle.as_raw_handle().as_ptr();
    // SAFETY: `raw` is the live handle of this connection, held exclusively through `handle`
    // for the duration of the calls, which only read the connection's state; the schema
    // name is a NUL-terminated literal.
    let state = unsafe {
        SqliteState {
            autocommit: libsqlite3_sys::sqlite3_get_autocommit(raw) != 0,
            read_only: libsqlite3_sys::sqlite3_db_readonly(raw, c"main".as_ptr()) == 1,
        }
    };
    drop(handle);
    Ok(connection_is_clean(&*conn, state))
}

/// The error code the database gave: SQLite's primary result code (the low byte of the
/// extended one) or PostgreSQL's SQLSTATE.
enum DbCode {
    Sqlite(i64),
    Sqlstate(String),
}

fn db_code(e: &DbErr) -> Option<DbCode> {
    use sea_orm::RuntimeErr;
    let sqlx = match e {
        DbErr::Exec(RuntimeErr::SqlxError(e))
        | DbErr::Query(RuntimeErr::SqlxError(e))
        | DbErr::Conn(RuntimeErr::SqlxError(e)) => e,
        _ => return None,
    };
    let code = sqlx.as_database_error()?.code()?;
    Some(
        if code.chars().all(|c| c.is_ascii_digit()) && code.len() < 5 {
            DbCode::Sqlite(code.parse::<i64>().ok()? & 0xff)
        } else {
            DbCode::Sqlstate(code.into_owned())
        },
    )
}

/// The daemon's own writers of the queue (acceptance, delivery results, claims) take turns
/// here on SQLite, which has one writer at a time: waiting in this queue hands the lock on at
/// once, where SQLite's busy handler would sleep 1, 2, 5, 10... ms between tries (tens of
/// milliseconds per delivery under load). A writer that has waited a second goes ahead
/// without its turn: the holder is then stuck on a lock from outside the daemon (another
/// process's transaction), and each writer must meet SQLite's busy timeout on its own, in
/// parallel, so that a session gets its 451 within that timeout rather than after every
/// writer ahead of it has timed out in turn. PostgreSQL writers do not wait: `None`.
pub async fn write_turn(db: &DatabaseConnection) -> Option<tokio::sync::MutexGuard<'static, ()>> {
    static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    if db.get_database_backend() == sea_orm::DbBackend::Sqlite {
        tokio::time::timeout(Duration::from_secs(1), TURN.lock())
            .await
            .ok()
    } else {
        None
    }
}

/// True when a database error means the disk is full (SQLite `SQLITE_FULL`, PostgreSQL
/// `disk_full`): the reply is then 452 4.3.1 rather than 451 4.3.0.
pub fn is_disk_full(e: &DbErr) -> bool {
    match db_code(e) {
        Some(DbCode::Sqlite(c)) => c == 13,
        Some(DbCode::Sqlstate(s)) => s == "53100",
        None => false,
    }
}

/// True when a database error is a storage fault that passes by itself (connection lost or
/// refused, pool exhausted, busy or locked, disk full, I/O error, read-only files, a server
/// shutting down or out of resources, a serialisation conflict): the same statement may
/// succeed later. False for what the same statement would hit again (a constraint, a
/// trigger, bad SQL), which retrying cannot mend.
pub fn is_transient(e: &DbErr) -> bool {
    if matches!(e, DbErr::ConnectionAcquire(_) | DbErr::Conn(_)) {
        return true;
    }
    match db_code(e) {
        // BUSY, LOCKED, READONLY, IOERR, FULL, CANTOPEN, PROTOCOL
        Some(DbCode::Sqlite(c)) => matches!(c, 5 | 6 | 8 | 10 | 13 | 14 | 15),
        // connection exceptions, insufficient resources, operator intervention (shutdown),
        // serialisation failure, deadlock, read-only transaction (a standby after failover)
        Some(DbCode::Sqlstate(s)) => {
            ["08", "53", "57", "58"]
                .iter()
                .any(|class| s.starts_with(class))
                || matches!(s.as_str(), "40001" | "40P01" | "25006")
        }
        // No database code: the connection or its I/O failed.
        None => matches!(
            e,
            DbErr::Exec(sea_orm::RuntimeErr::SqlxError(_))
                | DbErr::Query(sea_orm::RuntimeErr::SqlxError(_))
        ),
    }
}

/// `sqlite://` URLs get `mode=rwc` (sqlx creates the file only then) and their directory.
fn normalise_url(url: &str) -> Result<String, StoreError> {
    let Some(rest) = url.strip_prefix("sqlite:") else {
        return Ok(url.to_string());
    };
    let path_part = rest.trim_start_matches("//");
    let (path, query) = match path_part.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path_part, None),
    };
    if !path.is_empty() && path != ":memory:" {
        if let Some(parent) = std::path::Path::new(path).parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent).map_err(|source| StoreError::Dir {
                    path: path.to_string(),
                    source,
                })?;
            }
        }
    }
    let mut out = format!("sqlite://{path}");
    match query {
        Some(q) if q.contains("mode=") => out.push_str(&format!("?{q}")),
        Some(q) => out.push_str(&format!("?{q}&mode=rwc")),
        None => out.push_str("?mode=rwc"),
    }
    Ok(out)
}

/// A URL without its password, for messages.
pub fn redact(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        if let Some((cred, host)) = rest.split_once('@') {
            if let Some((user, _)) = cred.split_once(':') {
                return format!("{scheme}://{user}:***@{host}");
            }
        }
    }
    url.to_string()
}

/// True when the error means the database could not be reached at all (vs. a query failure).
pub fn is_unavailable(e: &DbErr) -> bool {
    matches!(
        e,
        DbErr::Conn(_) | DbErr::ConnectionAcquire(_) | DbErr::Exec(_) | DbErr::Query(_)
    )
}

/// Cheap liveness check used before answering 250.
pub async fn ping(db: &DatabaseConnection) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

#[cfg(test)]
/// A fresh database: SQLite in a temp dir, or a new PostgreSQL database when
/// CONGVAN_TEST_DATABASE_URL names a server (as the integration tests do).
pub(crate) async fn test_database() -> (DatabaseConnection, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("CONGVAN_TEST_DATABASE_URL") {
        Ok(admin) if !admin.is_empty() => {
            let name = format!("congvan_u_{}", crate::util::new_queue_id());
            let a = sea_orm::Database::connect(&admin).await.unwrap();
            a.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap();
            a.close().await.ok();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}/test.db", dir.path().display()),
    };
    (crate::store::open(&url).await.unwrap(), dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn sqlite_urls_get_rwc() {
        assert_eq!(
            normalise_url("sqlite:///tmp/x/y.db").unwrap(),
            "sqlite:///tmp/x/y.db?mode=rwc"
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
    }

    /// A fault that passes is waited out; an error the same statement would hit again is not
    /// (delivery gives up on it after ten tries instead of wedging a slot).
    #[tokio::test]
    async fn transient_faults_and_errors_that_would_repeat() {
        use sea_orm::{ConnAcquireErr, ConnectionTrait, Database};
        assert!(is_transient(&DbErr::ConnectionAcquire(
            ConnAcquireErr::Timeout
        )));
        let db = Database::connect("sqlite::memory:").await.unwrap();
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            .await
            .unwrap();
        db.execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .unwrap();
        let dup = db
            .execute_unprepared("INSERT INTO t VALUES (1)")
            .await
            .unwrap_err();
        assert!(!is_transient(&dup), "{dup:?}");
        assert!(!is_disk_full(&dup), "{dup:?}");
        db.execute_unprepared(
            "CREATE TRIGGER no BEFORE INSERT ON t BEGIN SELECT RAISE(ABORT, 'fault'); END",
        )
        .await
        .unwrap();
        let trig = db
            .execute_unprepared("INSERT INTO t VALUES (2)")
            .await
            .unwrap_err();
        assert!(!is_transient(&trig), "{trig:?}");
        let sql = db.execute_unprepared("SELEC 1").await.unwrap_err();
        assert!(!is_transient(&sql), "{sql:?}");
    }
}
