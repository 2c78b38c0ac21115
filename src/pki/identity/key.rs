//! Private keys: the PKCS#8, PKCS#1 and SEC1 material found in a file (wiped when dropped) and
//! handing it to ring, completing EC keys that lack their public point.

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, OctetString};
use der::Decode;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, RsaKeyPair};

use super::cert::{CertInfo, CertPublicKey, Curve};
use super::{IdentityError, KeyAlgorithm, PrivateKey};

/// Private key bytes as found in a file; wiped (best effort) when dropped.
pub(super) enum KeyMaterial {
    Pkcs8(Vec<u8>),
    Pkcs1(Vec<u8>),
    Sec1(Vec<u8>),
}

impl Drop for KeyMaterial {
    fn drop(&mut self) {
        let (KeyMaterial::Pkcs8(b) | KeyMaterial::Pkcs1(b) | KeyMaterial::Sec1(b)) = self;
        b.fill(0);
        std::hint::black_box(&b);
    }
}

/// PKCS#8 PrivateKeyInfo / OneAsymmetricKey (RFC 5958), as far as congvan needs it.
#[derive(der::Sequence)]
pub(super) struct PrivateKeyInfo {
    pub(super) version: u8,
    pub(super) algorithm: spki::AlgorithmIdentifierOwned,
    pub(super) private_key: OctetString,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    pub(super) attributes: Option<der::asn1::SetOfVec<der::Any>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    pub(super) public_key: Option<BitString>,
}

/// SEC1 ECPrivateKey (RFC 5915 §3).
#[derive(der::Sequence)]
pub(super) struct EcPrivateKey {
    pub(super) version: u8,
    pub(super) private_key: OctetString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    pub(super) parameters: Option<ObjectIdentifier>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    pub(super) public_key: Option<BitString>,
}

fn rejected(e: ring::error::KeyRejected) -> IdentityError {
    match e.to_string().as_str() {
        "WrongAlgorithm" | "InconsistentComponents" => IdentityError::KeyMismatch,
        reason => IdentityError::KeyRejected {
            reason: reason.to_string(),
        },
    }
}

/// Hands the key to ring. EC keys that lack their public point (allowed by RFC 5915 and
/// written so by some tools) are completed with the point of a certificate on the same curve:
/// ring checks the pair, so a wrong guess is simply rejected.
pub(super) fn load_key(
    material: &KeyMaterial,
    certs: &[CertInfo],
) -> Result<(PrivateKey, KeyAlgorithm), IdentityError> {
    match material {
        KeyMaterial::Pkcs1(der) => load_rsa(RsaKeyPair::from_der(der)),
        KeyMaterial::Pkcs8(der) => {
            let info = PrivateKeyInfo::from_der(der).map_err(|e| IdentityError::MalformedKey {
                format: "PKCS#8",
                reason: e.to_string(),
            })?;
            let alg = &info.algorithm;
            if alg.oid == rfc5912::RSA_ENCRYPTION {
                load_rsa(RsaKeyPair::from_pkcs8(der))
            } else if alg.oid == rfc5912::ID_EC_PUBLIC_KEY {
                let curve = alg
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                let curve = match curve.as_ref().and_then(Curve::from_oid) {
                    Some(c) => c,
                    None => {
                        return Err(IdentityError::UnsupportedAlgorithm {
                            algorithm: format!(
                                "EC curve {}",
                                curve.map(|c| c.to_string()).unwrap_or_else(|| "?".into())
                            ),
                        })
                    }
                };
                let rng = SystemRandom::new();
                match EcdsaKeyPair::from_pkcs8(curve.signing_alg(), der, &rng) {
                    Ok(k) => Ok((PrivateKey::Ecdsa(k), curve.key_algorithm())),
                    Err(_) => {
                        let inner =
                            EcPrivateKey::from_der(info.private_key.as_bytes()).map_err(|e| {
                                IdentityError::MalformedKey {
                                    format: "PKCS#8 (EC)",
                                    reason: e.to_string(),
                                }
                            })?;
                        load_ec(&inner, Some(curve), certs)
                    }
                }
            } else {
                Err(IdentityError::UnsupportedAlgorithm {
                    algorithm: alg.oid.to_string(),
                })
            }
        }
        KeyMaterial::Sec1(der) => {
            let key = EcPrivateKey::from_der(der).map_err(|e| IdentityError::MalformedKey {
                format: "SEC1",
                reason: e.to_string(),
            })?;
            let curve = match &key.parameters {
                Some(oid) => Some(Curve::from_oid(oid).ok_or_else(|| {
                    IdentityError::UnsupportedAlgorithm {
                        algorithm: format!("EC curve {oid}"),
                    }
                })?),
                None => None,
            };
            load_ec(&key, curve, certs)
        }
    }
}

fn load_rsa(
    key: Result<RsaKeyPair, ring::error::KeyRejected>,
) -> Result<(PrivateKey, KeyAlgorithm), IdentityError> {
    let key = key.map_err(rejected)?;
    let bits = key.public().modulus_len() * 8;
    Ok((PrivateKey::Rsa(key), KeyAlgorithm::Rsa { bits }))
}

fn load_ec(
    key: &EcPrivateKey,
    curve: Option<Curve>,
    certs: &[CertInfo],
) -> Result<(PrivateKey, KeyAlgorithm), IdentityError> {
    let rng = SystemRandom::new();
    let scalar = key.private_key.as_bytes();
    if let Some(public) = key.public_key.as_ref().and_then(|p| p.as_bytes()) {
        // The point says which curve when the parameters are absent: 65 bytes for P-256,
        // 97 for P-384 (uncompressed).
        let curve = match curve {
            Some(c) => c,
            None if public.len() == 65 => Curve::P256,
            None if public.len() == 97 => Curve::P384,
            None => {
                return Err(IdentityError::MalformedKey {
                    format: "SEC1",
                    reason: "unknown curve".into(),
                })
            }
        };
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            curve.signing_alg(),
            scalar,
            public,
            &rng,
        )
        .map_err(rejected)?;
        return Ok((PrivateKey::Ecdsa(pair), curve.key_algorithm()));
    }
    for cert in certs {
        if let CertPublicKey::Ec(cert_curve, point) = &cert.public_key {
            if curve.is_some_and(|c| c != *cert_curve) {
                continue;
            }
            if let Ok(pair) = EcdsaKeyPair::from_private_key_and_public_key(
                cert_curve.signing_alg(),
                scalar,
                point,
                &rng,
            ) {
                return Ok((PrivateKey::Ecdsa(pair), cert_curve.key_algorithm()));
            }
        }
    }
    Err(IdentityError::KeyMismatch)
}
