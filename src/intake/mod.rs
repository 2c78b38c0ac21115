//! The intake stage, Postfix's cleanup: at end of DATA an envelope and the message's bytes
//! become one [`Decision`] (refuse with a reply, queue, or quarantine), and [`Intake::commit`]
//! makes it durable. The SMTP session only speaks the protocol; everything it knows about the
//! client and the transaction reaches this stage as a [`Client`] and an [`Envelope`].
//!
//! Order of the checks (SPEC "Outgoing mail", "Incoming mail", "Robustness"): MIME nesting
//! first (nothing may walk a message deeper than `[limits] max_mime_depth`), then our own
//! Authentication-Results removed (incoming), the header section read once, the sender's
//! From checked (outgoing), classification and the policy decision, the seal and the
//! document number (outgoing, [`outgoing`]), the signature (incoming, [`incoming`]). Nothing
//! of a message is written before it has been classified, so a refused confidential
//! document leaves no content anywhere.

pub mod incoming;
pub mod outgoing;

use std::net::IpAddr;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use time::OffsetDateTime;

use crate::audit::{self, Action, Event};
use crate::config::{Config, Role};
use crate::mime::{self, HeaderInfo};
use crate::model::{Direction, NewMessage, NewRecipient};
use crate::policy::{self, Classification, SharedPolicy};
use crate::queue::Queue;
use crate::register::Refused;
use crate::reply::{std_replies, Reply};

/// What the intake stage works with: the configuration, the database and the queue it
/// commits to, the policy in force, and the trust material for verifying incoming mail.
pub struct Intake {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub queue: Queue,
    /// The dispatch policy in force; swapped whole on reload.
    pub policy: Arc<SharedPolicy>,
    /// Trust anchors and CRLs, read again when a row changes.
    pub trust_cache: crate::pki::trust::TrustCache,
    /// The From domains known to have a seal.
    pub seal_domains: crate::pki::store::SealDomains,
}

/// A clerk's account, once AUTH has succeeded.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: String,
    /// The addresses and domains the account may send as (`account add --allow-from`).
    pub allowed_from: Vec<String>,
}

/// Who handed the message over, as the session knows it.
#[derive(Debug, Clone, Copy)]
pub struct Client<'a> {
    /// The listener's role: inbound takes incoming documents, every other role outgoing ones.
    pub role: Role,
    pub ip: IpAddr,
    pub helo: &'a str,
    /// The `with` protocol of the Received field (RFC 3848): SMTP, ESMTP, ESMTPS, ESMTPSA...
    pub protocol: &'static str,
    pub account: Option<&'a Account>,
}

impl Client<'_> {
    pub fn direction(&self) -> Direction {
        if self.role == Role::Inbound {
            Direction::In
        } else {
            Direction::Out
        }
    }

    /// Who did it, for the audit log: the account, or the client's address.
    fn actor(&self) -> String {
        self.account
            .map(|a| a.name.clone())
            .unwrap_or_else(|| self.ip.to_string())
    }
}

/// One mail transaction's envelope (MAIL and RCPT, with their ESMTP parameters).
#[derive(Debug, Default, Clone)]
pub struct Envelope {
    pub sender: String,
    /// `BODY=8BITMIME` was given.
    pub body_8bit: bool,
    pub smtputf8: bool,
    /// DSN `RET=` (FULL or HDRS).
    pub ret: Option<String>,
    /// DSN `ENVID=`.
    pub envid: Option<String>,
    pub rcpts: Vec<NewRecipient>,
}

/// What end of DATA decided about a message.
#[derive(Debug)]
pub enum Decision {
    /// Not accepted: the reply to send, and what the register and the audit log keep of a
    /// document refused by a rule (metadata only, never its content).
    Refuse {
        reply: Reply,
        record: Option<Box<Refused>>,
        audit: Option<RefusalAudit>,
    },
    /// To be queued for delivery.
    Queue(Box<Admission>),
    /// To be queued and held for `queue release` (an incoming document the profile
    /// quarantines), with the reason.
    Quarantine(Box<Admission>, String),
}

impl Decision {
    fn refuse(reply: Reply) -> Decision {
        Decision::Refuse {
            reply,
            record: None,
            audit: None,
        }
    }
}

/// The audit entry of a document refused by a rule (its actor is the client).
#[derive(Debug)]
pub struct RefusalAudit {
    pub action: Action,
    pub rule: String,
    /// Rule, sender, recipient count, listener, account, client address.
    pub details: serde_json::Value,
}

/// A message the queue is to commit.
#[derive(Debug)]
pub struct Admission {
    pub id: String,
    pub meta: NewMessage,
    /// The fields written above the message: Received, and Authentication-Results for
    /// incoming mail.
    pub trace: String,
    pub data: Vec<u8>,
}

