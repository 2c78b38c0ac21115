//! Queue administration shared by the CLI and the daemon: list, show, hold, release,
//! retry, delete. Each is a single conditional UPDATE, so it is safe while the daemon runs;
//! the scheduler polls and sees the change within a second. Each change is committed with
//! its audit log entry (metadata only: never the subject or body).
//!
//! A `delivering` message belongs to the daemon delivering it while its lease lives (see
//! `lease`): hold, retry and delete refuse it then ([`AdminError::Leased`], naming the
//! daemon and the lease's end). One left by a daemon that stopped (its lease has passed, or
//! it was this node's and no daemon of this node runs) is treated like a waiting one.

use std::path::Path;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use serde::Serialize;
use serde_json::json;

use super::lease::Released;
use super::{spool_path, Direction, HoldKind, MessageState, RecipientState};
use crate::audit::{self, Action, Event};
use crate::policy::Urgency;
use crate::store::entity::{message, recipient, register_entry};
use crate::util::{now_ms, rfc3339_ms};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    #[error("no message {0} in the queue")]
    NotFound(String),
    #[error("message {id} is {state}: {action} needs a message that is {needs}")]
    WrongState {
        id: String,
        state: MessageState,
        action: &'static str,
        needs: &'static str,
    },
    #[error("message {id} is being delivered by the daemon {claimed_by} (its lease runs until {until}): wait for this attempt to end (congvan queue show {id}) and try again; if that daemon has stopped, its lease runs out at {until}")]
    Leased {
        id: String,
        claimed_by: String,
        until: String,
    },
    #[error(
        "{prefix:?} is the start of several queue ids ({first}, {second}...): give more of it"
    )]
    Ambiguous {
        prefix: String,
        first: String,
        second: String,
    },
    #[error("database: {0}")]
    Db(#[from] DbErr),
}

/// Queue and register ids are 32 hex digits; listings show the first [`SHORT_ID`], and every
/// command that takes an id also takes such a start of one, when it names one message.
pub const SHORT_ID: usize = 12;

/// The whole id that `given` (an id, or the start of one) names among `ids`, the ids that
/// start with it (at most two are needed); `given` itself when none does (the caller then
/// reports it as not found).
pub fn whole_id(given: &str, ids: Vec<String>) -> Result<String, AdminError> {
    match &ids[..] {
        [one] => Ok(one.clone()),
        [first, second, ..] => Err(AdminError::Ambiguous {
            prefix: given.to_string(),
            first: first.clone(),
            second: second.clone(),
        }),
        [] => Ok(given.to_string()),
    }
}

/// `given` as the start of an id to look up (lower case), or None when it is a whole id or
/// not hex at all (looked up as it is, and reported as not found).
pub fn short_id(given: &str) -> Option<String> {
    (!given.is_empty() && given.len() < 32 && given.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| given.to_ascii_lowercase())
}

/// The queue id `given` names: itself when whole, else the one message whose id starts with
/// it.
pub async fn resolve_id(db: &DatabaseConnection, given: &str) -> Result<String, AdminError> {
    let Some(prefix) = short_id(given) else {
        return Ok(given.to_string());
    };
    let ids: Vec<String> = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(message::Column::Id.starts_with(prefix))
        .limit(2)
        .into_tuple()
        .all(db)
        .await?;
    whole_id(given, ids)
}

/// What the caller knows about the daemons that may hold a `delivering` message: its own
/// node's name and whether a daemon of that node is running.
#[derive(Debug, Clone)]
pub struct Takeover {
    pub node: String,
    pub daemon_running: bool,
}

impl Takeover {
    /// For a command run beside the daemon of this configuration.
    pub fn from_config(config: &crate::config::Config) -> Takeover {
        Takeover {
            node: super::lease::node_name(config),
            daemon_running: super::lease::daemon_running(config),
        }
    }
}

/// Whether `m` may be changed by an administrator now: any state but `delivering`, and a
/// `delivering` one whose daemon has stopped; [`AdminError::Leased`] otherwise.
fn may_take(m: &message::Model, takeover: &Takeover) -> Result<(), AdminError> {
    if m.state != MessageState::Delivering
        || super::lease::holder_gone(m, now_ms(), &takeover.node, takeover.daemon_running)
    {
        return Ok(());
    }
    Err(AdminError::Leased {
        id: m.id.clone(),
        claimed_by: m.claimed_by.clone().unwrap_or_else(|| "(unknown)".into()),
        until: m
            .lease_until
            .map(rfc3339_ms)
            .unwrap_or_else(|| "its end".into()),
    })
}

