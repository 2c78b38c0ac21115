//! Delivering one queued message: group its pending recipients by route, hand each group to
//! its transport, record every recipient's outcome, then decide: delivered, deferred with
//! backoff, or failed with a DSN to the sender.

use std::sync::Arc;

use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    TransactionTrait,
};

use super::dsn::{self, Action, DsnRecipient};
use super::transport::{self, EnvRcpt, Envelope, Outcome};
use super::{
    admin, prepare, rcpt_state, spool_path, state, Direction, NewMessage, NewRecipient, Queue,
    Route,
};
use crate::config::Config;
use crate::pki::store::{Seal, SealCache};
use crate::store::entity::{message, recipient};
use crate::util::{now_ms, rfc3339_ms};

/// What delivery needs: the configuration, the queue (to enqueue DSNs) and the seals.
pub struct Deliverer {
    pub config: Arc<Config>,
    pub queue: Queue,
    pub seals: SealCache,
    /// For the escalation addresses told when a message is held for its seal.
    pub policy: Arc<crate::policy::SharedPolicy>,
}

/// The bytes to send, and the seal used on them (serial, digest).
enum Sealed {
    Ready(Vec<u8>, Option<(String, String)>),
    Held,
}

impl Deliverer {
    fn db(&self) -> &DatabaseConnection {
        self.queue.db()
    }

