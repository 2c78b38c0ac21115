//! `congvan backup --to DIR` (SPEC "Operating it"): a consistent copy of the database, the
//! keys, the spool and the archive, while the daemon runs. The SQLite database is copied
//! with `VACUUM INTO` (one read transaction: a snapshot of a committed state); the spool is
//! copied after it, so every message the snapshot holds has its file (one delivered since is
//! missing, and is held as such after a restore rather than sent twice). PostgreSQL is backed
//! up with its own tools (`pg_dump`); the files are copied all the same. docs/restore.md says
//! how to restore.

use std::path::{Path, PathBuf};

use sea_orm::ConnectionTrait;
use serde::Serialize;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the database copy failed: {0}")]
    Db(#[from] sea_orm::DbErr),
    #[error("{0} already exists: give a new directory, or remove it")]
    Exists(PathBuf),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> BackupError + '_ {
    move |source| BackupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What a backup holds.
#[derive(Debug, Default, Serialize)]
pub struct Backup {
    pub dir: PathBuf,
    /// The SQLite copy, or None for PostgreSQL (see `postgres`).
    pub database: Option<PathBuf>,
    /// For PostgreSQL: the command to run for the database.
    pub postgres: Option<String>,
    pub files: u64,
    pub bytes: u64,
}

/// Backs up `config`'s data into `to`, a directory that must not exist yet (made 0700).
pub async fn run(
    config: &Config,
    db: &sea_orm::DatabaseConnection,
    to: &Path,
) -> Result<Backup, BackupError> {
    if to.exists() {
        return Err(BackupError::Exists(to.to_path_buf()));
    }
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(to)
            .map_err(io(to))?;
    }
    let mut b = Backup {
        dir: to.to_path_buf(),
        ..Default::default()
    };
    let url = config.database_url();
    if crate::check::sqlite_file(&url).is_some() {
        let copy = to.join("congvan.db");
        let quoted = copy.display().to_string().replace('\'', "''");
        db.execute_unprepared(&format!("VACUUM INTO '{quoted}'"))
            .await?;
        b.bytes += std::fs::metadata(&copy).map_err(io(&copy))?.len();
        b.files += 1;
        b.database = Some(copy);
    } else {
        b.postgres = Some(format!(
            "pg_dump --format=custom --file={} '<database_url>'",
            to.join("congvan.pgdump").display()
        ));
    }
    // After the database: every queued message of the snapshot has its spool file.
    for sub in ["keys", "spool", "archive"] {
        let from = config.data_dir.join(sub);
        if from.exists() {
            copy_tree(&from, &to.join(sub), &mut b)?;
        }
    }
    Ok(b)
}

/// Copies a directory tree, keeping each file's permission bits.
fn copy_tree(from: &Path, to: &Path, b: &mut Backup) -> Result<(), BackupError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(to).map_err(io(to))?;
    let mode = std::fs::metadata(from)
        .map_err(io(from))?
        .permissions()
        .mode();
    std::fs::set_permissions(to, std::fs::Permissions::from_mode(mode)).map_err(io(to))?;
    for entry in std::fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io(&path))?;
        if kind.is_dir() {
            copy_tree(&path, &target, b)?;
        } else if kind.is_file() {
            match std::fs::copy(&path, &target) {
                Ok(n) => {
                    b.files += 1;
                    b.bytes += n;
                }
                // A spool file removed after its delivery, between listing and copying.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(&path)(e)),
            }
        }
    }
    Ok(())
}
