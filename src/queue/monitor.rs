//! The deadline monitor: a document still in the queue is escalated to the policy's
//! escalation addresses `before_hours` ahead of its deadline (at once when an urgent one has
//! failed an attempt: it must leave the same working day), and a violation is recorded when
//! the deadline passes. Each warning and violation is sent once, by mail through the
//! gateway itself (to `inbound.deliver_to`), and logged.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, TransactionTrait};
use tokio::sync::watch;

use super::admin::QUEUED_STATES;
use super::leader;
use super::{NewMessage, NewRecipient, Queue, Route};
use crate::config::Config;
use crate::policy::{SharedPolicy, Urgency};
use crate::store::entity::message;
use crate::util::{now_ms, rfc3339_ms};

/// What the monitor found about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Escalation {
    Warning,
    Violation,
}

/// Decides whether a queued message needs a warning or a violation now.
pub fn assess(m: &message::Model, now: i64, before_ms: i64) -> Option<Escalation> {
    let deadline = m.deadline_at?;
    if m.violated_at.is_none() && now >= deadline {
        return Some(Escalation::Violation);
    }
    if m.warned_at.is_some() || m.violated_at.is_some() {
        return None;
    }
    let urgent_stuck = Urgency::from_rank(m.urgency).is_urgent() && m.attempts > 0;
    (now >= deadline - before_ms || urgent_stuck).then_some(Escalation::Warning)
}

/// A notice written by the gateway to the given local addresses (null sender, so no bounce
/// can loop back): its queue metadata and bytes; None when there is no one to tell.
pub fn notice(
    config: &Config,
    to: &[String],
    subject: &str,
    body: &str,
) -> Option<(NewMessage, Vec<u8>)> {
    if to.is_empty() {
        return None;
    }
    let text = format!(
        "From: congvan <postmaster@{host}>\r\nTo: {to}\r\nSubject: {subj}\r\nDate: {date}\r\nMessage-ID: <notice.{id}@{host}>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{body}",
        host = config.hostname,
        to = to.join(", "),
        subj = crate::mime::encode_header_value(subject),
        date = crate::util::rfc5322_now(),
        id = crate::util::new_queue_id(),
        body = body.replace('\n', "\r\n"),
    );
    let recipients = to
        .iter()
        .map(|a| NewRecipient {
            address: a.clone(),
            route: Route::Inbound,
            notify: 0,
            orcpt: None,
        })
        .collect();
    let meta = NewMessage::generated(
        format!("postmaster@{}", config.hostname),
        subject,
        recipients,
    );
    Some((meta, text.into_bytes()))
}

/// Mails a notice written by the gateway to the given local addresses, on its own (not tied
/// to a state change).
pub async fn notify(queue: &Queue, config: &Config, to: &[String], subject: &str, body: &str) {
    let Some((meta, bytes)) = notice(config, to, subject, body) else {
        return;
    };
    if let Err(e) = queue.enqueue(meta, Vec::new(), bytes).await {
        tracing::error!(error = %e, "could not queue a notice to the escalation addresses");
    }
}

fn describe(m: &message::Model, number: Option<&str>) -> String {
    let u = Urgency::from_rank(m.urgency);
    format!(
        "Số, ký hiệu / Number: {}\nTrích yếu / Subject: {}\nFrom: {}\nĐộ khẩn / Urgency: {} ({})\nHạn gửi / Deadline: {}\nTrạng thái / State: {}{}\nAttempts: {}\nQueue ID: {}\n",
        number.unwrap_or("-"),
        m.subject,
        m.header_from,
        u.vietnamese(),
        u.ascii(),
        m.deadline_at.map(rfc3339_ms).unwrap_or_default(),
        m.state,
        m.reason.as_ref().map(|r| format!(" ({r})")).unwrap_or_default(),
        m.attempts,
        m.id,
    )
}

