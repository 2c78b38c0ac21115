//! Reading the registers: `register list` and `register show`. Date filters become ranges of
//! `accepted_at` so the `(direction, accepted_at)` index serves both the filter and the
//! newest-first order; a number filter uses `(direction, number_key)`.

use futures_util::Stream;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select, StreamTrait,
};
use time::Date;

use crate::queue::Direction;
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
    let mut q = entry::Entity::find().filter(entry::Column::Direction.eq(f.direction.as_str()));
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
    db: &impl ConnectionTrait,
    id: &str,
) -> Result<Option<(entry::Model, Vec<rr::Model>)>, DbErr> {
    let Some(e) = entry::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let rcpts = rr::Entity::find()
        .filter(rr::Column::EntryId.eq(id))
        .order_by_asc(rr::Column::Id)
        .all(db)
        .await?;
    Ok(Some((e, rcpts)))
}
