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

use const_oid::db::rfc5912;
use const_oid::ObjectIdentifier;
use der::asn1::{BitString, OctetString};
use der::{Decode, Encode};
use p12_keystore::error::Error as P12Error;
use p12_keystore::Pkcs12Archive;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use rustls_pki_types::pem::{PemObject, SectionKind};
use time::OffsetDateTime;
use x509_parser::asn1_rs::{Tag, ToDer};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer;
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Which part of a PEM import a problem was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PemSource {
    /// The certificate chain file.
    Chain,
    /// The private key file.
    Key,
}

impl fmt::Display for PemSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PemSource::Chain => "certificate chain",
            PemSource::Key => "private key",
        })
    }
}

/// Why an identity could not be loaded. Every variant is about the files an administrator
/// supplied; none is a bug in the caller.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// The PEM text itself is malformed (bad base64, missing END line, ...).
    #[error("the {source_file} PEM is malformed: {reason}")]
    Pem {
        source_file: PemSource,
        reason: String,
    },
    /// No `CERTIFICATE` block (PEM) or certificate bag (PKCS#12) was found.
    #[error("no certificate found")]
    NoCertificate,
    /// No private key was found.
    #[error("no private key found")]
    NoPrivateKey,
    /// The key file is encrypted (`ENCRYPTED PRIVATE KEY` or `Proc-Type: 4,ENCRYPTED`).
    #[error("the private key is encrypted; import a PKCS#12 file with its password instead")]
    EncryptedPrivateKey,
    /// More than one private key was supplied.
    #[error("{count} private keys found; an identity has exactly one")]
    MultiplePrivateKeys { count: usize },
    /// A private key structure could not be decoded.
    #[error("the private key ({format}) is malformed: {reason}")]
    MalformedKey {
        format: &'static str,
        reason: String,
    },
    /// ring refused the key (too small, inconsistent components, ...).
    #[error("the private key was rejected: {reason}")]
    KeyRejected { reason: String },
    /// A key or certificate uses an algorithm congvan cannot sign with.
    #[error("unsupported key algorithm {algorithm}; use RSA 2048-4096 or ECDSA P-256/P-384")]
    UnsupportedAlgorithm { algorithm: String },
    /// The private key does not belong to any supplied certificate.
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    /// A certificate could not be parsed.
    #[error("certificate #{index} is malformed: {reason}")]
    MalformedCertificate { index: usize, reason: String },
    /// A certificate is not in canonical DER, so it cannot be copied into CMS unchanged.
    #[error("certificate #{index} is not DER-encoded canonically")]
    NonCanonicalCertificate { index: usize },
    /// A certificate in the chain is not signed by the next one.
    #[error("certificate #{index} in the chain is not signed by its issuer #{issuer_index}")]
    ChainSignatureInvalid { index: usize, issuer_index: usize },
    /// The PKCS#12 password is wrong (MAC or decryption check failed).
    #[error("wrong PKCS#12 password")]
    WrongPassword,
    /// The PKCS#12 file is malformed or uses an unsupported scheme.
    #[error("the PKCS#12 file could not be read: {reason}")]
    Pkcs12 { reason: String },
}

/// Why a loaded identity cannot sign at a given moment. A message whose identity is unusable is
/// held, never sent unsigned (SPEC, outgoing mail item 4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Unusable {
    /// `now` is after the certificate's notAfter.
    #[error("the signing certificate expired at {not_after} (now {now})")]
    Expired {
        not_after: OffsetDateTime,
        now: OffsetDateTime,
    },
    /// `now` is before the certificate's notBefore.
    #[error("the signing certificate is not valid before {not_before} (now {now})")]
    NotYetValid {
        not_before: OffsetDateTime,
        now: OffsetDateTime,
    },
    /// A keyUsage extension is present without digitalSignature or nonRepudiation.
    #[error("the signing certificate's key usage ({key_usage}) allows neither digitalSignature nor nonRepudiation")]
    KeyUsageForbidsSigning { key_usage: String },
    /// An extendedKeyUsage extension is present without id-kp-emailProtection.
    #[error("the signing certificate's extended key usage does not include emailProtection")]
    NoEmailProtection,
    /// The certificate names no e-mail address (SAN rfc822Name or subject emailAddress).
    #[error("the signing certificate contains no e-mail address")]
    NoEmailAddress,
}

