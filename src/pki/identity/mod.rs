//! Signing identities: an office's digital seal (con dấu số của cơ quan), that is its S/MIME
//! certificate chain and the private key that belongs to it.
//!
//! This module owns loading an identity (PEM or PKCS#12), proving that the key belongs to the
//! certificate, describing the certificate (subject, serial, validity, e-mail addresses) and
//! saying whether it may sign mail at a given moment. It does not validate the path to a trust
//! anchor: the chain is carried as given so that recipients can build the path themselves.
//!
//! Supported keys: RSA 2048–4096 bits (PKCS#1 v1.5 with SHA-256) and ECDSA on P-256 (SHA-256)
//! and P-384 (SHA-384, see [`KeyAlgorithm::digest`] for why not SHA-256). Keys may come as
//! PKCS#8, PKCS#1 (`RSA PRIVATE KEY`) or SEC1 (`EC PRIVATE KEY`); all are handed to ring, which
//! does every private-key operation.

use std::fmt;

use der::{Decode, Encode};
use p12_keystore::error::Error as P12Error;
use p12_keystore::Pkcs12Archive;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::pem::{PemObject, SectionKind};
use time::OffsetDateTime;

use self::cert::{order_chain, CertInfo};
use self::key::{load_key, KeyMaterial};
use super::token::TokenKey;

mod algorithm;
mod cert;
mod error;
mod key;
mod names;
#[cfg(test)]
mod tests;

pub use algorithm::{DigestAlgorithm, KeyAlgorithm};
pub use error::{IdentityError, KeyError, PemSource, Unusable};
pub use names::{name_to_rfc4514, serial_hex};

/// An office's signing identity: the certificate chain (DER, signer first) and its private key.
pub struct SigningIdentity {
    chain: Vec<Vec<u8>>,
    key: PrivateKey,
    algorithm: KeyAlgorithm,
    info: CertInfo,
    rng: SystemRandom,
}

enum PrivateKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    /// On a token: every signature goes through it (SPEC "Keys on a token").
    Token(TokenKey),
}