async fn sweep(queue: &Queue, config: &Config, policy: &SharedPolicy) -> Result<(), DbErr> {
    let db: &DatabaseConnection = queue.db();
    let esc = policy.get().rules.escalation.clone();
    let before_ms = i64::from(esc.before_hours) * 3_600_000;
    let now = now_ms();
    let candidates = message::Entity::find()
        .filter(message::Column::State.is_in(QUEUED_STATES))
        .filter(message::Column::DeadlineAt.is_not_null())
        .filter(message::Column::ViolatedAt.is_null())
        .all(db)
        .await?;
    for m in candidates {
        let Some(kind) = assess(&m, now, before_ms) else {
            continue;
        };
        // The document as the office knows it: its number (from the register) and subject.
        let number = match crate::register::query::number_of(db, &m.id).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(queue_id = %m.id, error = %e, "register look-up failed: the notice names the document by its subject only");
                None
            }
        };
        let document = super::dsn::document_vi(number.as_deref(), &m.subject)
            .unwrap_or_else(|| "Văn bản".into());
        let (col, subject, lead) = match kind {
            Escalation::Warning => {
                tracing::warn!(queue_id = %m.id, deadline = %m.deadline_at.map(rfc3339_ms).unwrap_or_default(), state = %m.state, "deadline warning: document not yet delivered");
                (
                    message::Column::WarnedAt,
                    format!("[Cảnh báo hạn gửi] {document} / deadline warning"),
                    "This document has not left yet and its dispatch deadline is near.\nVăn bản này chưa được gửi đi và sắp đến hạn gửi.\n\n",
                )
            }
            Escalation::Violation => {
                tracing::error!(queue_id = %m.id, deadline = %m.deadline_at.map(rfc3339_ms).unwrap_or_default(), state = %m.state, "deadline missed: violation recorded");
                crate::metrics::get().deadline_violations.inc();
                (
                    message::Column::ViolatedAt,
                    format!("[Quá hạn gửi] {document} / dispatch deadline missed"),
                    "This document missed its dispatch deadline; a violation is recorded.\nVăn bản này đã quá hạn gửi; vi phạm đã được ghi nhận.\n\n",
                )
            }
        };
        // The mark and the notice commit together: a crash can neither send the same notice
        // twice nor lose it.
        let staged = match notice(
            config,
            &esc.notify,
            &subject,
            &format!("{lead}{}", describe(&m, number.as_deref())),
        ) {
            Some((meta, bytes)) => match queue.stage(meta, bytes).await {
                Ok(s) => Some(s),
                Err(e) => {
                    // Not marked either: the next beat tries again.
                    tracing::error!(queue_id = %m.id, error = %e, "could not write the deadline notice; will try again");
                    continue;
                }
            },
            None => None,
        };
        let committed = async {
            let txn = db.begin().await?;
            let res = message::Entity::update_many()
                .col_expr(col, Expr::value(now))
                .filter(message::Column::Id.eq(&m.id))
                .filter(col.is_null())
                .exec(&txn)
                .await?;
            if res.rows_affected != 1 {
                txn.rollback().await?;
                return Ok::<bool, DbErr>(false);
            }
            if let Some(s) = &staged {
                s.insert(&txn).await?;
            }
            txn.commit().await?;
            Ok(true)
        }
        .await;
        match committed {
            Ok(true) => {
                if let Some(s) = &staged {
                    tracing::info!(queue_id = %m.id, notice_id = %s.id(), "deadline notice queued");
                    queue.wake().notify_one();
                }
            }
            Ok(false) => {
                if let Some(s) = staged {
                    s.discard();
                }
            }
            Err(e) => {
                if let Some(s) = staged {
                    s.discard();
                }
                return Err(e);
            }
        }
    }
    Ok(())
}

