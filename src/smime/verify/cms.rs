//! CMS SignedData as received: ContentInfo, SignedData and SignerInfo parsing, and the check
//! of the signed attributes, the message digest and the signature.

use const_oid::db::rfc5911;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::FromDer;

use super::algorithms::{oid_text, verification_algorithm, Hash};
use super::Failure;
use crate::smime::ber::{self, BerError, Tlv};

pub(super) fn cms_err(e: BerError) -> Failure {
    Failure::Cms(e.to_string())
}

/// How a SignerInfo names its certificate.
pub(super) enum SignerId<'a> {
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    KeyId(&'a [u8]),
}

impl SignerId<'_> {
    pub(super) fn matches(&self, der: &[u8]) -> bool {
        let Ok((_, c)) = X509Certificate::from_der(der) else {
            return false;
        };
        match self {
            SignerId::IssuerSerial { issuer, serial } => {
                c.issuer().as_raw() == *issuer && c.raw_serial() == *serial
            }
            SignerId::KeyId(kid) => c.extensions().iter().any(|e| {
                matches!(e.parsed_extension(), ParsedExtension::SubjectKeyIdentifier(k) if k.0 == *kid)
            }),
        }
    }
}

pub(super) struct SignerInfo<'a> {
    pub(super) sid: SignerId<'a>,
    digest_alg: &'a [u8],
    /// The signed attributes with the SET OF tag (0x31), as received; `None` when absent.
    signed_attrs: Option<Vec<u8>>,
    signed_attr_list: Vec<Tlv<'a>>,
    pub(super) sig_alg: &'a [u8],
    pub(super) sig_params: Option<Tlv<'a>>,
    signature: Vec<u8>,
}

pub(super) struct SignedData<'a> {
    pub(super) econtent_type: Vec<u8>,
    pub(super) econtent: Option<Vec<u8>>,
    pub(super) certificates: Vec<&'a [u8]>,
    pub(super) signers: Vec<SignerInfo<'a>>,
}

impl<'a> SignedData<'a> {
    /// The one SignerInfo (zero or several never count as valid), its certificate from the
    /// CMS's certificates (DER) and that certificate parsed.
    pub(super) fn sole_signer(
        &self,
    ) -> Result<(&SignerInfo<'a>, &'a [u8], X509Certificate<'a>), Failure> {
        let si = match self.signers.len() {
            0 => return Err(Failure::NoSigner),
            1 => &self.signers[0],
            count => return Err(Failure::SeveralSigners { count }),
        };
        let der = self
            .certificates
            .iter()
            .copied()
            .find(|c| si.sid.matches(c))
            .ok_or(Failure::SignerCertificateMissing)?;
        let (_, cert) = X509Certificate::from_der(der)
            .map_err(|e| Failure::Cms(format!("signer certificate: {e}")))?;
        Ok((si, der, cert))
    }

    /// The certificates the CMS carries besides the signer's: candidate intermediates.
    pub(super) fn other_certificates(&self, signer_der: &[u8]) -> Vec<&'a [u8]> {
        self.certificates
            .iter()
            .copied()
            .filter(|c| *c != signer_der)
            .collect()
    }
}

fn oid_of(t: &Tlv<'_>) -> Result<Vec<u8>, Failure> {
    Ok(t.expect(ber::OID, "an OID")
        .map_err(cms_err)?
        .content
        .to_vec())
}

/// AlgorithmIdentifier: (OID content, parameters).
pub(super) fn algorithm<'a>(t: &Tlv<'a>) -> Result<(&'a [u8], Option<Tlv<'a>>), Failure> {
    let c = t
        .expect(ber::SEQUENCE, "an AlgorithmIdentifier")
        .map_err(cms_err)?
        .children()
        .map_err(cms_err)?;
    let oid = c
        .first()
        .ok_or(Failure::Cms("empty AlgorithmIdentifier".into()))?
        .expect(ber::OID, "an algorithm OID")
        .map_err(cms_err)?;
    Ok((oid.content, c.get(1).copied().filter(|p| p.tag != 0x05)))
}

