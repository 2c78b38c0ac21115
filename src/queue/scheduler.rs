//! The scheduler: picks due messages (urgent lanes first, then earliest deadline, then
//! arrival), claims each with a conditional UPDATE, and runs deliveries up to the configured
//! concurrency. After a restart, messages left `delivering` are retried at once; while running,
//! a message marked `delivering` that no delivery of this process holds (a claim whose answer
//! was lost to a database fault) is put back after a minute.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
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

/// How long a message may stay `delivering` without a delivery of this process holding it.
const STRAY_AFTER_MS: i64 = 60_000;

/// Puts back messages left `delivering` by a claim whose result this process never saw
/// (with PostgreSQL, a connection lost after the UPDATE committed): nothing else would take
/// them up again before a restart.
async fn release_strays(
    db: &DatabaseConnection,
    in_flight: &Mutex<HashSet<String>>,
) -> Result<(), DbErr> {
    let now = now_ms();
    let stale: Vec<String> = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(message::Column::State.eq(state::DELIVERING))
        .filter(message::Column::UpdatedAt.lt(now - STRAY_AFTER_MS))
        .into_tuple::<String>()
        .all(db)
        .await?;
    let strays: Vec<String> = {
        let held = in_flight.lock().unwrap_or_else(|p| p.into_inner());
        stale.into_iter().filter(|id| !held.contains(id)).collect()
    };
    if strays.is_empty() {
        return Ok(());
    }
    for id in &strays {
        tracing::warn!(queue_id = %id, "left delivering without a delivery in progress: retried");
    }
    message::Entity::update_many()
        .col_expr(message::Column::State, Expr::value(state::WAITING))
        .col_expr(message::Column::NextAttemptAt, Expr::value(now))
        .col_expr(message::Column::UpdatedAt, Expr::value(now))
        .filter(message::Column::Id.is_in(strays))
        .filter(message::Column::State.eq(state::DELIVERING))
        .exec(db)
        .await?;
    Ok(())
}

/// A message held by a delivery of this process, released when the delivery ends (also by
/// a panic).
struct InFlight {
    set: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl InFlight {
    fn hold(set: &Arc<Mutex<HashSet<String>>>, id: &str) -> InFlight {
        set.lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string());
        InFlight {
            set: set.clone(),
            id: id.to_string(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

pub async fn run(deliverer: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    let db = deliverer.queue.db().clone();
    let wake = deliverer.queue.wake();
    let slots = Arc::new(Semaphore::new(deliverer.config.queue.concurrency));
    let in_flight: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut strays_checked = std::time::Instant::now();
    if let Err(e) = recover(&db).await {
        tracing::error!(error = %e, "could not recover interrupted deliveries");
    }
    loop {
        if *shutdown.borrow() {
            break;
        }
        if strays_checked.elapsed() >= Duration::from_secs(30) {
            strays_checked = std::time::Instant::now();
            if let Err(e) = release_strays(&db, &in_flight).await {
                tracing::error!(error = %e, "could not look for messages left delivering");
            }
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
                        let held = InFlight::hold(&in_flight, &m.id);
                        tokio::spawn(async move {
                            let wake = d.queue.wake();
                            d.deliver(m).await;
                            drop(held);
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