    /// Delivers a message that the scheduler has claimed (state `delivering`).
    pub async fn deliver(&self, msg: message::Model) {
        if let Err(e) = self.try_deliver(&msg).await {
            // The database failed under us: put the message back for a later attempt. It must
            // not stay `delivering` (nothing would take it up again before a restart), so
            // this is retried until the database takes it.
            tracing::error!(queue_id = %msg.id, error = %e, "delivery bookkeeping failed; will retry");
            let mut wait = 200;
            while let Err(e) = self
                .set_state(
                    &msg.id,
                    state::DEFERRED,
                    Some(format!("database: {e}")),
                    now_ms() + 30_000,
                    msg.attempts,
                )
                .await
            {
                tracing::warn!(queue_id = %msg.id, error = %e, "cannot put the message back yet; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
                wait = (wait * 2).min(5_000);
            }
        }
    }

    async fn try_deliver(&self, msg: &message::Model) -> Result<(), DbErr> {
        let rcpts = admin::pending_recipients(self.db(), &msg.id).await?;
        let path = spool_path(self.queue.spool(), &msg.id);
        let content = match tokio::fs::read(&path).await {
            Ok(c) => c,
            Err(e) => {
                let reason = format!("spool file {} unreadable: {e}", path.display());
                tracing::error!(queue_id = %msg.id, %reason, "holding message");
                return self.hold(msg, &reason).await;
            }
        };
        let (content, seal_used) = match self.seal(msg, &rcpts, content).await? {
            Sealed::Ready(bytes, seal) => (bytes, seal),
            Sealed::Held => return Ok(()),
        };
        let mut outcomes: Vec<(recipient::Model, Outcome)> = Vec::new();
        let mut dsn_passed_on = false;
        for route in [Route::Inbound, Route::Outbound] {
            let group: Vec<&recipient::Model> =
                rcpts.iter().filter(|r| r.route == route.as_str()).collect();
            if group.is_empty() {
                continue;
            }
            let cfg = match route {
                Route::Outbound => self.config.outbound.clone(),
                Route::Inbound => self.config.inbound.delivery(),
            };
            let env = Envelope {
                queue_id: &msg.id,
                sender: &msg.sender,
                recipients: group
                    .iter()
                    .map(|r| EnvRcpt {
                        address: r.address.clone(),
                        notify: r.notify,
                        orcpt: r.orcpt.clone(),
                    })
                    .collect(),
                dsn_ret: msg.dsn_ret.as_deref(),
                dsn_envid: msg.dsn_envid.as_deref(),
                body_8bit: msg.body_8bit,
                smtputf8: msg.smtputf8,
            };
            let report = transport::deliver(&cfg, &self.config.hostname, &env, &content).await;
            dsn_passed_on |= report.dsn_passed_on;
            for (r, o) in group.into_iter().zip(report.outcomes) {
                tracing::info!(
                    queue_id = %msg.id,
                    rcpt = %r.address,
                    route = route.as_str(),
                    target = %cfg.upstream,
                    result = ?o,
                    "delivery attempt"
                );
                outcomes.push((r.clone(), o));
            }
        }

        let now = now_ms();
        let lifetime_ms = self.config.queue.max_lifetime_hours as i64 * 3_600_000;
        let expired = now - msg.received_at >= lifetime_ms;
        let mut failed = Vec::new();
        let mut delivered = Vec::new();
        let mut temp_reason: Option<String> = None;
        let mut updates = Vec::with_capacity(outcomes.len());
        for (r, o) in &outcomes {
            let (st, reply) = match o {
                Outcome::Delivered(s) => {
                    delivered.push((r.clone(), s.clone()));
                    (rcpt_state::DELIVERED, s.clone())
                }
                Outcome::PermFail(s) => {
                    failed.push((r.clone(), s.clone(), dsn::status_of(s, "5.0.0")));
                    (rcpt_state::FAILED, s.clone())
                }
                Outcome::TempFail(s) if expired => {
                    let why = format!(
                        "message expired in the queue after {} hours; last error: {s}",
                        self.config.queue.max_lifetime_hours
                    );
                    failed.push((r.clone(), why.clone(), "4.4.7".to_string()));
                    (rcpt_state::FAILED, why)
                }
                Outcome::TempFail(s) => {
                    temp_reason.get_or_insert_with(|| s.clone());
                    (rcpt_state::PENDING, s.clone())
                }
            };
            updates.push((r.id, r.address.as_str(), st, reply));
        }

        // A long deferral: the sender hears once that the message is delayed (RFC 3464).
        let delay_notice = if temp_reason.is_some() && self.delay_notice_due(msg, now) {
            let allows_delay = |n: i32| n == 0 || (n & smtp_proto::RCPT_NOTIFY_DELAY as i32) != 0;
            Some(
                outcomes
                    .iter()
                    .filter_map(|(r, o)| match o {
                        Outcome::TempFail(s) if allows_delay(r.notify) => Some(DsnRecipient {
                            address: r.address.clone(),
                            orcpt: r.orcpt.clone(),
                            action: Action::Delayed,
                            status: dsn::status_of(s, "4.0.0"),
                            diagnostic: Some(s.clone()),
                        }),
                        _ => None,
                    })
                    .collect::<Vec<_>>(),
            )
        } else {
            None
        };

        let attempts = msg.attempts + 1;
        let (next_state, reason, next_at) = match &temp_reason {
            Some(reason) => {
                let delay = backoff_ms(&self.config, attempts);
                tracing::warn!(queue_id = %msg.id, attempts, retry_in_s = delay / 1000, %reason, "deferred");
                (state::DEFERRED, Some(reason.clone()), now + delay)
            }
            None => {
                let st = if delivered.is_empty() {
                    state::FAILED
                } else {
                    state::DELIVERED
                };
                tracing::info!(queue_id = %msg.id, state = st, delivered = delivered.len(), failed = failed.len(), "left the queue");
                (st, None, now)
            }
        };
        let archive = self
            .archive(msg, &content, !delivered.is_empty(), now)
            .await;
        // The whole attempt is recorded in one transaction: one durable commit per message.
        // The transport has already spoken, so a failed commit is retried (until the database
        // takes it) rather than the message sent again: a storage fault must not mean a
        // document delivered twice, nor one left `delivering`.
        let mut tries: u64 = 0;
        while let Err(e) = self
            .record(
                msg,
                &updates,
                next_state,
                reason.clone(),
                next_at,
                attempts,
                &seal_used,
                &archive,
                delay_notice.is_some(),
                now,
            )
            .await
        {
            tries += 1;
            tracing::warn!(queue_id = %msg.id, error = %e, tries, "recording the delivery result failed; retrying");
            tokio::time::sleep(std::time::Duration::from_millis((200 * tries).min(5_000))).await;
        }

        self.notify_sender(msg, &content, &failed, &delivered, dsn_passed_on)
            .await;
        if let Some(list) = delay_notice.filter(|l| !l.is_empty()) {
            tracing::info!(queue_id = %msg.id, rcpts = list.len(), "delayed: telling the sender");
            self.enqueue_notice(msg, list, &content).await;
        }
        if temp_reason.is_none() {
            let _ = tokio::fs::remove_file(&path).await;
        }
        Ok(())
    }

    /// Marks and seals an outgoing message with the identity of its From domain. A message
    /// that must be signed and cannot be is held with the reason: it is never sent unsigned.
    async fn seal(
        &self,
        msg: &message::Model,
        rcpts: &[recipient::Model],
        content: Vec<u8>,
    ) -> Result<Sealed, DbErr> {
        if msg.direction != Direction::Out.as_str() {
            return Ok(Sealed::Ready(content, None));
        }
        // Nothing walks a message nested deeper than the limit (one queued before the limit
        // was lowered or checked): it is held with the reason, never retried into a crash.
        // The gateway's own notices carry the original inside, so they get the walkers' bound.
        let limit = if msg.generated {
            crate::nesting::MAX_DEPTH_CEILING
        } else {
            self.config.limits.max_mime_depth
        };
        if let Err(e) = crate::nesting::check(&content, limit) {
            drop(content);
            return self
                .hold_unsigned(
                    msg,
                    rcpts,
                    format!("{e} ([limits] max_mime_depth): it cannot be sealed safely"),
                )
                .await;
        }
        let urgency = crate::policy::Urgency::from_rank(msg.urgency);
        let now = time::OffsetDateTime::now_utc();
        // The gateway's own mail is sealed with the office's (first local domain's) identity.
        let domain = match (msg.generated, self.config.inbound.local_domains.first()) {
            (true, Some(local)) => local.to_ascii_lowercase(),
            _ => crate::address::domain_of(&msg.header_from).unwrap_or_default(),
        };
        let leaves = rcpts.iter().any(|r| r.route == Route::Outbound.as_str());
        let seal = self.seals.for_domain(self.db(), &domain, now).await?;
        let prepared = || {
            prepare::prepare(
                &content,
                urgency,
                &msg.subject,
                &self.config.hostname,
                &msg.id,
            )
        };
        match seal {
            Seal::Usable { identity, id } => {
                let prepared = prepared();
                drop(content);
                let signed = tokio::task::spawn_blocking(move || {
                    crate::smime::sign::sign_message(&prepared, &identity, now)
                })
                .await;
                match signed {
                    Ok(Ok(s)) => {
                        tracing::info!(queue_id = %msg.id, identity = id, serial = %s.signer_serial_hex, digest = %s.digest_sha256_hex, opaque = s.opaque, "sealed");
                        Ok(Sealed::Ready(
                            s.bytes,
                            Some((s.signer_serial_hex, s.digest_sha256_hex)),
                        ))
                    }
                    Ok(Err(e)) => {
                        self.hold_unsigned(
                            msg,
                            rcpts,
                            format!("cannot sign with identity {id}: {e}"),
                        )
                        .await
                    }
                    Err(e) => {
                        self.hold_unsigned(msg, rcpts, format!("signing task failed: {e}"))
                            .await
                    }
                }
            }
            // The gateway's own mail and mail that stays inside the office go out unsigned
            // when no seal can be used.
            Seal::None | Seal::Unusable(_) if msg.generated || !leaves => {
                Ok(Sealed::Ready(prepared(), None))
            }
            Seal::None => {
                self.hold_unsigned(
                    msg,
                    rcpts,
                    format!("no signing identity (digital seal) is configured for {domain}"),
                )
                .await
            }
            Seal::Unusable(reason) => {
                self.hold_unsigned(
                    msg,
                    rcpts,
                    format!("the signing identity for {domain} cannot be used: {reason}"),
                )
                .await
            }
        }
    }

    /// Holds a message the daemon cannot deliver: the queue, the register and the audit log
    /// change in one transaction, so no hold goes unrecorded.
    async fn hold(&self, msg: &message::Model, reason: &str) -> Result<(), DbErr> {
        use crate::register::audit;
        let txn = audit::begin(self.db()).await?;
        set_state(
            &txn,
            &msg.id,
            state::HELD,
            Some(reason.to_string()),
            now_ms(),
            msg.attempts,
        )
        .await?;
        crate::register::book::set_state(&txn, &msg.id, crate::register::state::HELD, Some(reason))
            .await?;
        audit::append(
            &txn,
            &audit::Event::new(
                "daemon",
                audit::Action::QueueHold,
                msg.id.as_str(),
                serde_json::json!({
                    "automatic": true,
                    "direction": msg.direction,
                    "reason": reason,
                    "sender": msg.sender,
                }),
            ),
        )
        .await?;
        txn.commit().await
    }

    /// Holds a message that cannot be sealed, tells the administrator (log) and sends the
    /// sender a delay notice.
    async fn hold_unsigned(
        &self,
        msg: &message::Model,
        rcpts: &[recipient::Model],
        reason: String,
    ) -> Result<Sealed, DbErr> {
        tracing::error!(queue_id = %msg.id, %reason, "HELD: not sent unsigned; fix the identity (congvan cert ...) then congvan queue release");
        self.hold(msg, &reason).await?;
        let admins = self.policy.get().rules.escalation.notify.clone();
        super::monitor::notify(
            &self.queue,
            &self.config,
            &admins,
            &format!("[Giữ lại] {} / held: cannot be sealed", msg.subject),
            &format!(
                "A document is held and will not be sent unsigned. Fix the signing identity (congvan cert ...), then: congvan queue release {id}\nVăn bản bị giữ lại, không gửi khi chưa ký số.\n\nQueue ID: {id}\nFrom: {from}\nReason / Lý do: {reason}\n",
                id = msg.id,
                from = msg.header_from,
            ),
        )
        .await;
        if !msg.sender.is_empty() && !msg.generated {
            // RFC 3461: a delay notice only when NOTIFY was not given or includes DELAY.
            let delay = smtp_proto::RCPT_NOTIFY_DELAY as i32;
            let list: Vec<DsnRecipient> = rcpts
                .iter()
                .filter(|r| r.notify == 0 || r.notify & delay != 0)
                .map(|r| DsnRecipient {
                    address: r.address.clone(),
                    orcpt: r.orcpt.clone(),
                    action: Action::Delayed,
                    status: "4.7.5".into(),
                    diagnostic: Some(format!("held by the gateway: {reason}")),
                })
                .collect();
            let original = tokio::fs::read(spool_path(self.queue.spool(), &msg.id))
                .await
                .unwrap_or_default();
            self.enqueue_notice(msg, list, &original).await;
        }
        Ok(Sealed::Held)
    }

    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        msg: &message::Model,
        updates: &[(i64, &str, &str, String)],
        next_state: &str,
        reason: Option<String>,
        next_at: i64,
        attempts: i32,
        seal_used: &Option<(String, String)>,
        archive: &Option<(String, i64)>,
        delay_notified: bool,
        now: i64,
    ) -> Result<(), DbErr> {
        let txn = self.db().begin().await?;
        if delay_notified {
            message::Entity::update_many()
                .col_expr(message::Column::DelayNotifiedAt, Expr::value(now))
                .filter(message::Column::Id.eq(&msg.id))
                .exec(&txn)
                .await?;
        }
        for (id, _, st, reply) in updates {
            recipient::Entity::update_many()
                .col_expr(recipient::Column::State, Expr::value(*st))
                .col_expr(recipient::Column::LastReply, Expr::value(reply.clone()))
                .col_expr(recipient::Column::UpdatedAt, Expr::value(now))
                .filter(recipient::Column::Id.eq(*id))
                .exec(&txn)
                .await?;
        }
        set_state(&txn, &msg.id, next_state, reason.clone(), next_at, attempts).await?;
        if !msg.generated {
            crate::register::book::record_attempt(
                &txn,
                &crate::register::book::Attempt {
                    entry_id: &msg.id,
                    accepted_at: msg.received_at,
                    deadline_at: msg.deadline_at,
                    at: now,
                    recipients: updates
                        .iter()
                        .map(|(_, address, st, reply)| (*address, *st, reply.as_str()))
                        .collect(),
                    // Only an attempt that delivered something names the seal recipients got.
                    seal: seal_used
                        .as_ref()
                        .filter(|_| updates.iter().any(|u| u.2 == rcpt_state::DELIVERED))
                        .map(|(s, d)| (s.as_str(), d.as_str())),
                    deferred: reason.as_deref(),
                    archive: archive.clone(),
                },
            )
            .await?;
        }
        txn.commit().await
    }

