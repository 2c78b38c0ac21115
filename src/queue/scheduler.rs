//! The scheduler: picks due messages (urgent lanes first, then earliest deadline, then
//! arrival), claims each with a conditional UPDATE, and runs deliveries up to the configured
//! concurrency.
//!
//! The claim also takes the message's lease and counts the attempt (`unfinished_attempts`)
//! before it starts; the attempt's end un-counts it (see `delivery` and `lease`). Messages
//! left `delivering` by a daemon that stopped (at start-up: this node's earlier run; at any
//! time: any whose lease has passed) are taken back: retried at once, or, when two of their
//! attempts did not finish, held as poison (`poison: processing stopped the gateway twice`)
//! with a notice to the escalation addresses, so a message that brings the daemon down is
//! not retried at every restart. A panic in one delivery fails that message only: it is held
//! with the reason `internal error: ...` (see [`Deliverer::contain_panic`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use sea_orm::sea_query::{Expr, LockBehavior, LockType, NullOrdering, Order};
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait,
};
use tokio::sync::{watch, Semaphore};

use super::delivery::Deliverer;
use super::lease::Released;
use super::lease::{holder_gone, Leases};
use super::MessageState;
use crate::policy::Urgency;
use crate::store::entity::{message, recipient};
use crate::util::now_ms;

/// What [`recover`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    /// Put back to `waiting`, due now.
    pub retried: u64,
    /// Held as poison.
    pub poisoned: u64,
}

/// Takes back the messages left `delivering` by a daemon that stopped. `at_start`: this
/// daemon has just started, so this node's earlier runs are over when it holds the daemon
/// lock; later calls take only messages whose lease has passed.
pub async fn recover(d: &Deliverer, at_start: bool) -> Result<Recovered, DbErr> {
    let db = d.queue.db();
    let now = now_ms();
    let node_live = !(at_start && d.leases.sole_daemon_of_node());
    let mut q = message::Entity::find().filter(message::Column::State.eq(MessageState::Delivering));
    if !at_start {
        // The periodic sweep: only an expired lease can mean a stopped daemon.
        q = q.filter(message::Column::LeaseUntil.lt(now));
    }
    let in_flight = d.leases.in_flight();
    let stale: Vec<message::Model> = q
        .all(db)
        .await?
        .into_iter()
        .filter(|m| !in_flight.contains(&m.id))
        .filter(|m| {
            m.claimed_by.as_deref() == Some(d.leases.claim())
                || holder_gone(m, now, d.leases.node(), node_live)
        })
        .collect();
    let mut done = Recovered::default();
    for m in stale {
        // One of this run's attempts that ended without its result being recorded (the
        // database failed under it): it did finish, so it does not count towards poison.
        let ours = m.claimed_by.as_deref() == Some(d.leases.claim());
        if m.unfinished_attempts >= 2 && !ours {
            if d.hold_poison(&m).await? {
                done.poisoned += 1;
            }
            continue;
        }
        let mut update = message::Entity::update_many()
            .col_expr(message::Column::State, Expr::value(MessageState::Waiting))
            .col_expr(message::Column::NextAttemptAt, Expr::value(now))
            .col_expr(message::Column::UpdatedAt, Expr::value(now))
            .released()
            .filter(message::Column::Id.eq(&m.id))
            .filter(message::Column::State.eq(MessageState::Delivering));
        if ours {
            update = update.col_expr(
                message::Column::UnfinishedAttempts,
                super::lease::unfinished_plus(-1),
            );
        }
        update = match &m.claimed_by {
            Some(by) => update.filter(message::Column::ClaimedBy.eq(by.as_str())),
            None => update.filter(message::Column::ClaimedBy.is_null()),
        };
        if update.exec(db).await?.rows_affected == 1 {
            tracing::warn!(queue_id = %m.id, claimed_by = m.claimed_by.as_deref().unwrap_or("-"), unfinished = m.unfinished_attempts, "delivery interrupted (its daemon stopped); retried now");
            done.retried += 1;
        }
    }
    Ok(done)
}

/// The messages due now, in dispatch order (urgent lanes first, then earliest deadline, then
/// arrival).
fn due() -> sea_orm::Select<message::Entity> {
    message::Entity::find()
        .filter(message::Column::State.is_in([MessageState::Waiting, MessageState::Deferred]))
        .filter(message::Column::NextAttemptAt.lte(now_ms()))
        .order_by(message::Column::Urgency, Order::Desc)
        .order_by_with_nulls(message::Column::DeadlineAt, Order::Asc, NullOrdering::Last)
        .order_by(message::Column::ReceivedAt, Order::Asc)
}

/// A claimed message and, when the claim could read them, its recipients (read together for
/// the whole claim: one query, not one per message).
pub(super) type Claimed = (message::Model, Option<Recipients>);

