//! Copies of outgoing documents as sent (bản lưu): the sealed bytes of the attempt that first
//! delivered, under `data_dir/archive/YYYY-MM/<id>.eml`, kept for `[register] archive_days`.
//! The register row names the file; pruning removes the file and clears the name, the row
//! stays. Copies are flushed to disk by a once-a-second syncfs, not one fsync each.

use std::io::Write;
use std::path::{Path, PathBuf};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

use crate::store::entity::register_entry as entry;

/// Where the copy of document `id`, sent at `at_ms`, goes.
pub fn path_for(data_dir: &Path, id: &str, at_ms: i64) -> PathBuf {
    let month = &super::book::register_date(at_ms)[..7];
    data_dir
        .join("archive")
        .join(month)
        .join(format!("{id}.eml"))
}

/// Writes `bytes` to `path` under a temporary name, then renames it. No fsync here: the copy
/// is made after the document has gone out, and waiting for two fsyncs per document would
/// cost the delivery path more than anything else it does. [`run_syncer`] flushes the
/// archive's file system once a second while copies are being written, so a crash loses at
/// most the copies of the last second (their register rows then name a missing file, which
/// `register show` reports).
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
        std::fs::rename(&tmp, &path)?;
        UNSYNCED.store(true, std::sync::atomic::Ordering::Release);
        Ok(())
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Copies written since the archive was last flushed.
static UNSYNCED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Flushes the archive's file system once a second while copies are being written. The
/// daemon calls [`flush`] once more when its deliveries have stopped.
pub async fn run_syncer(data_dir: PathBuf) {
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        flush(&data_dir).await;
    }
}

/// Flushes `data_dir/archive`'s file system (syncfs) when copies were written since the
/// last flush.
pub async fn flush(data_dir: &Path) {
    if !UNSYNCED.swap(false, std::sync::atomic::Ordering::AcqRel) {
        return;
    }
    let dir = data_dir.join("archive");
    let shown = dir.display().to_string();
    let synced = tokio::task::spawn_blocking(move || sync_file_system(&dir))
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r);
    if let Err(e) = synced {
        UNSYNCED.store(true, std::sync::atomic::Ordering::Release);
        tracing::error!(dir = %shown, error = %e, "archive copies not flushed to disk; will retry");
    }
}

/// syncfs(2) on the file system that holds `dir`.
fn sync_file_system(dir: &Path) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(dir)?;
    // SAFETY: syncfs takes an open descriptor, which `f` keeps open for the call.
    if unsafe { libc::syncfs(f.as_raw_fd()) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Whether document `id` already has its archived copy.
pub async fn has_copy(db: &impl ConnectionTrait, id: &str) -> Result<bool, DbErr> {
    let path: Option<Option<String>> = entry::Entity::find_by_id(id)
        .select_only()
        .column(entry::Column::ArchivePath)
        .into_tuple()
        .one(db)
        .await?;
    Ok(matches!(path, Some(Some(_))))
}

/// Removes the copies whose retention ended before `now_ms`; returns how many.
pub async fn prune(db: &impl ConnectionTrait, now_ms: i64) -> Result<usize, DbErr> {
    let due: Vec<(String, Option<String>)> = entry::Entity::find()
        .select_only()
        .column(entry::Column::Id)
        .column(entry::Column::ArchivePath)
        .filter(entry::Column::ArchiveUntil.lt(now_ms))
        .order_by_asc(entry::Column::ArchiveUntil)
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
                    // Tried again in a day, so it does not hold up the copies behind it.
                    tracing::warn!(register_id = %id, %path, error = %e, "archived copy not removed; will retry");
                    entry::Entity::update_many()
                        .col_expr(
                            entry::Column::ArchiveUntil,
                            Expr::value(now_ms + 86_400_000),
                        )
                        .filter(entry::Column::Id.eq(id.as_str()))
                        .exec(db)
                        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, NewMessage, NewRecipient, Route};
    use sea_orm::ActiveModelTrait;

    #[tokio::test]
    async fn copies_past_their_retention_are_removed_and_the_row_stays() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::store::open(&format!("sqlite://{}/t.db", dir.path().display()))
            .await
            .unwrap();
        let mut meta = NewMessage::generated(
            "vanthu@dev.gov.vn".into(),
            "Quyết định",
            vec![NewRecipient {
                address: "a@hanoi.gov.vn".into(),
                route: Route::Outbound,
                notify: 0,
                orcpt: None,
            }],
        );
        meta.generated = false;
        meta.direction = Direction::Out;
        let now = crate::util::now_ms();
        for (id, until) in [("old", now - 1), ("kept", now + 86_400_000)] {
            let (row, _) = crate::register::book::accepted(id, &meta, now).unwrap();
            row.insert(&db).await.unwrap();
            let path = path_for(dir.path(), id, now);
            write(path.clone(), b"sealed bytes".to_vec()).await.unwrap();
            entry::Entity::update_many()
                .col_expr(
                    entry::Column::ArchivePath,
                    Expr::value(path.display().to_string()),
                )
                .col_expr(entry::Column::ArchiveUntil, Expr::value(until))
                .filter(entry::Column::Id.eq(id))
                .exec(&db)
                .await
                .unwrap();
        }
        assert_eq!(prune(&db, now).await.unwrap(), 1);
        assert!(!path_for(dir.path(), "old", now).exists());
        assert!(path_for(dir.path(), "kept", now).exists());
        let old = entry::Entity::find_by_id("old")
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.archive_path, None, "the row stays, without its copy");
        assert_eq!(prune(&db, now).await.unwrap(), 0, "nothing left to prune");
        db.close().await.ok();
    }
}