impl<'a> SignedData<'a> {
    pub(super) fn parse(cms: &'a [u8]) -> Result<SignedData<'a>, Failure> {
        let ci = ber::parse_single(cms).map_err(cms_err)?;
        let ci = ci
            .expect(ber::SEQUENCE, "ContentInfo")
            .map_err(cms_err)?
            .children()
            .map_err(cms_err)?;
        let [ct, content] = ci.as_slice() else {
            return Err(Failure::Cms("ContentInfo is not two elements".into()));
        };
        if oid_of(ct)? != rfc5911::ID_SIGNED_DATA.as_bytes() {
            return Err(Failure::Cms("the CMS is not SignedData".into()));
        }
        let sd = content
            .expect(ber::CTX0, "[0] content")
            .map_err(cms_err)?
            .children()
            .map_err(cms_err)?;
        let sd = sd
            .first()
            .ok_or(Failure::Cms("empty content".into()))?
            .expect(ber::SEQUENCE, "SignedData")
            .map_err(cms_err)?
            .children()
            .map_err(cms_err)?;
        let mut it = sd.into_iter().peekable();
        let _version = it.next().ok_or(Failure::Cms("no version".into()))?;
        let _digests = it
            .next()
            .ok_or(Failure::Cms("no digestAlgorithms".into()))?;
        let encap = it
            .next()
            .ok_or(Failure::Cms("no encapContentInfo".into()))?
            .expect(ber::SEQUENCE, "EncapsulatedContentInfo")
            .map_err(cms_err)?
            .children()
            .map_err(cms_err)?;
        let econtent_type = oid_of(
            encap
                .first()
                .ok_or(Failure::Cms("no eContentType".into()))?,
        )?;
        let econtent = match encap.get(1) {
            None => None,
            Some(e) => {
                let inner = e
                    .expect(ber::CTX0, "[0] eContent")
                    .map_err(cms_err)?
                    .children()
                    .map_err(cms_err)?;
                let os = inner.first().ok_or(Failure::Cms("empty eContent".into()))?;
                if os.tag & 0x1f != ber::OCTET_STRING {
                    return Err(Failure::Cms("eContent is not an OCTET STRING".into()));
                }
                Some(os.octets().map_err(cms_err)?)
            }
        };
        let mut certificates = Vec::new();
        if it.peek().is_some_and(|t| t.tag == ber::CTX0) {
            let certs = it.next().map(|t| t.children());
            for c in certs.transpose().map_err(cms_err)?.unwrap_or_default() {
                // Only plain certificates; other CertificateChoices are ignored.
                if c.tag == ber::SEQUENCE && c.definite {
                    certificates.push(c.raw);
                }
            }
        }
        if it.peek().is_some_and(|t| t.tag == ber::CTX1) {
            it.next(); // CRLs in the message are not used: only configured ones count.
        }
        let infos = it
            .next()
            .ok_or(Failure::Cms("no signerInfos".into()))?
            .expect(ber::SET, "SignerInfos")
            .map_err(cms_err)?
            .children()
            .map_err(cms_err)?;
        let mut signers = Vec::new();
        for si in infos {
            signers.push(parse_signer_info(&si)?);
        }
        Ok(SignedData {
            econtent_type,
            econtent,
            certificates,
            signers,
        })
    }
}

fn parse_signer_info<'a>(si: &Tlv<'a>) -> Result<SignerInfo<'a>, Failure> {
    let f = si
        .expect(ber::SEQUENCE, "SignerInfo")
        .map_err(cms_err)?
        .children()
        .map_err(cms_err)?;
    let mut it = f.into_iter().peekable();
    let _version = it.next().ok_or(Failure::Cms("no version".into()))?;
    let sid_t = it.next().ok_or(Failure::Cms("no sid".into()))?;
    let sid = match sid_t.tag {
        ber::SEQUENCE => {
            let c = sid_t.children().map_err(cms_err)?;
            let [issuer, serial] = c.as_slice() else {
                return Err(Failure::Cms("bad IssuerAndSerialNumber".into()));
            };
            SignerId::IssuerSerial {
                issuer: issuer.raw,
                serial: serial
                    .expect(ber::INTEGER, "a serial number")
                    .map_err(cms_err)?
                    .content,
            }
        }
        ber::CTX0_PRIM => SignerId::KeyId(sid_t.content),
        other => {
            return Err(Failure::Cms(format!(
                "unknown SignerIdentifier tag 0x{other:02x}"
            )))
        }
    };
    let (digest_alg, _) = algorithm(&it.next().ok_or(Failure::Cms("no digest".into()))?)?;
    let mut signed_attrs = None;
    let mut signed_attr_list = Vec::new();
    if it.peek().is_some_and(|t| t.tag == ber::CTX0) {
        let t = it.next().ok_or(Failure::Cms("no attributes".into()))?;
        if !t.definite {
            return Err(Failure::BadSignedAttributes(
                "signed attributes are not DER".into(),
            ));
        }
        // RFC 5652 §5.4: the signature covers the SET OF form (tag 0x31) of the bytes sent.
        let mut bytes = t.raw.to_vec();
        bytes[0] = ber::SET;
        signed_attrs = Some(bytes);
        signed_attr_list = t.children().map_err(cms_err)?;
    }
    let (sig_alg, sig_params) = algorithm(
        &it.next()
            .ok_or(Failure::Cms("no signatureAlgorithm".into()))?,
    )?;
    let signature = it
        .next()
        .ok_or(Failure::Cms("no signature".into()))?
        .octets()
        .map_err(cms_err)?;
    Ok(SignerInfo {
        sid,
        digest_alg,
        signed_attrs,
        signed_attr_list,
        sig_alg,
        sig_params,
        signature,
    })
}

