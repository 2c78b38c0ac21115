//! The scheduler: picks due messages (urgent lanes first, then earliest deadline, then
//! arrival), claims each with a conditional UPDATE, and runs deliveries up to the configured
//! concurrency. After a restart, messages left `delivering` are retried at once.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::{Expr, NullOrdering, Order};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::sync::{watch, Semaphore};

use super::delivery::Deliverer;
use super::state;
use crate::store::entity::message;
use crate::util::now_ms;

/// Puts messages interrupted mid-delivery back to `waiting`, due now.
pub async fn recover(db: &DatabaseConnection) -> Result<u64, DbErr> {
    let now = now_ms();
    let res = message::Entity::update_many()
        .col_expr(message::Column::State, Expr::value(state::WAITING))
        .col_expr(message::Column::NextAttemptAt, Expr::value(now))
        .filter(message::Column::State.eq(state::DELIVERING))
        .exec(db)
        .await?;
    if res.rows_affected > 0 {
        tracing::warn!(
            count = res.rows_affected,
            "messages interrupted during delivery are retried now"
        );
    }
    Ok(res.rows_affected)
}

/// Due messages in dispatch order.
async fn due(db: &DatabaseConnection, limit: u64) -> Result<Vec<message::Model>, DbErr> {
    message::Entity::find()
        .filter(message::Column::State.is_in([state::WAITING, state::DEFERRED]))
        .filter(message::Column::NextAttemptAt.lte(now_ms()))
        .order_by(message::Column::Urgency, Order::Desc)
        .order_by_with_nulls(message::Column::DeadlineAt, Order::Asc, NullOrdering::Last)
        .order_by(message::Column::ReceivedAt, Order::Asc)
        .limit(limit)
        .all(db)
        .await
}

/// Claims the given messages in one statement; returns those that were still due (a CLI
/// hold or delete in between leaves a message out).
async fn claim(db: &DatabaseConnection, ids: Vec<String>) -> Result<Vec<message::Model>, DbErr> {
    message::Entity::update_many()
        .col_expr(message::Column::State, Expr::value(state::DELIVERING))
        .col_expr(message::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(message::Column::Id.is_in(ids))
        .filter(message::Column::State.is_in([state::WAITING, state::DEFERRED]))
        .exec_with_returning(db)
        .await
}

pub async fn run(deliverer: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    let db = deliverer.queue.db().clone();
    let wake = deliverer.queue.wake();
    let slots = Arc::new(Semaphore::new(deliverer.config.queue.concurrency));
    if let Err(e) = recover(&db).await {
        tracing::error!(error = %e, "could not recover interrupted deliveries");
    }
    loop {
        if *shutdown.borrow() {
            break;
        }
        let free = slots.available_permits();
        if free > 0 {
            let picked = match due(&db, free as u64).await {
                Ok(msgs) if msgs.is_empty() => Ok(Vec::new()),
                Ok(msgs) => {
                    // Keep dispatch order: RETURNING does not promise it.
                    let order: Vec<String> = msgs.into_iter().map(|m| m.id).collect();
                    claim(&db, order.clone()).await.map(|mut claimed| {
                        claimed.sort_by_key(|m| order.iter().position(|id| *id == m.id));
                        claimed
                    })
                }
                Err(e) => Err(e),
            };
            match picked {
                Ok(claimed) => {
                    for m in claimed {
                        // At most `free` were claimed and only this loop takes permits.
                        let Ok(permit) = slots.clone().acquire_owned().await else {
                            break;
                        };
                        let d = deliverer.clone();
                        tokio::spawn(async move {
                            let wake = d.queue.wake();
                            d.deliver(m).await;
                            drop(permit);
                            wake.notify_one();
                        });
                    }
                }
                Err(e) => tracing::error!(error = %e, "scheduler query failed"),
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(1000)) => {}
            _ = shutdown.changed() => {}
        }
    }
    // Let deliveries in flight finish so their results are recorded.
    let total = deliverer.config.queue.concurrency as u32;
    let _ = tokio::time::timeout(Duration::from_secs(30), slots.acquire_many(total)).await;
}
