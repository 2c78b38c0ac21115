//! The organisation's signature on the PDF parts of an outgoing document, at delivery, before
//! the S/MIME seal (SPEC "Documents", sealing): with the profile's `[pdf] seal_pdf`, each PDF
//! part that carries a valid signature of a competent signer gets the office's PAdES
//! signature with the same identity as the S/MIME seal; the register records each part in
//! the transaction that records the attempt.
//!
//! With `[pdf] tsa_url`, each seal is time-stamped (PAdES B-T). A TSA that cannot give a
//! time-stamp makes the message wait (deferred with backoff, like an upstream's 4xx), never
//! held and never sent without it: [`PdfSealFailure`] tells that case from a PDF that cannot
//! be sealed at all, which holds the message.

use std::sync::Arc;

use sea_orm::DbErr;
use time::OffsetDateTime;

use super::delivery::Deliverer;
use crate::pdf::{
    Authorised, CheckContext, PartSealed, SealError, SealImage, SealOptions, TimeStamper, TsaError,
};
use crate::pki::identity::SigningIdentity;
use crate::smime::verify::{TrustStore, VerifyOptions};
use crate::store::entity::message;

/// Whether and how this delivery seals PDF parts.
pub(super) enum PdfSealing {
    Off,
    On {
        anchors: Arc<TrustStore>,
        crls: Arc<Vec<Vec<u8>>>,
        opts: VerifyOptions,
        authorised: Option<Authorised>,
        max_depth: usize,
        /// The signers' certificates are judged at the time of reception, as at end of DATA.
        received_at: OffsetDateTime,
        /// `[pdf] tsa_url`: the seals are time-stamped (PAdES B-T).
        tsa: Option<TimeStamper>,
    },
}

/// Why the PDF parts could not be sealed.
#[derive(Debug)]
pub(super) enum PdfSealFailure {
    /// The TSA gave no time-stamp: the message is deferred and tried again.
    TimeStamp { part: String, error: TsaError },
    /// The part cannot be sealed: the message is held.
    Seal { part: String, error: SealError },
}

impl std::fmt::Display for PdfSealFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PdfSealFailure::TimeStamp { part, error } => write!(
                f,
                "the PDF \"{part}\" is not sealed yet: no time-stamp (RFC 3161) from [pdf] tsa_url: {error}"
            ),
            PdfSealFailure::Seal { part, error } => {
                write!(f, "the PDF \"{part}\" cannot be sealed: {error}")
            }
        }
    }
}

impl PdfSealing {
    /// Seals the PDF parts of `prepared` (on a blocking thread); the message to sign and
    /// what was done to each part, or why the document must be held (a part that has a
    /// competent signer's signature could not be sealed: it is never sent without the
    /// organisation's signature).
    pub(super) fn seal(
        self,
        prepared: Vec<u8>,
        identity: &SigningIdentity,
        seal_image: Option<&SealImage>,
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, Vec<PartSealed>), PdfSealFailure> {
        let PdfSealing::On {
            anchors,
            crls,
            opts,
            authorised,
            max_depth,
            received_at,
            tsa,
        } = self
        else {
            return Ok((prepared, Vec::new()));
        };
        let organisation = crate::pdf::seal::organisation_name(identity);
        let ctx = CheckContext {
            anchors: &anchors,
            crls: &crls,
            at: received_at,
            opts,
            authorised: authorised.as_ref(),
            max_depth,
        };
        let opts = SealOptions {
            identity,
            at: now,
            organisation: &organisation,
            seal_image,
            tsa: tsa.as_ref(),
        };
        crate::pdf::seal_message(&prepared, &opts, &ctx).map_err(|(part, e)| match e {
            SealError::TimeStamp(error) => PdfSealFailure::TimeStamp { part, error },
            error => PdfSealFailure::Seal { part, error },
        })
    }
}

impl Deliverer {
    /// What `[pdf] seal_pdf` asks of `msg`: `None` (off) for the gateway's own mail and
    /// incoming mail.
    pub(super) async fn pdf_sealing(
        &self,
        msg: &message::Model,
    ) -> Result<Option<PdfSealing>, DbErr> {
        let policy = self.policy.get();
        if !policy.rules.pdf.seal_pdf || msg.generated {
            return Ok(None);
        }
        let (anchors, crls) = crate::pki::trust::material(self.db(), &self.trust).await?;
        let authorised = policy.signers.as_ref().map(|s| {
            s.for_domain(&crate::address::domain_of(&msg.header_from).unwrap_or_default())
        });
        let received_at =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(msg.received_at) * 1_000_000)
                .unwrap_or_else(|_| OffsetDateTime::now_utc());
        Ok(Some(PdfSealing::On {
            anchors,
            crls,
            opts: VerifyOptions {
                require_revocation_data: policy.rules.incoming.require_revocation_data,
                ..Default::default()
            },
            authorised,
            max_depth: self.config.limits.max_mime_depth,
            received_at,
            tsa: policy.rules.pdf.tsa_url.as_deref().map(TimeStamper::new),
        }))
    }
}

/// One log line per PDF part: sealed (digests before and after) or not (why).
pub(super) fn log_pdf_parts(msg: &message::Model, parts: &[PartSealed]) {
    for p in parts {
        match &p.sha256_after {
            Some(after) => {
                tracing::info!(queue_id = %msg.id, pdf = %p.name, before = %p.sha256_before, %after, "PDF sealed with the organisation's signature")
            }
            None => {
                tracing::warn!(queue_id = %msg.id, pdf = %p.name, note = p.note.as_deref().unwrap_or(""), "PDF not sealed")
            }
        }
    }
}
