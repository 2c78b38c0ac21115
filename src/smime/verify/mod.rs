//! Verifying incoming documents (SPEC "Incoming mail" 2–4): is this message, as displayed,
//! wholly signed by a certificate that chains to a configured trust anchor and names the
//! author's address? The answer is a [`Verdict`], written for the office mail system as one
//! RFC 7281 `Authentication-Results` field by [`authentication_results_header`].
//!
//! What is checked, in order, and the attack each check closes ("Johnny, you are fired",
//! USENIX Security 2019, and RFC 8550/8551):
//! 1. Exactly one From field (and at most one Sender): two readers could pick different ones.
//! 2. The message body itself is the signed entity (`multipart/signed` with exactly two parts,
//!    or opaque `application/pkcs7-mime; smime-type=signed-data`). A signed entity nested in
//!    a multipart (prepended text, hidden HTML, a signed attachment) is "partly signed":
//!    `fail`; one inside an attached `message/rfc822` belongs to that message: `none`.
//! 3. The CMS: DER or BER, exactly one SignerInfo (zero or several never count as valid),
//!    detached content for `multipart/signed` (eContent there too is refused), the signer's
//!    certificate found by issuer-and-serial or subject key identifier, contentType and
//!    messageDigest attributes (present once, matching), and the signature over the signed
//!    attributes as received, with ring; what ring cannot verify (RSA-PSS with a salt length
//!    other than the hash length, ECDSA with SHA-512, P-521) with the RustCrypto `rsa`,
//!    `p256`, `p384` and `p521` crates.
//! 4. The path to a trust anchor with rustls-webpki at the time of reception (validity, basic
//!    and name constraints, revocation from the configured CRLs, whose nextUpdate is checked
//!    here), then the signer's own keyUsage, emailProtection EKU and e-mail address.
//! 5. Headers: protected header fields inside the signed entity (RFC 9788) are authoritative;
//!    outer fields that differ are named. From or Sender that differ are a `fail`, since a
//!    client that does not know RFC 9788 shows the outer one. The From field is read by
//!    [`crate::address::parse_address_field`] whatever its syntax (group syntax, quoted local
//!    parts, comments, encoded words); a display name, group name or comment, outer or
//!    protected, that shows another address once NFKC-normalised (full-width `＠` is `@`) is a
//!    `fail`. The signer's address must be the Sender address when there is a Sender field,
//!    else the From address (RFC 8550 §3); a Sender other than From is delegation, named in
//!    the result and allowed or failed by `[incoming] sender_delegation`.
//!
//! A `multipart/*` entity anywhere in the message with a Content-Transfer-Encoding other than
//! 7bit, 8bit or binary (RFC 2045 §6.4) is `permerror`: readers disagree on whether to decode it.
//!
//! Everything here is pure and synchronous (the session runs it on a blocking thread), works
//! on untrusted bytes without panicking, and bounds its recursion.

use std::borrow::Cow;

use rustls_pki_types::CertificateDer;
use time::OffsetDateTime;

use self::address::{
    check_address, check_shown, compare_headers, is_protected_name, same_mailboxes, Identity,
};
use self::cms::{check_signature, SignedData};
use self::locate::{check_multipart_encodings, locate};
pub use self::path::Purpose;
use self::path::{check_leaf, validate_path};
use super::mime_walk::Entity;
use crate::pki::identity::{name_to_rfc4514, serial_hex};

mod address;
mod algorithms;
mod authres;
mod cms;
mod detached;
mod encapsulated;
mod locate;
mod path;
mod result;
#[cfg(test)]
mod tests;

pub use authres::{authentication_results_header, strip_own_results};
pub use detached::{verify_detached, DetachedSigner};
pub use encapsulated::{verify_encapsulated, EncapsulatedContent};
pub use result::{Failure, SmimeResult, Verdict};

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// The trust anchors for incoming mail (`cert trust add`), as DER certificates.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Vec<u8>>,
}

impl TrustStore {
    pub fn new(anchors: Vec<Vec<u8>>) -> TrustStore {
        TrustStore { anchors }
    }

    /// From the PEM texts kept in the `trust_anchor` table; unreadable entries are skipped
    /// (they were checked when added).
    pub fn from_pems<'a>(pems: impl IntoIterator<Item = &'a str>) -> TrustStore {
        use rustls_pki_types::pem::PemObject;
        let anchors = pems
            .into_iter()
            .flat_map(|p| {
                CertificateDer::pem_slice_iter(p.as_bytes())
                    .filter_map(Result::ok)
                    .map(|c| c.to_vec())
                    .collect::<Vec<_>>()
            })
            .collect();
        TrustStore { anchors }
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// What a profile's `[incoming]` section changes about verification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Every issuer on the path must have a current CRL; otherwise the result is `temperror`.
    pub require_revocation_data: bool,
    /// Whether a signer that is the Sender, not the From, passes (RFC 8550 §3 delegation).
    pub sender_delegation: SenderDelegation,
}

