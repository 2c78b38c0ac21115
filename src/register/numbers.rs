//! The document numbers issued per office per year (số văn bản), for the policy's uniqueness
//! rule (`[number] unique_per_year`; table `issued_number`, migration `m0002_policy`).
//!
//! A number is reserved (a row inserted, the unique index deciding races between sessions)
//! before the message is queued, confirmed in the transaction that commits it, and released if
//! the queue refuses it. A reservation left unconfirmed by a crash is settled at start-up:
//! kept if its message was committed, removed otherwise.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, SqlErr,
};

use crate::policy::number;
use crate::store::entity::issued_number;
use crate::util::now_ms;

/// The outcome of [`reserve_number`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reservation {
    /// Newly reserved: confirm after the queue commits, release if it does not.
    Reserved { id: i64 },
    /// Already issued (or being issued) for another message.
    Duplicate { first_queue_id: String },
    /// Already issued, and the message says it is a resend: nothing reserved.
    Resend { first_queue_id: String },
}

/// Reserves `number` for `office` in `year` on behalf of queue id `queue_id`.
pub async fn reserve_number(
    db: &impl ConnectionTrait,
    office: &str,
    year: i32,
    number_text: &str,
    queue_id: &str,
    resend: bool,
) -> Result<Reservation, DbErr> {
    let key = number::key(number_text);
    let earlier = |first: issued_number::Model| {
        if resend {
            Reservation::Resend {
                first_queue_id: first.queue_id,
            }
        } else {
            Reservation::Duplicate {
                first_queue_id: first.queue_id,
            }
        }
    };
    if let Some(first) = find_issued(db, office, year, number_text).await? {
        return Ok(earlier(first));
    }
    let row = issued_number::ActiveModel {
        office: Set(office.to_ascii_lowercase()),
        year: Set(year),
        number: Set(number_text.to_string()),
        number_key: Set(key),
        queue_id: Set(queue_id.to_string()),
        confirmed: Set(false),
        at: Set(now_ms()),
        ..Default::default()
    };
    match row.insert(db).await {
        Ok(m) => Ok(Reservation::Reserved { id: m.id }),
        // Another session took it between our look-up and our insert.
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            match find_issued(db, office, year, number_text).await? {
                Some(first) => Ok(earlier(first)),
                None => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The row of an issued number, if any.
pub async fn find_issued(
    db: &impl ConnectionTrait,
    office: &str,
    year: i32,
    number_text: &str,
) -> Result<Option<issued_number::Model>, DbErr> {
    issued_number::Entity::find()
        .filter(issued_number::Column::Office.eq(office.to_ascii_lowercase()))
        .filter(issued_number::Column::Year.eq(year))
        .filter(issued_number::Column::NumberKey.eq(number::key(number_text)))
        .one(db)
        .await
}

/// The messages carrying these reserved numbers were committed.
pub async fn confirm_numbers(db: &impl ConnectionTrait, ids: Vec<i64>) -> Result<(), DbErr> {
    if ids.is_empty() {
        return Ok(());
    }
    issued_number::Entity::update_many()
        .col_expr(issued_number::Column::Confirmed, Expr::value(true))
        .filter(issued_number::Column::Id.is_in(ids))
        .exec(db)
        .await
        .map(|_| ())
}

/// The message carrying these numbers was deleted before it left: they are free again.
pub async fn release_numbers_of(db: &impl ConnectionTrait, queue_id: &str) -> Result<(), DbErr> {
    issued_number::Entity::delete_many()
        .filter(issued_number::Column::QueueId.eq(queue_id))
        .exec(db)
        .await
        .map(|_| ())
}

/// The message carrying a reserved number was not committed: the number is free again.
pub async fn release_number(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    issued_number::Entity::delete_many()
        .filter(issued_number::Column::Id.eq(id))
        .filter(issued_number::Column::Confirmed.eq(false))
        .exec(db)
        .await
        .map(|_| ())
}

/// At start-up: confirms reservations whose message is in the queue and removes the others
/// (a crash between reservation and commit). Returns (confirmed, removed).
pub async fn settle_reservations(db: &impl ConnectionTrait) -> Result<(u64, u64), DbErr> {
    use crate::store::entity::message;
    let pending = issued_number::Entity::find()
        .filter(issued_number::Column::Confirmed.eq(false))
        .all(db)
        .await?;
    let (mut confirmed, mut removed) = (0, 0);
    for r in pending {
        if message::Entity::find_by_id(r.queue_id.clone())
            .one(db)
            .await?
            .is_some()
        {
            confirm_numbers(db, vec![r.id]).await?;
            confirmed += 1;
        } else {
            release_number(db, r.id).await?;
            removed += 1;
        }
    }
    Ok((confirmed, removed))
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn db() -> (sea_orm::DatabaseConnection, std::path::PathBuf) {
        let dir =
            std::env::temp_dir().join(format!("congvan-records-{}", crate::util::new_queue_id()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}/t.db", dir.display());
        (crate::store::open(&url).await.unwrap(), dir)
    }

    #[tokio::test]
    async fn numbers_are_unique_per_office_and_year() {
        let (db, dir) = db().await;
        let r = reserve_number(&db, "dev.gov.vn", 2026, "05/QĐ-UBND", "q1", false)
            .await
            .unwrap();
        let Reservation::Reserved { id } = r else {
            panic!("{r:?}")
        };
        // Same number, other case: a duplicate; with resend: allowed, nothing reserved.
        assert_eq!(
            reserve_number(&db, "DEV.gov.vn", 2026, "05/qđ-ubnd", "q2", false)
                .await
                .unwrap(),
            Reservation::Duplicate {
                first_queue_id: "q1".into()
            }
        );
        assert_eq!(
            reserve_number(&db, "dev.gov.vn", 2026, "05/QĐ-UBND", "q2", true)
                .await
                .unwrap(),
            Reservation::Resend {
                first_queue_id: "q1".into()
            }
        );
        // Another year, another office: free.
        for (office, year) in [("dev.gov.vn", 2027), ("hanoi.gov.vn", 2026)] {
            assert!(matches!(
                reserve_number(&db, office, year, "05/QĐ-UBND", "q3", false)
                    .await
                    .unwrap(),
                Reservation::Reserved { .. }
            ));
        }
        // Released (the queue refused the message): free again.
        release_number(&db, id).await.unwrap();
        assert!(matches!(
            reserve_number(&db, "dev.gov.vn", 2026, "05/QĐ-UBND", "q4", false)
                .await
                .unwrap(),
            Reservation::Reserved { .. }
        ));
        // No message rows: every unconfirmed reservation is removed at start-up.
        assert_eq!(settle_reservations(&db).await.unwrap(), (0, 3));
        db.close().await.ok();
        let _ = std::fs::remove_dir_all(dir);
    }
}