/// A claimed message's recipients as the claim read them: those still to deliver, and the
/// outcomes of those an earlier attempt settled (state, when), which the register's
/// settling needs and so does not read again.
#[derive(Debug, Default)]
pub(super) struct Recipients {
    pub(super) pending: Vec<recipient::Model>,
    pub(super) settled: Vec<(crate::model::RecipientState, i64)>,
}

/// Claims up to `limit` due messages: each gets this run's lease and its attempt is counted
/// before it starts. Returns them in dispatch order, with their recipients.
///
/// One statement picks and claims them. On PostgreSQL, where several nodes share the queue,
/// it skips rows another node is claiming at that moment (`FOR UPDATE SKIP LOCKED`), so nodes
/// never wait on each other nor pick the same message; SQLite has one writer at a time (the
/// daemon's writers take turns, see `store::write_turn`).
///
/// `lane` picks which messages may be claimed: any, or only urgent ones (khẩn and above) for
/// the slots kept for them.
async fn claim_due(
    db: &DatabaseConnection,
    leases: &Leases,
    limit: u64,
    lane: Lane,
) -> Result<Vec<Claimed>, DbErr> {
    let now = now_ms();
    let claim = message::Entity::update_many()
        .col_expr(
            message::Column::State,
            Expr::value(MessageState::Delivering),
        )
        .col_expr(message::Column::UpdatedAt, Expr::value(now))
        .col_expr(message::Column::ClaimedBy, Expr::value(leases.claim()))
        .col_expr(
            message::Column::LeaseUntil,
            Expr::value(now + leases.lease_ms()),
        )
        .col_expr(
            message::Column::UnfinishedAttempts,
            super::lease::unfinished_plus(1),
        )
        .filter(message::Column::State.is_in([MessageState::Waiting, MessageState::Deferred]));
    let mut picked = due().select_only().column(message::Column::Id).limit(limit);
    if lane == Lane::Urgent {
        picked = picked.filter(message::Column::Urgency.gte(Urgency::Khan.rank()));
    }
    let picked = if db.get_database_backend() == DbBackend::Postgres {
        // `= ANY(ARRAY(…))`, not `IN (…)`: the planner may run an IN subquery once per
        // candidate row (a nested-loop semi-join, chosen when its statistics say few rows
        // are due), and each run skips the rows this statement has just claimed and picks
        // others: one claim then took every due message. ARRAY(…) is run once.
        picked = picked.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        Expr::cust_with_exprs(
            "$1 = ANY(ARRAY($2))",
            [
                Expr::col((message::Entity, message::Column::Id)),
                Expr::SubQuery(None, Box::new(picked.into_query().into())),
            ],
        )
    } else {
        // SQLite runs an uncorrelated IN subquery once.
        message::Column::Id.in_subquery(picked.into_query())
    };
    let turn = crate::store::write_turn(db).await;
    let mut claimed = claim.filter(picked).exec_with_returning(db).await?;
    drop(turn);
    // RETURNING does not keep the order.
    claimed.sort_by(|a, b| {
        b.urgency
            .cmp(&a.urgency)
            .then_with(|| match (a.deadline_at, b.deadline_at) {
                (Some(x), Some(y)) => x.cmp(&y),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            })
            .then_with(|| a.received_at.cmp(&b.received_at))
    });
    // The messages are claimed now, whatever this read does: when it fails, each delivery
    // reads its own recipients.
    let mut known = match recipients_of(db, &claimed).await {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!(error = %e, "could not read the claimed messages' recipients together; each delivery reads its own");
            None
        }
    };
    Ok(claimed
        .into_iter()
        .map(|m| {
            let rcpts = known.as_mut().map(|k| k.remove(&m.id).unwrap_or_default());
            (m, rcpts)
        })
        .collect())
}

/// The recipients of `messages`, by message id, the pending ones in recipient order.
async fn recipients_of(
    db: &DatabaseConnection,
    messages: &[message::Model],
) -> Result<std::collections::HashMap<String, Recipients>, DbErr> {
    let mut by_message: std::collections::HashMap<String, Recipients> =
        std::collections::HashMap::new();
    // A claim holds at most the delivery slots' number; chunks keep any count within
    // SQLite's limit on bound values.
    for chunk in messages.chunks(500) {
        let rows = recipient::Entity::find()
            .filter(recipient::Column::MessageId.is_in(chunk.iter().map(|m| m.id.clone())))
            .order_by_asc(recipient::Column::Id)
            .all(db)
            .await?;
        for r in rows {
            let known = by_message.entry(r.message_id.clone()).or_default();
            if r.state == crate::model::RecipientState::Pending {
                known.pending.push(r);
            } else {
                // A settled recipient's row was last written by the attempt that settled it.
                known.settled.push((r.state, r.updated_at));
            }
        }
    }
    Ok(by_message)
}

