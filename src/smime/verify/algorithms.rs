//! Digest and signature algorithms: which verifier checks a SignerInfo's signature (ring, or
//! the RustCrypto crates for what ring lacks), and RSASSA-PSS parameters.

use const_oid::db::rfc5912;
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::certificate::X509Certificate;

use super::cms::{algorithm, cms_err, SignerInfo};
use super::Failure;
use crate::smime::ber::{self, Tlv};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    pub(super) fn from_oid(oid: &[u8]) -> Option<Hash> {
        if oid == rfc5912::ID_SHA_256.as_bytes() {
            Some(Hash::Sha256)
        } else if oid == rfc5912::ID_SHA_384.as_bytes() {
            Some(Hash::Sha384)
        } else if oid == rfc5912::ID_SHA_512.as_bytes() {
            Some(Hash::Sha512)
        } else {
            None
        }
    }

    fn name(self) -> &'static str {
        match self {
            Hash::Sha256 => "SHA-256",
            Hash::Sha384 => "SHA-384",
            Hash::Sha512 => "SHA-512",
        }
    }

    pub(super) fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            Hash::Sha256 => &ring::digest::SHA256,
            Hash::Sha384 => &ring::digest::SHA384,
            Hash::Sha512 => &ring::digest::SHA512,
        }
    }
}

/// The named curves of ECDSA signer keys.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Curve {
    P256,
    P384,
    P521,
}

impl Curve {
    fn from_oid(oid: &[u8]) -> Option<Curve> {
        if oid == rfc5912::SECP_256_R_1.as_bytes() {
            Some(Curve::P256)
        } else if oid == rfc5912::SECP_384_R_1.as_bytes() {
            Some(Curve::P384)
        } else if oid == rfc5912::SECP_521_R_1.as_bytes() {
            Some(Curve::P521)
        } else {
            None
        }
    }
}