/// Restricts an administrator's update to the message as it was read: for a `delivering`
/// one, the same claim and lease, so a daemon that renewed or finished in between wins.
fn as_read<Q: QueryFilter>(q: Q, before: &message::Model) -> Q {
    if before.state != MessageState::Delivering {
        return q;
    }
    let q = match &before.claimed_by {
        Some(by) => q.filter(message::Column::ClaimedBy.eq(by.as_str())),
        None => q.filter(message::Column::ClaimedBy.is_null()),
    };
    match before.lease_until {
        Some(t) => q.filter(message::Column::LeaseUntil.eq(t)),
        None => q.filter(message::Column::LeaseUntil.is_null()),
    }
}

/// One row of `queue list --json` (SPEC.md: id, direction, state, sender, recipients,
/// urgency, deadline, and the reason when held or deferred).
#[derive(Debug, Clone, Serialize)]
pub struct QueueEntry {
    pub id: String,
    pub direction: Direction,
    pub state: MessageState,
    pub sender: String,
    pub recipients: Vec<String>,
    pub urgency: String,
    pub deadline: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub subject: String,
    /// The document number (số, ký hiệu) its register entry gives.
    pub number: Option<String>,
    pub size: i64,
    pub received_at: String,
    pub attempts: i32,
    pub next_attempt_at: Option<String>,
    /// The deadline monitor warned the escalation addresses about it.
    pub deadline_warned: bool,
    /// The dispatch deadline passed while it was still here (a violation).
    pub deadline_missed: bool,
    /// The node delivering it now (`[queue] node_id`), while it is `delivering`.
    pub node: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RecipientDetail {
    pub address: String,
    pub route: String,
    pub state: RecipientState,
    pub last_reply: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueDetail {
    #[serde(flatten)]
    pub entry: QueueEntry,
    pub header_from: String,
    pub listener: String,
    pub client_ip: String,
    pub account: Option<String>,
    pub secrecy: String,
    pub dsn_ret: Option<String>,
    pub dsn_envid: Option<String>,
    /// S/MIME verification of an incoming message (result, signer, reason).
    pub smime_result: Option<String>,
    pub smime_signer: Option<String>,
    pub smime_reason: Option<String>,
    /// While `delivering`: the daemon delivering it and until when its lease runs.
    pub claimed_by: Option<String>,
    pub lease_until: Option<String>,
    /// Attempts that did not finish (the daemon stopped under them); two make it poison.
    pub unfinished_attempts: i32,
    pub recipient_details: Vec<RecipientDetail>,
}

/// States that are "still in the queue".
pub const QUEUED_STATES: [MessageState; 4] = MessageState::QUEUED;

fn deadline_date(ms: Option<i64>) -> Option<String> {
    ms.map(|ms| {
        let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
        let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .to_offset(offset);
        let d = t.date();
        format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
    })
}

fn entry(m: &message::Model, rcpts: Vec<String>, number: Option<String>) -> QueueEntry {
    let shows_reason = m.state == MessageState::Held || m.state == MessageState::Deferred;
    QueueEntry {
        id: m.id.clone(),
        direction: m.direction,
        state: m.state,
        sender: m.sender.clone(),
        recipients: rcpts,
        urgency: Urgency::from_rank(m.urgency).ascii().into(),
        deadline: deadline_date(m.deadline_at),
        reason: if shows_reason { m.reason.clone() } else { None },
        subject: m.subject.clone(),
        number,
        size: m.size,
        received_at: rfc3339_ms(m.received_at),
        attempts: m.attempts,
        next_attempt_at: (m.state == MessageState::Deferred).then(|| rfc3339_ms(m.next_attempt_at)),
        deadline_warned: m.warned_at.is_some(),
        deadline_missed: m.violated_at.is_some(),
        node: (m.state == MessageState::Delivering)
            .then(|| {
                m.claimed_by
                    .as_deref()
                    .map(|c| super::lease::node_of(c).to_string())
            })
            .flatten(),
    }
}

/// Messages still in the queue, most urgent first, then by arrival.
pub async fn list(db: &DatabaseConnection) -> Result<Vec<QueueEntry>, AdminError> {
    let msgs = message::Entity::find()
        .filter(message::Column::State.is_in(QUEUED_STATES))
        .order_by_desc(message::Column::Urgency)
        .order_by_asc(message::Column::ReceivedAt)
        .all(db)
        .await?;
    let ids: Vec<String> = msgs.iter().map(|m| m.id.clone()).collect();
    let mut rcpts: std::collections::HashMap<String, Vec<String>> = Default::default();
    for chunk in ids.chunks(500) {
        let rows = recipient::Entity::find()
            .filter(recipient::Column::MessageId.is_in(chunk.to_vec()))
            .order_by_asc(recipient::Column::Id)
            .all(db)
            .await?;
        for r in rows {
            rcpts.entry(r.message_id).or_default().push(r.address);
        }
    }
    let mut numbers = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, Option<String>)> = register_entry::Entity::find()
            .select_only()
            .column(register_entry::Column::Id)
            .column(register_entry::Column::Number)
            .filter(register_entry::Column::Id.is_in(chunk.to_vec()))
            .filter(register_entry::Column::Number.is_not_null())
            .into_tuple()
            .all(db)
            .await?;
        numbers.extend(rows);
    }
    Ok(msgs
        .iter()
        .map(|m| {
            entry(
                m,
                rcpts.remove(&m.id).unwrap_or_default(),
                numbers.remove(&m.id).flatten(),
            )
        })
        .collect())
}

