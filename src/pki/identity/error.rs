//! Why an identity could not be loaded (the files an administrator supplied), and why a loaded
//! one cannot sign at a given moment, with its Vietnamese reason.

use std::fmt;

use time::OffsetDateTime;

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
    #[error(transparent)]
    Token(#[from] crate::pki::token::TokenError),
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

/// Why a private-key operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// ring refused (never seen with a key that loaded).
    #[error("the private-key operation failed")]
    Software,
    /// The key made a signature its certificate's public key does not verify.
    #[error("the key's signature does not verify with the certificate's public key")]
    Mismatch,
    /// The token is missing, locked or refused.
    #[error(transparent)]
    Token(#[from] crate::pki::token::TokenError),
}
