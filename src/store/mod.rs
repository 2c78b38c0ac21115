//! The database: connection (SQLite by default, PostgreSQL as the other backend), migrations,
//! and the sea-orm entities. Every command calls [`open`], which creates the database file and
//! applies pending migrations, so an install can be provisioned before the daemon first runs.

pub mod entity;
pub mod migration;

use std::time::Duration;

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
    } else {
        opts.max_connections(16);
    }
    let db = Database::connect(opts)
        .await
        .map_err(|source| StoreError::Connect {
            url: redact(&url),
            source,
        })?;
    migration::Migrator::up(&db, None)
        .await
        .map_err(|source| StoreError::Migrate {
            url: redact(&url),
            source,
        })?;
    Ok(db)
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
}