impl Intake {
    /// End of DATA: decide, then commit. The reply is 250 only once the message is durable.
    pub async fn receive(&self, client: &Client<'_>, env: Envelope, data: Vec<u8>) -> Reply {
        let decision = self.examine(client, env, data).await;
        self.commit(client, decision).await
    }

    /// Checks, classifies and decides from the bytes in memory. Writes nothing but an
    /// outgoing document's number reservation (released again by [`Intake::commit`] when
    /// the queue does not take the message).
    pub async fn examine(&self, client: &Client<'_>, env: Envelope, data: Vec<u8>) -> Decision {
        let outgoing = client.direction() == Direction::Out;
        let limit = self.config.limits.max_mime_depth;
        // Measured without recursion (a stack overflow could not be contained), off the
        // reactor like a parse.
        let measured =
            tokio::task::spawn_blocking(move || (crate::nesting::check(&data, limit), data)).await;
        let data = match measured {
            Ok((Ok(_), data)) => data,
            Ok((Err(e), _)) => {
                tracing::warn!(ip = %client.ip, listener = client.role.as_str(), sender = %env.sender, error = %e, "message refused: nested deeper than [limits] max_mime_depth; nothing was written");
                return Decision::refuse(std_replies::too_deep(limit));
            }
            Err(e) => {
                tracing::error!(ip = %client.ip, error = %e, "nesting check failed");
                return Decision::refuse(std_replies::local_error());
            }
        };
        // SPEC "Incoming mail" 1: our own Authentication-Results go before anything else.
        let data = if outgoing {
            data
        } else {
            crate::smime::verify::strip_own_results(&data, &self.config.hostname)
        };
        let headers = mime::read_headers(&data);
        // Test hook (`testing` feature, never in the product): a panic in the work on one
        // message.
        #[cfg(any(test, feature = "testing"))]
        if headers
            .fields
            .iter()
            .any(|(n, v)| n.eq_ignore_ascii_case("X-Congvan-Test-Fault") && v == "panic")
        {
            panic!("test fault injected at end of DATA");
        }
        if outgoing {
            if let Err(reply) = outgoing::check_header_from(self, client, &headers) {
                return Decision::refuse(reply);
            }
        }
        // Classify and decide before anything is written. Parsing a large message runs off
        // the reactor.
        let rules = self.policy.get();
        let classified = {
            let rules = rules.clone();
            tokio::task::spawn_blocking(move || {
                let c = policy::classify_read_message(&rules.rules.classification, &headers, &data);
                (c, headers, data)
            })
            .await
        };
        let Ok((classification, headers, mut data)) = classified else {
            tracing::error!(ip = %client.ip, "classification task failed");
            return Decision::refuse(std_replies::local_error());
        };
        let accepted_at = OffsetDateTime::now_utc();
        let flow = if outgoing {
            policy::Flow::Outgoing
        } else {
            policy::Flow::Incoming
        };
        let decision = policy::decide(&rules, &classification, accepted_at, flow);
        let id = crate::util::new_queue_id();
        for conflict in &classification.conflicts {
            tracing::warn!(queue_id = %id, ip = %client.ip, %conflict, "classification sources disagree");
        }
        if let Some(refusal) = decision.refusal() {
            return refuse_by_policy(client, &env, &classification, &headers, refusal);
        }
        let mut reservation = None;
        if outgoing {
            let checked = outgoing::check(
                self,
                client,
                &env,
                outgoing::Document {
                    id: &id,
                    rules: &rules,
                    classification: &classification,
                    headers: &headers,
                    accepted_at,
                },
                data,
            )
            .await;
            match checked {
                Ok((checked, r)) => {
                    data = checked;
                    reservation = r;
                }
                Err(refused) => return *refused,
            }
        }
        if decision.late {
            tracing::warn!(queue_id = %id, rule = %decision.rule, deadline = %decision.deadline.as_ref().map(|d| d.date.to_string()).unwrap_or_default(), "document accepted past its dispatch deadline (late)");
        }
        // The queue's urgency column is the delivery lane; the policy may put a level in
        // another level's lane (the shipped profiles do not).
        let classification = Classification {
            urgency: decision.lane,
            ..classification
        };
        // Incoming: verify the signature and apply the profile's [incoming] action.
        let (data, verified) = if outgoing {
            (data, None)
        } else {
            let domain = incoming::sender_domain(&headers, &env);
            match incoming::verify(self, data, accepted_at, &rules, &domain).await {
                Ok((data, v)) => (data, Some(v)),
                Err(rejected) => {
                    return rejected.into_decision(client, &env, &classification, &headers)
                }
            }
        };
        let mut trace = received_header(&self.config.hostname, client, &env, &id);
        if let Some(v) = &verified {
            trace.insert_str(0, &v.header);
        }
        let quarantine = verified.as_ref().and_then(|v| v.hold_reason.clone());
        let accepted_ms = (accepted_at.unix_timestamp_nanos() / 1_000_000) as i64;
        let message_id = headers.message_id();
        let meta = NewMessage {
            direction: client.direction(),
            sender: env.sender,
            recipients: env.rcpts,
            header_from: headers.from.first().cloned().unwrap_or_default(),
            subject: headers.subject,
            classification,
            deadline_at: decision
                .deadline
                .as_ref()
                .map(|d| (d.at.unix_timestamp_nanos() / 1_000_000) as i64),
            listener: client.role.as_str().to_string(),
            client_ip: client.ip.to_string(),
            helo: client.helo.to_string(),
            account: client.account.map(|a| a.name.clone()),
            dsn_ret: env.ret,
            dsn_envid: env.envid,
            body_8bit: env.body_8bit || mime::has_8bit(&data),
            smtputf8: env.smtputf8,
            generated: false,
            hold_reason: None,
            smime: verified.as_ref().map(|v| v.record.clone()),
            pdfs: verified.map(|v| v.pdfs).unwrap_or_default(),
            rule: Some(decision.rule),
            number_reservation: reservation,
            // The register's day is the day the deadline was counted from.
            accepted_at: Some(accepted_ms),
            message_id,
        };
        let admission = Box::new(Admission {
            id,
            meta,
            trace,
            data,
        });
        match quarantine {
            Some(reason) => Decision::Quarantine(admission, reason),
            None => Decision::Queue(admission),
        }
    }