impl fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("subject", &self.info.subject)
            .field("serial", &self.info.serial_hex)
            .field("algorithm", &self.algorithm)
            .field("emails", &self.info.emails)
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// Loads an identity from a PEM certificate chain and a PEM private key (PKCS#8
    /// `PRIVATE KEY`, PKCS#1 `RSA PRIVATE KEY` or SEC1 `EC PRIVATE KEY`).
    ///
    /// The chain may list its certificates in any order; the signer is the certificate whose
    /// public key matches the key, and the rest are ordered by issuer from there. Certificates
    /// that are not on the signer's path are dropped.
    pub fn from_pem(chain_pem: &[u8], key_pem: &[u8]) -> Result<Self, IdentityError> {
        let certs = pem_certificates(chain_pem)?;
        if certs.is_empty() {
            return Err(IdentityError::NoCertificate);
        }

        let mut keys = Vec::new();
        for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(key_pem) {
            let (kind, der) = item.map_err(|e| IdentityError::Pem {
                source_file: PemSource::Key,
                reason: e.to_string(),
            })?;
            match kind {
                SectionKind::PrivateKey => keys.push(KeyMaterial::Pkcs8(der)),
                SectionKind::RsaPrivateKey => keys.push(KeyMaterial::Pkcs1(der)),
                SectionKind::EcPrivateKey => keys.push(KeyMaterial::Sec1(der)),
                _ => {}
            }
        }
        match keys.len() {
            0 if is_encrypted_pem(key_pem) => Err(IdentityError::EncryptedPrivateKey),
            0 => Err(IdentityError::NoPrivateKey),
            1 => Self::assemble(certs, keys.remove(0)),
            count => Err(IdentityError::MultiplePrivateKeys { count }),
        }
    }

    /// Loads an identity from a PKCS#12 (`.p12`/`.pfx`) file: modern PBES2/AES files and the
    /// legacy 3DES/RC2 ones. A wrong password gives [`IdentityError::WrongPassword`].
    pub fn from_pkcs12(data: &[u8], password: &str) -> Result<Self, IdentityError> {
        let archive = Pkcs12Archive::from_pkcs12(data, password).map_err(|e| match e {
            P12Error::MacError(_) | P12Error::UnpadError => IdentityError::WrongPassword,
            other => IdentityError::Pkcs12 {
                reason: match other {
                    // A DER file that is a PKCS#12 archive of a kind not supported.
                    P12Error::UnsupportedEncryptionScheme | P12Error::UnsupportedMacAlgorithm => {
                        format!("a PKCS#12 file of a kind congvan cannot read: {other} (export it again with AES-256 and SHA-256)")
                    }
                    _ => super::describe::not_what_expected(data, "a PKCS#12 file (.p12/.pfx)"),
                },
            },
        })?;
        let certs: Vec<Vec<u8>> = archive
            .certs
            .iter()
            .map(|bag| bag.cert.as_der().to_vec())
            .collect();
        if certs.is_empty() {
            return Err(IdentityError::NoCertificate);
        }
        let mut keys: Vec<KeyMaterial> = archive
            .keys
            .iter()
            .map(|bag| KeyMaterial::Pkcs8(bag.key.as_der().to_vec()))
            .collect();
        match keys.len() {
            0 => Err(IdentityError::NoPrivateKey),
            1 => Self::assemble(certs, keys.remove(0)),
            count => Err(IdentityError::MultiplePrivateKeys { count }),
        }
    }

    fn assemble(certs: Vec<Vec<u8>>, key: KeyMaterial) -> Result<Self, IdentityError> {
        let parsed: Vec<CertInfo> = certs
            .iter()
            .enumerate()
            .map(|(index, der)| CertInfo::parse(index, der))
            .collect::<Result<_, _>>()?;

        let loaded = load_key(&key, &parsed);
        drop(key); // KeyMaterial wipes its buffer on drop
        let (key, algorithm) = loaded?;

        let public = match &key {
            PrivateKey::Rsa(k) => k.public().as_ref(),
            PrivateKey::Ecdsa(k) => k.public_key().as_ref(),
            PrivateKey::Token(_) => &[],
        };
        let leaf = parsed
            .iter()
            .position(|c| c.public_key.matches(algorithm, public))
            .ok_or(IdentityError::KeyMismatch)?;
        Self::with_key(certs, parsed, leaf, key, algorithm)
    }

    /// An identity whose private key is on a token: the chain from `chain_pem`, or the
    /// certificate stored on the token beside the key. The signer is the certificate whose
    /// public key verifies a signature the token makes now (which also proves the token, the
    /// PIN and the key work).
    pub fn from_token(token: TokenKey, chain_pem: Option<&[u8]>) -> Result<Self, IdentityError> {
        let certs = match chain_pem {
            Some(pem) => pem_certificates(pem)?,
            None => vec![token.certificate()?],
        };
        if certs.is_empty() {
            return Err(IdentityError::NoCertificate);
        }
        let parsed: Vec<CertInfo> = certs
            .iter()
            .enumerate()
            .map(|(index, der)| CertInfo::parse(index, der))
            .collect::<Result<_, _>>()?;
        const PROBE: &[u8] = b"congvan: the seal's key on its token";
        let mut found = None;
        for (index, cert) in parsed.iter().enumerate() {
            let Some((algorithm, verifier)) = cert.public_key.verifier() else {
                continue;
            };
            let sig = token.sign(algorithm, PROBE)?;
            let key = signature::UnparsedPublicKey::new(verifier, cert.public_key.bytes());
            if key.verify(PROBE, &sig).is_ok() {
                let algorithm = match algorithm {
                    KeyAlgorithm::Rsa { .. } => KeyAlgorithm::Rsa {
                        bits: sig.len() * 8,
                    },
                    other => other,
                };
                found = Some((index, algorithm));
                break;
            }
        }
        let (leaf, algorithm) = found.ok_or(IdentityError::KeyMismatch)?;
        Self::with_key(certs, parsed, leaf, PrivateKey::Token(token), algorithm)
    }

    /// The identity of `key`, whose certificate is `certs[leaf]`: the chain ordered from it
    /// and checked to re-encode as given.
    fn with_key(
        certs: Vec<Vec<u8>>,
        parsed: Vec<CertInfo>,
        leaf: usize,
        key: PrivateKey,
        algorithm: KeyAlgorithm,
    ) -> Result<Self, IdentityError> {
        let order = order_chain(&certs, &parsed, leaf)?;
        for &index in &order {
            let reencoded = x509_cert::Certificate::from_der(&certs[index])
                .and_then(|c| c.to_der())
                .map_err(|e| IdentityError::MalformedCertificate {
                    index,
                    reason: e.to_string(),
                })?;
            if reencoded != certs[index] {
                return Err(IdentityError::NonCanonicalCertificate { index });
            }
        }

        let mut parsed: Vec<Option<CertInfo>> = parsed.into_iter().map(Some).collect();
        let info = parsed[leaf].take().ok_or(IdentityError::KeyMismatch)?;
        let mut certs: Vec<Option<Vec<u8>>> = certs.into_iter().map(Some).collect();
        let chain = order
            .iter()
            .filter_map(|&i| certs[i].take())
            .collect::<Vec<_>>();

        Ok(SigningIdentity {
            chain,
            key,
            algorithm,
            info,
            rng: SystemRandom::new(),
        })
    }

    /// The signer's certificate subject as an RFC 4514 string (UTF-8).
    pub fn subject(&self) -> &str {
        &self.info.subject
    }

    /// The signer's certificate issuer as an RFC 4514 string (UTF-8).
    pub fn issuer(&self) -> &str {
        &self.info.issuer
    }

    /// The signer's certificate serial number in lower-case hex, without leading zero bytes.
    pub fn serial_hex(&self) -> &str {
        &self.info.serial_hex
    }

    /// Start of the certificate's validity.
    pub fn not_before(&self) -> OffsetDateTime {
        self.info.not_before
    }

    /// End of the certificate's validity.
    pub fn not_after(&self) -> OffsetDateTime {
        self.info.not_after
    }

    /// The e-mail addresses of the certificate: SAN rfc822Name entries first, then subject
    /// emailAddress attributes; duplicates (ignoring case) removed.
    pub fn email_addresses(&self) -> &[String] {
        &self.info.emails
    }

    /// Whether `address` is one of the certificate's addresses (compared without regard to
    /// case, as S/MIME agents do).
    pub fn has_email(&self, address: &str) -> bool {
        self.info
            .emails
            .iter()
            .any(|e| e.eq_ignore_ascii_case(address.trim()))
    }

    /// The signature scheme.
    pub fn algorithm(&self) -> KeyAlgorithm {
        self.algorithm
    }

    /// The algorithm's short name, e.g. `RSA-2048`.
    pub fn algorithm_name(&self) -> String {
        self.algorithm.name()
    }

    /// The signer's certificate (DER).
    pub fn certificate_der(&self) -> &[u8] {
        &self.chain[0]
    }

    /// The chain (DER), signer first, then its issuers in order.
    pub fn chain_der(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// Whether the identity may sign at `now`; the error says why not.
    pub fn usability(&self, now: OffsetDateTime) -> Result<(), Unusable> {
        let info = &self.info;
        if now < info.not_before {
            return Err(Unusable::NotYetValid {
                not_before: info.not_before,
                now,
            });
        }
        if now > info.not_after {
            return Err(Unusable::Expired {
                not_after: info.not_after,
                now,
            });
        }
        if let Some(flags) = info.key_usage {
            if flags & (KU_DIGITAL_SIGNATURE | KU_NON_REPUDIATION) == 0 {
                return Err(Unusable::KeyUsageForbidsSigning {
                    key_usage: key_usage_names(flags),
                });
            }
        }
        if info.eku_email_protection == Some(false) {
            return Err(Unusable::NoEmailProtection);
        }
        if info.emails.is_empty() {
            return Err(Unusable::NoEmailAddress);
        }
        Ok(())
    }

    /// Signs `data` with the identity's scheme (the hash is part of the scheme). Only the CMS
    /// builder calls this, with the DER of the signed attributes.
    pub(crate) fn sign_bytes(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let software = |_| KeyError::Software;
        match &self.key {
            PrivateKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, data, &mut sig)
                    .map_err(software)?;
                Ok(sig)
            }
            PrivateKey::Ecdsa(k) => {
                Ok(k.sign(&self.rng, data).map_err(software)?.as_ref().to_vec())
            }
            PrivateKey::Token(t) => Ok(t.sign(self.algorithm, data)?),
        }
    }

    /// The key on its token, for a token identity.
    pub fn token_key(&self) -> Option<&TokenKey> {
        match &self.key {
            PrivateKey::Token(t) => Some(t),
            _ => None,
        }
    }

    /// Makes a signature now and checks it with the certificate's public key: what `serve`
    /// does at start and the token watch does before releasing held documents (a token
    /// that is present, unlocked, and holds the key that matches the certificate).
    pub fn self_test(&self) -> Result<(), KeyError> {
        const PROBE: &[u8] = b"congvan: a test signature with the office's seal";
        let sig = self.sign_bytes(PROBE)?;
        let ok = self
            .info
            .public_key
            .verifier()
            .is_some_and(|(_, verifier)| {
                signature::UnparsedPublicKey::new(verifier, self.info.public_key.bytes())
                    .verify(PROBE, &sig)
                    .is_ok()
            });
        if ok {
            Ok(())
        } else {
            Err(KeyError::Mismatch)
        }
    }

    /// Where the private key lives: `None` for a key file, the token and object otherwise.
    pub fn token(&self) -> Option<String> {
        match &self.key {
            PrivateKey::Token(t) => Some(t.describe()),
            _ => None,
        }
    }
}