impl Unusable {
    /// The same reason in Vietnamese, for delay notices and the administrator's report.
    pub fn vietnamese(&self) -> String {
        match self {
            Unusable::Expired { not_after, .. } => {
                format!("Chứng thư số ký thư đã hết hạn từ {not_after}")
            }
            Unusable::NotYetValid { not_before, .. } => {
                format!("Chứng thư số ký thư chưa có hiệu lực trước {not_before}")
            }
            Unusable::KeyUsageForbidsSigning { .. } => {
                "Chứng thư số không cho phép dùng khóa để ký số".to_string()
            }
            Unusable::NoEmailProtection => {
                "Chứng thư số không có mục đích bảo vệ thư điện tử (emailProtection)".to_string()
            }
            Unusable::NoEmailAddress => "Chứng thư số không chứa địa chỉ thư điện tử".to_string(),
        }
    }
}

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
                reason: other.to_string(),
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
        };
        let leaf = parsed
            .iter()
            .position(|c| c.public_key.matches(algorithm, public))
            .ok_or(IdentityError::KeyMismatch)?;

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
    pub(crate) fn sign_bytes(&self, data: &[u8]) -> Result<Vec<u8>, ring::error::Unspecified> {
        match &self.key {
            PrivateKey::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&signature::RSA_PKCS1_SHA256, &self.rng, data, &mut sig)?;
                Ok(sig)
            }
            PrivateKey::Ecdsa(k) => Ok(k.sign(&self.rng, data)?.as_ref().to_vec()),
        }
    }
}

/// Formats a serial number (the INTEGER's content octets) as lower-case hex without the sign
/// padding byte, the form congvan writes in registers and Authentication-Results.
pub fn serial_hex(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex::encode(&raw[start..])
}

/// Formats a distinguished name as an RFC 4514 string: RDNs in reverse order, separated by
/// `,`; multi-valued RDNs joined with `+`; special characters escaped. With `ascii_only`, every
/// non-ASCII character is written as `\XX` escapes of its UTF-8 bytes (RFC 4514 §2.4), for
/// header fields that must stay ASCII.
pub fn name_to_rfc4514(name: &X509Name<'_>, ascii_only: bool) -> String {
    let rdns: Vec<_> = name.iter().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            write_atv(&mut out, atv, ascii_only);
        }
    }
    out
}