    /// Makes a decision durable: a refusal in the register and the audit log (a failure to
    /// write them is logged; the document is refused all the same), an admission in the
    /// queue. 250 only after the queue's commit.
    pub async fn commit(&self, client: &Client<'_>, decision: Decision) -> Reply {
        let (mut admission, quarantine) = match decision {
            Decision::Refuse {
                reply,
                record,
                audit,
            } => {
                let rule = record.as_ref().map(|r| r.rule.as_str()).unwrap_or("smtp");
                crate::metrics::get()
                    .refused
                    .get_or_create(&crate::metrics::Rule { rule: rule.into() })
                    .inc();
                if let Some(a) = audit {
                    let actor = client.actor();
                    let event = Event::new(&actor, a.action, a.rule, a.details);
                    audit::record_or_log(&self.db, &event).await;
                }
                if let Some(record) = record {
                    register_refusal(&self.db, &record).await;
                }
                return reply;
            }
            Decision::Queue(a) => (a, None),
            Decision::Quarantine(a, reason) => (a, Some(reason)),
        };
        admission.meta.hold_reason = quarantine.clone();
        let sender = admission.meta.sender.clone();
        let reservation = admission.meta.number_reservation;
        let Admission {
            id,
            meta,
            trace,
            data,
        } = *admission;
        let queue_id = id.clone();
        let (message_id, direction, rcpts, urgency) = (
            meta.message_id.clone().unwrap_or_default(),
            meta.direction,
            meta.recipients.len(),
            meta.classification.urgency.ascii(),
        );
        let result = self
            .queue
            .enqueue_with_id(id, meta, trace.into_bytes(), data)
            .await;
        // A committed message confirmed its number in the same transaction; one the queue
        // refused frees it again.
        if let (Some(reservation), Err(_)) = (reservation, &result) {
            if let Err(e) = crate::register::numbers::release_number(&self.db, reservation).await {
                // Settled at the next start-up from the queue's own rows.
                tracing::warn!(error = %e, "issued-number reservation left unsettled");
            }
        }
        if let (Ok(id), Some(reason)) = (&result, &quarantine) {
            let details = serde_json::json!({
                "automatic": true,
                "quarantine": true,
                "direction": "in",
                "reason": reason,
                "sender": sender,
                "client_ip": client.ip.to_string(),
            });
            audit::record_or_log(
                &self.db,
                &Event::new("daemon", Action::QueueHold, id.as_str(), details),
            )
            .await;
        }
        match result {
            Ok(id) => {
                let m = crate::metrics::get();
                m.accepted
                    .get_or_create(&crate::metrics::Direction {
                        direction: direction.as_str().into(),
                    })
                    .inc();
                if quarantine.is_some() {
                    m.held
                        .get_or_create(&crate::metrics::Cause {
                            cause: "quarantine".into(),
                        })
                        .inc();
                }
                tracing::info!(queue_id = %id, %message_id, direction = direction.as_str(), %sender, rcpts, urgency, held = quarantine.is_some(), "accepted");
                std_replies::queued(&id)
            }
            Err(e) => {
                let reply = Reply::from(&e);
                tracing::error!(%queue_id, error = %e, %sender, %reply, "message not committed");
                reply
            }
        }
    }

