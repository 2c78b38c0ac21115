//! A detached CMS signature over bytes that are not a MIME entity: a PDF signature, whose
//! content is the file's ByteRange (two pieces around its own `/Contents`). The CMS, the
//! signature and the path are checked by the same code as an S/MIME signature's, with the
//! document-signing key purposes ([`Purpose::Document`]) instead of emailProtection.

use time::OffsetDateTime;

use super::address::cert_emails;
use super::cms::{check_signature, SignedData};
use super::path::{check_leaf, validate_path, Purpose};
use super::{Failure, TrustStore, Verdict, VerifyOptions};
use crate::pki::identity::{name_to_rfc4514, serial_hex};

/// Who made a detached signature, and what the check found. The certificate fields are
/// filled in as soon as the signer's certificate is found, also when a later check fails.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DetachedSigner {
    /// The subject's common name (UTF-8), when it has one.
    pub common_name: Option<String>,
    /// SAN rfc822Name entries, then subject emailAddress attributes.
    pub emails: Vec<String>,
    /// Lower-case hex.
    pub serial: String,
    /// RFC 4514, ASCII only.
    pub issuer: String,
    /// SHA-256 of the certificate, lower-case hex (what an authorised-signers list names).
    pub fingerprint: String,
    /// Why the signature does not count; `None` when it is valid.
    pub failure: Option<Failure>,
    /// Remarks on a valid result (e.g. an issuer that was not revocation-checked), English
    /// then Vietnamese.
    pub notes_en: Vec<String>,
    pub notes_vi: Vec<String>,
}

impl DetachedSigner {
    /// Valid: signature, digest and path.
    pub fn is_valid(&self) -> bool {
        self.failure.is_none()
    }

    /// The common name, else the first e-mail address, else the serial: how a result names
    /// the signer.
    pub fn display_name(&self) -> &str {
        self.common_name
            .as_deref()
            .or(self.emails.first().map(String::as_str))
            .unwrap_or(&self.serial)
    }
}

/// Verifies `cms` (DER or BER ContentInfo with SignedData, no eContent) as a signature over
/// the concatenation of `content` at `at`: exactly one SignerInfo, its certificate in the
/// CMS, the signed attributes and digest, the signature, the path to a trust anchor with
/// the configured CRLs, and the signer's key usage for `purpose`.
pub fn verify_detached(
    cms: &[u8],
    content: &[&[u8]],
    anchors: &TrustStore,
    crls: &[Vec<u8>],
    at: OffsetDateTime,
    opts: VerifyOptions,
    purpose: Purpose,
) -> DetachedSigner {
    let mut signer = DetachedSigner::default();
    if let Err(f) = run(cms, content, anchors, crls, at, opts, purpose, &mut signer) {
        signer.failure = Some(f);
    }
    signer
}

#[allow(clippy::too_many_arguments)]
fn run(
    cms: &[u8],
    content: &[&[u8]],
    anchors: &TrustStore,
    crls: &[Vec<u8>],
    at: OffsetDateTime,
    opts: VerifyOptions,
    purpose: Purpose,
    signer: &mut DetachedSigner,
) -> Result<(), Failure> {
    let sd = SignedData::parse(cms)?;
    if sd.econtent.is_some() {
        return Err(Failure::ContentTwice);
    }
    let (si, signer_der, cert) = sd.sole_signer()?;
    signer.serial = serial_hex(cert.raw_serial());
    signer.issuer = name_to_rfc4514(cert.issuer(), true);
    signer.fingerprint = hex::encode(ring::digest::digest(&ring::digest::SHA256, signer_der));
    signer.emails = cert_emails(&cert);
    signer.common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(str::to_owned);

    check_signature(si, &sd.econtent_type, content, &cert)?;
    let intermediates = sd.other_certificates(signer_der);
    // validate_path writes its remarks on a verdict; keep them on the signer.
    let mut v = Verdict::passing();
    let checked = validate_path(
        signer_der,
        &intermediates,
        anchors,
        crls,
        at,
        opts,
        purpose,
        &mut v,
    )
    .and_then(|()| check_leaf(&cert, purpose));
    signer.notes_en = v.notes_en;
    signer.notes_vi = v.notes_vi;
    checked
}