    /// Whether a deferred message is due its one "delayed" notice: old enough, not yet told,
    /// and with a sender to tell (not the gateway's own mail, not the null sender).
    fn delay_notice_due(&self, msg: &message::Model, now: i64) -> bool {
        let after = (self.config.queue.delay_notice_hours.max(0.0) * 3_600_000.0) as i64;
        after > 0
            && msg.delay_notified_at.is_none()
            && !msg.generated
            && !msg.sender.is_empty()
            && now - msg.received_at >= after
    }

    /// Keeps a copy of an outgoing document as it was delivered (`[register] archive_days`).
    /// A copy that cannot be written is logged: the document has already gone out.
    async fn archive(
        &self,
        msg: &message::Model,
        content: &[u8],
        delivered: bool,
        now: i64,
    ) -> Option<(String, i64)> {
        let days = self.config.register.archive_days;
        if !delivered || days == 0 || msg.generated || msg.direction != Direction::Out.as_str() {
            return None;
        }
        // One copy: the first attempt that delivered (a later one finishing a partial
        // delivery keeps it).
        match crate::register::archive::has_copy(self.db(), &msg.id).await {
            Ok(false) => {}
            Ok(true) => return None,
            Err(e) => {
                tracing::error!(queue_id = %msg.id, error = %e, "archive look-up failed; no copy kept");
                return None;
            }
        }
        let path = crate::register::archive::path_for(&self.config.data_dir, &msg.id, now);
        match crate::register::archive::write(path.clone(), content.to_vec()).await {
            Ok(()) => Some((
                path.display().to_string(),
                now + i64::from(days) * 86_400_000,
            )),
            Err(e) => {
                tracing::error!(queue_id = %msg.id, path = %path.display(), error = %e, "archive copy not written");
                None
            }
        }
    }