/// How one signature is checked: with ring wherever ring can, and with the RustCrypto crates
/// (`rsa`, `p256`, `p384`, `p521`) for exactly what ring cannot verify: RSASSA-PSS with a salt
/// length other than the hash length, ECDSA with SHA-512, and ECDSA on P-521. The digest of
/// the signed bytes is always computed with ring.
#[derive(Debug)]
pub(super) enum Verifier {
    Ring(&'static dyn VerificationAlgorithm),
    /// RSASSA-PSS, MGF1 with the same hash, the given salt length, trailer 0xbc.
    RsaPss {
        hash: Hash,
        salt_len: usize,
    },
    /// ECDSA over the hash of the signed bytes.
    Ecdsa {
        curve: Curve,
        hash: Hash,
    },
}

impl Verifier {
    pub(super) fn verify(
        &self,
        cert: &X509Certificate<'_>,
        signed: &[u8],
        signature: &[u8],
    ) -> Result<(), Failure> {
        let spki = cert.public_key();
        match *self {
            Verifier::Ring(alg) => {
                UnparsedPublicKey::new(alg, spki.subject_public_key.data.as_ref())
                    .verify(signed, signature)
                    .map_err(|_| Failure::BadSignature)
            }
            Verifier::RsaPss { hash, salt_len } => rsa_pss_verify(
                spki.subject_public_key.data.as_ref(),
                hash,
                salt_len,
                signed,
                signature,
            ),
            Verifier::Ecdsa { curve, hash } => {
                let prehash = ring::digest::digest(hash.ring(), signed);
                ecdsa_verify(curve, spki.raw, prehash.as_ref(), signature)
            }
        }
    }
}

/// RSASSA-PSS with the `rsa` crate. `key` is the RSAPublicKey (PKCS #1) of the certificate's
/// SubjectPublicKeyInfo. Moduli from 2048 to 8192 bits, as on ring's path.
fn rsa_pss_verify(
    key: &[u8],
    hash: Hash,
    salt_len: usize,
    signed: &[u8],
    signature: &[u8],
) -> Result<(), Failure> {
    use rsa::pkcs1::der::Decode as _;
    use rsa::traits::PublicKeyParts as _;
    use rsa::{BigUint, Pss, RsaPublicKey};
    let parsed = rsa::pkcs1::RsaPublicKey::from_der(key).map_err(|_| Failure::BadSignature)?;
    let key = RsaPublicKey::new_with_max_size(
        BigUint::from_bytes_be(parsed.modulus.as_bytes()),
        BigUint::from_bytes_be(parsed.public_exponent.as_bytes()),
        8192,
    )
    .map_err(|_| Failure::BadSignature)?;
    if key.n().bits() < 2048 {
        return Err(Failure::BadSignature);
    }
    let hashed = ring::digest::digest(hash.ring(), signed);
    let scheme = match hash {
        Hash::Sha256 => Pss::new_with_salt::<sha2::Sha256>(salt_len),
        Hash::Sha384 => Pss::new_with_salt::<sha2::Sha384>(salt_len),
        Hash::Sha512 => Pss::new_with_salt::<sha2::Sha512>(salt_len),
    };
    key.verify(scheme, hashed.as_ref(), signature)
        .map_err(|_| Failure::BadSignature)
}

/// ECDSA with the RustCrypto curve crates: the key from the certificate's
/// SubjectPublicKeyInfo (DER), the signature as DER `ECDSA-Sig-Value`, and the hash of the
/// signed bytes as the prehash (truncated or padded to the order's length by `ecdsa`, as
/// SEC 1 §4.1.4 says).
fn ecdsa_verify(
    curve: Curve,
    spki: &[u8],
    prehash: &[u8],
    signature: &[u8],
) -> Result<(), Failure> {
    macro_rules! verify_with {
        ($c:ident) => {{
            use $c::ecdsa::signature::hazmat::PrehashVerifier as _;
            use $c::pkcs8::DecodePublicKey as _;
            let key = $c::ecdsa::VerifyingKey::from_public_key_der(spki)
                .map_err(|_| Failure::BadSignature)?;
            let sig =
                $c::ecdsa::Signature::from_der(signature).map_err(|_| Failure::BadSignature)?;
            key.verify_prehash(prehash, &sig)
                .map_err(|_| Failure::BadSignature)
        }};
    }
    match curve {
        Curve::P256 => verify_with!(p256),
        Curve::P384 => verify_with!(p384),
        Curve::P521 => verify_with!(p521),
    }
}

/// The verifier for the SignerInfo and the signer's key.
pub(super) fn verification_algorithm(
    si: &SignerInfo<'_>,
    digest: Hash,
    cert: &X509Certificate<'_>,
) -> Result<Verifier, Failure> {
    let spki = cert.public_key();
    let key_oid = spki.algorithm.algorithm.as_bytes();
    let sig = si.sig_alg;
    let unsupported = || Failure::Unsupported(format!("signature algorithm {}", oid_text(sig)));
    if key_oid == rfc5912::RSA_ENCRYPTION.as_bytes() {
        let hash = if sig == rfc5912::RSA_ENCRYPTION.as_bytes() {
            digest
        } else if sig == rfc5912::SHA_256_WITH_RSA_ENCRYPTION.as_bytes() {
            Hash::Sha256
        } else if sig == rfc5912::SHA_384_WITH_RSA_ENCRYPTION.as_bytes() {
            Hash::Sha384
        } else if sig == rfc5912::SHA_512_WITH_RSA_ENCRYPTION.as_bytes() {
            Hash::Sha512
        } else if sig == rfc5912::ID_RSASSA_PSS.as_bytes() {
            return pss_verifier(si.sig_params.as_ref(), digest);
        } else {
            return Err(unsupported());
        };
        same_hash(hash, digest)?;
        return Ok(Verifier::Ring(match hash {
            Hash::Sha256 => &signature::RSA_PKCS1_2048_8192_SHA256,
            Hash::Sha384 => &signature::RSA_PKCS1_2048_8192_SHA384,
            Hash::Sha512 => &signature::RSA_PKCS1_2048_8192_SHA512,
        }));
    }
    if key_oid == rfc5912::ID_EC_PUBLIC_KEY.as_bytes() {
        let curve_oid = spki
            .algorithm
            .parameters
            .as_ref()
            .and_then(|p| p.as_oid().ok())
            .map(|o| o.as_bytes().to_vec())
            .unwrap_or_default();
        let hash = if sig == rfc5912::ECDSA_WITH_SHA_256.as_bytes() {
            Hash::Sha256
        } else if sig == rfc5912::ECDSA_WITH_SHA_384.as_bytes() {
            Hash::Sha384
        } else if sig == rfc5912::ECDSA_WITH_SHA_512.as_bytes() {
            Hash::Sha512
        } else if sig == rfc5912::ID_EC_PUBLIC_KEY.as_bytes() {
            digest
        } else {
            return Err(unsupported());
        };
        same_hash(hash, digest)?;
        let curve = Curve::from_oid(&curve_oid).ok_or_else(|| {
            Failure::Unsupported(format!("ECDSA on curve {}", oid_text(&curve_oid)))
        })?;
        return Ok(match (curve, hash) {
            (Curve::P256, Hash::Sha256) => Verifier::Ring(&signature::ECDSA_P256_SHA256_ASN1),
            (Curve::P256, Hash::Sha384) => Verifier::Ring(&signature::ECDSA_P256_SHA384_ASN1),
            (Curve::P384, Hash::Sha256) => Verifier::Ring(&signature::ECDSA_P384_SHA256_ASN1),
            (Curve::P384, Hash::Sha384) => Verifier::Ring(&signature::ECDSA_P384_SHA384_ASN1),
            // ring has neither ECDSA with SHA-512 nor P-521.
            (curve, hash) => Verifier::Ecdsa { curve, hash },
        });
    }
    Err(Failure::Unsupported(format!(
        "public key algorithm {}",
        oid_text(key_oid)
    )))
}

/// The signature's hash must be the SignerInfo's digest algorithm (RFC 5754 §3, RFC 4056
/// §2): one signature, one hash, so no mixing can downgrade either.
fn same_hash(signature: Hash, digest: Hash) -> Result<(), Failure> {
    if signature == digest {
        Ok(())
    } else {
        Err(Failure::Unsupported(format!(
            "the signature hash {} differs from the digest algorithm {}",
            signature.name(),
            digest.name()
        )))
    }
}

/// RSASSA-PSS parameters (RFC 4055 §3.1): the hash, MGF1 with that same hash, the salt length
/// (default 20) and trailer field 1. ring verifies the parameters RFC 8551 §2.2 recommends
/// (salt as long as the hash); any other salt length goes to the `rsa` crate.
fn pss_verifier(params: Option<&Tlv<'_>>, digest: Hash) -> Result<Verifier, Failure> {
    let bad = |why: &str| Failure::Unsupported(format!("RSA-PSS parameters: {why}"));
    let params = params.ok_or_else(|| bad("absent (SHA-1 defaults)"))?;
    let fields = params
        .expect(ber::SEQUENCE, "RSASSA-PSS-params")
        .map_err(cms_err)?
        .children()
        .map_err(cms_err)?;
    let mut hash = None;
    let mut mgf_hash = None;
    let mut salt = 20u64;
    for f in &fields {
        let inner = f.children().map_err(cms_err)?;
        let first = inner.first().ok_or_else(|| bad("empty field"))?;
        match f.tag {
            ber::CTX0 => {
                let oid = algorithm(first)?.0;
                hash = Some(Hash::from_oid(oid).ok_or_else(|| {
                    bad(&format!(
                        "hash algorithm {} is not supported",
                        oid_text(oid)
                    ))
                })?);
            }
            ber::CTX1 => {
                let (mgf, p) = algorithm(first)?;
                if mgf != rfc5912::ID_MGF_1.as_bytes() {
                    return Err(bad("mask generation is not MGF1"));
                }
                let p = p.ok_or_else(|| bad("MGF1 without hash"))?;
                mgf_hash = Some(algorithm(&p)?.0.to_vec());
            }
            ber::CTX2 => {
                let i = first.expect(ber::INTEGER, "saltLength").map_err(cms_err)?;
                if i.content.first().is_some_and(|b| b & 0x80 != 0) {
                    return Err(bad("negative salt length"));
                }
                if i.content.len() > 4 {
                    return Err(bad("salt length too large"));
                }
                salt = i.content.iter().fold(0u64, |a, &b| (a << 8) | b as u64);
            }
            ber::CTX3 => {
                let t = first
                    .expect(ber::INTEGER, "trailerField")
                    .map_err(cms_err)?;
                if t.content != [1] {
                    return Err(bad("trailer field is not 1"));
                }
            }
            _ => return Err(bad("unknown field")),
        }
    }
    let hash = hash.ok_or_else(|| bad("the hash is SHA-1 (the default)"))?;
    same_hash(hash, digest)?;
    match mgf_hash {
        None => return Err(bad("MGF1 with SHA-1 (the default) differs from the hash")),
        Some(m) if Hash::from_oid(&m) != Some(hash) => {
            return Err(bad(&format!(
                "MGF1 hash {} differs from the hash {}",
                oid_text(&m),
                hash.name()
            )))
        }
        Some(_) => {}
    }
    let salt_len = usize::try_from(salt).map_err(|_| bad("salt length too large"))?;
    if salt_len == hash.ring().output_len() {
        return Ok(Verifier::Ring(match hash {
            Hash::Sha256 => &signature::RSA_PSS_2048_8192_SHA256,
            Hash::Sha384 => &signature::RSA_PSS_2048_8192_SHA384,
            Hash::Sha512 => &signature::RSA_PSS_2048_8192_SHA512,
        }));
    }
    Ok(Verifier::RsaPss { hash, salt_len })
}

pub(super) fn oid_text(oid: &[u8]) -> String {
    const_oid::ObjectIdentifier::from_bytes(oid)
        .map(|o| o.to_string())
        .unwrap_or_else(|_| hex::encode(oid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smime::verify::SmimeResult;

    /// DER of one TLV with a short or long definite length.
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        if content.len() < 0x80 {
            out.push(content.len() as u8);
        } else {
            out.extend_from_slice(&[0x81, content.len() as u8]);
        }
        out.extend_from_slice(content);
        out
    }

    /// AlgorithmIdentifier with NULL parameters.
    fn alg(oid: &const_oid::ObjectIdentifier) -> Vec<u8> {
        tlv(
            ber::SEQUENCE,
            &[tlv(ber::OID, oid.as_bytes()), vec![0x05, 0x00]].concat(),
        )
    }

    /// RSASSA-PSS-params (RFC 4055) from its optional fields.
    fn pss_params(
        hash: Option<&const_oid::ObjectIdentifier>,
        mgf1_hash: Option<&const_oid::ObjectIdentifier>,
        salt: Option<&[u8]>,
        trailer: Option<u8>,
    ) -> Vec<u8> {
        let mut fields = Vec::new();
        if let Some(h) = hash {
            fields.extend(tlv(ber::CTX0, &alg(h)));
        }
        if let Some(h) = mgf1_hash {
            let mgf = tlv(
                ber::SEQUENCE,
                &[tlv(ber::OID, rfc5912::ID_MGF_1.as_bytes()), alg(h)].concat(),
            );
            fields.extend(tlv(ber::CTX1, &mgf));
        }
        if let Some(s) = salt {
            fields.extend(tlv(ber::CTX2, &tlv(ber::INTEGER, s)));
        }
        if let Some(t) = trailer {
            fields.extend(tlv(ber::CTX3, &tlv(ber::INTEGER, &[t])));
        }
        tlv(ber::SEQUENCE, &fields)
    }

    /// The verifier for PSS parameters `der` in a SignerInfo whose digest algorithm is `digest`.
    fn pss_for(der: &[u8], digest: Hash) -> Result<Verifier, Failure> {
        let t = ber::parse_single(der).unwrap();
        pss_verifier(Some(&t), digest)
    }

    /// As [`pss_for`], the digest algorithm being SHA-256.
    fn pss(der: &[u8]) -> Result<Verifier, Failure> {
        pss_for(der, Hash::Sha256)
    }

    #[test]
    fn pss_parameters_choose_ring_or_rsa() {
        let (sha256, sha384, sha512) = (
            &rfc5912::ID_SHA_256,
            &rfc5912::ID_SHA_384,
            &rfc5912::ID_SHA_512,
        );
        // Salt as long as the hash: ring.
        for (h, salt, digest) in [
            (sha256, 32u8, Hash::Sha256),
            (sha384, 48, Hash::Sha384),
            (sha512, 64, Hash::Sha512),
        ] {
            let v = pss_for(
                &pss_params(Some(h), Some(h), Some(&[salt]), Some(1)),
                digest,
            );
            assert!(matches!(v, Ok(Verifier::Ring(_))), "{h}: {v:?}");
        }
        // Any other salt length: the rsa crate, with the salt length of the parameters.
        let v = pss(&pss_params(
            Some(sha256),
            Some(sha256),
            Some(&[0x00, 0xde]),
            None,
        ));
        assert!(
            matches!(
                v,
                Ok(Verifier::RsaPss {
                    hash: Hash::Sha256,
                    salt_len: 222
                })
            ),
            "{v:?}"
        );
        let v = pss_for(
            &pss_params(Some(sha512), Some(sha512), Some(&[0]), Some(1)),
            Hash::Sha512,
        );
        assert!(
            matches!(
                v,
                Ok(Verifier::RsaPss {
                    hash: Hash::Sha512,
                    salt_len: 0
                })
            ),
            "{v:?}"
        );
        // saltLength absent: 20 (RFC 4055 §3.1).
        let v = pss_for(
            &pss_params(Some(sha384), Some(sha384), None, None),
            Hash::Sha384,
        );
        assert!(
            matches!(
                v,
                Ok(Verifier::RsaPss {
                    hash: Hash::Sha384,
                    salt_len: 20
                })
            ),
            "{v:?}"
        );
        // Refused, with the reason.
        let refused = |der: Vec<u8>, why: &str| {
            let e = pss(&der).err().unwrap_or_else(|| panic!("accepted: {why}"));
            assert_eq!(e.result(), SmimeResult::Neutral);
            assert_eq!(
                e,
                Failure::Unsupported(format!("RSA-PSS parameters: {why}"))
            );
        };
        refused(
            pss_params(Some(sha256), Some(sha384), Some(&[32]), None),
            "MGF1 hash 2.16.840.1.101.3.4.2.2 differs from the hash SHA-256",
        );
        refused(
            pss_params(Some(sha256), None, Some(&[32]), None),
            "MGF1 with SHA-1 (the default) differs from the hash",
        );
        refused(
            pss_params(None, Some(sha256), Some(&[32]), None),
            "the hash is SHA-1 (the default)",
        );
        refused(
            pss_params(
                Some(&const_oid::ObjectIdentifier::new_unwrap("1.3.14.3.2.26")),
                Some(sha256),
                None,
                None,
            ),
            "hash algorithm 1.3.14.3.2.26 is not supported",
        );
        refused(
            pss_params(Some(sha256), Some(sha256), Some(&[32]), Some(2)),
            "trailer field is not 1",
        );
        refused(
            pss_params(Some(sha256), Some(sha256), Some(&[0xff]), None),
            "negative salt length",
        );
        refused(
            pss_params(Some(sha256), Some(sha256), Some(&[1, 0, 0, 0, 0]), None),
            "salt length too large",
        );
        // A signature hash other than the SignerInfo's digest algorithm.
        assert_eq!(
            pss_for(
                &pss_params(Some(sha384), Some(sha384), Some(&[48]), None),
                Hash::Sha256
            )
            .err(),
            Some(Failure::Unsupported(
                "the signature hash SHA-384 differs from the digest algorithm SHA-256".into()
            ))
        );
        assert_eq!(
            pss_verifier(None, Hash::Sha256).err(),
            Some(Failure::Unsupported(
                "RSA-PSS parameters: absent (SHA-1 defaults)".into()
            ))
        );
    }
}