/// The text of a panic's payload.
fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".into())
}

/// Runs one claimed delivery in its own task, so that a panic in it is caught here and
/// recorded on the message instead of leaving it `delivering`.
async fn run_one(d: Arc<Deliverer>, (m, rcpts): Claimed) {
    let _in_flight = d.leases.track(&m.id);
    let snapshot = m.clone();
    let worker = d.clone();
    // Every line about this delivery names the message's Message-ID (its own lines name
    // the queue id).
    let span = tracing::info_span!(
        "message",
        message_id = %m.header_message_id.as_deref().unwrap_or("-")
    );
    let result = tokio::spawn(tracing::Instrument::instrument(
        async move { worker.deliver(m, rcpts).await },
        span.clone(),
    ))
    .await;
    if let Err(e) = result {
        if e.is_panic() {
            let what = panic_text(e.into_panic().as_ref());
            tracing::Instrument::instrument(d.contain_panic(&snapshot, &what), span).await;
        } else {
            let _in = span.enter();
            tracing::warn!(queue_id = %snapshot.id, "delivery task cancelled; its lease will run out");
        }
    }
}

/// How long a freed slot waits for others before it is filled on its own (see [`run`]).
const CLAIM_GATHER: Duration = Duration::from_millis(5);

/// Which messages a claim may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lane {
    Any,
    /// Urgent documents only (khẩn, thượng khẩn, hỏa tốc), for the slots kept for them.
    Urgent,
}

/// Delivery slots kept for urgent documents on top of `[queue] concurrency`: an urgent
/// document accepted while every ordinary slot is busy starts at once instead of waiting
/// for one to free (the same-day rule; SPEC.md's urgent lane).
fn urgent_slots(concurrency: usize) -> usize {
    (concurrency / 8).clamp(1, 4)
}