pub async fn show(db: &DatabaseConnection, id: &str) -> Result<QueueDetail, AdminError> {
    let m = message::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .ok_or_else(|| AdminError::NotFound(id.into()))?;
    let rows = recipient::Entity::find()
        .filter(recipient::Column::MessageId.eq(id))
        .order_by_asc(recipient::Column::Id)
        .all(db)
        .await?;
    let number: Option<Option<String>> = register_entry::Entity::find_by_id(id)
        .select_only()
        .column(register_entry::Column::Number)
        .into_tuple()
        .one(db)
        .await?;
    let mut e = entry(
        &m,
        rows.iter().map(|r| r.address.clone()).collect(),
        number.flatten(),
    );
    e.reason = m.reason.clone();
    Ok(QueueDetail {
        entry: e,
        header_from: m.header_from.clone(),
        listener: m.listener.clone(),
        client_ip: m.client_ip.clone(),
        account: m.account.clone(),
        secrecy: crate::policy::Secrecy::from_rank(m.secrecy).ascii().into(),
        dsn_ret: m.dsn_ret.clone(),
        dsn_envid: m.dsn_envid.clone(),
        smime_result: m.smime_result.clone(),
        smime_signer: m.smime_signer.clone(),
        smime_reason: m.smime_reason.clone(),
        claimed_by: m.claimed_by.clone(),
        lease_until: m.lease_until.map(rfc3339_ms),
        unfinished_attempts: m.unfinished_attempts,
        recipient_details: rows
            .into_iter()
            .map(|r| RecipientDetail {
                address: r.address,
                route: r.route,
                state: r.state,
                last_reply: r.last_reply,
            })
            .collect(),
    })
}

async fn current_state(db: &impl ConnectionTrait, id: &str) -> Result<MessageState, AdminError> {
    message::Entity::find_by_id(id.to_string())
        .select_only()
        .column(message::Column::State)
        .into_tuple::<MessageState>()
        .one(db)
        .await?
        .ok_or_else(|| AdminError::NotFound(id.into()))
}

/// What the audit entry of a queue change says about the message: never its subject.
fn audit_details(m: &message::Model) -> serde_json::Value {
    json!({
        "direction": m.direction,
        "state": m.state,
        "reason": m.reason,
        "sender": m.sender,
        "account": m.account,
        "client_ip": m.client_ip,
    })
}

/// An incoming message held by the `[incoming]` policy (see `intake::incoming`).
fn is_quarantined(m: &message::Model) -> bool {
    m.direction == Direction::In
        && m.state == MessageState::Held
        && m.reason.as_deref().map(HoldKind::of_reason) == Some(HoldKind::Quarantine)
}