/// `[incoming] sender_delegation`: what a valid signature by the Sender address, on a message
/// whose From is another address, gives. Either way the result comment names both addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderDelegation {
    /// `pass` (RFC 8550 §3: a secretary may send on behalf of the author).
    #[default]
    Allow,
    /// `fail`: only the author's own signature counts.
    Fail,
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/// Verifies `raw` (a complete message, our own Authentication-Results already removed) at
/// `at`, the time of reception.
pub fn verify_message(
    raw: &[u8],
    anchors: &TrustStore,
    crls: &[Vec<u8>],
    at: OffsetDateTime,
    opts: VerifyOptions,
) -> Verdict {
    let mut v = Verdict::passing();
    if let Err(f) = run(raw, anchors, crls, at, opts, &mut v) {
        v.result = f.result();
        v.failure = Some(f);
    }
    v
}

fn run(
    raw: &[u8],
    anchors: &TrustStore,
    crls: &[Vec<u8>],
    at: OffsetDateTime,
    opts: VerifyOptions,
    v: &mut Verdict,
) -> Result<(), Failure> {
    let root = Entity::parse(raw).map_err(Failure::Mime)?;
    let outer = Identity::read(&root)?;
    let ct = root.content_type().map_err(Failure::Mime)?;
    check_multipart_encodings(&root)?;
    let located = locate(&root, &ct)?;

    let sd = SignedData::parse(&located.cms)?;
    let content: Cow<'_, [u8]> = match (located.detached, sd.econtent.as_ref()) {
        (Some(_), Some(_)) => return Err(Failure::ContentTwice),
        (Some(d), None) => d,
        (None, Some(e)) => Cow::Borrowed(e.as_slice()),
        (None, None) => {
            return Err(Failure::Cms(
                "opaque signed-data without encapsulated content".into(),
            ))
        }
    };
    let (si, signer_der, cert) = sd.sole_signer()?;
    v.serial = Some(serial_hex(cert.raw_serial()));
    v.issuer = Some(name_to_rfc4514(cert.issuer(), true));

    check_signature(si, &sd.econtent_type, &[&content], &cert)?;

    // Protected header fields (RFC 9788) inside the signed entity are authoritative.
    let inner = Entity::parse(&content).map_err(Failure::Mime)?;
    check_multipart_encodings(&inner)?;
    let identity = if inner.fields.iter().any(|f| is_protected_name(f.name)) {
        let inner_id = Identity::read(&inner)?;
        compare_headers(&root, &inner, v);
        if !same_mailboxes(&outer.from, &inner_id.from) {
            return Err(Failure::OuterIdentityDiffers { field: "From" });
        }
        if !same_mailboxes(&outer.sender, &inner_id.sender) {
            return Err(Failure::OuterIdentityDiffers { field: "Sender" });
        }
        inner_id
    } else {
        outer.clone()
    };

    let intermediates = sd.other_certificates(signer_der);
    validate_path(
        signer_der,
        &intermediates,
        anchors,
        crls,
        at,
        opts,
        Purpose::Email,
        v,
    )?;
    check_leaf(&cert, Purpose::Email)?;
    // What a reader is shown: the outer field (clients without RFC 9788) and the protected one.
    check_shown(&outer)?;
    check_shown(&identity)?;
    v.signer = Some(check_address(&identity, &cert, opts, v)?);
    Ok(())
}

/// The CMS half of verification on its own, for the `cms` fuzz target (fuzz/README.md): reads
/// `cms` as [`verify_message`] does (ContentInfo, SignedData, SignerInfos), picks the content
/// (`detached`, or the eContent), finds the signer's certificate and checks the signature. The
/// steps are those of `run`; path validation and addresses are left out.
#[doc(hidden)]
pub fn check_cms(cms: &[u8], detached: Option<&[u8]>) -> Result<(), Failure> {
    let sd = SignedData::parse(cms)?;
    let content: &[u8] = match (detached, sd.econtent.as_deref()) {
        (Some(_), Some(_)) => return Err(Failure::ContentTwice),
        (Some(d), None) => d,
        (None, Some(e)) => e,
        (None, None) => return Err(Failure::Cms("no content".into())),
    };
    let (si, _, cert) = sd.sole_signer()?;
    check_signature(si, &sd.econtent_type, &[content], &cert)?;
    check_leaf(&cert, Purpose::Email)
}