    async fn set_state(
        &self,
        id: &str,
        st: &str,
        reason: Option<String>,
        next: i64,
        attempts: i32,
    ) -> Result<(), DbErr> {
        set_state(self.db(), id, st, reason, next, attempts).await
    }

    /// Failure DSNs (unless NOTIFY excludes them) and success DSNs when asked for with
    /// NOTIFY=SUCCESS and the next hop did not take over the request. Never to the null sender.
    async fn notify_sender(
        &self,
        msg: &message::Model,
        content: &[u8],
        failed: &[(recipient::Model, String, String)],
        delivered: &[(recipient::Model, String)],
        dsn_passed_on: bool,
    ) {
        if msg.sender.is_empty() || msg.generated {
            return;
        }
        let never = smtp_proto::RCPT_NOTIFY_NEVER as i32;
        let on_failure = |n: i32| n == 0 || (n & smtp_proto::RCPT_NOTIFY_FAILURE as i32) != 0;
        let mut list: Vec<DsnRecipient> = failed
            .iter()
            .filter(|(r, _, _)| r.notify & never == 0 && on_failure(r.notify))
            .map(|(r, why, status)| DsnRecipient {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                action: Action::Failed,
                status: status.clone(),
                diagnostic: Some(why.clone()),
            })
            .collect();
        if !dsn_passed_on {
            list.extend(
                delivered
                    .iter()
                    .filter(|(r, _)| r.notify & smtp_proto::RCPT_NOTIFY_SUCCESS as i32 != 0)
                    .map(|(r, reply)| DsnRecipient {
                        address: r.address.clone(),
                        orcpt: r.orcpt.clone(),
                        action: Action::Relayed,
                        status: "2.0.0".into(),
                        diagnostic: Some(reply.clone()),
                    }),
            );
        }
        if list.is_empty() {
            return;
        }
        self.enqueue_notice(msg, list, content).await;
    }

