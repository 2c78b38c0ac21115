//! Copies of outgoing documents as sent (bản lưu): the sealed bytes of the attempt that first
//! delivered, kept for `[register] archive_days`. With SQLite, a file under
//! `data_dir/archive/YYYY-MM/<id>.eml`, flushed to disk by a once-a-second syncfs (not one
//! fsync each); with PostgreSQL, a row of `archive_content` written in the attempt's
//! transaction, so every node can read it and one node prunes it. The register row names
//! the file (or [`IN_DATABASE`]); pruning removes the copy and clears the name, the row stays.

use std::io::Write;
use std::path::{Path, PathBuf};

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    TransactionTrait,
};

use crate::store::entity::archive_content;
use crate::store::entity::register_entry as entry;

/// The register's `archive_path` of a copy kept in the database (`archive_content`).
pub const IN_DATABASE: &str = "database: archive_content";

/// A copy to record with the delivery attempt: where it is, until when it is kept, and, when
/// it goes to the database, its bytes (shared: the attempt's result may be committed twice).
#[derive(Debug, Clone)]
pub struct Copy {
    pub place: String,
    pub until: i64,
    pub content: Option<std::sync::Arc<[u8]>>,
}

/// Inserts a copy's bytes kept in the database, in the caller's transaction (a copy already
/// there stays: the first delivery's copy is the one kept).
pub async fn insert_content(
    db: &impl ConnectionTrait,
    id: &str,
    content: &[u8],
) -> Result<(), DbErr> {
    use sea_orm::sea_query::OnConflict;
    archive_content::Entity::insert(archive_content::ActiveModel {
        id: sea_orm::ActiveValue::Set(id.to_string()),
        content: sea_orm::ActiveValue::Set(content.to_vec()),
    })
    .on_conflict(
        OnConflict::column(archive_content::Column::Id)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The bytes of document `id`'s copy kept in the database, if there is one.
pub async fn content_in_database(
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<Vec<u8>>, DbErr> {
    Ok(archive_content::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(|r| r.content))
}

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
pub async fn prune(db: &sea_orm::DatabaseConnection, now_ms: i64) -> Result<usize, DbErr> {
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
        match path.as_deref() {
            Some(IN_DATABASE) => {
                let txn = db.begin().await?;
                archive_content::Entity::delete_by_id(id.as_str())
                    .exec(&txn)
                    .await?;
                clear(&txn, id).await?;
                txn.commit().await?;
            }
            Some(path) => match std::fs::remove_file(path) {
                Ok(()) => clear(db, id).await?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => clear(db, id).await?,
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
            },
            None => clear(db, id).await?,
        }
        tracing::info!(register_id = %id, "archived copy removed at the end of its retention");
    }
    Ok(due.len())
}

/// The register row no longer names a copy.
async fn clear(db: &impl ConnectionTrait, id: &str) -> Result<(), DbErr> {
    entry::Entity::update_many()
        .col_expr(entry::Column::ArchivePath, Expr::value(None::<String>))
        .col_expr(entry::Column::ArchiveUntil, Expr::value(None::<i64>))
        .filter(entry::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Direction, NewMessage, NewRecipient, Route};
    use sea_orm::ActiveModelTrait;

    #[tokio::test]
    async fn copies_past_their_retention_are_removed_and_the_row_stays() {
        let (db, dir) = crate::store::test_database().await;
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
        // Copies kept in the database (PostgreSQL), one past its retention.
        for (id, until) in [("old-db", now - 1), ("kept-db", now + 86_400_000)] {
            let (row, _) = crate::register::book::accepted(id, &meta, now).unwrap();
            row.insert(&db).await.unwrap();
            insert_content(&db, id, b"sealed bytes").await.unwrap();
            entry::Entity::update_many()
                .col_expr(entry::Column::ArchivePath, Expr::value(IN_DATABASE))
                .col_expr(entry::Column::ArchiveUntil, Expr::value(until))
                .filter(entry::Column::Id.eq(id))
                .exec(&db)
                .await
                .unwrap();
        }
        assert_eq!(prune(&db, now).await.unwrap(), 2);
        assert_eq!(content_in_database(&db, "old-db").await.unwrap(), None);
        assert_eq!(
            content_in_database(&db, "kept-db")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"sealed bytes"[..])
        );
        assert!(!path_for(dir.path(), "old", now).exists());
        assert!(path_for(dir.path(), "kept", now).exists());
        let old = entry::Entity::find_by_id("old")
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old.archive_path, None, "the row stays, without its copy");
        let old_db = entry::Entity::find_by_id("old-db")
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(old_db.archive_path, None);
        assert_eq!(prune(&db, now).await.unwrap(), 0, "nothing left to prune");
        db.close().await.ok();
    }
}