    /// The relay role accepts any sender in a policy-allowed or local domain (envelope and
    /// header From alike).
    pub fn relay_may_send_as(&self, addr: &str) -> bool {
        crate::address::domain_of(addr).is_some_and(|d| {
            self.policy.get().domains().sender_allowed(&d)
                || self.config.inbound.is_local_domain(&d)
        })
    }
}

/// A refusal by a policy rule: the message's bytes are dropped; only its metadata is logged
/// (never the subject or body), and kept for the register and the audit log.
fn refuse_by_policy(
    client: &Client<'_>,
    env: &Envelope,
    c: &Classification,
    headers: &HeaderInfo,
    refusal: &policy::Refusal,
) -> Decision {
    tracing::warn!(
        ip = %client.ip,
        listener = client.role.as_str(),
        account = client.account.map(|a| a.name.as_str()).unwrap_or("-"),
        sender = %env.sender,
        rcpts = env.rcpts.len(),
        urgency = c.urgency.ascii(),
        secrecy = c.secrecy.ascii(),
        number = c.number.as_deref().unwrap_or("-"),
        rule = %refusal.rule,
        "document refused by policy; its content was discarded"
    );
    let mut record = refused_record(client, env, c, headers, refusal.rule.clone());
    record.reason = match &refusal.detail {
        Some(detail) => format!("{} ({detail})", refusal.text_with_rule()),
        None => refusal.text_with_rule(),
    };
    // The audit entry: rule, sender, recipient count, listener, account, client address.
    let action = if refusal.secrecy.is_some() {
        Action::DocumentRefusedConfidential
    } else {
        Action::DocumentRefused
    };
    let details = serde_json::json!({
        "rule": refusal.rule,
        "detail": refusal.detail,
        "secrecy": c.secrecy.ascii(),
        "sender": env.sender,
        "recipients": env.rcpts.len(),
        "listener": client.role.as_str(),
        "account": client.account.map(|a| a.name.clone()),
        "client_ip": client.ip.to_string(),
    });
    Decision::Refuse {
        reply: Reply::from(refusal),
        record: Some(Box::new(record)),
        audit: Some(RefusalAudit {
            action,
            rule: refusal.rule.clone(),
            details,
        }),
    }
}

/// What the register keeps of a refused document: envelope, header From and
/// classification, never the subject or the content.
pub(crate) fn refused_record(
    client: &Client<'_>,
    env: &Envelope,
    c: &Classification,
    headers: &HeaderInfo,
    rule: String,
) -> Refused {
    Refused {
        direction: client.direction(),
        listener: client.role.as_str().to_string(),
        client_ip: client.ip.to_string(),
        account: client.account.map(|a| a.name.clone()),
        sender: env.sender.clone(),
        header_from: headers.from.first().cloned().unwrap_or_default(),
        recipients: env.rcpts.iter().map(|r| r.address.clone()).collect(),
        urgency: c.urgency,
        secrecy: c.secrecy,
        number: c.number.clone(),
        rule,
        reason: String::new(),
        smime: None,
    }
}

async fn register_refusal(db: &DatabaseConnection, record: &Refused) {
    match crate::register::book::record_refused(db, record).await {
        Ok(id) => tracing::info!(register_id = %id, rule = %record.rule, "refusal registered"),
        // Still refused: the document must not go out whether or not it was recorded.
        Err(e) => tracing::error!(error = %e, rule = %record.rule, "refusal not registered"),
    }
}

/// The Received field (RFC 5321 4.4) the gateway puts above the message.
fn received_header(hostname: &str, client: &Client<'_>, env: &Envelope, id: &str) -> String {
    let helo: String = client
        .helo
        .chars()
        .filter(|c| c.is_ascii_graphic())
        .take(255)
        .collect();
    let auth = client
        .account
        .map(|a| format!(" (authenticated as {})", a.name))
        .unwrap_or_default();
    let first_rcpt = match env.rcpts.as_slice() {
        [one] => format!("\r\n\tfor <{}>", one.address),
        _ => String::new(),
    };
    format!(
        "Received: from {helo} ([{ip}]){auth}\r\n\tby {hostname} (congvan) with {proto} id {id}{first_rcpt};\r\n\t{date}\r\n",
        ip = client.ip,
        proto = client.protocol,
        date = crate::util::rfc5322_now(),
    )
}
