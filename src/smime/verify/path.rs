//! The signer's certificate: the path to a trust anchor with rustls-webpki, revocation from
//! the configured CRLs and their freshness, and the signer's own keyUsage and EKU.

use std::collections::HashMap;

use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, EndEntityCert, ExpirationPolicy,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::prelude::FromDer;

use super::{Failure, TrustStore, Verdict, VerifyOptions};
use crate::pki::identity::name_to_rfc4514;

/// id-kp-emailProtection (1.3.6.1.5.5.7.3.4), DER content octets.
const EKU_EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];

/// The extended key usages a document signer's certificate may carry besides
/// emailProtection (DER content octets): id-kp-documentSigning (1.3.6.1.5.5.7.3.36, RFC
/// 9336), Adobe's Authentic Documents Trust (1.2.840.113583.1.1.5) and Microsoft's document
/// signing (1.3.6.1.4.1.311.10.3.12), as Vietnamese signing tools' certificates carry them.
const EKU_DOCUMENT_SIGNING: [&[u8]; 3] = [
    &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x24],
    &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x2f, 0x01, 0x01, 0x05],
    &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x0a, 0x03, 0x0c],
];

/// What the signer's certificate is checked for: signing mail (S/MIME, RFC 8550 §4.4) or
/// signing a document (a PDF signature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The emailProtection EKU, when the certificate has an EKU extension.
    Email,
    /// emailProtection or one of the document-signing EKUs, when it has one.
    Document,
}

impl Purpose {
    /// The EKU to ask rustls-webpki for: the first one of this purpose that the leaf
    /// carries (emailProtection when it carries none, which passes a leaf without an EKU
    /// extension and fails one without any usable EKU).
    fn required_eku(self, leaf: &X509Certificate<'_>) -> &'static [u8] {
        if self == Purpose::Document {
            if let Ok(Some(eku)) = leaf.extended_key_usage() {
                if !eku.value.email_protection {
                    if let Some(oid) = EKU_DOCUMENT_SIGNING
                        .into_iter()
                        .find(|d| eku.value.other.iter().any(|o| o.as_bytes() == *d))
                    {
                        return oid;
                    }
                }
            }
        }
        EKU_EMAIL_PROTECTION
    }
}

/// Path validation with rustls-webpki, then revocation coverage and CRL freshness.
#[allow(clippy::too_many_arguments)]
pub(super) fn validate_path(
    leaf: &[u8],
    intermediates: &[&[u8]],
    anchors: &TrustStore,
    crls: &[Vec<u8>],
    at: OffsetDateTime,
    opts: VerifyOptions,
    purpose: Purpose,
    v: &mut Verdict,
) -> Result<(), Failure> {
    let untrusted = |detail: String| Failure::Untrusted { detail };
    let leaf_der = CertificateDer::from(leaf);
    let ee = EndEntityCert::try_from(&leaf_der)
        .map_err(|e| untrusted(format!("unreadable certificate: {e}")))?;
    let anchor_ders: Vec<CertificateDer<'_>> = anchors
        .anchors
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let tas: Vec<_> = anchor_ders
        .iter()
        .filter_map(|d| webpki::anchor_from_trusted_cert(d).ok())
        .collect();
    if tas.is_empty() {
        return Err(untrusted("no trust anchor is configured".into()));
    }
    let inter: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|d| CertificateDer::from(*d))
        .collect();