pub async fn run(deliverer: Arc<Deliverer>, mut shutdown: watch::Receiver<bool>) {
    let db = deliverer.queue.db().clone();
    let wake = deliverer.queue.wake();
    let slots = Arc::new(Semaphore::new(deliverer.config.queue.concurrency));
    let kept_total = urgent_slots(deliverer.config.queue.concurrency);
    let kept = Arc::new(Semaphore::new(kept_total));
    match recover(&deliverer, true).await {
        Ok(r) if r != Recovered::default() => {
            tracing::warn!(
                retried = r.retried,
                poisoned = r.poisoned,
                "messages interrupted during delivery taken back"
            )
        }
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "could not recover interrupted deliveries"),
    }
    // Leases are renewed every third of their length; expired ones are looked for as often.
    let beat = Duration::from_millis((deliverer.leases.lease_ms() / 3).clamp(500, 30_000) as u64);
    let mut last_beat = Instant::now();
    let fill_from = (deliverer.config.queue.concurrency / 4).max(1);
    let mut first_free: Option<Instant> = None;
    loop {
        if *shutdown.borrow() {
            break;
        }
        if last_beat.elapsed() >= beat {
            last_beat = Instant::now();
            if let Err(e) = deliverer.leases.renew(&db).await {
                tracing::error!(error = %e, "could not renew delivery leases");
            }
            match recover(&deliverer, false).await {
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "could not take back expired deliveries"),
            }
        }
        let free = slots.available_permits();
        // Each claim is a durable commit (an fsync, milliseconds): with deliveries
        // finishing one after another, claiming for each freed slot would make the claims
        // the queue's pace. While most slots are busy, a slot that frees waits a few
        // milliseconds for others, so that one claim fills several.
        if free > 0 && free < fill_from {
            let since = *first_free.get_or_insert_with(Instant::now);
            if let Some(left) = CLAIM_GATHER.checked_sub(since.elapsed()) {
                tokio::select! {
                    _ = tokio::time::sleep(left) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
        }
        first_free = None;
        // An ordinary claim takes the most urgent due documents first, so it also serves an
        // urgent arrival; only while every ordinary slot is busy does an urgent arrival get
        // a kept slot (and one claim statement of its own).
        let urgent_arrived = deliverer.queue.take_urgent_arrival();
        let (lane, pool) = if free > 0 {
            (Lane::Any, &slots)
        } else {
            (Lane::Urgent, &kept)
        };
        let free = pool.available_permits();
        if free > 0 && (lane == Lane::Any || urgent_arrived) {
            let picked = claim_due(&db, &deliverer.leases, free as u64, lane).await;
            match picked {
                Ok(claimed) => {
                    for m in claimed {
                        // At most `free` were claimed and only this loop takes permits.
                        let Ok(permit) = pool.clone().acquire_owned().await else {
                            break;
                        };
                        let d = deliverer.clone();
                        tokio::spawn(async move {
                            let wake = d.queue.wake();
                            run_one(d, m).await;
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
            _ = tokio::time::sleep(Duration::from_millis(1000).min(beat)) => {}
            _ = shutdown.changed() => {}
        }
    }
    // Let deliveries in flight finish so their results are recorded.
    let total = deliverer.config.queue.concurrency as u32;
    let _ = tokio::time::timeout(Duration::from_secs(30), async {
        let _ = slots.acquire_many(total).await;
        let _ = kept.acquire_many(kept_total as u32).await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RecipientState;
    use sea_orm::{ActiveModelTrait, ConnectionTrait, IntoActiveModel, PaginatorTrait};

    /// One claim reads the recipients of every message it claims, each message's own: those
    /// pending in recipient order, those already delivered as their outcome only.
    #[tokio::test]
    async fn a_claim_brings_each_message_its_own_pending_recipients() {
        let (db, dir) = crate::store::test_database().await;
        let leases = Leases::for_test(dir.path());
        let mut next_id = 1;
        for (id, urgency, rcpts) in [
            ("m1", 0, vec![("a@x.test", RecipientState::Pending)]),
            (
                "m2",
                3,
                vec![
                    ("b@x.test", RecipientState::Delivered),
                    ("c@x.test", RecipientState::Pending),
                    ("d@x.test", RecipientState::Pending),
                ],
            ),
        ] {
            let mut m = crate::queue::monitor::tests::msg(None, urgency, 0);
            m.id = id.into();
            m.into_active_model().insert(&db).await.unwrap();
            for (address, state) in rcpts {
                recipient::Model {
                    id: next_id,
                    message_id: id.into(),
                    address: address.into(),
                    route: "outbound".into(),
                    state,
                    notify: 0,
                    orcpt: None,
                    last_reply: None,
                    updated_at: next_id * 1000,
                }
                .into_active_model()
                .insert(&db)
                .await
                .unwrap();
                next_id += 1;
            }
        }
        let first = claim_due(&db, &leases, 1, Lane::Any).await.unwrap();
        let ids: Vec<&str> = first.iter().map(|(m, _)| m.id.as_str()).collect();
        assert_eq!(ids, ["m2"], "one slot: the more urgent message");
        type Got = (String, Vec<String>, Vec<(RecipientState, i64)>);
        let got: Vec<Got> = first
            .into_iter()
            .chain(claim_due(&db, &leases, 10, Lane::Any).await.unwrap())
            .map(|(m, r)| {
                let r = r.expect("read with the claim");
                (
                    m.id,
                    r.pending.into_iter().map(|r| r.address).collect(),
                    r.settled,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "m2".to_string(),
                    vec!["c@x.test".to_string(), "d@x.test".into()],
                    vec![(RecipientState::Delivered, 2000)]
                ),
                ("m1".to_string(), vec!["a@x.test".to_string()], vec![]),
            ],
            "each message once, with its own pending recipients"
        );
    }

    /// A claim takes no more than its limit, also when the table is mostly settled rows and
    /// PostgreSQL's planner runs the picking subquery once per candidate row (a nested-loop
    /// semi-join): each rerun would skip the rows just claimed and pick others, and the
    /// daemon claimed thousands at once under load (their leases then ran out undelivered).
    #[tokio::test]
    async fn a_claim_takes_no_more_than_its_limit_from_a_large_queue() {
        let (db, dir) = crate::store::test_database().await;
        let leases = Leases::for_test(dir.path());
        let rows: Vec<message::ActiveModel> = (0..3000)
            .map(|i| {
                let mut m = crate::queue::monitor::tests::msg(None, 0, 0);
                m.id = format!("m{i:05}");
                m.received_at = i;
                m.state = MessageState::Delivered;
                m.into_active_model()
            })
            .collect();
        for chunk in rows.chunks(200) {
            message::Entity::insert_many(chunk.to_vec())
                .exec(&db)
                .await
                .unwrap();
        }
        // The statistics say nothing is due (as after a quiet night), then 50 arrive.
        if db.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ANALYZE message").await.unwrap();
        }
        message::Entity::update_many()
            .col_expr(message::Column::State, Expr::value(MessageState::Waiting))
            .filter(message::Column::ReceivedAt.lt(3000))
            .filter(Expr::cust("received_at % 60 = 0"))
            .exec(&db)
            .await
            .unwrap();
        let mut seen = std::collections::BTreeSet::new();
        for round in 0..13 {
            let claimed = claim_due(&db, &leases, 4, Lane::Any).await.unwrap();
            let want = if round < 12 { 4 } else { 2 };
            assert_eq!(claimed.len(), want, "round {round}");
            for (m, _) in claimed {
                assert!(seen.insert(m.id.clone()), "{} claimed twice", m.id);
            }
        }
        assert_eq!(seen.len(), 50);
        let delivering = message::Entity::find()
            .filter(message::Column::State.eq(MessageState::Delivering))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(delivering, 50);
    }
}
