//! The signature scheme an identity signs with and the digest that goes with it (`micalg`, the
//! CMS OIDs, ring's implementation).

use std::fmt;

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;

/// The signature scheme an identity signs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyAlgorithm {
    /// RSA with PKCS#1 v1.5 padding and SHA-256.
    Rsa { bits: usize },
    /// ECDSA on NIST P-256 with SHA-256.
    EcdsaP256,
    /// ECDSA on NIST P-384 with SHA-384.
    EcdsaP384,
}

impl KeyAlgorithm {
    /// A short human-readable name, e.g. `RSA-3072` or `ECDSA-P256`.
    pub fn name(&self) -> String {
        match self {
            KeyAlgorithm::Rsa { bits } => format!("RSA-{bits}"),
            KeyAlgorithm::EcdsaP256 => "ECDSA-P256".to_string(),
            KeyAlgorithm::EcdsaP384 => "ECDSA-P384".to_string(),
        }
    }

    /// The digest used for the CMS messageDigest, the signed attributes and `micalg`.
    ///
    /// SHA-256 for RSA and P-256, as SPEC.md asks. P-384 is the exception: ring 0.17 can only
    /// sign on P-384 with SHA-384 (`ECDSA_P384_SHA384_ASN1_SIGNING`; `ECDSA_P384_SHA256_ASN1`
    /// exists for verification only), and a CMS verifier (OpenSSL's `CMS_SignerInfo_verify`)
    /// hashes the signed attributes with the SignerInfo's digestAlgorithm, not with the hash named
    /// in the signatureAlgorithm. A P-384 signature over SHA-384 inside a SignerInfo that says
    /// sha256 therefore fails everywhere. So P-384 identities use SHA-384 throughout
    /// (digestAlgorithm, messageDigest, ecdsa-with-SHA384) and `micalg=sha-384`, which is also
    /// what RFC 5753/RFC 8551 pair with P-384. Offices should get RSA or P-256 seals.
    pub fn digest(&self) -> DigestAlgorithm {
        match self {
            KeyAlgorithm::Rsa { .. } | KeyAlgorithm::EcdsaP256 => DigestAlgorithm::Sha256,
            KeyAlgorithm::EcdsaP384 => DigestAlgorithm::Sha384,
        }
    }

    /// The CMS signatureAlgorithm OID: rsaEncryption (RFC 3370 §3.2) or ecdsa-with-SHA256/384
    /// (RFC 5753 §2.1.1).
    pub fn signature_oid(&self) -> ObjectIdentifier {
        match self {
            KeyAlgorithm::Rsa { .. } => rfc5912::RSA_ENCRYPTION,
            KeyAlgorithm::EcdsaP256 => rfc5912::ECDSA_WITH_SHA_256,
            KeyAlgorithm::EcdsaP384 => rfc5912::ECDSA_WITH_SHA_384,
        }
    }
}

impl fmt::Display for KeyAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// A message digest algorithm used in signing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestAlgorithm {
    Sha256,
    Sha384,
}

impl DigestAlgorithm {
    /// The `micalg` parameter value (RFC 8551 §3.5.3.2).
    pub fn micalg(&self) -> &'static str {
        match self {
            DigestAlgorithm::Sha256 => "sha-256",
            DigestAlgorithm::Sha384 => "sha-384",
        }
    }

    /// The algorithm's OID (RFC 5754).
    pub fn oid(&self) -> ObjectIdentifier {
        match self {
            DigestAlgorithm::Sha256 => rfc5912::ID_SHA_256,
            DigestAlgorithm::Sha384 => rfc5912::ID_SHA_384,
        }
    }

    /// ring's implementation of the algorithm.
    pub fn ring(&self) -> &'static ring::digest::Algorithm {
        match self {
            DigestAlgorithm::Sha256 => &ring::digest::SHA256,
            DigestAlgorithm::Sha384 => &ring::digest::SHA384,
        }
    }
}
