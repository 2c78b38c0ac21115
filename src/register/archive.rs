//! Copies of outgoing documents as sent (bản lưu): the sealed bytes of the attempt that first
//! delivered, under `data_dir/archive/YYYY-MM/<id>.eml`, kept for `[register] archive_days`.
//! The register row names the file; pruning removes the file and clears the name, the row
//! stays.

use std::io::Write;
use std::path::{Path, PathBuf};

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use crate::store::entity::register_entry as entry;

/// Where the copy of document `id`, sent at `at_ms`, goes.
pub fn path_for(data_dir: &Path, id: &str, at_ms: i64) -> PathBuf {
    let month = &super::book::register_date(at_ms)[..7];
    data_dir
        .join("archive")
        .join(month)
        .join(format!("{id}.eml"))
}

/// Writes `bytes` to `path` durably: a temporary name, fsync, rename, fsync of the folder.
pub async fn write(path: PathBuf, bytes: Vec<u8>) -> std::io::Result<()> {
    tokio::task::spawn_blocking(move || {
        let dir = path.parent().ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "archive path has no folder",
            )
        })?;
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension("eml.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Removes the copies whose retention ended before `now_ms`; returns how many.
pub async fn prune(db: &impl ConnectionTrait, now_ms: i64) -> Result<usize, DbErr> {
    let due: Vec<(String, Option<String>)> = entry::Entity::find()
        .select_only()
        .column(entry::Column::Id)
        .column(entry::Column::ArchivePath)
        .filter(entry::Column::ArchiveUntil.lt(now_ms))
        .limit(1000)
        .into_tuple()
        .all(db)
        .await?;
    for (id, path) in &due {
        if let Some(path) = path {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(register_id = %id, %path, error = %e, "archived copy not removed; will retry");
                    continue;
                }
            }
        }
        entry::Entity::update_many()
            .col_expr(entry::Column::ArchivePath, Expr::value(None::<String>))
            .col_expr(entry::Column::ArchiveUntil, Expr::value(None::<i64>))
            .filter(entry::Column::Id.eq(id.as_str()))
            .exec(db)
            .await?;
        tracing::info!(register_id = %id, "archived copy removed at the end of its retention");
    }
    Ok(due.len())
}