    // The newest CRL per issuer (by thisUpdate), with its nextUpdate.
    let mut newest: HashMap<Vec<u8>, (i64, Option<i64>, usize)> = HashMap::new();
    for (i, der) in crls.iter().enumerate() {
        let Ok((_, crl)) = x509_parser::parse_x509_crl(der) else {
            continue;
        };
        let issuer = crl.issuer().as_raw().to_vec();
        let this = crl.last_update().timestamp();
        let next = crl.next_update().map(|t| t.timestamp());
        if newest.get(&issuer).is_none_or(|(t, _, _)| this > *t) {
            newest.insert(issuer, (this, next, i));
        }
    }
    let crl_objs: Vec<CertRevocationList<'_>> = newest
        .values()
        .filter_map(|(_, _, i)| BorrowedCertRevocationList::from_der(&crls[*i]).ok())
        .map(CertRevocationList::from)
        .collect();
    let crl_refs: Vec<&CertRevocationList<'_>> = crl_objs.iter().collect();
    let revocation = match RevocationOptionsBuilder::new(&crl_refs) {
        Ok(b) => Some(
            b.with_depth(RevocationCheckDepth::Chain)
                .with_status_policy(UnknownStatusPolicy::Allow)
                .with_expiration_policy(ExpirationPolicy::Ignore)
                .build(),
        ),
        Err(_) => None,
    };
    let required_eku = match X509Certificate::from_der(leaf) {
        Ok((_, c)) => purpose.required_eku(&c),
        Err(_) => EKU_EMAIL_PROTECTION,
    };
    let secs = u64::try_from(at.unix_timestamp()).unwrap_or(0);
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    let path = ee
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &tas,
            &inter,
            time,
            webpki::KeyUsage::required_if_present(required_eku),
            revocation,
            None,
        )
        .map_err(|e| webpki_failure(e, leaf, purpose))?;

    // Which certificates of the path were revocation-checked, and with current data.
    let mut on_path: Vec<Vec<u8>> = vec![leaf.to_vec()];
    on_path.extend(path.intermediate_certificates().map(|c| c.der().to_vec()));
    let mut unchecked: Vec<String> = Vec::new();
    for der in &on_path {
        let Ok((_, c)) = X509Certificate::from_der(der) else {
            continue;
        };
        let issuer_name = name_to_rfc4514(c.issuer(), true);
        match newest.get(c.issuer().as_raw()) {
            None if opts.require_revocation_data => {
                return Err(Failure::NoRevocationData {
                    issuer: issuer_name,
                })
            }
            None => {
                if !unchecked.contains(&issuer_name) {
                    unchecked.push(issuer_name);
                }
            }
            Some((_, next, _)) => {
                if let Some(next) = next {
                    if *next < at.unix_timestamp() {
                        return Err(Failure::CrlExpired {
                            issuer: issuer_name,
                            next_update: rfc3339(*next),
                        });
                    }
                }
            }
        }
    }
    if !unchecked.is_empty() {
        v.notes_en.push(format!(
            "not revocation-checked: no CRL configured for {}",
            unchecked.join(" | ")
        ));
        v.notes_vi.push(format!(
            "chưa kiểm tra thu hồi: không có CRL của {}",
            unchecked.join(" | ")
        ));
    }
    Ok(())
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

fn webpki_failure(e: webpki::Error, leaf: &[u8], purpose: Purpose) -> Failure {
    use webpki::Error as E;
    let validity = || {
        X509Certificate::from_der(leaf)
            .map(|(_, c)| {
                (
                    rfc3339(c.validity().not_before.timestamp()),
                    rfc3339(c.validity().not_after.timestamp()),
                )
            })
            .unwrap_or_default()
    };
    match e {
        E::CertExpired { .. } => Failure::Expired {
            not_after: validity().1,
        },
        E::CertNotValidYet { .. } => Failure::NotYetValid {
            not_before: validity().0,
        },
        E::CertRevoked => Failure::Revoked,
        E::RequiredEkuNotFoundContext(_) => purpose.eku_failure(),
        E::UnknownIssuer => Failure::Untrusted {
            detail: "no path to a configured trust anchor".into(),
        },
        E::InvalidSignatureForPublicKey => Failure::Untrusted {
            detail: "no path to a configured trust anchor: a certificate is not signed by the \
                     configured issuer of that name"
                .into(),
        },
        E::NameConstraintViolation => Failure::Untrusted {
            detail: "a name constraint of an issuer is violated".into(),
        },
        E::UnknownRevocationStatus => Failure::NoRevocationData {
            issuer: "an issuer on the path".into(),
        },
        other => Failure::Untrusted {
            detail: format!("{other:?}"),
        },
    }
}

impl Purpose {
    fn eku_failure(self) -> Failure {
        match self {
            Purpose::Email => Failure::NoEmailProtection,
            Purpose::Document => Failure::NoDocumentSigning,
        }
    }
}

/// The signer's own keyUsage and extendedKeyUsage (RFC 8550 §4.4 for mail).
pub(super) fn check_leaf(cert: &X509Certificate<'_>, purpose: Purpose) -> Result<(), Failure> {
    match cert.key_usage() {
        Ok(Some(ku)) if !(ku.value.digital_signature() || ku.value.non_repudiation()) => {
            return Err(Failure::KeyUsage)
        }
        Err(_) => return Err(Failure::KeyUsage),
        _ => {}
    }
    match cert.extended_key_usage() {
        Ok(Some(eku)) if eku.value.email_protection => Ok(()),
        Ok(Some(eku))
            if purpose == Purpose::Document
                && eku
                    .value
                    .other
                    .iter()
                    .any(|o| EKU_DOCUMENT_SIGNING.contains(&o.as_bytes())) =>
        {
            Ok(())
        }
        Ok(Some(_)) | Err(_) => Err(purpose.eku_failure()),
        Ok(None) => Ok(()),
    }
}
