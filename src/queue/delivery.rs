//! Delivering one queued message: group its pending recipients by route, hand each group to
//! its transport, record every recipient's outcome, then decide: delivered, deferred with
//! backoff, or failed with a DSN to the sender.
//!
//! Every end of an attempt (a result, a hold, a deferral after a database fault) is one
//! transaction that also releases the message's lease and un-counts the attempt, and holds
//! the mail that the change causes (DSNs, delay notices, notices to the escalation
//! addresses): a bounce is durable exactly when the result that causes it is. It applies
//! only while this run of the daemon still holds the message (see `lease`).

use std::sync::Arc;

use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use super::dsn::{self, Action, DsnRecipient};
use super::lease::Leases;
use super::lease::Released;
use super::pdf_seal::{log_pdf_parts, PdfSealFailure, PdfSealing};
use super::staged::Staged;
use super::transport::{self, EnvRcpt, Envelope, Outcome};
use super::{
    admin, prepare, Direction, HoldKind, MessageState, NewMessage, NewRecipient, Queue,
    RecipientState, Route,
};
use crate::config::Config;
use crate::model::state::{token_hold_reason, CANNOT_SEAL_SAFELY, INTERNAL_ERROR};
use crate::pki::store::{Seal, SealCache};
use crate::pki::token::TokenError;
use crate::store::entity::{message, recipient};
use crate::util::{now_ms, rfc3339_ms};

pub use crate::model::state::POISON_REASON;

/// What delivery needs: the configuration, the queue (to enqueue DSNs) and the seals.
pub struct Deliverer {
    pub config: Arc<Config>,
    pub queue: Queue,
    pub seals: SealCache,
    /// For the escalation addresses told when a message is held for its seal.
    pub policy: Arc<crate::policy::SharedPolicy>,
    /// This run's claim on the messages it delivers.
    pub leases: Arc<Leases>,
    /// Idle connections to the next hops, reused across deliveries.
    pub connections: transport::ConnectionCache,
    /// Trust anchors and CRLs, for the signer's signatures of the PDF parts it seals.
    pub trust: crate::pki::trust::TrustCache,
    /// Token identities that cannot sign now, so that an outage is reported once.
    pub tokens: super::token_watch::Outages,
    /// Commits the attempts' results, several in one transaction.
    pub results: super::outcome::ResultWriter,
}

/// The seal put on the bytes sent: the certificate's serial and the content's digest (hex),
/// and what the organisation's signature did to each PDF part.
#[derive(Debug, Clone)]
pub(super) struct SealUsed {
    pub(super) serial: String,
    pub(super) digest: String,
    pub(super) pdfs: Vec<crate::model::pdf::PartSealed>,
}

/// The bytes to send (with the seal used on them, when sealed), held, or not sealable yet
/// (the TSA gave no time-stamp): deferred with the reason, as an upstream's 4xx defers.
enum Sealed {
    Ready {
        bytes: Vec<u8>,
        seal: Option<SealUsed>,
    },
    Held,
    Deferred {
        reason: String,
    },
}

/// Which step of sealing failed.
enum SealStep {
    Pdf(PdfSealFailure),
    Smime(crate::smime::sign::SignError),
}

impl SealStep {
    /// The token's error, when sealing failed because the key's token could not sign.
    fn token_error(&self) -> Option<&TokenError> {
        use crate::pki::identity::KeyError;
        use crate::smime::sign::SignError;
        let sign = match self {
            SealStep::Smime(e) => e,
            SealStep::Pdf(PdfSealFailure::Seal {
                error: crate::pdf::SealError::Sign(e),
                ..
            }) => e,
            SealStep::Pdf(_) => return None,
        };
        match sign {
            SignError::Key(KeyError::Token(t)) => Some(t),
            _ => None,
        }
    }
}

/// One delivery attempt's result, as it is committed (by `outcome::ResultWriter`): the
/// message's next state, each recipient's outcome, and what the register keeps of it.
#[derive(Debug, Clone)]
pub(super) struct AttemptResult {
    pub(super) updates: Vec<RecipientUpdate>,
    /// Every recipient's (state, when) after the attempt, those settled earlier included,
    /// when the claim read them all.
    pub(super) outcomes: Option<Vec<(RecipientState, i64)>>,
    pub(super) next_state: MessageState,
    pub(super) reason: Option<String>,
    pub(super) next_at: i64,
    pub(super) attempts: i32,
    pub(super) seal: Option<SealUsed>,
    pub(super) archive: Option<crate::register::archive::Copy>,
    /// This attempt sent the sender's one "delayed" notice.
    pub(super) delay_notified: bool,
    pub(super) now: i64,
}

