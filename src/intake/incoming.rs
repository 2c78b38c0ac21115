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
    /// The PDF parts and their signatures, for the register.
    pub pdfs: Vec<crate::model::pdf::PartSealed>,
}

/// A message the verification stage will not queue.
pub struct Rejected {
    /// The reply to send instead of 250: a refusal, or 451 when the trust material cannot
    /// be read.
    pub reply: Reply,
    /// The verification behind a refusal by the `[incoming]` policy, for the register.
    pub refused: Option<SmimeRecord>,
    /// The rule, when it is not `incoming.<result>` (`pdf.incoming`).
    pub rule: Option<&'static str>,
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
                let rule = match self.rule {
                    Some(r) => r.to_string(),
                    None => format!("incoming.{}", smime.result),
                };
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
            rule: None,
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
    let data = crate::pdf::incoming::strip_fields(&data).unwrap_or(data);
    let max_depth = intake.config.limits.max_mime_depth;
    let (verdict, pdfs, data) = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let verdict = verify::verify_message(&data, &anchors, &crls, at, opts);
        crate::metrics::get()
            .verify_seconds
            .get_or_create(&crate::metrics::Result_ {
                result: verdict.result.as_str().into(),
            })
            .observe(started.elapsed().as_secs_f64());
        let ctx = crate::pdf::CheckContext {
            anchors: &anchors,
            crls: &crls,
            at,
            opts: VerifyOptions {
                require_revocation_data: opts.require_revocation_data,
                ..Default::default()
            },
            authorised: None,
            max_depth,
        };
        let pdfs = crate::pdf::incoming::examine(&data, &ctx);
        (verdict, pdfs, data)
    })
    .await
    .map_err(|_| {
        tracing::error!("verification task failed");
        Rejected::from(std_replies::local_error())
    })?;
    let mut header = verify::authentication_results_header(&intake.config.hostname, &verdict);
    header.push_str(&pdfs.fields);
    for p in &pdfs.parts {
        tracing::info!(pdf = %p.name, signatures = p.signatures.len(), valid = p.signatures.iter().filter(|s| s.result == "pass").count(), "PDF signatures checked");
    }
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
    let mut action = if verdict.result == SmimeResult::Pass {
        IncomingAction::Deliver
    } else {
        policy.rules.incoming.action_for(sender_domain)
    };
    // `[pdf] incoming_action` for a PDF part without a valid signature; the S/MIME result
    // itself is never changed by it.
    let pdf_problem = pdfs.first_unsigned.clone();
    let pdf_action = pdf_problem.as_ref().map_or(IncomingAction::Deliver, |_| {
        policy.rules.pdf.incoming_action
    });
    let pdf_decides = severity(pdf_action) > severity(action);
    if pdf_decides {
        action = pdf_action;
    }
    let pdf_parts = pdfs.parts;
    let pdf_reason = |(name, why): &(String, String)| format!("the PDF \"{name}\": {why}");
    match action {
        IncomingAction::Deliver => Ok((
            data,
            Verified {
                header,
                record,
                hold_reason: None,
                pdfs: pdf_parts,
            },
        )),
        IncomingAction::Quarantine => Ok((
            data,
            Verified {
                header,
                hold_reason: Some(match (&pdf_problem, pdf_decides) {
                    (Some(p), true) => format!("quarantined: pdf ({})", pdf_reason(p)),
                    _ => format!("quarantined: smime={} ({reason_en})", verdict.result),
                }),
                record,
                pdfs: pdf_parts,
            },
        )),
        IncomingAction::Refuse => {
            if let (Some(p), true) = (&pdf_problem, pdf_decides) {
                tracing::warn!(%sender_domain, pdf = %p.0, "incoming message refused by [pdf] incoming_action");
                return Err(Rejected {
                    reply: Reply::new(
                        550,
                        "5.7.1",
                        format!("{} (rule pdf.incoming)", pdf_reason(p)),
                    )
                    .vi(format!(
                        "Tệp PDF \"{}\" không có chữ ký số hợp lệ",
                        p.0.replace('"', "")
                    )),
                    refused: Some(record),
                    rule: Some("pdf.incoming"),
                });
            }
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
                rule: None,
            })
        }
    }
}

/// How far an action keeps a message from the office: deliver < quarantine < refuse.
fn severity(a: IncomingAction) -> u8 {
    match a {
        IncomingAction::Deliver => 0,
        IncomingAction::Quarantine => 1,
        IncomingAction::Refuse => 2,
    }
}
