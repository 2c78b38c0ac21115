//! What the policy keeps in the database: the metadata of refused documents (never their
//! content) and the document numbers issued per office per year, for the uniqueness rule.
//! The tables are created by migration `m0002_policy`; the registers build on them.
//!
//! A number is reserved (a row inserted, the unique index deciding races between sessions)
//! before the message is queued, confirmed once the queue has committed it, and released if
//! the queue refuses it. A reservation left unconfirmed by a crash is settled at start-up:
//! kept if its message was committed, removed otherwise.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set, SqlErr,
};

use super::levels::{Secrecy, Urgency};
use super::number;
use crate::util::now_ms;

/// A refused document's metadata (bảng `refusal`).
pub mod refusal {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "refusal")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// Unix ms.
        pub at: i64,
        pub listener: String,
        pub client_ip: String,
        pub account: Option<String>,
        /// Envelope sender; empty for the null sender.
        pub sender: String,
        /// JSON array of the envelope recipients.
        pub recipients: String,
        /// ASCII forms (`hoa-toc`, `toi-mat`).
        pub urgency: String,
        pub secrecy: String,
        pub number: Option<String>,
        /// The rule that refused it, e.g. `secrecy.mat`.
        pub rule: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A document number issued by an office in a year (bảng `issued_number`).
pub mod issued_number {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "issued_number")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The issuing office: the header From domain.
        pub office: String,
        pub year: i32,
        /// As written (normalised), e.g. `05/QĐ-UBND`.
        pub number: String,
        /// Upper-cased for comparison; unique with office and year.
        pub number_key: String,
        /// The queue id of the message that carried it first.
        pub queue_id: String,
        /// False between reservation and the queue's commit.
        pub confirmed: bool,
        pub at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// What is recorded about a refused document: envelope and classification, no content.
#[derive(Debug, Clone)]
pub struct RefusalRecord {
    pub listener: String,
    pub client_ip: String,
    pub account: Option<String>,
    pub sender: String,
    pub recipients: Vec<String>,
    pub urgency: Urgency,
    pub secrecy: Secrecy,
    pub number: Option<String>,
    pub rule: String,
}

/// Writes a refusal row.
pub async fn record_refusal(db: &impl ConnectionTrait, r: &RefusalRecord) -> Result<(), DbErr> {
    refusal::ActiveModel {
        at: Set(now_ms()),
        listener: Set(r.listener.clone()),
        client_ip: Set(r.client_ip.clone()),
        account: Set(r.account.clone()),
        sender: Set(r.sender.clone()),
        recipients: Set(serde_json::to_string(&r.recipients).unwrap_or_else(|_| "[]".into())),
        urgency: Set(r.urgency.ascii().into()),
        secrecy: Set(r.secrecy.ascii().into()),
        number: Set(r.number.clone()),
        rule: Set(r.rule.clone()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|_| ())
}

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

/// The message carrying a reserved number was committed.
pub async fn confirm_number(db: &impl ConnectionTrait, id: i64) -> Result<(), DbErr> {
    issued_number::Entity::update_many()
        .col_expr(issued_number::Column::Confirmed, Expr::value(true))
        .filter(issued_number::Column::Id.eq(id))
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
            confirm_number(db, r.id).await?;
            confirmed += 1;
        } else {
            release_number(db, r.id).await?;
            removed += 1;
        }
    }
    Ok((confirmed, removed))
}

/// All refusal rows, newest first (for tests and the future register CLI).
pub async fn refusals(db: &impl ConnectionTrait) -> Result<Vec<refusal::Model>, DbErr> {
    use sea_orm::QueryOrder;
    refusal::Entity::find()
        .order_by_desc(refusal::Column::Id)
        .all(db)
        .await
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

    #[tokio::test]
    async fn refusals_keep_metadata() {
        let (db, dir) = db().await;
        record_refusal(
            &db,
            &RefusalRecord {
                listener: "submission".into(),
                client_ip: "127.0.0.1".into(),
                account: Some("vanthu".into()),
                sender: "vanthu@dev.gov.vn".into(),
                recipients: vec!["a@hanoi.gov.vn".into()],
                urgency: Urgency::Khan,
                secrecy: Secrecy::Mat,
                number: Some("05/QĐ-UBND".into()),
                rule: "secrecy.mat".into(),
            },
        )
        .await
        .unwrap();
        let rows = refusals(&db).await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].secrecy, "mat");
        assert_eq!(rows[0].recipients, "[\"a@hanoi.gov.vn\"]");
        db.close().await.ok();
        let _ = std::fs::remove_dir_all(dir);
    }
}