/// The signed attributes, the message digest and the signature.
pub(super) fn check_signature(
    si: &SignerInfo<'_>,
    econtent_type: &[u8],
    content: &[&[u8]],
    cert: &X509Certificate<'_>,
) -> Result<(), Failure> {
    let digest_hash = Hash::from_oid(si.digest_alg).ok_or_else(|| {
        Failure::Unsupported(format!("digest algorithm {}", oid_text(si.digest_alg)))
    })?;
    let verifier = verification_algorithm(si, digest_hash, cert)?;
    let joined;
    let signed: &[u8] = match &si.signed_attrs {
        None if content.len() == 1 => content[0],
        None => {
            joined = content.concat();
            &joined
        }
        Some(bytes) => {
            let mut content_type = None;
            let mut digest = None;
            for a in &si.signed_attr_list {
                let c = a.children().map_err(cms_err)?;
                let [oid, values] = c.as_slice() else {
                    return Err(Failure::BadSignedAttributes("malformed attribute".into()));
                };
                let oid = oid_of(oid)?;
                let values = values.children().map_err(cms_err)?;
                let slot = if oid == rfc5911::ID_CONTENT_TYPE.as_bytes() {
                    &mut content_type
                } else if oid == rfc5911::ID_MESSAGE_DIGEST.as_bytes() {
                    &mut digest
                } else {
                    continue;
                };
                if slot.is_some() || values.len() != 1 {
                    return Err(Failure::BadSignedAttributes(
                        "contentType or messageDigest given more than once".into(),
                    ));
                }
                *slot = Some(values[0]);
            }
            let ct = content_type.ok_or(Failure::BadSignedAttributes("no contentType".into()))?;
            if oid_of(&ct)? != econtent_type {
                return Err(Failure::BadSignedAttributes(
                    "contentType differs from eContentType".into(),
                ));
            }
            let md = digest
                .ok_or(Failure::BadSignedAttributes("no messageDigest".into()))?
                .expect(ber::OCTET_STRING, "messageDigest")
                .map_err(cms_err)?;
            let mut ctx = ring::digest::Context::new(digest_hash.ring());
            for piece in content {
                ctx.update(piece);
            }
            let actual = ctx.finish();
            if md.content != actual.as_ref() {
                return Err(Failure::DigestMismatch);
            }
            bytes
        }
    };
    verifier.verify(cert, signed, &si.signature)
}
