//! The checks only an outgoing document (văn bản đi) passes at end of DATA: its header From
//! is an address the sender may use (SPEC "Outgoing mail" 1), a seal exists for its domain
//! (never unsigned, "Outgoing mail" 4), each PDF part carries a competent signer's
//! signature when the profile asks (SPEC "Documents"), and its document number is reserved
//! once per office and year when the profile asks for unique numbers.

use time::OffsetDateTime;

use super::{Client, Envelope, Intake};
use crate::address;
use crate::config::Role;
use crate::mime::HeaderInfo;
use crate::policy::{self, Classification, Policy, Refusal};
use crate::queue::Route;
use crate::register::numbers::{self, Reservation};
use crate::reply::{std_replies, Reply};

/// The outgoing document the checks are about.
pub struct Document<'a> {
    pub id: &'a str,
    pub rules: &'a Policy,
    pub classification: &'a Classification,
    pub headers: &'a HeaderInfo,
    pub accepted_at: OffsetDateTime,
}

/// The checks after the policy's decision, in order: a seal for the domain, the competent
/// signer's signature on each PDF part, the document number. The message's bytes back with
/// the number's reservation, or the decision that refuses it.
pub async fn check(
    intake: &Intake,
    client: &Client<'_>,
    env: &Envelope,
    doc: Document<'_>,
    data: Vec<u8>,
) -> Result<(Vec<u8>, Option<i64>), Box<super::Decision>> {
    use super::{refuse_by_policy, Decision};
    let refuse = |reply: Reply| Box::new(Decision::refuse(reply));
    let by_policy = |r: &Refusal| {
        Box::new(refuse_by_policy(
            client,
            env,
            doc.classification,
            doc.headers,
            r,
        ))
    };
    check_seal(intake, env, doc.headers).await.map_err(refuse)?;
    let (data, pdf) =
        check_pdf_signatures(intake, doc.rules, doc.headers, data, doc.accepted_at).await;
    match pdf {
        Ok(()) => {}
        Err(PdfRefused::Refused(refusal)) => return Err(by_policy(&refusal)),
        Err(PdfRefused::Unavailable) => return Err(refuse(std_replies::db_unavailable())),
        Err(PdfRefused::Failed) => return Err(refuse(std_replies::local_error())),
    }
    let reservation = reserve_number(
        intake,
        doc.id,
        doc.rules,
        doc.classification,
        doc.headers,
        doc.accepted_at,
    )
    .await;
    match reservation {
        Ok(r) => Ok((data, r)),
        Err(NumberRefused::Duplicate(refusal)) => Err(by_policy(&refusal)),
        Err(NumberRefused::Unavailable) => Err(refuse(std_replies::db_unavailable())),
    }
}

/// One From field, and every From address one the account (or, on the relay, the policy)
/// allows.
pub fn check_header_from(
    intake: &Intake,
    client: &Client<'_>,
    headers: &HeaderInfo,
) -> Result<(), Reply> {
    if headers.from_fields != 1 || headers.from.is_empty() {
        return Err(std_replies::one_from_field(headers.from_fields));
    }
    if let Some(a) = client.account {
        if let Some(bad) = headers
            .from
            .iter()
            .find(|f| !address::allowed_by(&a.allowed_from, f))
        {
            return Err(std_replies::from_not_allowed_for_account(bad, &a.name));
        }
    } else if client.role == Role::Relay {
        if let Some(bad) = headers.from.iter().find(|f| !intake.relay_may_send_as(f)) {
            return Err(std_replies::from_domain_not_allowed(bad));
        }
    }
    Ok(())
}

/// Mail that leaves the office needs a seal (signing identity) for its From domain; mail
/// only for local domains does not.
pub async fn check_seal(
    intake: &Intake,
    env: &Envelope,
    headers: &HeaderInfo,
) -> Result<(), Reply> {
    if !env.rcpts.iter().any(|r| r.route == Route::Outbound) {
        return Ok(());
    }
    let domain = headers
        .from
        .first()
        .and_then(|f| address::domain_of(f))
        .unwrap_or_default();
    match intake.seal_domains.has_identity(&intake.db, &domain).await {
        Ok(true) => Ok(()),
        Ok(false) => {
            tracing::warn!(%domain, "refused: no signing identity for the From domain");
            Err(std_replies::no_seal_for_domain(&domain))
        }
        Err(e) => {
            tracing::error!(error = %e, "identity lookup failed: 451");
            Err(std_replies::db_unavailable())
        }
    }
}

/// Why a document number could not be reserved.
pub enum NumberRefused {
    /// The office already issued it this year (rule `number.duplicate`).
    Duplicate(Refusal),
    /// The database could not be asked.
    Unavailable,
}