/// Moves a message from one of `from` to `to` in one conditional UPDATE, with its audit
/// entry in the same transaction.
#[allow(clippy::too_many_arguments)]
async fn transition(
    db: &DatabaseConnection,
    actor: &str,
    id: &str,
    from: &[MessageState],
    to: MessageState,
    reason: Option<String>,
    action: Action,
    needs: &'static str,
    takeover: Option<&Takeover>,
) -> Result<(), AdminError> {
    let now = now_ms();
    let txn = audit::begin(db).await?;
    let before = message::Entity::find_by_id(id.to_string())
        .one(&txn)
        .await?
        .ok_or_else(|| AdminError::NotFound(id.into()))?;
    let mut from = from.to_vec();
    if let Some(t) = takeover.filter(|_| before.state == MessageState::Delivering) {
        may_take(&before, t)?;
        from.push(MessageState::Delivering);
    }
    let mut update = message::Entity::update_many()
        .col_expr(message::Column::State, Expr::value(to))
        .col_expr(message::Column::Reason, Expr::value(reason.clone()))
        .col_expr(message::Column::NextAttemptAt, Expr::value(now))
        .col_expr(message::Column::UpdatedAt, Expr::value(now))
        .released();
    if action == Action::QueueRelease {
        // A released message (a poison one too) gets its full number of chances again.
        update = update.col_expr(message::Column::UnfinishedAttempts, Expr::value(0));
    }
    let res = as_read(update, &before)
        .filter(message::Column::Id.eq(id))
        .filter(message::Column::State.is_in(from))
        .exec(&txn)
        .await?;
    if res.rows_affected == 1 {
        let register_state = if to == MessageState::Held {
            crate::model::EntryState::Held
        } else {
            crate::model::EntryState::Pending
        };
        crate::register::book::set_state(&txn, id, register_state, reason.as_deref()).await?;
        let mut details = audit_details(&before);
        details["new_state"] = json!(to);
        if let Some(r) = &reason {
            details["new_reason"] = json!(r);
        }
        if action == Action::QueueRelease {
            details["quarantine"] = json!(is_quarantined(&before));
        }
        audit::append(&txn, &Event::new(actor, action, id, details)).await?;
        txn.commit().await?;
        tracing::info!(queue_id = %id, state = to.as_str(), action = %action, "queue state changed by administrator");
        return Ok(());
    }
    let state = current_state(&txn, id).await?;
    Err(AdminError::WrongState {
        id: id.into(),
        state,
        action: action_verb(action),
        needs,
    })
}

fn action_verb(a: Action) -> &'static str {
    match a {
        Action::QueueHold => "hold",
        Action::QueueRelease => "release",
        Action::QueueRetry => "retry",
        _ => "delete",
    }
}

/// Holds a waiting or deferred message, or one left `delivering` by a daemon that stopped.
pub async fn hold(
    db: &DatabaseConnection,
    actor: &str,
    id: &str,
    reason: &str,
    takeover: &Takeover,
) -> Result<(), AdminError> {
    transition(
        db,
        actor,
        id,
        &[MessageState::Waiting, MessageState::Deferred],
        MessageState::Held,
        Some(reason.to_string()),
        Action::QueueHold,
        "waiting, deferred, or delivering by a daemon that stopped",
        Some(takeover),
    )
    .await
}

/// Releases a held message; for a quarantined incoming message this is a quarantine release
/// (the audit entry says `"quarantine": true`).
pub async fn release(db: &DatabaseConnection, actor: &str, id: &str) -> Result<(), AdminError> {
    transition(
        db,
        actor,
        id,
        &[MessageState::Held],
        MessageState::Waiting,
        None,
        Action::QueueRelease,
        "held",
        None,
    )
    .await
}

/// Schedules a deferred (or waiting) message for an attempt now, or one left `delivering`
/// by a daemon that stopped.
pub async fn retry(
    db: &DatabaseConnection,
    actor: &str,
    id: &str,
    takeover: &Takeover,
) -> Result<(), AdminError> {
    transition(
        db,
        actor,
        id,
        &[MessageState::Deferred, MessageState::Waiting],
        MessageState::Waiting,
        None,
        Action::QueueRetry,
        "deferred or waiting, or delivering by a daemon that stopped",
        Some(takeover),
    )
    .await
}