fn write_atv(out: &mut String, atv: &AttributeTypeAndValue<'_>, ascii_only: bool) {
    let oid = atv.attr_type().to_id_string();
    let short = match oid.as_str() {
        // RFC 4514 §3
        "2.5.4.3" => Some("CN"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.6" => Some("C"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        // registered LDAP descriptors (RFC 4519, RFC 3280) common in Vietnamese certificates
        "2.5.4.5" => Some("serialNumber"),
        "2.5.4.4" => Some("SN"),
        "2.5.4.42" => Some("GN"),
        "2.5.4.12" => Some("title"),
        "2.5.4.97" => Some("organizationIdentifier"),
        "1.2.840.113549.1.9.1" => Some("emailAddress"),
        _ => None,
    };
    let value = attribute_string(atv);
    match (short, value) {
        (Some(short), Some(value)) => {
            out.push_str(short);
            out.push('=');
            escape_rfc4514_value(out, &value, ascii_only);
        }
        (short, _) => {
            out.push_str(short.unwrap_or(&oid));
            out.push_str("=#");
            match atv.attr_value().to_der_vec() {
                Ok(der) => out.push_str(&hex::encode(der)),
                Err(_) => out.push_str(&hex::encode(atv.attr_value().as_bytes())),
            }
        }
    }
}

/// Decodes the directory string types found in names; `None` for anything else.
fn attribute_string(atv: &AttributeTypeAndValue<'_>) -> Option<String> {
    let any = atv.attr_value();
    let data = any.as_bytes();
    match any.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(data).ok().map(str::to_string),
        // T.61 in practice carries Latin-1.
        Tag::TeletexString => Some(data.iter().map(|&b| b as char).collect()),
        Tag::BmpString => {
            if data.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString => {
            if data.len() % 4 != 0 {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

fn escape_rfc4514_value(out: &mut String, value: &str, ascii_only: bool) {
    let count = value.chars().count();
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == count => out.push_str("\\ "),
            c if c.is_ascii_control() => out.push_str(&format!("\\{:02X}", c as u8)),
            c if ascii_only && !c.is_ascii() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02X}"));
                }
            }
            c => out.push(c),
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

fn is_encrypted_pem(pem: &[u8]) -> bool {
    let find = |needle: &[u8]| pem.windows(needle.len()).any(|w| w == needle);
    find(b"-----BEGIN ENCRYPTED PRIVATE KEY-----") || find(b"Proc-Type: 4,ENCRYPTED")
}

/// What a certificate says about itself, extracted once at load time.
struct CertInfo {
    subject: String,
    issuer: String,
    subject_raw: Vec<u8>,
    issuer_raw: Vec<u8>,
    serial_hex: String,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
    emails: Vec<String>,
    /// keyUsage bits (bit 0 = digitalSignature), `None` when the extension is absent.
    key_usage: Option<u16>,
    /// Whether extendedKeyUsage includes emailProtection; `None` when the extension is absent.
    eku_email_protection: Option<bool>,
    public_key: CertPublicKey,
}

enum CertPublicKey {
    /// The RSAPublicKey DER from the SubjectPublicKeyInfo bit string.
    Rsa(Vec<u8>),
    /// The curve and the encoded point.
    Ec(Curve, Vec<u8>),
    /// Anything congvan cannot sign with; such a certificate never matches a key.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Curve {
    P256,
    P384,
}

impl Curve {
    fn from_oid(oid: &ObjectIdentifier) -> Option<Curve> {
        if *oid == rfc5912::SECP_256_R_1 {
            Some(Curve::P256)
        } else if *oid == rfc5912::SECP_384_R_1 {
            Some(Curve::P384)
        } else {
            None
        }
    }

    fn signing_alg(self) -> &'static signature::EcdsaSigningAlgorithm {
        match self {
            Curve::P256 => &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
            Curve::P384 => &signature::ECDSA_P384_SHA384_ASN1_SIGNING,
        }
    }

    fn key_algorithm(self) -> KeyAlgorithm {
        match self {
            Curve::P256 => KeyAlgorithm::EcdsaP256,
            Curve::P384 => KeyAlgorithm::EcdsaP384,
        }
    }
}

impl CertPublicKey {
    fn matches(&self, algorithm: KeyAlgorithm, public: &[u8]) -> bool {
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
    fn parse(index: usize, der: &[u8]) -> Result<CertInfo, IdentityError> {
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
fn order_chain(
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

/// Private key bytes as found in a file; wiped (best effort) when dropped.
enum KeyMaterial {
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
struct PrivateKeyInfo {
    version: u8,
    algorithm: spki::AlgorithmIdentifierOwned,
    private_key: OctetString,
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT", optional = "true")]
    attributes: Option<der::asn1::SetOfVec<der::Any>>,
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", optional = "true")]
    public_key: Option<BitString>,
}

/// SEC1 ECPrivateKey (RFC 5915 §3).
#[derive(der::Sequence)]
struct EcPrivateKey {
    version: u8,
    private_key: OctetString,
    #[asn1(context_specific = "0", tag_mode = "EXPLICIT", optional = "true")]
    parameters: Option<ObjectIdentifier>,
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", optional = "true")]
    public_key: Option<BitString>,
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
fn load_key(
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testpki::{self, run_openssl, IdentityFiles};
    use std::path::Path;

    fn read(path: &Path) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    fn load(files: &IdentityFiles) -> SigningIdentity {
        SigningIdentity::from_pem(&read(&files.chain_pem), &read(&files.key_pem)).unwrap()
    }

    fn tmp(name: &str) -> String {
        testpki::shared()
            .dir
            .join(name)
            .to_string_lossy()
            .into_owned()
    }

    /// Signs with the identity and checks the signature with ring's verifier and the
    /// certificate's public key.
    fn assert_signs(id: &SigningIdentity) {
        let msg = b"signed attributes stand-in";
        let sig = id.sign_bytes(msg).unwrap();
        let (_, cert) = X509Certificate::from_der(id.certificate_der()).unwrap();
        let public = cert.public_key().subject_public_key.data.to_vec();
        let alg: &dyn signature::VerificationAlgorithm = match id.algorithm() {
            KeyAlgorithm::Rsa { .. } => &signature::RSA_PKCS1_2048_8192_SHA256,
            KeyAlgorithm::EcdsaP256 => &signature::ECDSA_P256_SHA256_ASN1,
            KeyAlgorithm::EcdsaP384 => &signature::ECDSA_P384_SHA384_ASN1,
        };
        signature::UnparsedPublicKey::new(alg, public)
            .verify(msg, &sig)
            .unwrap();
    }

    #[test]
    fn loads_every_key_type_from_pem() {
        let pki = testpki::shared();
        let expected = [
            (&pki.rsa2048, KeyAlgorithm::Rsa { bits: 2048 }, "RSA-2048"),
            (&pki.rsa3072, KeyAlgorithm::Rsa { bits: 3072 }, "RSA-3072"),
            (&pki.rsa4096, KeyAlgorithm::Rsa { bits: 4096 }, "RSA-4096"),
            (&pki.p256, KeyAlgorithm::EcdsaP256, "ECDSA-P256"),
            (&pki.p384, KeyAlgorithm::EcdsaP384, "ECDSA-P384"),
        ];
        let now = OffsetDateTime::now_utc();
        for (files, alg, name) in expected {
            let id = load(files);
            assert_eq!(id.algorithm(), alg);
            assert_eq!(id.algorithm_name(), name);
            assert_eq!(id.serial_hex(), files.serial_hex);
            assert_eq!(id.chain_der().len(), 2);
            assert_eq!(id.certificate_der(), files.cert_der.as_slice());
            assert_eq!(id.chain_der()[1], pki.intermediate.cert_der);
            assert!(id.has_email("VanThu@hadong.hanoi.gov.vn"));
            assert!(id.not_before() < now && now < id.not_after());
            assert_eq!(id.usability(now), Ok(()));
            let prefix = if files.name == "p256" {
                "emailAddress=vanphong@hadong.hanoi.gov.vn,"
            } else {
                ""
            };
            assert_eq!(
                id.subject(),
                format!(
                    "{prefix}CN=Văn thư UBND hadong.hanoi.gov.vn,O=UBND (thử nghiệm),L=Hà Nội,C=VN"
                )
            );
            assert_eq!(
                id.issuer(),
                "CN=congvan test intermediate CA,O=Ban Cơ yếu Chính phủ (thử nghiệm),C=VN"
            );
            assert_signs(&id);
        }
    }

    #[test]
    fn identity_is_shareable_between_tasks() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<SigningIdentity>();
    }

    #[test]
    fn emails_come_from_san_and_subject() {
        let pki = testpki::shared();
        let id = load(&pki.p256);
        assert_eq!(
            id.email_addresses(),
            ["vanthu@hadong.hanoi.gov.vn", "vanphong@hadong.hanoi.gov.vn"]
        );
        assert_eq!(
            load(&pki.rsa2048).email_addresses(),
            ["vanthu@hadong.hanoi.gov.vn"]
        );
    }

    #[test]
    fn rfc4514_escaping_and_ascii_form() {
        let pki = testpki::shared();
        let (_, cert) = X509Certificate::from_der(&pki.rsa2048.cert_der).unwrap();
        let ascii = name_to_rfc4514(cert.subject(), true);
        assert!(ascii.is_ascii());
        assert!(
            ascii.starts_with("CN=V\\C4\\83n th\\C6\\B0 UBND"),
            "{ascii}"
        );
        let mut out = String::new();
        escape_rfc4514_value(&mut out, "#a, b+c ", false);
        assert_eq!(out, "\\#a\\, b\\+c\\ ");
    }

    #[test]
    fn serial_hex_strips_sign_byte() {
        assert_eq!(serial_hex(&[0x00, 0x8f, 0x01]), "8f01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0x01]), "01");
    }

    #[test]
    fn chain_order_does_not_matter() {
        let pki = testpki::shared();
        let mut chain = read(&pki.intermediate.cert_pem);
        chain.extend(read(&pki.root.cert_pem));
        chain.extend(read(&pki.rsa2048.cert_pem));
        let id = SigningIdentity::from_pem(&chain, &read(&pki.rsa2048.key_pem)).unwrap();
        assert_eq!(id.certificate_der(), pki.rsa2048.cert_der.as_slice());
        assert_eq!(
            id.chain_der(),
            [
                pki.rsa2048.cert_der.clone(),
                pki.intermediate.cert_der.clone(),
                pki.root.cert_der.clone()
            ]
        );
    }

    #[test]
    fn wrong_intermediate_is_detected() {
        // A CA with the intermediate's name but another key.
        let pki = testpki::shared();
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let mut params = rcgen::CertificateParams::default();
        let mut dn = rcgen::DistinguishedName::new();
        dn.push(rcgen::DnType::CountryName, "VN");
        dn.push(
            rcgen::DnType::OrganizationName,
            "Ban Cơ yếu Chính phủ (thử nghiệm)",
        );
        dn.push(rcgen::DnType::CommonName, "congvan test intermediate CA");
        params.distinguished_name = dn;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let fake = params.self_signed(&key).unwrap();
        let mut chain = read(&pki.p256.cert_pem);
        chain.extend(fake.pem().as_bytes());
        let err = SigningIdentity::from_pem(&chain, &read(&pki.p256.key_pem)).unwrap_err();
        assert!(
            matches!(
                err,
                IdentityError::ChainSignatureInvalid {
                    index: 0,
                    issuer_index: 1
                }
            ),
            "{err:?}"
        );
    }

    #[test]
    fn key_mismatch() {
        let pki = testpki::shared();
        for (cert, key) in [
            (&pki.rsa2048, &pki.rsa3072),
            (&pki.rsa2048, &pki.p256),
            (&pki.p256, &pki.revoked),
            (&pki.p256, &pki.p384),
            (&pki.p384, &pki.rsa4096),
        ] {
            let err =
                SigningIdentity::from_pem(&read(&cert.chain_pem), &read(&key.key_pem)).unwrap_err();
            assert!(
                matches!(err, IdentityError::KeyMismatch),
                "{} / {}: {err:?}",
                cert.name,
                key.name
            );
        }
    }

    #[test]
    fn pkcs1_and_sec1_keys() {
        let pki = testpki::shared();
        let cases = [
            (
                &pki.rsa2048,
                vec!["pkey", "-traditional"],
                "BEGIN RSA PRIVATE KEY",
                "pkcs1",
            ),
            (
                &pki.rsa4096,
                vec!["pkey", "-traditional"],
                "BEGIN RSA PRIVATE KEY",
                "pkcs1",
            ),
            (&pki.p256, vec!["ec"], "BEGIN EC PRIVATE KEY", "sec1"),
            (&pki.p384, vec!["ec"], "BEGIN EC PRIVATE KEY", "sec1"),
            (
                &pki.p256,
                vec!["ec", "-no_public"],
                "BEGIN EC PRIVATE KEY",
                "sec1-nopub",
            ),
            (
                &pki.p384,
                vec!["ec", "-no_public", "-param_enc", "explicit"],
                "BEGIN EC PRIVATE KEY",
                "sec1-explicit",
            ),
        ];
        for (files, cmd, marker, tag) in cases {
            let out = tmp(&format!("{}.{tag}.pem", files.name));
            let key_path = files.key_pem.to_string_lossy().into_owned();
            let mut args = cmd.clone();
            args.extend(["-in", key_path.as_str(), "-out", out.as_str()]);
            run_openssl(&args).unwrap();
            let key = std::fs::read(&out).unwrap();
            assert!(String::from_utf8_lossy(&key).contains(marker));
            let result = SigningIdentity::from_pem(&read(&files.chain_pem), &key);
            if tag == "sec1-explicit" {
                // Explicit curve parameters are not a named curve: refused, not misread.
                assert!(
                    matches!(
                        result,
                        Err(IdentityError::MalformedKey { .. })
                            | Err(IdentityError::UnsupportedAlgorithm { .. })
                    ),
                    "{result:?}"
                );
                continue;
            }
            let id = result.unwrap_or_else(|e| panic!("{} {tag}: {e}", files.name));
            assert_eq!(id.serial_hex(), files.serial_hex);
            assert_signs(&id);
        }
    }

    #[test]
    fn pkcs8_ec_key_without_public_point() {
        // Some tools omit the optional publicKey in the inner ECPrivateKey.
        let pki = testpki::shared();
        let info = PrivateKeyInfo::from_der(&pki.p256.key_pkcs8_der).unwrap();
        let mut inner = EcPrivateKey::from_der(info.private_key.as_bytes()).unwrap();
        inner.public_key = None;
        inner.parameters = None;
        let stripped = PrivateKeyInfo {
            private_key: OctetString::new(inner.to_der().unwrap()).unwrap(),
            ..info
        };
        let pem = testpki::pem_block("PRIVATE KEY", &stripped.to_der().unwrap());
        let id = SigningIdentity::from_pem(&read(&pki.p256.chain_pem), pem.as_bytes()).unwrap();
        assert_eq!(id.algorithm(), KeyAlgorithm::EcdsaP256);
        assert_signs(&id);
    }

    fn make_p12(files: &IdentityFiles, extra: &[&str], tag: &str) -> Vec<u8> {
        let pki = testpki::shared();
        let out = tmp(&format!("{}.{tag}.p12", files.name));
        let (cert, key, inter) = (
            files.cert_pem.to_string_lossy().into_owned(),
            files.key_pem.to_string_lossy().into_owned(),
            pki.intermediate.cert_pem.to_string_lossy().into_owned(),
        );
        let mut args = vec![
            "pkcs12",
            "-export",
            "-in",
            &cert,
            "-inkey",
            &key,
            "-certfile",
            &inter,
            "-name",
            "Văn thư",
            "-passout",
            "pass:Mật-khẩu 1",
            "-out",
            &out,
        ];
        args.extend_from_slice(extra);
        run_openssl(&args).unwrap();
        std::fs::read(&out).unwrap()
    }

    #[test]
    fn pkcs12_modern_and_legacy() {
        let pki = testpki::shared();
        for files in [&pki.rsa2048, &pki.p256, &pki.p384] {
            for (extra, tag) in [(&[][..], "aes"), (&["-legacy"][..], "legacy")] {
                let p12 = make_p12(files, extra, tag);
                let id = SigningIdentity::from_pkcs12(&p12, "Mật-khẩu 1")
                    .unwrap_or_else(|e| panic!("{} {tag}: {e}", files.name));
                assert_eq!(id.serial_hex(), files.serial_hex);
                assert_eq!(id.chain_der().len(), 2, "{} {tag}", files.name);
                assert_signs(&id);
                let err = SigningIdentity::from_pkcs12(&p12, "mat-khau").unwrap_err();
                assert!(
                    matches!(err, IdentityError::WrongPassword),
                    "{tag}: {err:?}"
                );
            }
        }
    }

    #[test]
    fn pkcs12_garbage() {
        let err = SigningIdentity::from_pkcs12(b"not a pfx", "x").unwrap_err();
        assert!(matches!(err, IdentityError::Pkcs12 { .. }), "{err:?}");
    }

    #[test]
    fn pem_problems() {
        let pki = testpki::shared();
        let chain = read(&pki.p256.chain_pem);
        let key = read(&pki.p256.key_pem);
        assert!(matches!(
            SigningIdentity::from_pem(b"", &key),
            Err(IdentityError::NoCertificate)
        ));
        assert!(matches!(
            SigningIdentity::from_pem(&chain, &chain),
            Err(IdentityError::NoPrivateKey)
        ));
        let mut two = key.clone();
        two.extend(read(&pki.revoked.key_pem));
        assert!(matches!(
            SigningIdentity::from_pem(&chain, &two),
            Err(IdentityError::MultiplePrivateKeys { count: 2 })
        ));
        let out = tmp("p256.encrypted.pem");
        let key_path = pki.p256.key_pem.to_string_lossy().into_owned();
        run_openssl(&[
            "pkey", "-in", &key_path, "-aes256", "-passout", "pass:x", "-out", &out,
        ])
        .unwrap();
        assert!(matches!(
            SigningIdentity::from_pem(&chain, &read(Path::new(&out))),
            Err(IdentityError::EncryptedPrivateKey)
        ));
        let truncated = &key[..key.len() - 30];
        assert!(matches!(
            SigningIdentity::from_pem(&chain, truncated),
            Err(IdentityError::Pem {
                source_file: PemSource::Key,
                ..
            })
        ));
    }

    #[test]
    fn usability_errors() {
        let pki = testpki::shared();
        let now = OffsetDateTime::now_utc();

        let expired = load(&pki.expired);
        match expired.usability(now) {
            Err(Unusable::Expired { not_after, now: at }) => {
                assert_eq!(not_after, expired.not_after());
                assert_eq!(at, now);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            load(&pki.not_yet_valid).usability(now),
            Err(Unusable::NotYetValid { .. })
        ));
        assert_eq!(
            load(&pki.no_email_eku).usability(now),
            Err(Unusable::NoEmailProtection)
        );
        // The revoked one is usable as far as the certificate itself says: revocation is the
        // verifier's business (and the CRL's).
        assert_eq!(load(&pki.revoked).usability(now), Ok(()));
        // Valid later on, expired after notAfter.
        let id = load(&pki.p256);
        assert!(matches!(
            id.usability(id.not_after() + time::Duration::seconds(1)),
            Err(Unusable::Expired { .. })
        ));
        let e = Unusable::NoEmailProtection;
        assert!(e.vietnamese().contains("emailProtection"));
    }

    #[test]
    fn key_usage_and_missing_email() {
        let pki = testpki::shared();
        let mut options = testpki::LeafOptions::office(&pki.domain);
        options.key_usages = vec![rcgen::KeyUsagePurpose::KeyEncipherment];
        let files = pki
            .issue("ku-encipher", testpki::KeySpec::P256, &options)
            .unwrap();
        assert_eq!(
            load(&files).usability(OffsetDateTime::now_utc()),
            Err(Unusable::KeyUsageForbidsSigning {
                key_usage: "keyEncipherment".into()
            })
        );

        let mut options = testpki::LeafOptions::office(&pki.domain);
        options.key_usages = vec![rcgen::KeyUsagePurpose::ContentCommitment];
        options.extended_key_usages = vec![];
        let files = pki
            .issue("nr-only", testpki::KeySpec::P256, &options)
            .unwrap();
        assert_eq!(load(&files).usability(OffsetDateTime::now_utc()), Ok(()));

        let mut options = testpki::LeafOptions::office(&pki.domain);
        options.emails.clear();
        let files = pki
            .issue("no-email", testpki::KeySpec::P256, &options)
            .unwrap();
        assert_eq!(
            load(&files).usability(OffsetDateTime::now_utc()),
            Err(Unusable::NoEmailAddress)
        );
    }
}