const KU_DIGITAL_SIGNATURE: u16 = 1 << 0;
const KU_NON_REPUDIATION: u16 = 1 << 1;

fn key_usage_names(flags: u16) -> String {
    const NAMES: [&str; 9] = [
        "digitalSignature",
        "nonRepudiation",
        "keyEncipherment",
        "dataEncipherment",
        "keyAgreement",
        "keyCertSign",
        "cRLSign",
        "encipherOnly",
        "decipherOnly",
    ];
    let names: Vec<&str> = NAMES
        .iter()
        .enumerate()
        .filter(|(bit, _)| flags & (1 << bit) != 0)
        .map(|(_, name)| *name)
        .collect();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// The certificates (DER) of a PEM chain, in the order given; other sections are skipped.
fn pem_certificates(chain_pem: &[u8]) -> Result<Vec<Vec<u8>>, IdentityError> {
    let mut certs = Vec::new();
    for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(chain_pem) {
        let (kind, der) = item.map_err(|e| IdentityError::Pem {
            source_file: PemSource::Chain,
            reason: e.to_string(),
        })?;
        if kind == SectionKind::Certificate {
            certs.push(der);
        }
    }
    Ok(certs)
}

fn is_encrypted_pem(pem: &[u8]) -> bool {
    let find = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    find(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || find(b"Proc-Type: 4,ENCRYPTED")
}