/// Removes a message that is not being delivered (or was left `delivering` by a daemon that
/// stopped), with its spool file. No DSN is sent.
pub async fn delete(
    db: &DatabaseConnection,
    actor: &str,
    spool: &Path,
    id: &str,
    takeover: &Takeover,
) -> Result<(), AdminError> {
    let txn = audit::begin(db).await?;
    let before = message::Entity::find_by_id(id.to_string())
        .one(&txn)
        .await?
        .ok_or_else(|| AdminError::NotFound(id.into()))?;
    let mut from = vec![
        MessageState::Waiting,
        MessageState::Deferred,
        MessageState::Held,
    ];
    if before.state == MessageState::Delivering {
        may_take(&before, takeover)?;
        from.push(MessageState::Delivering);
    }
    let res = as_read(message::Entity::delete_many(), &before)
        .filter(message::Column::Id.eq(id))
        .filter(message::Column::State.is_in(from))
        .exec(&txn)
        .await?;
    if res.rows_affected != 1 {
        let state = current_state(&txn, id).await?;
        return Err(AdminError::WrongState {
            id: id.into(),
            state,
            action: "delete",
            needs: "waiting, deferred or held, or delivering by a daemon that stopped",
        });
    }
    let recipients = recipient::Entity::delete_many()
        .filter(recipient::Column::MessageId.eq(id))
        .exec(&txn)
        .await?
        .rows_affected;
    super::remove_contents_in(&txn, &[id]).await?;
    let dispatched = crate::register::book::record_deleted(
        &txn,
        id,
        before.received_at,
        before.deadline_at,
        "deleted from the queue by an administrator",
    )
    .await?;
    // A document that never left did not use its number: the clerk may send it again.
    if !dispatched {
        crate::register::numbers::release_numbers_of(&txn, id).await?;
    }
    let mut details = audit_details(&before);
    details["recipients"] = json!(recipients);
    audit::append(&txn, &Event::new(actor, Action::QueueDelete, id, details)).await?;
    txn.commit().await?;
    if crate::util::is_queue_id(id) {
        let _ = std::fs::remove_file(spool_path(spool, id));
    }
    tracing::info!(queue_id = %id, "deleted from the queue by administrator");
    Ok(())
}

/// Deletes spool files that have no queued message (left by a crash before the commit,
/// or by a message that reached a final state).
pub async fn remove_orphan_spool_files(
    db: &DatabaseConnection,
    spool: &Path,
) -> Result<usize, DbErr> {
    let Ok(entries) = std::fs::read_dir(spool) else {
        return Ok(0);
    };
    let live: std::collections::HashSet<String> = message::Entity::find()
        .select_only()
        .column(message::Column::Id)
        .filter(message::Column::State.is_in(QUEUED_STATES))
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .collect();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().to_string();
        if let Some(id) = name.strip_suffix(".eml") {
            if crate::util::is_queue_id(id)
                && !live.contains(id)
                && std::fs::remove_file(e.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    if removed > 0 {
        tracing::warn!(removed, "removed spool files without a queued message");
    }
    Ok(removed)
}

/// Pending recipient rows of a message.
pub async fn pending_recipients(
    db: &DatabaseConnection,
    id: &str,
) -> Result<Vec<recipient::Model>, DbErr> {
    recipient::Entity::find()
        .filter(recipient::Column::MessageId.eq(id))
        .filter(recipient::Column::State.eq(RecipientState::Pending))
        .order_by_asc(recipient::Column::Id)
        .all(db)
        .await
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn a_short_id_names_one_message_or_is_refused_as_ambiguous() {
        assert_eq!(whole_id("01a2", vec!["01a2ff".into()]).unwrap(), "01a2ff");
        assert_eq!(
            whole_id("01a2", vec![]).unwrap(),
            "01a2",
            "not found: reported by the caller"
        );
        let e = whole_id("01a2", vec!["01a2ff".into(), "01a2ee".into()]).unwrap_err();
        assert!(e.to_string().contains("several queue ids"), "{e}");
    }
}
