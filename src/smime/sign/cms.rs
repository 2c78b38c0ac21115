//! The CMS SignedData (RFC 5652) a seal writes: signed attributes (contentType, signingTime,
//! messageDigest for S/MIME; contentType, messageDigest, signing-certificate-v2 for a PAdES
//! PDF signature), the signature over them, the certificate chain; detached or encapsulated.

use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::content_info::{CmsVersion, ContentInfo};
use cms::signed_data::{
    CertificateSet, EncapsulatedContentInfo, SignedData, SignerIdentifier, SignerInfo, SignerInfos,
};
use const_oid::db::rfc5911;
use der::asn1::{GeneralizedTime, OctetString, SetOfVec, UtcTime};
use der::{Any, Decode, Encode};
use spki::AlgorithmIdentifierOwned;
use time::OffsetDateTime;
use x509_cert::attr::Attribute;
use x509_cert::Certificate;

use super::SignError;
use crate::pki::identity::{KeyAlgorithm, SigningIdentity};

fn cms_err(e: der::Error) -> SignError {
    SignError::Cms {
        reason: e.to_string(),
    }
}

/// Which signed attributes beside contentType and messageDigest.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SignedAttrs {
    /// S/MIME (RFC 8551 §2.5): signingTime.
    Smime { signing_time: OffsetDateTime },
    /// PAdES baseline B-B (ETSI EN 319 142-1 §6.3): signing-certificate-v2 (RFC 5035) with the
    /// SHA-256 of the signer's certificate, and no signingTime (the time is the signature
    /// dictionary's `/M`).
    Pades,
}

/// id-aa-signingCertificateV2 (RFC 5035 §3).
const ID_AA_SIGNING_CERTIFICATE_V2: const_oid::ObjectIdentifier =
    const_oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.16.2.47");

/// ESSCertIDv2 with the default hash algorithm (SHA-256) and no issuerSerial.
#[derive(der::Sequence)]
struct EssCertIdV2 {
    cert_hash: OctetString,
}

/// SigningCertificateV2 without policies.
#[derive(der::Sequence)]
struct SigningCertificateV2 {
    certs: Vec<EssCertIdV2>,
}

/// Builds the DER ContentInfo holding the SignedData: detached, or with `econtent`
/// encapsulated (opaque).
pub(super) fn signed_data(
    identity: &SigningIdentity,
    algorithm: KeyAlgorithm,
    message_digest: &[u8],
    signing_time: OffsetDateTime,
    econtent: Option<&[u8]>,
) -> Result<Vec<u8>, SignError> {
    signed_data_with(
        identity,
        algorithm,
        message_digest,
        SignedAttrs::Smime { signing_time },
        econtent,
    )
}

/// [`signed_data`] with the signed attributes of `attrs`.
pub(crate) fn signed_data_with(
    identity: &SigningIdentity,
    algorithm: KeyAlgorithm,
    message_digest: &[u8],
    extra: SignedAttrs,
    econtent: Option<&[u8]>,
) -> Result<Vec<u8>, SignError> {
    let digest_alg = algorithm.digest();
    let attribute = |oid, value: Any| -> Result<Attribute, SignError> {
        Ok(Attribute {
            oid,
            values: SetOfVec::try_from(vec![value]).map_err(cms_err)?,
        })
    };

    let mut list = vec![
        attribute(
            rfc5911::ID_CONTENT_TYPE,
            Any::encode_from(&rfc5911::ID_DATA).map_err(cms_err)?,
        )?,
        attribute(
            rfc5911::ID_MESSAGE_DIGEST,
            Any::encode_from(&OctetString::new(message_digest).map_err(cms_err)?)
                .map_err(cms_err)?,
        )?,
    ];
    match extra {
        SignedAttrs::Smime { signing_time } => list.push(attribute(
            rfc5911::ID_SIGNING_TIME,
            cms_time(signing_time)?,
        )?),
        SignedAttrs::Pades => {
            let hash = ring::digest::digest(&ring::digest::SHA256, identity.certificate_der());
            let value = SigningCertificateV2 {
                certs: vec![EssCertIdV2 {
                    cert_hash: OctetString::new(hash.as_ref()).map_err(cms_err)?,
                }],
            };
            list.push(attribute(
                ID_AA_SIGNING_CERTIFICATE_V2,
                Any::encode_from(&value).map_err(cms_err)?,
            )?)
        }
    }
    // SET OF sorts its elements: the DER is the same whatever the order here.
    let attrs = SetOfVec::try_from(list).map_err(cms_err)?;
    // RFC 5652 §5.4: the signature is over the DER of the SET OF (tag 0x31), not over the
    // [0] IMPLICIT form that sits in the SignerInfo.
    let to_sign = attrs.to_der().map_err(cms_err)?;
    let signature = identity.sign_bytes(&to_sign)?;

    let certs: Vec<Certificate> = identity
        .chain_der()
        .iter()
        .map(|der| Certificate::from_der(der))
        .collect::<Result<_, _>>()
        .map_err(cms_err)?;
    let signer = &certs[0];
    let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
        issuer: signer.tbs_certificate().issuer().clone(),
        serial_number: signer.tbs_certificate().serial_number().clone(),
    });
    let digest_algorithm = AlgorithmIdentifierOwned {
        oid: digest_alg.oid(),
        parameters: None,
    };
    let signature_algorithm = AlgorithmIdentifierOwned {
        oid: algorithm.signature_oid(),
        // RFC 3370 §3.2: NULL for rsaEncryption; RFC 5758 §3.2: absent for ECDSA.
        parameters: matches!(algorithm, KeyAlgorithm::Rsa { .. }).then(Any::null),
    };
    let signer_info = SignerInfo {
        version: CmsVersion::V1,
        sid,
        digest_alg: digest_algorithm.clone(),
        signed_attrs: Some(attrs),
        signature_algorithm,
        signature: OctetString::new(signature).map_err(cms_err)?,
        unsigned_attrs: None,
    };
    let certificates = CertificateSet::try_from(
        certs
            .into_iter()
            .map(CertificateChoices::Certificate)
            .collect::<Vec<_>>(),
    )
    .map_err(cms_err)?;
    let signed = SignedData {
        version: CmsVersion::V1,
        digest_algorithms: SetOfVec::try_from(vec![digest_algorithm]).map_err(cms_err)?,
        encap_content_info: EncapsulatedContentInfo {
            econtent_type: rfc5911::ID_DATA,
            econtent: econtent
                .map(|c| Any::encode_from(&OctetString::new(c).map_err(cms_err)?).map_err(cms_err))
                .transpose()?,
        },
        certificates: Some(certificates),
        crls: None,
        signer_infos: SignerInfos::try_from(vec![signer_info]).map_err(cms_err)?,
    };
    ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(cms_err)?,
    }
    .to_der()
    .map_err(cms_err)
}