/// The monitor's beat: on the node that holds the job (see `leader`), the deadline sweep and
/// archive pruning; on the others, nothing but the check whether the holder is gone.
pub async fn run(
    queue: Queue,
    config: Arc<Config>,
    policy: Arc<SharedPolicy>,
    holder: String,
    mut stop: watch::Receiver<bool>,
) {
    let every = Duration::from_secs(config.queue.monitor_interval_secs.max(1));
    // Held across three beats at least, so a slow beat does not lose it to another node.
    let ttl_ms = (config.queue.lease_secs.max(1) as i64)
        .saturating_mul(1000)
        .max(3 * every.as_millis() as i64);
    let mut leading = false;
    loop {
        match leader::hold(queue.db(), leader::MONITOR, &holder, now_ms(), ttl_ms).await {
            Ok(true) => {
                if !leading {
                    tracing::info!(holder = %holder, "this node runs the deadline monitor and archive pruning");
                    leading = true;
                }
                if let Err(e) = sweep(&queue, &config, &policy).await {
                    tracing::error!(error = %e, "deadline monitor failed; will try again");
                }
                // The same beat ends the retention of archived copies (a cheap indexed look-up).
                if let Err(e) = crate::register::archive::prune(queue.db(), now_ms()).await {
                    tracing::error!(error = %e, "archive pruning failed; will try again");
                }
            }
            Ok(false) => {
                if leading {
                    tracing::warn!(holder = %holder, "another node runs the deadline monitor now");
                    leading = false;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "could not renew the deadline monitor's lease; will try again");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {
                if leading {
                    if let Err(e) = leader::release(queue.db(), leader::MONITOR, &holder).await {
                        tracing::warn!(error = %e, "could not give up the deadline monitor's lease; another node takes it when it runs out");
                    }
                }
                return;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn msg(deadline: Option<i64>, urgency: i32, attempts: i32) -> message::Model {
        message::Model {
            id: "x".into(),
            direction: crate::queue::Direction::Out,
            state: crate::queue::MessageState::Deferred,
            sender: String::new(),
            header_from: String::new(),
            subject: String::new(),
            urgency,
            secrecy: 0,
            deadline_at: deadline,
            size: 0,
            listener: String::new(),
            client_ip: String::new(),
            helo: String::new(),
            account: None,
            received_at: 0,
            next_attempt_at: 0,
            attempts,
            reason: None,
            dsn_ret: None,
            dsn_envid: None,
            body_8bit: false,
            smtputf8: false,
            generated: false,
            updated_at: 0,
            signed_serial: None,
            signed_digest: None,
            signed_at: None,
            warned_at: None,
            violated_at: None,
            delay_notified_at: None,
            smime_result: None,
            smime_signer: None,
            smime_reason: None,
            claimed_by: None,
            lease_until: None,
            unfinished_attempts: 0,
            header_message_id: None,
        }
    }

    #[test]
    fn warning_then_violation_once_each() {
        let hour = 3_600_000;
        let m = msg(Some(10 * hour), 0, 1);
        assert_eq!(assess(&m, 5 * hour, 2 * hour), None);
        assert_eq!(assess(&m, 9 * hour, 2 * hour), Some(Escalation::Warning));
        let warned = message::Model {
            warned_at: Some(9 * hour),
            ..m.clone()
        };
        assert_eq!(assess(&warned, 9 * hour, 2 * hour), None);
        assert_eq!(
            assess(&warned, 10 * hour, 2 * hour),
            Some(Escalation::Violation)
        );
        let violated = message::Model {
            violated_at: Some(10 * hour),
            ..warned
        };
        assert_eq!(assess(&violated, 11 * hour, 2 * hour), None);
        assert_eq!(assess(&msg(None, 3, 5), 0, 0), None);
    }

    #[test]
    fn urgent_documents_escalate_at_once_after_a_failed_attempt() {
        let hour = 3_600_000;
        assert_eq!(assess(&msg(Some(10 * hour), 3, 0), hour, 2 * hour), None);
        assert_eq!(
            assess(&msg(Some(10 * hour), 3, 1), hour, 2 * hour),
            Some(Escalation::Warning)
        );
        assert_eq!(assess(&msg(Some(10 * hour), 0, 1), hour, 2 * hour), None);
    }
}
