//! Jobs that run on one node at a time (SPEC "Several nodes on one PostgreSQL"): the deadline
//! monitor and archive pruning. A daemon runs them while it holds the job's row in
//! `leader_lease` (its `claimed_by` name and a time until which the row is its own); it
//! renews the row on each beat and gives it up when it stops. A daemon that dies keeps the
//! row until the time passes, then another node takes it over. One upsert decides, so two
//! nodes can never both see themselves as the holder of a live row.

use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use crate::store::entity::leader_lease as lease;

/// The deadline monitor and archive pruning (one beat runs both).
pub const MONITOR: &str = "monitor";

/// Takes or renews the job `name` for `holder` until `now + ttl_ms`, when no other holder's
/// time is still running. True when `holder` now holds it.
pub async fn hold<C: ConnectionTrait>(
    db: &C,
    name: &str,
    holder: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<bool, DbErr> {
    let row = lease::ActiveModel {
        name: Set(name.to_string()),
        holder: Set(holder.to_string()),
        until: Set(now.saturating_add(ttl_ms)),
    };
    let free = Expr::col((lease::Entity, lease::Column::Holder))
        .eq(holder)
        .or(Expr::col((lease::Entity, lease::Column::Until)).lt(now));
    let changed = lease::Entity::insert(row)
        .on_conflict(
            OnConflict::column(lease::Column::Name)
                .update_columns([lease::Column::Holder, lease::Column::Until])
                .action_and_where(free)
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(changed == 1)
}

/// Gives the job up at once (a daemon that stops), so another node need not wait for the
/// time to pass.
pub async fn release<C: ConnectionTrait>(db: &C, name: &str, holder: &str) -> Result<(), DbErr> {
    lease::Entity::delete_many()
        .filter(lease::Column::Name.eq(name))
        .filter(lease::Column::Holder.eq(holder))
        .exec(db)
        .await?;
    Ok(())
}

/// Who holds the job `name`, and until when (Unix ms).
pub async fn holder<C: ConnectionTrait>(
    db: &C,
    name: &str,
) -> Result<Option<(String, i64)>, DbErr> {
    Ok(lease::Entity::find_by_id(name)
        .one(db)
        .await?
        .map(|r| (r.holder, r.until)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_holder_at_a_time_and_the_next_takes_over_when_the_time_passed() {
        let (db, _dir) = crate::store::test_database().await;
        assert!(hold(&db, MONITOR, "a/1.x", 1_000, 100).await.unwrap());
        assert!(
            !hold(&db, MONITOR, "b/2.y", 1_050, 100).await.unwrap(),
            "a's time runs"
        );
        assert!(
            hold(&db, MONITOR, "a/1.x", 1_090, 100).await.unwrap(),
            "a renews"
        );
        assert!(
            !hold(&db, MONITOR, "b/2.y", 1_180, 100).await.unwrap(),
            "renewed to 1190"
        );
        assert!(
            hold(&db, MONITOR, "b/2.y", 1_191, 100).await.unwrap(),
            "a's time passed"
        );
        assert_eq!(
            holder(&db, MONITOR).await.unwrap(),
            Some(("b/2.y".into(), 1_291))
        );
        assert!(!hold(&db, MONITOR, "a/1.x", 1_200, 100).await.unwrap());
        release(&db, MONITOR, "a/1.x").await.unwrap();
        assert!(
            holder(&db, MONITOR).await.unwrap().is_some(),
            "a cannot give up b's job"
        );
        release(&db, MONITOR, "b/2.y").await.unwrap();
        assert!(
            hold(&db, MONITOR, "a/1.x", 1_210, 100).await.unwrap(),
            "free after release"
        );
    }
}