/// One recipient's outcome: its row, its address, its state after the attempt and the
/// next hop's reply.
#[derive(Debug, Clone)]
pub(super) struct RecipientUpdate {
    pub(super) id: i64,
    pub(super) address: String,
    pub(super) state: RecipientState,
    pub(super) reply: String,
}

/// Who must still hold a `delivering` message for a change to apply to it.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// This run of the daemon, whose attempt is ending.
    ThisRun,
    /// A daemon that stopped (the `claimed_by` value seen, NULL for rows from before leases).
    Stopped(Option<&'a str>),
}

/// Mail caused by one state change, staged in the spool, to commit with that change.
#[derive(Debug, Default)]
pub struct Notices {
    staged: Vec<Staged>,
    /// (recipient address, note) for the handover book: which DSN told the sender about it.
    dsn_notes: Vec<(String, String)>,
}

impl Notices {
    pub(super) fn is_empty(&self) -> bool {
        self.staged.is_empty()
    }
    pub(super) async fn insert<C: ConnectionTrait>(
        &self,
        txn: &C,
        entry_id: &str,
    ) -> Result<(), DbErr> {
        for s in &self.staged {
            s.insert(txn).await?;
        }
        for (address, note) in &self.dsn_notes {
            crate::register::book::note_dsn(txn, entry_id, address, note).await?;
        }
        Ok(())
    }
    fn discard(self) {
        super::staged::discard_all(self.staged);
    }
    fn log_committed(&self, queue_id: &str) {
        for s in &self.staged {
            tracing::info!(queue_id = %queue_id, notice_id = %s.id(), "notice queued");
        }
    }
}

/// A test-only way to make the delivery of chosen messages panic: tests of panic containment
/// use it in-process. Not in the product (`testing` feature).
#[cfg(any(test, feature = "testing"))]
pub static FAULT_HOOK: std::sync::OnceLock<fn(&message::Model)> = std::sync::OnceLock::new();

impl Deliverer {
    pub(super) fn db(&self) -> &DatabaseConnection {
        self.queue.db()
    }

    /// Delivers a message that the scheduler has claimed (state `delivering`), to its pending
    /// recipients (`known` when the claim read them already, else read here).
    pub(super) async fn deliver(
        &self,
        msg: message::Model,
        known: Option<super::scheduler::Recipients>,
    ) {
        if let Err(e) = self.try_deliver(&msg, known).await {
            // The database failed under us: put the message back for a later attempt. It must
            // not stay `delivering` (nothing would take it up again before a restart), so
            // this is retried until the database takes it.
            tracing::error!(queue_id = %msg.id, error = %e, "delivery bookkeeping failed; will retry");
            let db = self.db();
            let mut wait = 200;
            while let Err(e) = self
                .end_attempt(
                    db,
                    &msg.id,
                    MessageState::Deferred,
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

    /// A panic in the work on one message: it is held with the reason, the escalation
    /// addresses are told, and the daemon goes on with the others.
    pub async fn contain_panic(&self, msg: &message::Model, what: &str) {
        let what: String = what.chars().take(300).collect();
        let reason = format!("{INTERNAL_ERROR}{what}");
        tracing::error!(queue_id = %msg.id, %reason, "HELD: a panic in this message's delivery; the daemon goes on");
        let mut notices = Notices::default();
        // Not about the gateway's own mail: a notice that failed the same way would loop.
        if !msg.generated {
            self.stage_admin_notice(
            &mut notices,
            msg,
            &format!("[Giữ lại] {} / held: internal error", msg.subject),
            &format!(
                "Delivering this message failed inside the gateway; it is held so that it cannot fail again. Report the reason, then: congvan queue release {id} (or delete)\nVăn bản bị giữ lại do lỗi nội bộ của cổng thư.\n\nQueue ID: {id}\nFrom: {from}\nReason / Lý do: {reason}\n",
                id = msg.id,
                from = msg.header_from,
            ),
        )
        .await;
        }
        match self
            .hold(
                msg,
                &reason,
                notices,
                Holder::ThisRun,
                HoldKind::InternalError,
            )
            .await
        {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(queue_id = %msg.id, "message no longer held by this daemon; panic not recorded")
            }
            Err(e) => {
                tracing::error!(queue_id = %msg.id, error = %e, "could not hold the message after a panic; its lease will run out")
            }
        }
    }

    /// Holds a message whose delivery did not finish twice (the daemon stopped under it),
    /// tells the escalation addresses, and writes the audit entry, in one transaction.
    pub async fn hold_poison(&self, msg: &message::Model) -> Result<bool, DbErr> {
        tracing::error!(queue_id = %msg.id, unfinished = msg.unfinished_attempts, "HELD as poison: two delivery attempts did not finish; congvan queue show / release / delete");
        let mut notices = Notices::default();
        // Not about the gateway's own mail: a notice that failed the same way would loop.
        if !msg.generated {
            self.stage_admin_notice(
            &mut notices,
            msg,
            &format!("[Giữ lại] {} / held: poison message", msg.subject),
            &format!(
                "Processing this message stopped the gateway twice; it is held and will not be tried again by itself. Look at the log for this queue ID, then: congvan queue release {id} (or delete)\nViệc xử lý văn bản này đã làm cổng thư dừng hai lần; văn bản bị giữ lại.\n\nQueue ID: {id}\nFrom: {from}\nReason / Lý do: {POISON_REASON}\n",
                id = msg.id,
                from = msg.header_from,
            ),
        )
        .await;
        }
        self.hold(
            msg,
            POISON_REASON,
            notices,
            Holder::Stopped(msg.claimed_by.as_deref()),
            HoldKind::Poison,
        )
        .await
    }

    /// The message as queued, read again for a DSN that quotes it (sealing drops the bytes
    /// early: a document can be tens of megabytes). Unreadable, the notice goes without it.
    async fn original_for_notice(&self, msg: &message::Model) -> Vec<u8> {
        match self.queue.content(&msg.id).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(queue_id = %msg.id, error = %e, "message unreadable: the notice to its sender goes without a copy of it");
                Vec::new()
            }
        }
    }

