//! Reading the registers: `register list` and `register show`. Date filters become ranges of
//! `accepted_at` so the `(direction, accepted_at)` index serves both the filter and the
//! newest-first order; a number filter uses `(direction, number_key)`.

use futures_util::Stream;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, StreamTrait,
};
use time::Date;

use crate::model::Direction;
use crate::store::entity::{register_entry as entry, register_recipient as rr};

/// What `register list` asks for.
#[derive(Debug, Clone)]
pub struct Filter {
    pub direction: Direction,
    /// First and last register day (Asia/Ho_Chi_Minh), both included.
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// A document number, compared as the uniqueness rule compares them.
    pub number: Option<String>,
    pub state: Option<String>,
}

/// Unix ms of 00:00 in Asia/Ho_Chi_Minh on `day`.
pub fn day_start_ms(day: Date) -> i64 {
    let midnight = day
        .with_hms(0, 0, 0)
        .expect("midnight exists")
        .assume_offset(crate::policy::calendar::VIETNAM_OFFSET);
    (midnight.unix_timestamp_nanos() / 1_000_000) as i64
}

fn select(f: &Filter) -> Select<entry::Entity> {
    let mut q = entry::Entity::find().filter(entry::Column::Direction.eq(f.direction));
    if let Some(from) = f.from {
        q = q.filter(entry::Column::AcceptedAt.gte(day_start_ms(from)));
    }
    if let Some(to) = f.to {
        if let Some(next) = to.next_day() {
            q = q.filter(entry::Column::AcceptedAt.lt(day_start_ms(next)));
        }
    }
    if let Some(n) = &f.number {
        q = q.filter(entry::Column::NumberKey.eq(crate::policy::number::key(n)));
    }
    if let Some(s) = &f.state {
        q = q.filter(entry::Column::State.eq(s.as_str()));
    }
    q
}

/// How many entries match.
pub async fn count(db: &impl ConnectionTrait, f: &Filter) -> Result<u64, DbErr> {
    select(f).count(db).await
}

/// The matching entries, newest first, at most `limit` (all when `None`), as a stream so a
/// year of rows is never held in memory at once.
pub async fn stream<'a, C>(
    db: &'a C,
    f: &Filter,
    limit: Option<u64>,
) -> Result<impl Stream<Item = Result<entry::Model, DbErr>> + 'a, DbErr>
where
    C: ConnectionTrait + StreamTrait,
{
    select(f)
        .order_by_desc(entry::Column::AcceptedAt)
        .order_by_desc(entry::Column::Id)
        .limit(limit)
        .stream(db)
        .await
}

/// One entry and its recipients (the handover book).
pub async fn show(
    db: &sea_orm::DatabaseConnection,
    id: &str,
) -> Result<Option<(entry::Model, Vec<rr::Model>)>, DbErr> {
    use sea_orm::{AccessMode, IsolationLevel, TransactionTrait};
    // One snapshot for the entry and its handover rows: read apart, a delivery committing
    // in between showed a recipient delivered on an entry not yet naming its seal.
    let txn = db
        .begin_with_config(
            Some(IsolationLevel::RepeatableRead),
            Some(AccessMode::ReadOnly),
        )
        .await?;
    let Some(e) = entry::Entity::find_by_id(id).one(&txn).await? else {
        txn.commit().await?;
        return Ok(None);
    };
    let rcpts = rr::Entity::find()
        .filter(rr::Column::EntryId.eq(id))
        .order_by_asc(rr::Column::Id)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(Some((e, rcpts)))
}

/// An entry as `register list --json` and `register show --json` print it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EntryView {
    pub id: String,
    pub direction: Direction,
    pub state: crate::model::EntryState,
    pub timeliness: Option<String>,
    pub rule: Option<String>,
    pub reason: Option<String>,
    pub number: Option<String>,
    pub subject: String,
    pub listener: String,
    pub client_ip: String,
    pub account: Option<String>,
    pub sender: String,
    pub from: String,
    pub recipients: Vec<String>,
    /// ASCII forms (`hoa-toc`, `mat`).
    pub urgency: String,
    pub secrecy: String,
    pub signed_date: Option<String>,
    /// RFC 3339, UTC.
    pub accepted_at: String,
    /// The register's day, Asia/Ho_Chi_Minh.
    pub register_date: String,
    pub deadline: Option<String>,
    pub seal_serial: Option<String>,
    pub seal_digest: Option<String>,
    pub signed_at: Option<String>,
    pub sent_at: Option<String>,
    pub delay_seconds: Option<i64>,
    pub smime_result: Option<String>,
    pub smime_signer: Option<String>,
    pub smime_reason: Option<String>,
    pub archive_path: Option<String>,
}

/// A recipient as the handover book shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RecipientView {
    pub address: String,
    pub route: String,
    pub state: crate::model::RecipientState,
    pub attempts: i32,
    pub reply: Option<String>,
    pub at: Option<String>,
    pub dsn: Option<String>,
}

impl From<entry::Model> for EntryView {
    fn from(e: entry::Model) -> Self {
        use crate::util::rfc3339_ms;
        EntryView {
            recipients: serde_json::from_str(&e.recipients).unwrap_or_default(),
            urgency: crate::policy::Urgency::from_rank(e.urgency)
                .ascii()
                .to_string(),
            secrecy: crate::policy::Secrecy::from_rank(e.secrecy)
                .ascii()
                .to_string(),
            accepted_at: rfc3339_ms(e.accepted_at),
            register_date: e.accepted_date,
            deadline: e.deadline_at.map(rfc3339_ms),
            signed_at: e.signed_at.map(rfc3339_ms),
            sent_at: e.sent_at.map(rfc3339_ms),
            delay_seconds: e.delay_ms.map(|d| d / 1000),
            id: e.id,
            direction: e.direction,
            state: e.state,
            timeliness: e.timeliness,
            rule: e.rule,
            reason: e.reason,
            number: e.number,
            subject: e.subject,
            listener: e.listener,
            client_ip: e.client_ip,
            account: e.account,
            sender: e.sender,
            from: e.header_from,
            signed_date: e.signed_date,
            seal_serial: e.seal_serial,
            seal_digest: e.seal_digest,
            smime_result: e.smime_result,
            smime_signer: e.smime_signer,
            smime_reason: e.smime_reason,
            archive_path: e.archive_path,
        }
    }
}

impl From<rr::Model> for RecipientView {
    fn from(r: rr::Model) -> Self {
        RecipientView {
            at: r.at.map(crate::util::rfc3339_ms),
            address: r.address,
            route: r.route,
            state: r.state,
            attempts: r.attempts,
            reply: r.reply,
            dsn: r.dsn,
        }
    }
}

/// The document number its register entry gives a message, if any.
pub async fn number_of(db: &impl ConnectionTrait, id: &str) -> Result<Option<String>, DbErr> {
    use sea_orm::QuerySelect;
    let n: Option<Option<String>> = entry::Entity::find_by_id(id)
        .select_only()
        .column(entry::Column::Number)
        .into_tuple()
        .one(db)
        .await?;
    Ok(n.flatten())
}
