//! The checks only an incoming document (văn bản đến) passes at end of DATA (SPEC "Incoming
//! mail" 1–5), between the policy decision and the queue: verify the S/MIME signature off the reactor, write the
//! Authentication-Results field, and apply the profile's `[incoming]` action for a result
//! that is not `pass` (deliver, quarantine, refuse).
//!
//! Trust anchors and CRLs come from the database through the intake stage's
//! [`TrustCache`](crate::pki::trust::TrustCache): a change applies to the next message
//! without a restart.

use super::{Client, Decision, Envelope, Intake};
use crate::mime::HeaderInfo;
use crate::policy::file::IncomingAction;
use crate::policy::Classification;
use crate::policy::Policy;
use crate::queue::SmimeRecord;
use crate::reply::{std_replies, Reply};
use crate::smime::verify::{self, SmimeResult, VerifyOptions};

/// What the intake stage writes for a verified incoming message.
pub struct Verified {
    /// The Authentication-Results field, with its CRLF, for the top of the message.
    pub header: String,
    pub record: SmimeRecord,
    /// Set when the profile quarantines the message.
    pub hold_reason: Option<String>,
}

/// A message the verification stage will not queue.
pub struct Rejected {
    /// The reply to send instead of 250: a refusal, or 451 when the trust material cannot
    /// be read.
    pub reply: Reply,
    /// The verification behind a refusal by the `[incoming]` policy, for the register.
    pub refused: Option<SmimeRecord>,
}

impl Rejected {
    /// The decision: the reply, and for a refusal by the `[incoming]` policy what the
    /// register keeps (rule `incoming.<result>`). A temporary refusal (451) is not a refusal
    /// of the document yet: nothing is registered.
    pub fn into_decision(
        self,
        client: &Client<'_>,
        env: &Envelope,
        c: &Classification,
        headers: &HeaderInfo,
    ) -> Decision {
        let record = match (self.refused, self.reply.code) {
            (Some(smime), 500..) => {
                let rule = format!("incoming.{}", smime.result);
                let mut r = super::refused_record(client, env, c, headers, rule);
                r.reason = self.reply.text.clone();
                r.smime = Some(smime);
                Some(Box::new(r))
            }
            _ => None,
        };
        Decision::Refuse {
            reply: self.reply,
            record,
            audit: None,
        }
    }
}

/// The domain whose `[incoming]` rules apply: the header From's, else the envelope sender's.
pub fn sender_domain(headers: &HeaderInfo, env: &Envelope) -> String {
    headers
        .from
        .first()
        .or(Some(&env.sender))
        .and_then(|f| crate::address::domain_of(f))
        .unwrap_or_default()
}

impl From<Reply> for Rejected {
    fn from(reply: Reply) -> Self {
        Rejected {
            reply,
            refused: None,
        }
    }
}

/// Verifies `data` (our own Authentication-Results already removed) received at `at`, and
/// decides by the profile's `[incoming]` rules for `sender_domain`.
pub async fn verify(
    intake: &Intake,
    data: Vec<u8>,
    at: time::OffsetDateTime,
    policy: &Policy,
    sender_domain: &str,
) -> Result<(Vec<u8>, Verified), Rejected> {
    let (anchors, crls) = crate::pki::trust::material(&intake.db, &intake.trust_cache)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "trust anchors/CRLs unavailable: 451");
            Rejected::from(std_replies::db_unavailable())
        })?;
    let opts = VerifyOptions {
        require_revocation_data: policy.rules.incoming.require_revocation_data,
        sender_delegation: policy.rules.incoming.sender_delegation,
    };
    let (verdict, data) = tokio::task::spawn_blocking(move || {
        (
            verify::verify_message(&data, &anchors, &crls, at, opts),
            data,
        )
    })
    .await
    .map_err(|_| {
        tracing::error!("verification task failed");
        Rejected::from(std_replies::local_error())
    })?;
    let header = verify::authentication_results_header(&intake.config.hostname, &verdict);
    let reason_en = verdict.reason_en();
    let record = SmimeRecord {
        result: verdict.result,
        signer: verdict.signer.clone(),
        reason: (!reason_en.is_empty()).then(|| reason_en.clone()),
    };
    tracing::info!(
        result = verdict.result.as_str(),
        signer = verdict.signer.as_deref().unwrap_or("-"),
        serial = verdict.serial.as_deref().unwrap_or("-"),
        reason = %reason_en,
        "S/MIME verification"
    );
    let action = if verdict.result == SmimeResult::Pass {
        IncomingAction::Deliver
    } else {
        policy.rules.incoming.action_for(sender_domain)
    };
    match action {
        IncomingAction::Deliver => Ok((
            data,
            Verified {
                header,
                record,
                hold_reason: None,
            },
        )),
        IncomingAction::Quarantine => Ok((
            data,
            Verified {
                header,
                hold_reason: Some(format!(
                    "quarantined: smime={} ({reason_en})",
                    verdict.result
                )),
                record,
            },
        )),
        IncomingAction::Refuse => {
            let text = format!(
                "S/MIME verification: smime={} ({reason_en})",
                verdict.result
            );
            let reply = if verdict.result == SmimeResult::TempError {
                Reply::new(451, "4.7.5", text)
            } else {
                Reply::new(550, "5.7.5", text)
            };
            tracing::warn!(%sender_domain, result = verdict.result.as_str(), "incoming message refused by [incoming] policy");
            Err(Rejected {
                reply: reply.vi(format!("Kiểm tra chữ ký số: {}", verdict.reason_vi())),
                refused: Some(record),
            })
        }
    }
}