    /// Queues a DSN (failure, delay or success) to the message's sender.
    async fn enqueue_notice(&self, msg: &message::Model, list: Vec<DsnRecipient>, content: &[u8]) {
        // For the handover book: which recipients this DSN speaks of, and how.
        let notes: Vec<(String, String)> = list
            .iter()
            .map(|r| {
                (
                    r.address.clone(),
                    format!("{} {}", r.action.as_str(), r.status),
                )
            })
            .collect();
        let bytes = dsn::build(&dsn::DsnInput {
            hostname: &self.config.hostname,
            queue_id: &msg.id,
            original_sender: &msg.sender,
            envid: msg.dsn_envid.as_deref(),
            arrival_date: rfc3339_ms(msg.received_at),
            recipients: list,
            return_full: msg.dsn_ret.as_deref() == Some("FULL"),
            original: content,
        });
        let rcpt = NewRecipient {
            address: msg.sender.clone(),
            // A local sender hears through the office mail server; a remote one (mail that
            // came in) through the upstream, sealed with a local domain's identity.
            route: match crate::address::domain_of(&msg.sender) {
                Some(d) if !self.config.inbound.is_local_domain(&d) => Route::Outbound,
                _ => Route::Inbound,
            },
            notify: 0,
            orcpt: None,
        };
        let meta = NewMessage::generated(
            format!("MAILER-DAEMON@{}", self.config.hostname),
            "Delivery Status Notification",
            vec![rcpt],
        );
        match self.queue.enqueue(meta, Vec::new(), bytes).await {
            Ok(id) => {
                tracing::info!(queue_id = %msg.id, dsn_id = %id, to = %msg.sender, "DSN queued");
                for (address, what) in notes {
                    let note = format!("DSN {what} ({id})");
                    if let Err(e) =
                        crate::register::book::note_dsn(self.db(), &msg.id, &address, &note).await
                    {
                        tracing::warn!(queue_id = %msg.id, error = %e, "DSN not noted in the register");
                    }
                }
            }
            Err(e) => tracing::error!(queue_id = %msg.id, error = %e, "could not queue DSN"),
        }
    }
}

async fn set_state<C: ConnectionTrait>(
    db: &C,
    id: &str,
    st: &str,
    reason: Option<String>,
    next: i64,
    attempts: i32,
) -> Result<(), DbErr> {
    message::Entity::update_many()
        .col_expr(message::Column::State, Expr::value(st))
        .col_expr(message::Column::Reason, Expr::value(reason))
        .col_expr(message::Column::NextAttemptAt, Expr::value(next))
        .col_expr(message::Column::Attempts, Expr::value(attempts))
        .col_expr(message::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(message::Column::Id.eq(id))
        .exec(db)
        .await
        .map(|_| ())
}

/// Exponential backoff with ±25 % jitter, capped at `retry_max_secs`.
pub fn backoff_ms(cfg: &Config, attempts: i32) -> i64 {
    let base = cfg.queue.retry_base_secs.max(1) as f64 * 1000.0;
    let max = cfg.queue.retry_max_secs.max(1) as f64 * 1000.0;
    let exp = base * 2f64.powi((attempts - 1).clamp(0, 30));
    let capped = exp.min(max);
    let jitter = rand::rng().random_range(0.75..1.25);
    (capped * jitter) as i64
}