/// With `[number] unique_per_year`, reserves the document's number for its office (the From
/// domain) and year: `Ok(Some(id))` for a reservation the queue's commit confirms,
/// `Ok(None)` when there is nothing to reserve (no number, a resend, or not asked).
pub async fn reserve_number(
    intake: &Intake,
    queue_id: &str,
    rules: &Policy,
    c: &Classification,
    headers: &HeaderInfo,
    accepted_at: OffsetDateTime,
) -> Result<Option<i64>, NumberRefused> {
    let office = headers.from.first().and_then(|f| address::domain_of(f));
    let (true, Some(number), Some(office)) = (
        rules.rules.number.unique_per_year,
        c.number.as_deref(),
        office.as_deref(),
    ) else {
        return Ok(None);
    };
    let year = c
        .signed_date
        .unwrap_or_else(|| policy::calendar::vietnam_date(accepted_at))
        .year();
    match numbers::reserve_number(&intake.db, office, year, number, queue_id, c.resend).await {
        Ok(Reservation::Reserved { id }) => Ok(Some(id)),
        Ok(Reservation::Resend { first_queue_id }) => {
            tracing::info!(queue_id, number, first = %first_queue_id, "resend of an issued document number");
            Ok(None)
        }
        Ok(Reservation::Duplicate { first_queue_id }) => {
            tracing::info!(queue_id, number, first = %first_queue_id, "document number already issued");
            Err(NumberRefused::Duplicate(
                policy::deadline::duplicate_refusal(number, office, year),
            ))
        }
        Err(e) => {
            tracing::error!(error = %e, "issued-number check failed: 451");
            Err(NumberRefused::Unavailable)
        }
    }
}

/// With `[pdf] require_signer_signature`, every PDF part must carry a valid signature of a
/// competent signer over the file as received (SPEC "Documents"). `Ok` when the profile does
/// not ask or every part passes; the refusal (rule `pdf.signer`) names the first part that
/// does not, with what is wrong with it as a reply line of its own; 451 when the trust
/// material cannot be read.
pub async fn check_pdf_signatures(
    intake: &Intake,
    rules: &Policy,
    headers: &HeaderInfo,
    data: Vec<u8>,
    at: OffsetDateTime,
) -> (Vec<u8>, Result<(), PdfRefused>) {
    let pdf_rules = &rules.rules.pdf;
    if !pdf_rules.require_signer_signature {
        return (data, Ok(()));
    }
    let material = match crate::pki::trust::material(&intake.db, &intake.trust_cache).await {
        Ok(m) => m,
        Err(e) => {
            tracing::error!(error = %e, "trust anchors/CRLs unavailable: 451");
            return (data, Err(PdfRefused::Unavailable));
        }
    };
    let authorised = rules.signers.as_ref().map(|s| {
        let domain = headers
            .from
            .first()
            .and_then(|f| address::domain_of(f))
            .unwrap_or_default();
        s.for_domain(&domain)
    });
    let opts = crate::smime::verify::VerifyOptions {
        require_revocation_data: rules.rules.incoming.require_revocation_data,
        ..Default::default()
    };
    let max_depth = intake.config.limits.max_mime_depth;
    let checked = tokio::task::spawn_blocking(move || {
        let (anchors, crls) = material;
        let ctx = crate::pdf::CheckContext {
            anchors: &anchors,
            crls: &crls,
            at,
            opts,
            authorised: authorised.as_ref(),
            max_depth,
        };
        let refusal = crate::pdf::pdf_parts(&data).into_iter().find_map(|part| {
            let finding = crate::pdf::check_pdf(&part.name, &part.bytes, &ctx);
            finding.refusal().map(|why| (part.name, why))
        });
        (data, refusal)
    })
    .await;
    match checked {
        Ok((data, None)) => (data, Ok(())),
        Ok((data, Some((name, (en, vi))))) => {
            tracing::info!(pdf = %name, reason = %en, "PDF part without a valid signature of a competent signer");
            (
                data,
                Err(PdfRefused::Refused(policy::deadline::pdf_signer_refusal(
                    &name, &en, &vi,
                ))),
            )
        }
        Err(e) => {
            tracing::error!(error = %e, "PDF check task failed");
            (Vec::new(), Err(PdfRefused::Failed))
        }
    }
}

/// Why the PDF check did not pass a message.
pub enum PdfRefused {
    /// Rule `pdf.signer`.
    Refused(Refusal),
    /// The trust material could not be read (451).
    Unavailable,
    /// The check itself failed (a panic contained to its task): a local error.
    Failed,
}