    async fn try_deliver(
        &self,
        msg: &message::Model,
        known: Option<super::scheduler::Recipients>,
    ) -> Result<(), DbErr> {
        let (rcpts, settled) = match known {
            Some(k) => (k.pending, Some(k.settled)),
            None => (admin::pending_recipients(self.db(), &msg.id).await?, None),
        };
        let content = match self.queue.content(&msg.id).await {
            Ok(c) => c,
            Err(super::ContentError::Database(e)) => return Err(e),
            Err(super::ContentError::Unreadable(reason)) => {
                tracing::error!(queue_id = %msg.id, %reason, "holding message");
                self.hold(
                    msg,
                    &reason,
                    Notices::default(),
                    Holder::ThisRun,
                    HoldKind::SpoolUnreadable,
                )
                .await?;
                return Ok(());
            }
        };
        #[cfg(any(test, feature = "testing"))]
        if let Some(hook) = FAULT_HOOK.get() {
            hook(msg);
        }
        let (content, seal_used, not_sealed) = match self.seal(msg, &rcpts, content).await? {
            Sealed::Ready { bytes, seal } => (bytes, seal, None),
            Sealed::Held => return Ok(()),
            // Nothing is handed over; the DSNs this attempt may cause (delayed, or expired)
            // quote the message as it was queued.
            Sealed::Deferred { reason } => {
                (self.original_for_notice(msg).await, None, Some(reason))
            }
        };
        let (outcomes, dsn_passed_on) = match not_sealed {
            None => self.hand_over(msg, &rcpts, &content).await,
            Some(reason) => (
                rcpts
                    .iter()
                    .map(|r| {
                        (
                            r.clone(),
                            Outcome::TempFail(super::transport::Diagnostic {
                                reply: None,
                                text: reason.clone(),
                            }),
                        )
                    })
                    .collect(),
                false,
            ),
        };

        let now = now_ms();
        let lifetime_ms = self.config.queue.max_lifetime_hours as i64 * 3_600_000;
        let expired = now - msg.received_at >= lifetime_ms;
        let mut failed = Vec::new();
        let mut delivered = Vec::new();
        let mut temp_reason: Option<String> = None;
        let mut updates = Vec::with_capacity(outcomes.len());
        for (r, o) in &outcomes {
            let (st, reply) = match o {
                Outcome::Delivered(d) => {
                    delivered.push((r.clone(), d.text.clone()));
                    (RecipientState::Delivered, d.text.clone())
                }
                Outcome::PermFail(d) => {
                    failed.push((r.clone(), d.text.clone(), d.status("5.0.0")));
                    (RecipientState::Failed, d.text.clone())
                }
                Outcome::TempFail(s) if expired => {
                    let why = format!(
                        "message expired in the queue after {} hours; last error: {s}",
                        self.config.queue.max_lifetime_hours
                    );
                    failed.push((r.clone(), why.clone(), "4.4.7".to_string()));
                    (RecipientState::Failed, why)
                }
                Outcome::TempFail(d) => {
                    temp_reason.get_or_insert_with(|| d.text.clone());
                    (RecipientState::Pending, d.text.clone())
                }
            };
            updates.push(RecipientUpdate {
                id: r.id,
                address: r.address.clone(),
                state: st,
                reply,
            });
        }

        // Every recipient's state after this attempt, when the claim read them all: the
        // register settles the document from it instead of reading them back.
        let after = settled.map(|mut all| {
            let now_in: std::collections::HashMap<i64, RecipientState> =
                updates.iter().map(|u| (u.id, u.state)).collect();
            all.extend(rcpts.iter().map(|r| {
                let st = now_in
                    .get(&r.id)
                    .copied()
                    .unwrap_or(RecipientState::Pending);
                (st, now)
            }));
            all
        });

        // A long deferral: the sender hears once that the message is delayed (RFC 3464).
        let delay_notice = if temp_reason.is_some() && self.delay_notice_due(msg, now) {
            Some(delayed_recipients(&outcomes))
        } else {
            None
        };

        let attempts = msg.attempts + 1;
        let (next_state, reason, next_at) = match &temp_reason {
            Some(reason) => {
                let delay = backoff_ms(&self.config, attempts);
                tracing::warn!(queue_id = %msg.id, attempts, retry_in_s = delay / 1000, %reason, "deferred");
                (MessageState::Deferred, Some(reason.clone()), now + delay)
            }
            None => {
                let st = if delivered.is_empty() {
                    MessageState::Failed
                } else {
                    MessageState::Delivered
                };
                tracing::info!(queue_id = %msg.id, state = st.as_str(), delivered = delivered.len(), failed = failed.len(), "left the queue");
                (st, None, now)
            }
        };
        let archive = self
            .archive(msg, &content, !delivered.is_empty(), now)
            .await;
        // The mail this result causes (bounce, success and delay DSNs) is staged first and
        // committed with the result.
        let mut notices = Notices::default();
        self.stage_sender_dsns(
            &mut notices,
            msg,
            &content,
            &failed,
            &delivered,
            dsn_passed_on,
        )
        .await;
        if let Some(list) = delay_notice.as_ref().filter(|l| !l.is_empty()) {
            tracing::info!(queue_id = %msg.id, rcpts = list.len(), "delayed: telling the sender");
            self.stage_dsn(&mut notices, msg, list.clone(), &content)
                .await;
        }
        // The whole attempt is recorded in one transaction: one durable commit per message.
        // The transport has already spoken, so a failed commit is retried rather than the
        // message sent again: a storage fault must not mean a document delivered twice, nor
        // one left `delivering`.
        let result = AttemptResult {
            updates,
            outcomes: after,
            next_state,
            reason,
            next_at,
            attempts,
            seal: seal_used,
            archive,
            delay_notified: delay_notice.is_some(),
            now,
        };
        // The result writer removes the spool file of a message this result ends.
        self.commit_result(msg, result, notices).await
    }