/// The SignedData of a ContentInfo this module wrote, and its one SignerInfo.
fn decode_own(cms: &[u8]) -> Result<SignedData, SignError> {
    let ci = ContentInfo::from_der(cms).map_err(cms_err)?;
    ci.content.decode_as::<SignedData>().map_err(cms_err)
}

/// The signature value of the one SignerInfo of `cms` (a ContentInfo from
/// [`signed_data_with`]): what a signature time-stamp (RFC 3161 Appendix A) is asked for.
pub(crate) fn signature_value(cms: &[u8]) -> Result<Vec<u8>, SignError> {
    let signed = decode_own(cms)?;
    let si = signed.signer_infos.0.iter().next().ok_or(SignError::Cms {
        reason: "no SignerInfo".into(),
    })?;
    Ok(si.signature.as_bytes().to_vec())
}

/// `cms` (a ContentInfo from [`signed_data_with`]) with one unsigned attribute added to its
/// one SignerInfo: `oid` with the single value `value` (DER). The signed part is unchanged,
/// so the signature stays valid; this is the second step of a signature that carries a
/// time-stamp token over its own signature value (PAdES B-T), which cannot be asked for
/// before the signature exists.
pub(crate) fn with_unsigned_attribute(
    cms: &[u8],
    oid: const_oid::ObjectIdentifier,
    value: &[u8],
) -> Result<Vec<u8>, SignError> {
    let mut signed = decode_own(cms)?;
    let mut infos = signed.signer_infos.0.into_vec();
    let [si] = infos.as_mut_slice() else {
        return Err(SignError::Cms {
            reason: format!("{} SignerInfos, one expected", infos.len()),
        });
    };
    let attribute = Attribute {
        oid,
        values: SetOfVec::try_from(vec![Any::from_der(value).map_err(cms_err)?])
            .map_err(cms_err)?,
    };
    let mut unsigned = si
        .unsigned_attrs
        .take()
        .map(SetOfVec::into_vec)
        .unwrap_or_default();
    unsigned.push(attribute);
    si.unsigned_attrs = Some(SetOfVec::try_from(unsigned).map_err(cms_err)?);
    signed.signer_infos = SignerInfos::try_from(infos).map_err(cms_err)?;
    ContentInfo {
        content_type: rfc5911::ID_SIGNED_DATA,
        content: Any::encode_from(&signed).map_err(cms_err)?,
    }
    .to_der()
    .map_err(cms_err)
}

/// signingTime (RFC 5652 §11.3): UTCTime from 1950 to 2049, GeneralizedTime otherwise;
/// whole seconds.
fn cms_time(t: OffsetDateTime) -> Result<Any, SignError> {
    let secs = t.unix_timestamp();
    let bad = || SignError::SigningTime { time: t };
    let duration = std::time::Duration::from_secs(u64::try_from(secs).map_err(|_| bad())?);
    let year = t.to_offset(time::UtcOffset::UTC).year();
    if (1950..2050).contains(&year) {
        let utc = UtcTime::from_unix_duration(duration).map_err(|_| bad())?;
        Any::encode_from(&utc).map_err(cms_err)
    } else {
        let gt = GeneralizedTime::from_unix_duration(duration).map_err(|_| bad())?;
        Any::encode_from(&gt).map_err(cms_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use der::Tagged;

    #[test]
    fn signing_time_encoding() {
        let t = OffsetDateTime::from_unix_timestamp(2_524_608_000).unwrap(); // 2050-01-01
        let any = cms_time(t).unwrap();
        assert_eq!(any.tag(), der::Tag::GeneralizedTime);
        let t = OffsetDateTime::from_unix_timestamp(2_524_607_999).unwrap(); // 2049-12-31
        assert_eq!(cms_time(t).unwrap().tag(), der::Tag::UtcTime);
    }
}
