//! What a certificate says about itself (names, serial, validity, addresses, key usage, public
//! key), read once at load time, and the chain ordered from the signer by issuer.

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use ring::signature;
use time::OffsetDateTime;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;

use super::names::{attribute_string, name_to_rfc4514, serial_hex};
use super::{IdentityError, KeyAlgorithm};

/// What a certificate says about itself, extracted once at load time.
pub(super) struct CertInfo {
    pub(super) subject: String,
    pub(super) issuer: String,
    pub(super) subject_raw: Vec<u8>,
    pub(super) issuer_raw: Vec<u8>,
    pub(super) serial_hex: String,
    pub(super) not_before: OffsetDateTime,
    pub(super) not_after: OffsetDateTime,
    pub(super) emails: Vec<String>,
    /// keyUsage bits (bit 0 = digitalSignature), `None` when the extension is absent.
    pub(super) key_usage: Option<u16>,
    /// Whether extendedKeyUsage includes emailProtection; `None` when the extension is absent.
    pub(super) eku_email_protection: Option<bool>,
    pub(super) public_key: CertPublicKey,
}

pub(super) enum CertPublicKey {
    /// The RSAPublicKey DER from the SubjectPublicKeyInfo bit string.
    Rsa(Vec<u8>),
    /// The curve and the encoded point.
    Ec(Curve, Vec<u8>),
    /// Anything congvan cannot sign with; such a certificate never matches a key.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Curve {
    P256,
    P384,
}

impl Curve {
    pub(super) fn from_oid(oid: &ObjectIdentifier) -> Option<Curve> {
        if *oid == rfc5912::SECP_256_R_1 {
            Some(Curve::P256)
        } else if *oid == rfc5912::SECP_384_R_1 {
            Some(Curve::P384)
        } else {
            None
        }
    }

    pub(super) fn signing_alg(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }

    pub(super) fn key_algorithm(self) -> KeyAlgorithm {
        match self {
            Curve::P256 => KeyAlgorithm::EcdsaP256,
            Curve::P384 => KeyAlgorithm::EcdsaP384,
        }
    }
}

impl CertPublicKey {
    /// The scheme to try this key with and ring's verifier for it (RSA's size is not known
    /// here: `bits` is 0).
    pub(super) fn verifier(
        &self,
    ) -> Option<(KeyAlgorithm, &'static dyn signature::VerificationAlgorithm)> {
        match self {
            CertPublicKey::Rsa(_) => Some((
                KeyAlgorithm::Rsa { bits: 0 },
                &signature::RSA_PKCS1_2048_8192_SHA256,
            )),
            CertPublicKey::Ec(Curve::P256, _) => {
                Some((KeyAlgorithm::EcdsaP256, &signature::ECDSA_P256_SHA256_ASN1))
            }
            CertPublicKey::Ec(Curve::P384, _) => {
                Some((KeyAlgorithm::EcdsaP384, &signature::ECDSA_P384_SHA384_ASN1))
            }
            CertPublicKey::Other => None,
        }
    }

    /// The key as ring's verifiers take it (RSAPublicKey DER, or the EC point).
    pub(super) fn bytes(&self) -> &[u8] {
        match self {
            CertPublicKey::Rsa(k) | CertPublicKey::Ec(_, k) => k,
            CertPublicKey::Other => &[],
        }
    }

    pub(super) fn matches(&self, algorithm: KeyAlgorithm, public: &[u8]) -> bool {
        match (self, algorithm) {
            (CertPublicKey::Rsa(key), KeyAlgorithm::Rsa { .. }) => key.as_slice() == public,
            (CertPublicKey::Ec(curve, point), alg) => {
                curve.key_algorithm() == alg && point.as_slice() == public
            }
            _ => false,
        }
    }
}

impl CertInfo {
    pub(super) fn parse(index: usize, der: &[u8]) -> Result<CertInfo, IdentityError> {
        let malformed = |reason: String| IdentityError::MalformedCertificate { index, reason };
        let (rest, cert) = X509Certificate::from_der(der).map_err(|e| malformed(e.to_string()))?;
        if !rest.is_empty() {
            return Err(malformed("trailing data after the certificate".into()));
        }

        let mut emails: Vec<String> = Vec::new();
        let mut add_email = |e: &str| {
            let e = e.trim();
            if !e.is_empty() && !emails.iter().any(|x| x.eq_ignore_ascii_case(e)) {
                emails.push(e.to_string());
            }
        };
        let san = cert
            .subject_alternative_name()
            .map_err(|e| malformed(e.to_string()))?;
        if let Some(san) = san {
            for name in &san.value.general_names {
                if let GeneralName::RFC822Name(e) = name {
                    add_email(e);
                }
            }
        }
        for atv in cert.subject().iter_email() {
            if let Some(e) = attribute_string(atv) {
                add_email(&e);
            }
        }

        let key_usage = cert
            .key_usage()
            .map_err(|e| malformed(e.to_string()))?
            .map(|ku| ku.value.flags);
        let eku_email_protection = cert
            .extended_key_usage()
            .map_err(|e| malformed(e.to_string()))?
            .map(|eku| eku.value.email_protection);

        let spki = cert.public_key();
        let alg_oid = ObjectIdentifier::from_bytes(spki.algorithm.algorithm.as_bytes())
            .map_err(|e| malformed(e.to_string()))?;
        let public_key = if alg_oid == rfc5912::RSA_ENCRYPTION {
            CertPublicKey::Rsa(spki.subject_public_key.data.to_vec())
        } else if alg_oid == rfc5912::ID_EC_PUBLIC_KEY {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .and_then(|oid| ObjectIdentifier::from_bytes(oid.as_bytes()).ok());
            match curve.as_ref().and_then(Curve::from_oid) {
                Some(curve) => CertPublicKey::Ec(curve, spki.subject_public_key.data.to_vec()),
                None => CertPublicKey::Other,
            }
        } else {
            CertPublicKey::Other
        };

        Ok(CertInfo {
            subject: name_to_rfc4514(cert.subject(), false),
            issuer: name_to_rfc4514(cert.issuer(), false),
            subject_raw: cert.subject().as_raw().to_vec(),
            issuer_raw: cert.issuer().as_raw().to_vec(),
            serial_hex: serial_hex(cert.raw_serial()),
            not_before: cert.validity().not_before.to_datetime(),
            not_after: cert.validity().not_after.to_datetime(),
            emails,
            key_usage,
            eku_email_protection,
            public_key,
        })
    }
}

/// Orders the chain from `leaf` by following issuer names, checking each link's signature.
pub(super) fn order_chain(
    certs: &[Vec<u8>],
    infos: &[CertInfo],
    leaf: usize,
) -> Result<Vec<usize>, IdentityError> {
    let parse = |index: usize| {
        X509Certificate::from_der(&certs[index])
            .map(|(_, c)| c)
            .map_err(|e| IdentityError::MalformedCertificate {
                index,
                reason: e.to_string(),
            })
    };
    let mut order = vec![leaf];
    let mut current = leaf;
    loop {
        let info = &infos[current];
        if info.subject_raw == info.issuer_raw {
            break; // self-issued: the root
        }
        let next = (0..infos.len())
            .find(|i| !order.contains(i) && infos[*i].subject_raw == info.issuer_raw);
        let Some(i) = next else { break };
        let (cur, issuer) = (parse(current)?, parse(i)?);
        if cur.verify_signature(Some(issuer.public_key())).is_err() {
            return Err(IdentityError::ChainSignatureInvalid {
                index: current,
                issuer_index: i,
            });
        }
        order.push(i);
        current = i;
    }
    Ok(order)
}