    /// Hands the message to each route's next hop (local recipients first) and gives each
    /// recipient's outcome, and whether a next hop took over DSN duty.
    async fn hand_over(
        &self,
        msg: &message::Model,
        rcpts: &[recipient::Model],
        content: &[u8],
    ) -> (Vec<(recipient::Model, Outcome)>, bool) {
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
            let report = transport::deliver(
                &cfg,
                &self.connections,
                &self.config.hostname,
                &env,
                content,
            )
            .await;
            dsn_passed_on |= report.dsn_passed_on;
            for (r, o) in group.into_iter().zip(report.outcomes) {
                tracing::info!(
                    queue_id = %msg.id,
                    rcpt = %r.address,
                    route = route.as_str(),
                    target = %cfg.upstream,
                    result = %o,
                    "delivery attempt"
                );
                crate::metrics::get()
                    .attempts
                    .get_or_create(&crate::metrics::Outcome {
                        route: route.as_str().into(),
                        outcome: o.kind().into(),
                    })
                    .inc();
                outcomes.push((r.clone(), o));
            }
        }
        (outcomes, dsn_passed_on)
    }

    /// Records the attempt's result and the mail it causes in one transaction. The transport
    /// has already spoken, so a failed commit is retried rather than the message sent again: a
    /// storage fault must not mean a document delivered twice, nor one left `delivering`.
    /// A message taken over meanwhile keeps the state its new holder gives it: nothing is
    /// recorded.
    async fn commit_result(
        &self,
        msg: &message::Model,
        result: AttemptResult,
        mut notices: Notices,
    ) -> Result<(), DbErr> {
        use super::outcome::Recorded;
        let mut tries: u64 = 0;
        loop {
            match self.results.record(msg, result.clone(), notices).await {
                Recorded::Committed(n) => {
                    n.log_committed(&msg.id);
                    return Ok(());
                }
                Recorded::TakenOver(n) => {
                    // An administrator (or another daemon, once our lease ran out) took the
                    // message over: its state is theirs now.
                    tracing::error!(queue_id = %msg.id, "the message was taken over during the attempt; its result is not recorded");
                    n.discard();
                    return Ok(());
                }
                // A storage fault passes: wait for it rather than send the message again.
                // Anything else (a constraint, a trigger) would fail the same way for ever:
                // after a few tries the attempt is put back and made again later.
                Recorded::Failed {
                    notices: n,
                    transient,
                    error,
                } if tries < 10 || transient => {
                    tries += 1;
                    notices = n;
                    tracing::warn!(queue_id = %msg.id, %error, tries, "recording the delivery result failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis((200 * tries).min(5_000)))
                        .await;
                }
                Recorded::Failed {
                    notices: n, error, ..
                } => {
                    n.discard();
                    return Err(DbErr::Custom(error));
                }
            }
        }
    }

    /// Marks and seals an outgoing message with the identity of its From domain. A message
    /// that must be signed and cannot be is held with the reason: it is never sent unsigned.
    async fn seal(
        &self,
        msg: &message::Model,
        rcpts: &[recipient::Model],
        content: Vec<u8>,
    ) -> Result<Sealed, DbErr> {
        if msg.direction != Direction::Out {
            return Ok(Sealed::Ready {
                bytes: content,
                seal: None,
            });
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
                    format!("{e} ([limits] max_mime_depth): {CANNOT_SEAL_SAFELY}"),
                    true,
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
            Seal::Usable {
                identity,
                id,
                seal_image,
            } => {
                let prepared = prepared();
                drop(content);
                let pdf = match self.pdf_sealing(msg).await? {
                    Some(p) => p,
                    None => PdfSealing::Off,
                };
                let signed = tokio::task::spawn_blocking(move || {
                    let started = std::time::Instant::now();
                    let _timed = crate::util::OnDrop(move || {
                        crate::metrics::get()
                            .seal_seconds
                            .observe(started.elapsed().as_secs_f64())
                    });
                    let (prepared, parts) = pdf
                        .seal(prepared, &identity, seal_image.as_deref(), now)
                        .map_err(SealStep::Pdf)?;
                    crate::smime::sign::sign_message(&prepared, &identity, now)
                        .map(|s| (s, parts))
                        .map_err(SealStep::Smime)
                })
                .await;
                match signed {
                    Ok(Ok((s, parts))) => {
                        if self.tokens.recovered(id) {
                            super::token_watch::audit_recovered(self.db(), id, 0).await;
                        }
                        log_pdf_parts(msg, &parts);
                        tracing::info!(queue_id = %msg.id, identity = id, serial = %s.signer_serial_hex, digest = %s.digest_sha256_hex, opaque = s.opaque, "sealed");
                        Ok(Sealed::Ready {
                            bytes: s.bytes,
                            seal: Some(SealUsed {
                                serial: s.signer_serial_hex,
                                digest: s.digest_sha256_hex,
                                pdfs: parts,
                            }),
                        })
                    }
                    // No time-stamp: the document waits for the TSA, never goes without it.
                    Ok(Err(SealStep::Pdf(f @ PdfSealFailure::TimeStamp { .. }))) => {
                        let reason = f.to_string();
                        match &f {
                            PdfSealFailure::TimeStamp { error, .. } if error.is_temporary() => {
                                tracing::warn!(queue_id = %msg.id, %reason, "time-stamping service unavailable; deferring")
                            }
                            _ => {
                                tracing::error!(queue_id = %msg.id, %reason, "time-stamping service gave no usable time-stamp; deferring (check [pdf] tsa_url and the TSA)")
                            }
                        }
                        Ok(Sealed::Deferred { reason })
                    }
                    Ok(Err(step)) => {
                        if let Some(t) = step.token_error() {
                            return self.hold_for_token(msg, rcpts, id, t).await;
                        }
                        let why = match step {
                            SealStep::Pdf(f) => f.to_string(),
                            SealStep::Smime(e) => e.to_string(),
                        };
                        self.hold_unsigned(
                            msg,
                            rcpts,
                            format!("cannot sign with identity {id}: {why}"),
                            true,
                        )
                        .await
                    }
                    Err(e) => {
                        self.hold_unsigned(msg, rcpts, format!("signing task failed: {e}"), true)
                            .await
                    }
                }
            }
            // The gateway's own mail and mail that stays inside the office go out unsigned
            // when no seal can be used.
            Seal::None | Seal::Unusable { .. } if msg.generated || !leaves => Ok(Sealed::Ready {
                bytes: prepared(),
                seal: None,
            }),
            Seal::None => {
                self.hold_unsigned(
                    msg,
                    rcpts,
                    format!("no signing identity (digital seal) is configured for {domain}"),
                    true,
                )
                .await
            }
            Seal::Unusable {
                token: Some((id, t)),
                ..
            } => self.hold_for_token(msg, rcpts, id, &t).await,
            Seal::Unusable { reason, .. } => {
                self.hold_unsigned(
                    msg,
                    rcpts,
                    format!("the signing identity for {domain} cannot be used: {reason}"),
                    true,
                )
                .await
            }
        }
    }

    /// Holds a message the daemon cannot deliver: the queue, the register, the audit log and
    /// the notices the hold causes change in one transaction, so no hold goes unrecorded.
    /// Applies only while `holder` still holds the message (false otherwise); the staged
    /// notices are discarded when it does not commit.
    async fn hold(
        &self,
        msg: &message::Model,
        reason: &str,
        notices: Notices,
        holder: Holder<'_>,
        kind: HoldKind,
    ) -> Result<bool, DbErr> {
        let r = self.hold_txn(msg, reason, &notices, holder, kind).await;
        match r {
            Ok(true) => {
                crate::metrics::get()
                    .held
                    .get_or_create(&crate::metrics::Cause {
                        cause: kind.cause().into(),
                    })
                    .inc();
                notices.log_committed(&msg.id)
            }
            _ => notices.discard(),
        }
        if matches!(r, Ok(true)) {
            self.queue.wake().notify_one();
        }
        r
    }

    async fn hold_txn(
        &self,
        msg: &message::Model,
        reason: &str,
        notices: &Notices,
        holder: Holder<'_>,
        kind: HoldKind,
    ) -> Result<bool, DbErr> {
        use crate::audit;
        let txn = audit::begin(self.db()).await?;
        let now = now_ms();
        let mut update = message::Entity::update_many()
            .col_expr(message::Column::State, Expr::value(MessageState::Held))
            .col_expr(message::Column::Reason, Expr::value(reason.to_string()))
            .col_expr(message::Column::NextAttemptAt, Expr::value(now))
            .col_expr(message::Column::UpdatedAt, Expr::value(now))
            .released();
        if matches!(holder, Holder::ThisRun) {
            // The attempt ended here: it is no longer unfinished.
            update = update.col_expr(
                message::Column::UnfinishedAttempts,
                super::lease::unfinished_plus(-1),
            );
        }
        let res = held_by(
            update.filter(message::Column::Id.eq(&msg.id)),
            &self.leases,
            holder,
        )
        .exec(&txn)
        .await?;
        if res.rows_affected != 1 {
            txn.rollback().await?;
            return Ok(false);
        }
        crate::register::book::set_state(
            &txn,
            &msg.id,
            crate::model::EntryState::Held,
            Some(reason),
        )
        .await?;
        audit::append(
            &txn,
            &audit::Event::new(
                "daemon",
                audit::Action::QueueHold,
                msg.id.as_str(),
                serde_json::json!({
                    "automatic": true,
                    "cause": kind.cause(),
                    "direction": msg.direction,
                    "reason": reason,
                    "sender": msg.sender,
                    "unfinished_attempts": msg.unfinished_attempts,
                }),
            ),
        )
        .await?;
        notices.insert(&txn, &msg.id).await?;
        txn.commit().await?;
        Ok(true)
    }

    /// Holds a document whose identity's token cannot sign. The first in an outage of that
    /// token is audited and tells the administrator; the token watch releases them all when
    /// the token signs again.
    async fn hold_for_token(
        &self,
        msg: &message::Model,
        rcpts: &[recipient::Model],
        identity: i64,
        error: &TokenError,
    ) -> Result<Sealed, DbErr> {
        let first = self.tokens.failed(identity, error);
        if first {
            super::token_watch::audit_failure(self.db(), identity, error).await;
        }
        let reason = token_hold_reason(identity, error);
        self.hold_unsigned(msg, rcpts, reason, first).await
    }

    /// Holds a message that cannot be sealed, tells the administrator (log and, with
    /// `tell_admin`, a notice to the escalation addresses) and sends the sender a delay
    /// notice, in one transaction.
    async fn hold_unsigned(
        &self,
        msg: &message::Model,
        rcpts: &[recipient::Model],
        reason: String,
        tell_admin: bool,
    ) -> Result<Sealed, DbErr> {
        let kind = HoldKind::of_reason(&reason);
        let mut notices = Notices::default();
        if kind == HoldKind::Token {
            tracing::error!(queue_id = %msg.id, %reason, "HELD: not sent unsigned; released by itself when the token signs again");
        } else {
            tracing::error!(queue_id = %msg.id, %reason, "HELD: not sent unsigned; fix the identity (congvan cert ...) then congvan queue release");
        }
        if tell_admin {
            let what_to_do = if kind == HoldKind::Token {
                "Put the token back, unlock it or correct its PIN (file or systemd credential): the documents held for it are sent by themselves once it signs again (checked every minute), or run: congvan queue release"
            } else {
                "Fix the signing identity (congvan cert ...), then: congvan queue release"
            };
            self.stage_admin_notice(
                &mut notices,
                msg,
                &format!("[Giữ lại] {} / held: cannot be sealed", msg.subject),
                &format!(
                    "A document is held and will not be sent unsigned. {what_to_do} {id}\nVăn bản bị giữ lại, không gửi khi chưa ký số.\n\nQueue ID: {id}\nFrom: {from}\nReason / Lý do: {reason}\n",
                    id = msg.id,
                    from = msg.header_from,
                ),
            )
            .await;
        }
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
            let original = self.original_for_notice(msg).await;
            self.stage_dsn(&mut notices, msg, list, &original).await;
        }
        self.hold(msg, &reason, notices, Holder::ThisRun, kind)
            .await?;
        Ok(Sealed::Held)
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
    ) -> Option<crate::register::archive::Copy> {
        let days = self.config.register.archive_days;
        if !delivered || days == 0 || msg.generated || msg.direction != Direction::Out {
            return None;
        }
        // One copy: the first attempt that delivered (a later one finishing a partial
        // delivery keeps it). Only an earlier recorded attempt can have made one.
        if msg.attempts > 0 {
            match crate::register::archive::has_copy(self.db(), &msg.id).await {
                Ok(false) => {}
                Ok(true) => return None,
                Err(e) => {
                    tracing::error!(queue_id = %msg.id, error = %e, "archive look-up failed; no copy kept");
                    return None;
                }
            }
        }
        let until = now + i64::from(days) * 86_400_000;
        if self.db().get_database_backend() == sea_orm::DbBackend::Postgres {
            // Every node reads and prunes it: the bytes go with the attempt's result.
            return Some(crate::register::archive::Copy {
                place: crate::register::archive::IN_DATABASE.to_string(),
                until,
                content: Some(content.into()),
            });
        }
        let path = crate::register::archive::path_for(&self.config.data_dir, &msg.id, now);
        match crate::register::archive::write(path.clone(), content.to_vec()).await {
            Ok(()) => Some(crate::register::archive::Copy {
                place: path.display().to_string(),
                until,
                content: None,
            }),
            Err(e) => {
                tracing::error!(queue_id = %msg.id, path = %path.display(), error = %e, "archive copy not written");
                None
            }
        }
    }

    /// Ends this run's attempt on a message: its new state, the claim and lease released,
    /// the attempt no longer unfinished. False when this run no longer holds it.
    async fn end_attempt<C: ConnectionTrait>(
        &self,
        db: &C,
        id: &str,
        st: MessageState,
        reason: Option<String>,
        next: i64,
        attempts: i32,
    ) -> Result<bool, DbErr> {
        let res = end_attempt_update(&self.leases, id, st, reason, next, attempts, now_ms())
            .exec(db)
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Failure DSNs (unless NOTIFY excludes them) and success DSNs when asked for with
    /// NOTIFY=SUCCESS and the next hop did not take over the request. Never to the null sender.
    async fn stage_sender_dsns(
        &self,
        notices: &mut Notices,
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
        self.stage_dsn(notices, msg, list, content).await;
    }

    /// Stages a DSN (failure, delay or success) to the message's sender.
    async fn stage_dsn(
        &self,
        notices: &mut Notices,
        msg: &message::Model,
        list: Vec<DsnRecipient>,
        content: &[u8],
    ) {
        if list.is_empty() {
            return;
        }
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
        // The document's number, for the notice's first line (a clerk knows documents by it).
        let number = match crate::register::query::number_of(self.db(), &msg.id).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(queue_id = %msg.id, error = %e, "register look-up failed: the notice names the document by its subject only");
                None
            }
        };
        let bytes = dsn::build(&dsn::DsnInput {
            hostname: &self.config.hostname,
            queue_id: &msg.id,
            original_sender: &msg.sender,
            envid: msg.dsn_envid.as_deref(),
            arrival_date: rfc3339_ms(msg.received_at),
            recipients: list,
            return_full: msg.dsn_ret.as_deref() == Some("FULL"),
            original: content,
            number: number.as_deref(),
            subject: &msg.subject,
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
        if let Some(staged) = self.stage_with_retries(&msg.id, meta, bytes).await {
            tracing::info!(queue_id = %msg.id, dsn_id = %staged.id(), to = %msg.sender, "DSN staged");
            for (address, what) in notes {
                let note = format!("DSN {what} ({})", staged.id());
                notices.dsn_notes.push((address, note));
            }
            notices.staged.push(staged);
        }
    }

    /// Stages a notice about `msg` to the policy's escalation addresses.
    async fn stage_admin_notice(
        &self,
        notices: &mut Notices,
        msg: &message::Model,
        subject: &str,
        body: &str,
    ) {
        let admins = self.policy.get().rules.escalation.notify.clone();
        if let Some((meta, bytes)) = super::monitor::notice(&self.config, &admins, subject, body) {
            if let Some(s) = self.stage_with_retries(&msg.id, meta, bytes).await {
                notices.staged.push(s);
            }
        }
    }

    /// Writes a notice to the spool, trying a few times (a full disk may clear). One that
    /// cannot be written is logged and left out: the state change it reports is still
    /// recorded, since the document itself must not be sent twice or lost.
    async fn stage_with_retries(
        &self,
        queue_id: &str,
        meta: NewMessage,
        bytes: Vec<u8>,
    ) -> Option<Staged> {
        for attempt in 1..=3u64 {
            match self.queue.stage(meta.clone(), bytes.clone()).await {
                Ok(s) => return Some(s),
                Err(e) if attempt < 3 => {
                    tracing::warn!(queue_id = %queue_id, error = %e, "could not write a notice to the spool; trying again");
                    tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
                }
                Err(e) => {
                    tracing::error!(queue_id = %queue_id, error = %e, "could not write a notice to the spool; it is not sent")
                }
            }
        }
        None
    }
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

/// The recipients a "delayed" notice names (RFC 3464): those deferred whose NOTIFY allows it.
fn delayed_recipients(outcomes: &[(recipient::Model, Outcome)]) -> Vec<DsnRecipient> {
    let allows_delay = |n: i32| n == 0 || (n & smtp_proto::RCPT_NOTIFY_DELAY as i32) != 0;
    outcomes
        .iter()
        .filter_map(|(r, o)| match o {
            Outcome::TempFail(d) if allows_delay(r.notify) => Some(DsnRecipient {
                address: r.address.clone(),
                orcpt: r.orcpt.clone(),
                action: Action::Delayed,
                status: d.status("4.0.0"),
                diagnostic: Some(d.text.clone()),
            }),
            _ => None,
        })
        .collect()
}

/// Restricts an update to a message still `delivering` under `holder`.
pub(super) fn held_by<Q: QueryFilter>(q: Q, leases: &Leases, holder: Holder<'_>) -> Q {
    let q = q.filter(message::Column::State.eq(MessageState::Delivering));
    match holder {
        Holder::ThisRun => q.filter(message::Column::ClaimedBy.eq(leases.claim())),
        Holder::Stopped(Some(by)) => q.filter(message::Column::ClaimedBy.eq(by)),
        Holder::Stopped(None) => q.filter(message::Column::ClaimedBy.is_null()),
    }
}

/// The values that end an attempt on a message: its next state, the reason, when it is tried
/// next and how many attempts it has had.
pub(super) fn end_attempt_values(
    st: MessageState,
    reason: Option<String>,
    next: i64,
    attempts: i32,
    now: i64,
) -> Vec<(message::Column, sea_orm::sea_query::SimpleExpr)> {
    vec![
        (message::Column::State, Expr::value(st)),
        (message::Column::Reason, Expr::value(reason)),
        (message::Column::NextAttemptAt, Expr::value(next)),
        (message::Column::Attempts, Expr::value(attempts)),
        (message::Column::UpdatedAt, Expr::value(now)),
    ]
}

/// `update` as the end of an attempt: the claim and lease released, the attempt no longer
/// unfinished.
pub(super) fn ended(
    update: sea_orm::UpdateMany<message::Entity>,
) -> sea_orm::UpdateMany<message::Entity> {
    update.released().col_expr(
        message::Column::UnfinishedAttempts,
        super::lease::unfinished_plus(-1),
    )
}

/// The update that ends this run's attempt on message `id`: its next state, the claim and
/// lease released, the attempt no longer unfinished; it applies only while this run holds
/// the message.
pub(super) fn end_attempt_update(
    leases: &Leases,
    id: &str,
    st: MessageState,
    reason: Option<String>,
    next: i64,
    attempts: i32,
    now: i64,
) -> sea_orm::UpdateMany<message::Entity> {
    let update = end_attempt_values(st, reason, next, attempts, now)
        .into_iter()
        .fold(message::Entity::update_many(), |u, (column, value)| {
            u.col_expr(column, value)
        });
    held_by(
        ended(update).filter(message::Column::Id.eq(id)),
        leases,
        Holder::ThisRun,
    )
}
