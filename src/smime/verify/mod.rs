//! Verifying incoming documents (SPEC "Incoming mail" 2–4): is this message, as displayed,
//! wholly signed by a certificate that chains to a configured trust anchor and names the
//! author's address? The answer is a [`Verdict`], written for the office mail system as one
//! RFC 7281 `Authentication-Results` field by [`authentication_results_header`].
//!
//! What is checked, in order, and the attack each check closes ("Johnny, you are fired",
//! USENIX Security 2019, and RFC 8550/8551):
//! 1. Exactly one From field (and at most one Sender): two readers could pick different ones.
//! 2. The message body itself is the signed entity (`multipart/signed` with exactly two parts,
//!    or opaque `application/pkcs7-mime; smime-type=signed-data`). A signed entity nested in
//!    a multipart (prepended text, hidden HTML, a signed attachment) is "partly signed":
//!    `fail`; one inside an attached `message/rfc822` belongs to that message: `none`.
//! 3. The CMS: DER or BER, exactly one SignerInfo (zero or several never count as valid),
//!    detached content for `multipart/signed` (eContent there too is refused), the signer's
//!    certificate found by issuer-and-serial or subject key identifier, contentType and
//!    messageDigest attributes (present once, matching), and the signature over the signed
//!    attributes as received, with ring; what ring cannot verify (RSA-PSS with a salt length
//!    other than the hash length, ECDSA with SHA-512, P-521) with the RustCrypto `rsa`,
//!    `p256`, `p384` and `p521` crates.
//! 4. The path to a trust anchor with rustls-webpki at the time of reception (validity, basic
//!    and name constraints, revocation from the configured CRLs, whose nextUpdate is checked
//!    here), then the signer's own keyUsage, emailProtection EKU and e-mail address.
//! 5. Headers: protected header fields inside the signed entity (RFC 9788) are authoritative;
//!    outer fields that differ are named. From or Sender that differ are a `fail`, since a
//!    client that does not know RFC 9788 shows the outer one. The From field is read by
//!    [`crate::address::parse_address_field`] whatever its syntax (group syntax, quoted local
//!    parts, comments, encoded words); a display name, group name or comment, outer or
//!    protected, that shows another address once NFKC-normalised (full-width `＠` is `@`) is a
//!    `fail`. The signer's address must be the Sender address when there is a Sender field,
//!    else the From address (RFC 8550 §3); a Sender other than From is delegation, named in
//!    the result and allowed or failed by `[incoming] sender_delegation`.
//!
//! A `multipart/*` entity anywhere in the message with a Content-Transfer-Encoding other than
//! 7bit, 8bit or binary (RFC 2045 §6.4) is `permerror`: readers disagree on whether to decode it.
//!
//! Everything here is pure and synchronous (the session runs it on a blocking thread), works
//! on untrusted bytes without panicking, and bounds its recursion.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use const_oid::db::{rfc5911, rfc5912};
use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use rustls_pki_types::{CertificateDer, UnixTime};
use time::OffsetDateTime;
use webpki::{
    BorrowedCertRevocationList, CertRevocationList, EndEntityCert, ExpirationPolicy,
    RevocationCheckDepth, RevocationOptionsBuilder, UnknownStatusPolicy,
};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

use super::ber::{self, BerError, Tlv};
use super::mime_walk::{self, ContentType, Entity, MimeError};
use crate::address::{self, Mailbox, Shown};
use crate::pki::identity::{name_to_rfc4514, serial_hex};

/// id-kp-emailProtection (1.3.6.1.5.5.7.3.4), DER content octets.
const EKU_EMAIL_PROTECTION: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x04];

// ---------------------------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------------------------

/// The trust anchors for incoming mail (`cert trust add`), as DER certificates.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    anchors: Vec<Vec<u8>>,
}

impl TrustStore {
    pub fn new(anchors: Vec<Vec<u8>>) -> TrustStore {
        TrustStore { anchors }
    }

    /// From the PEM texts kept in the `trust_anchor` table; unreadable entries are skipped
    /// (they were checked when added).
    pub fn from_pems<'a>(pems: impl IntoIterator<Item = &'a str>) -> TrustStore {
        use rustls_pki_types::pem::PemObject;
        let anchors = pems
            .into_iter()
            .flat_map(|p| {
                CertificateDer::pem_slice_iter(p.as_bytes())
                    .filter_map(Result::ok)
                    .map(|c| c.to_vec())
                    .collect::<Vec<_>>()
            })
            .collect();
        TrustStore { anchors }
    }

    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// What a profile's `[incoming]` section changes about verification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyOptions {
    /// Every issuer on the path must have a current CRL; otherwise the result is `temperror`.
    pub require_revocation_data: bool,
    /// Whether a signer that is the Sender, not the From, passes (RFC 8550 §3 delegation).
    pub sender_delegation: SenderDelegation,
}

/// `[incoming] sender_delegation`: what a valid signature by the Sender address, on a message
/// whose From is another address, gives. Either way the result comment names both addresses.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderDelegation {
    /// `pass` (RFC 8550 §3: a secretary may send on behalf of the author).
    #[default]
    Allow,
    /// `fail`: only the author's own signature counts.
    Fail,
}

// ---------------------------------------------------------------------------------------------
// Results
// ---------------------------------------------------------------------------------------------

/// The RFC 7281 result values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SmimeResult {
    Pass,
    Fail,
    None,
    Neutral,
    TempError,
    PermError,
}

impl SmimeResult {
    pub fn as_str(self) -> &'static str {
        match self {
            SmimeResult::Pass => "pass",
            SmimeResult::Fail => "fail",
            SmimeResult::None => "none",
            SmimeResult::Neutral => "neutral",
            SmimeResult::TempError => "temperror",
            SmimeResult::PermError => "permerror",
        }
    }
}

impl fmt::Display for SmimeResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message did not pass. Each variant maps to one result ([`Failure::result`]) and has
/// its Vietnamese text ([`Failure::vietnamese`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Failure {
    // none
    #[error("not signed")]
    NotSigned,
    #[error("not signed: the only signature belongs to an attached message")]
    OnlyAttachedMessageSigned,
    // permerror
    #[error("the message has no From header field")]
    NoFrom,
    #[error("the message has {count} From header fields")]
    SeveralFrom { count: usize },
    #[error("the message has {count} Sender header fields")]
    SeveralSender { count: usize },
    #[error("From names {count} mailboxes and there is no Sender field")]
    FromNeedsSender { count: usize },
    #[error("the {field} field holds no usable address")]
    BadAddress { field: &'static str },
    #[error("the MIME structure cannot be read unambiguously: {0}")]
    Mime(MimeError),
    #[error("a {content_type} entity has Content-Transfer-Encoding {encoding}; a multipart may only be 7bit, 8bit or binary")]
    EncodedMultipart {
        content_type: String,
        encoding: String,
    },
    // neutral
    #[error("the signature cannot be read: {0}")]
    Cms(String),
    #[error("the message is encrypted ({smime_type}); it cannot be verified here")]
    Encrypted { smime_type: String },
    #[error("unsupported algorithm: {0}")]
    Unsupported(String),
    #[error("the signer's certificate is not in the message")]
    SignerCertificateMissing,
    // fail
    #[error("partly signed: {detail}")]
    PartlySigned { detail: String },
    #[error("the signature carries its own content besides the signed part")]
    ContentTwice,
    #[error("the signature has no signer")]
    NoSigner,
    #[error("the signature has {count} signers; exactly one is accepted")]
    SeveralSigners { count: usize },
    #[error("digest mismatch: the signed content was changed")]
    DigestMismatch,
    #[error("the signed attributes are inconsistent: {0}")]
    BadSignedAttributes(String),
    #[error("the signature does not verify")]
    BadSignature,
    #[error("untrusted signer: {detail}")]
    Untrusted { detail: String },
    #[error("the signer's certificate expired at {not_after}")]
    Expired { not_after: String },
    #[error("the signer's certificate is not valid before {not_before}")]
    NotYetValid { not_before: String },
    #[error("a certificate on the signer's path is revoked")]
    Revoked,
    #[error("the signer's certificate does not allow emailProtection (EKU)")]
    NoEmailProtection,
    #[error("the signer's key usage allows neither digitalSignature nor nonRepudiation")]
    KeyUsage,
    #[error("address mismatch: {field} <{address}> is not an address of the signer's certificate ({cert})")]
    AddressMismatch {
        field: &'static str,
        address: String,
        cert: String,
    },
    #[error("address mismatch: the From {} shows another address ({shown})", place.describe())]
    DisplayNameTrick { place: Shown, shown: String },
    #[error("the signer is the Sender <{sender}>, not the From <{from}>, and the policy does not accept signing on behalf of another (sender_delegation = \"fail\")")]
    SenderDelegation { sender: String, from: String },
    #[error("address mismatch: the outer {field} differs from the signed {field}")]
    OuterIdentityDiffers { field: &'static str },
    // temperror
    #[error("no revocation data (CRL) for {issuer}")]
    NoRevocationData { issuer: String },
    #[error("the CRL of {issuer} expired at {next_update}")]
    CrlExpired { issuer: String, next_update: String },
}

impl Failure {
    pub fn result(&self) -> SmimeResult {
        use Failure::*;
        match self {
            NotSigned | OnlyAttachedMessageSigned => SmimeResult::None,
            NoFrom
            | SeveralFrom { .. }
            | SeveralSender { .. }
            | FromNeedsSender { .. }
            | BadAddress { .. }
            | Mime(_)
            | EncodedMultipart { .. } => SmimeResult::PermError,
            Cms(_) | Encrypted { .. } | Unsupported(_) | SignerCertificateMissing => {
                SmimeResult::Neutral
            }
            NoRevocationData { .. } | CrlExpired { .. } => SmimeResult::TempError,
            _ => SmimeResult::Fail,
        }
    }

    /// The reason in Vietnamese (for the result comment and the SMTP reply).
    pub fn vietnamese(&self) -> String {
        use Failure::*;
        match self {
            NotSigned => "Thư không có chữ ký số".into(),
            OnlyAttachedMessageSigned => {
                "Thư không được ký số; chữ ký số chỉ thuộc về thư đính kèm".into()
            }
            NoFrom => "Thư không có trường From".into(),
            SeveralFrom { count } => format!("Thư có {count} trường From"),
            SeveralSender { count } => format!("Thư có {count} trường Sender"),
            FromNeedsSender { .. } => "Trường From có nhiều địa chỉ mà không có Sender".into(),
            BadAddress { field } => format!("Trường {field} không có địa chỉ hợp lệ"),
            Mime(_) => "Cấu trúc MIME của thư không đọc được một cách rõ ràng".into(),
            EncodedMultipart { encoding, .. } => format!(
                "Phần multipart của thư dùng mã hóa truyền {encoding}; chỉ được dùng 7bit, 8bit hoặc binary"
            ),
            Cms(_) => "Không đọc được chữ ký số".into(),
            Encrypted { .. } => "Thư đã mã hóa, không kiểm tra được chữ ký số".into(),
            Unsupported(_) => "Thuật toán chữ ký số không được hỗ trợ".into(),
            SignerCertificateMissing => "Thư không kèm chứng thư số của người ký".into(),
            PartlySigned { .. } => "Chỉ một phần thư được ký số".into(),
            ContentTwice => "Chữ ký số chứa nội dung riêng ngoài phần được ký".into(),
            NoSigner => "Chữ ký số không có người ký".into(),
            SeveralSigners { count } => format!("Chữ ký số có {count} người ký"),
            DigestMismatch => "Sai giá trị băm: nội dung đã bị thay đổi sau khi ký".into(),
            BadSignedAttributes(_) => "Thuộc tính ký không hợp lệ".into(),
            BadSignature => "Chữ ký số không hợp lệ".into(),
            Untrusted { .. } => "Chứng thư số của người ký không được tin cậy".into(),
            Expired { .. } => "Chứng thư số của người ký đã hết hạn".into(),
            NotYetValid { .. } => "Chứng thư số của người ký chưa có hiệu lực".into(),
            Revoked => "Chứng thư số đã bị thu hồi".into(),
            NoEmailProtection => {
                "Chứng thư số không có mục đích bảo vệ thư điện tử (emailProtection)".into()
            }
            KeyUsage => "Chứng thư số không cho phép dùng khóa để ký số".into(),
            AddressMismatch { field, .. } => {
                format!("Địa chỉ {field} không khớp với chứng thư số của người ký")
            }
            DisplayNameTrick { place, .. } => match place {
                Shown::DisplayName => "Tên hiển thị của From chứa một địa chỉ khác".into(),
                Shown::GroupName => "Tên nhóm trong trường From chứa một địa chỉ khác".into(),
                Shown::Comment => "Chú thích trong trường From chứa một địa chỉ khác".into(),
            },
            SenderDelegation { sender, from } => format!(
                "Người ký là Sender <{sender}>, không phải From <{from}>; chính sách không chấp nhận ký thay"
            ),
            OuterIdentityDiffers { field } => {
                format!("Trường {field} bên ngoài khác với trường {field} đã ký")
            }
            NoRevocationData { .. } => "Không có dữ liệu thu hồi (CRL) của nơi cấp".into(),
            CrlExpired { .. } => "Danh sách thu hồi (CRL) đã quá hạn cập nhật".into(),
        }
    }
}

/// The outcome of verifying one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub result: SmimeResult,
    /// The signer's address (the matching address of its certificate), once known.
    pub signer: Option<String>,
    /// The signer's certificate serial, lower-case hex, once known.
    pub serial: Option<String>,
    /// The signer's certificate issuer, RFC 4514, ASCII only.
    pub issuer: Option<String>,
    /// Why the result is not `pass`.
    pub failure: Option<Failure>,
    /// Remarks on a result (e.g. an issuer that was not revocation-checked), English.
    pub notes_en: Vec<String>,
    /// The same remarks, Vietnamese.
    pub notes_vi: Vec<String>,
    /// Outer header fields that differ from the protected ones inside the signed entity.
    pub header_mismatches: Vec<String>,
}

impl Verdict {
    /// The reason (failure and remarks) in English, one line.
    pub fn reason_en(&self) -> String {
        let mut parts: Vec<String> = self.failure.iter().map(|f| f.to_string()).collect();
        parts.extend(self.notes_en.iter().cloned());
        if !self.header_mismatches.is_empty() {
            parts.push(format!(
                "outer header fields differ from the signed ones: {}",
                self.header_mismatches.join(", ")
            ));
        }
        parts
            .iter()
            .map(|p| excerpt(p))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The reason in Vietnamese, one line.
    pub fn reason_vi(&self) -> String {
        let mut parts: Vec<String> = self.failure.iter().map(|f| f.vietnamese()).collect();
        parts.extend(self.notes_vi.iter().cloned());
        if !self.header_mismatches.is_empty() {
            parts.push(format!(
                "các trường tiêu đề bên ngoài khác với phần đã ký: {}",
                self.header_mismatches.join(", ")
            ));
        }
        parts
            .iter()
            .map(|p| excerpt(p))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// The most characters of one part of a reason. Parts quote the message (a Content-Type
/// value, a protocol parameter, header field names), and the reason goes into the
/// Authentication-Results field (998 octets a line), the SMTP reply and the log: an
/// unbounded quote made a field line of any length (found by fuzzing, fuzz/README.md).
const MAX_REASON_PART: usize = 300;

/// `text` with control characters shown as `?`, cut to [`MAX_REASON_PART`] characters.
fn excerpt(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_REASON_PART)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if text.chars().nth(MAX_REASON_PART).is_some() {
        out.push_str("...");
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The Authentication-Results field
// ---------------------------------------------------------------------------------------------

/// Removes every `Authentication-Results` field of the top-level header section whose
/// authserv-id is `hostname` (RFC 8601 §5), leaving every other byte as it was.
pub fn strip_own_results(raw: &[u8], hostname: &str) -> Vec<u8> {
    let Ok(entity) = Entity::parse(raw) else {
        // Not a readable header section: remove nothing (verification reports the error).
        return raw.to_vec();
    };
    let base = raw.as_ptr() as usize;
    let mut cut: Vec<(usize, usize)> = Vec::new();
    for f in entity
        .fields
        .iter()
        .filter(|f| f.is("Authentication-Results"))
    {
        let value = String::from_utf8_lossy(f.value);
        let id = strip_cfws_start(&value);
        let id: String = id
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != ';' && *c != '(')
            .collect();
        if id.eq_ignore_ascii_case(hostname) {
            let start = f.raw.as_ptr() as usize - base;
            let mut end = start + f.raw.len();
            if raw.get(end) == Some(&b'\r') {
                end += 1;
            }
            if raw.get(end) == Some(&b'\n') {
                end += 1;
            }
            cut.push((start, end));
        }
    }
    if cut.is_empty() {
        return raw.to_vec();
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut pos = 0;
    for (s, e) in cut {
        out.extend_from_slice(&raw[pos..s]);
        pos = e;
    }
    out.extend_from_slice(&raw[pos..]);
    out
}

fn strip_cfws_start(s: &str) -> &str {
    let mut s = s.trim_start();
    while let Some(rest) = s.strip_prefix('(') {
        let mut depth = 1u32;
        let mut end = rest.len();
        let mut esc = false;
        for (i, c) in rest.char_indices() {
            if esc {
                esc = false;
                continue;
            }
            match c {
                '\\' => esc = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        s = rest.get(end..).unwrap_or("").trim_start();
    }
    s
}

/// The `Authentication-Results` field (with its CRLF) for a verdict, in the form SPEC.md
/// gives. Reasons are a comment: the English text, then the Vietnamese as RFC 2047 encoded
/// words (allowed in comments, RFC 2047 §5(2)). One line unless it would pass 900 octets.
pub fn authentication_results_header(hostname: &str, v: &Verdict) -> String {
    let mut s = format!("Authentication-Results: {hostname}; smime={}", v.result);
    if v.result == SmimeResult::Pass {
        if let Some(a) = &v.signer {
            s.push_str(&format!(" body.smime-identifier={}", ascii_token(a)));
        }
        if let Some(serial) = &v.serial {
            s.push_str(&format!(" body.smime-serial={serial}"));
        }
        if let Some(issuer) = &v.issuer {
            s.push_str(&format!(" body.smime-issuer=\"{}\"", quoted_safe(issuer)));
        }
    }
    let en = v.reason_en();
    if !en.is_empty() {
        s.push_str(" (");
        s.push_str(&comment_safe(&en));
        let vi = v.reason_vi();
        if !vi.is_empty() {
            s.push_str(" / ");
            s.push_str(&crate::mime::encoded_words(&vi).join(" "));
        }
        s.push(')');
    }
    fold(&s) + "\r\n"
}

fn ascii_token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() && !"()<>,;:\\\"[]".contains(*c))
        .collect()
}

/// What may stand between the quotes of a quoted-string (RFC 4514 escapes are kept).
fn quoted_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // An RFC 4514 escape: keep it as a quoted-pair.
                out.push('\\');
                match chars.next() {
                    Some(n) if n.is_ascii_graphic() || n == ' ' => out.push(n),
                    _ => out.push('\\'),
                }
            }
            '"' => out.push_str("\\\""),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// Printable ASCII for a comment: parentheses become brackets (easier to read than
/// quoted-pairs), a backslash (an RFC 4514 escape) becomes a quoted-pair.
fn comment_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '(' => out.push('['),
            ')' => out.push(']'),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// Folds at spaces only when a line would pass 900 octets (RFC 5322 allows 998).
fn fold(s: &str) -> String {
    if s.len() <= 900 {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 64);
    let mut line = 0usize;
    for (i, word) in s.split(' ').enumerate() {
        if i > 0 {
            if line + 1 + word.len() > 76 {
                out.push_str("\r\n ");
                line = 1;
            } else {
                out.push(' ');
                line += 1;
            }
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/// Verifies `raw` (a complete message, our own Authentication-Results already removed) at
/// `at`, the time of reception.
pub fn verify_message(
    raw: &[u8],
    anchors: &TrustStore,
    crls: &[Vec<u8>],
    at: OffsetDateTime,
    opts: VerifyOptions,
) -> Verdict {
    let mut v = Verdict {
        result: SmimeResult::Pass,
        signer: None,
        serial: None,
        issuer: None,
        failure: None,
        notes_en: Vec::new(),
        notes_vi: Vec::new(),
        header_mismatches: Vec::new(),
    };
    if let Err(f) = run(raw, anchors, crls, at, opts, &mut v) {
        v.result = f.result();
        v.failure = Some(f);
    }
    v
}

/// The signed content and its CMS, located in the message.
struct Located<'a> {
    /// The CMS bytes (decoded from base64).
    cms: Vec<u8>,
    /// For `multipart/signed`: the signed entity, canonicalised to CRLF.
    detached: Option<Cow<'a, [u8]>>,
}

fn run(
    raw: &[u8],
    anchors: &TrustStore,
    crls: &[Vec<u8>],
    at: OffsetDateTime,
    opts: VerifyOptions,
    v: &mut Verdict,
) -> Result<(), Failure> {
    let root = Entity::parse(raw).map_err(Failure::Mime)?;
    let outer = Identity::read(&root)?;
    let ct = root.content_type().map_err(Failure::Mime)?;
    check_multipart_encodings(&root)?;
    let located = locate(&root, &ct)?;

    let sd = SignedData::parse(&located.cms)?;
    let content: Cow<'_, [u8]> = match (located.detached, sd.econtent.as_ref()) {
        (Some(_), Some(_)) => return Err(Failure::ContentTwice),
        (Some(d), None) => d,
        (None, Some(e)) => Cow::Borrowed(e.as_slice()),
        (None, None) => {
            return Err(Failure::Cms(
                "opaque signed-data without encapsulated content".into(),
            ))
        }
    };
    let si = match sd.signers.len() {
        0 => return Err(Failure::NoSigner),
        1 => &sd.signers[0],
        count => return Err(Failure::SeveralSigners { count }),
    };
    let signer_der = sd
        .certificates
        .iter()
        .copied()
        .find(|c| si.sid.matches(c))
        .ok_or(Failure::SignerCertificateMissing)?;
    let (_, cert) = X509Certificate::from_der(signer_der)
        .map_err(|e| Failure::Cms(format!("signer certificate: {e}")))?;
    v.serial = Some(serial_hex(cert.raw_serial()));
    v.issuer = Some(name_to_rfc4514(cert.issuer(), true));

    check_signature(si, &sd.econtent_type, &content, &cert)?;

    // Protected header fields (RFC 9788) inside the signed entity are authoritative.
    let inner = Entity::parse(&content).map_err(Failure::Mime)?;
    check_multipart_encodings(&inner)?;
    let identity = if inner.fields.iter().any(|f| is_protected_name(f.name)) {
        let inner_id = Identity::read(&inner)?;
        compare_headers(&root, &inner, v);
        if !same_mailboxes(&outer.from, &inner_id.from) {
            return Err(Failure::OuterIdentityDiffers { field: "From" });
        }
        if !same_mailboxes(&outer.sender, &inner_id.sender) {
            return Err(Failure::OuterIdentityDiffers { field: "Sender" });
        }
        inner_id
    } else {
        outer.clone()
    };

    let intermediates: Vec<&[u8]> = sd
        .certificates
        .iter()
        .copied()
        .filter(|c| *c != signer_der)
        .collect();
    validate_path(signer_der, &intermediates, anchors, crls, at, opts, v)?;
    check_leaf(&cert)?;
    // What a reader is shown: the outer field (clients without RFC 9788) and the protected one.
    check_shown(&outer)?;
    check_shown(&identity)?;
    v.signer = Some(check_address(&identity, &cert, opts, v)?);
    Ok(())
}

/// RFC 2045 §6.4: a multipart (and a `message/rfc822`, which congvan looks into) may only be
/// 7bit, 8bit or binary; one "encoded" otherwise is read as a multipart by some readers and
/// as an opaque blob by others. Walks the whole tree iteratively, within the walk limits.
fn check_multipart_encodings(root: &Entity<'_>) -> Result<(), Failure> {
    let mut stack: Vec<(Entity<'_>, usize)> = vec![(root.clone(), 0)];
    let mut seen = 0usize;
    while let Some((e, depth)) = stack.pop() {
        seen += 1;
        if seen > mime_walk::MAX_PARTS || depth > mime_walk::MAX_DEPTH {
            // Deeper or larger structures are refused by the walk limits elsewhere.
            return Ok(());
        }
        let Ok(ct) = e.content_type() else {
            continue;
        };
        let nested =
            ct.mime_type == "multipart" || ct.is("message", "rfc822") || ct.is("message", "global");
        if !nested {
            continue;
        }
        let encoding = e.transfer_encoding().map_err(Failure::Mime)?;
        if !matches!(encoding.as_str(), "7bit" | "8bit" | "binary") {
            if ct.mime_type == "multipart" {
                return Err(Failure::EncodedMultipart {
                    content_type: format!("{}/{}", ct.mime_type, ct.subtype),
                    encoding,
                });
            }
            // An encoded message/rfc822 is shown as an attachment, not looked into.
            continue;
        }
        if ct.mime_type == "multipart" {
            let Some(boundary) = ct.param("boundary") else {
                continue;
            };
            let Ok(parts) = mime_walk::split_multipart(e.body, boundary) else {
                continue;
            };
            stack.extend(
                parts
                    .into_iter()
                    .filter_map(|p| Entity::parse(p).ok())
                    .map(|c| (c, depth + 1)),
            );
        } else if let Ok(child) = Entity::parse(e.body) {
            stack.push((child, depth + 1));
        }
    }
    Ok(())
}

/// Finds the CMS and the signed entity, or says why the body is not (wholly) signed.
fn locate<'a>(root: &Entity<'a>, ct: &ContentType) -> Result<Located<'a>, Failure> {
    if ct.is("multipart", "signed") {
        let boundary = ct
            .param("boundary")
            .ok_or(Failure::Mime(MimeError::NoBoundary))?;
        if let Some(p) = ct.param("protocol") {
            if !is_signature_type(&p.to_ascii_lowercase()) {
                return Err(Failure::Unsupported(format!(
                    "multipart/signed protocol {p:?}"
                )));
            }
        }
        let parts = mime_walk::split_multipart(root.body, boundary).map_err(Failure::Mime)?;
        if parts.len() != 2 {
            return Err(Failure::PartlySigned {
                detail: format!("multipart/signed has {} parts instead of 2", parts.len()),
            });
        }
        let sig = Entity::parse(parts[1]).map_err(Failure::Mime)?;
        let sig_ct = sig.content_type().map_err(Failure::Mime)?;
        if !is_signature_type(&format!("{}/{}", sig_ct.mime_type, sig_ct.subtype)) {
            return Err(Failure::Cms(format!(
                "the second part of multipart/signed is {}/{}, not a signature",
                sig_ct.mime_type, sig_ct.subtype
            )));
        }
        let cms = sig.decoded_body().map_err(Failure::Mime)?;
        return Ok(Located {
            cms,
            detached: Some(mime_walk::to_crlf(parts[0])),
        });
    }
    if ct.mime_type == "application" && (ct.subtype == "pkcs7-mime" || ct.subtype == "x-pkcs7-mime")
    {
        let smime_type = ct.param("smime-type").map(str::to_ascii_lowercase);
        match smime_type.as_deref() {
            None | Some("signed-data") => {}
            Some(other) => {
                return Err(Failure::Encrypted {
                    smime_type: other.to_string(),
                })
            }
        }
        let cms = root.decoded_body().map_err(Failure::Mime)?;
        return Ok(Located {
            cms,
            detached: None,
        });
    }
    // Not signed at the top: is there a signature somewhere inside?
    let mut count = 0usize;
    match find_nested(root, ct, 0, false, &mut count) {
        Some(false) => Err(Failure::PartlySigned {
            detail: "the signed part is inside unsigned content".into(),
        }),
        Some(true) => Err(Failure::OnlyAttachedMessageSigned),
        None => Err(Failure::NotSigned),
    }
}

fn is_signature_type(t: &str) -> bool {
    t == "application/pkcs7-signature" || t == "application/x-pkcs7-signature"
}

fn is_signed_type(ct: &ContentType) -> bool {
    ct.is("multipart", "signed")
        || (ct.mime_type == "application"
            && (ct.subtype == "pkcs7-mime" || ct.subtype == "x-pkcs7-mime")
            && ct
                .param("smime-type")
                .is_none_or(|t| t.eq_ignore_ascii_case("signed-data")))
}

/// Looks for a signed entity below `e`: `Some(in_attached_message)` when found.
fn find_nested(
    e: &Entity<'_>,
    ct: &ContentType,
    depth: usize,
    in_message: bool,
    count: &mut usize,
) -> Option<bool> {
    *count += 1;
    if depth > mime_walk::MAX_DEPTH || *count > mime_walk::MAX_PARTS {
        return None;
    }
    if depth > 0 && is_signed_type(ct) {
        return Some(in_message);
    }
    if ct.mime_type == "multipart" {
        let parts = mime_walk::split_multipart(e.body, ct.param("boundary")?).ok()?;
        let mut found = None;
        for p in parts {
            let Ok(child) = Entity::parse(p) else {
                continue;
            };
            let Ok(cct) = child.content_type() else {
                continue;
            };
            match find_nested(&child, &cct, depth + 1, in_message, count) {
                Some(false) => return Some(false),
                Some(true) => found = Some(true),
                None => {}
            }
        }
        return found;
    }
    if ct.is("message", "rfc822") || ct.is("message", "global") {
        let child = Entity::parse(e.body).ok()?;
        let cct = child.content_type().ok()?;
        if is_signed_type(&cct) {
            return Some(true);
        }
        return find_nested(&child, &cct, depth + 1, true, count).map(|_| true);
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Header fields and addresses
// ---------------------------------------------------------------------------------------------

/// The author fields of a header section.
#[derive(Debug, Clone)]
struct Identity {
    from: Vec<Mailbox>,
    /// The display names, group names and comments of the From field, decoded.
    from_shown: Vec<(Shown, String)>,
    sender: Vec<Mailbox>,
}

impl Identity {
    fn read(e: &Entity<'_>) -> Result<Identity, Failure> {
        let froms = e.all("From");
        let field = match froms.len() {
            0 => return Err(Failure::NoFrom),
            1 => address::parse_address_field(froms[0].value),
            count => return Err(Failure::SeveralFrom { count }),
        };
        let (from, from_shown) = (field.mailboxes, field.shown);
        if from.is_empty() {
            return Err(Failure::BadAddress { field: "From" });
        }
        let senders = e.all("Sender");
        let sender = match senders.len() {
            0 => Vec::new(),
            1 => {
                let s = address::parse_address_field(senders[0].value).mailboxes;
                if s.len() != 1 {
                    return Err(Failure::BadAddress { field: "Sender" });
                }
                s
            }
            count => return Err(Failure::SeveralSender { count }),
        };
        Ok(Identity {
            from,
            from_shown,
            sender,
        })
    }
}

fn same_mailboxes(a: &[Mailbox], b: &[Mailbox]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.address == y.address)
}

/// Header fields RFC 9788 protects and congvan compares (as its signer writes them).
fn is_protected_name(name: &str) -> bool {
    super::sign::is_protected(name)
}

/// Names the outer fields that differ from the protected ones.
fn compare_headers(outer: &Entity<'_>, inner: &Entity<'_>, v: &mut Verdict) {
    let mut names: Vec<String> = Vec::new();
    for f in outer.fields.iter().chain(inner.fields.iter()) {
        if is_protected_name(f.name) && !names.iter().any(|n| n.eq_ignore_ascii_case(f.name)) {
            names.push(f.name.to_string());
        }
    }
    for name in names {
        let values = |e: &Entity<'_>| -> Vec<String> {
            e.fields
                .iter()
                .filter(|f| f.is(&name))
                .map(|f| f.normalized())
                .collect()
        };
        if values(outer) != values(inner) {
            v.header_mismatches.push(canonical_name(&name));
        }
    }
}

fn canonical_name(name: &str) -> String {
    super::sign::PROTECTED_FIELDS
        .iter()
        .find(|p| p.eq_ignore_ascii_case(name))
        .map(|p| p.to_string())
        .unwrap_or_else(|| name.to_string())
}

/// A display name, group name or comment of From that shows an address other than a From
/// address (after RFC 2047 decoding and NFKC normalisation) is a `fail`.
fn check_shown(id: &Identity) -> Result<(), Failure> {
    for (place, text) in &id.from_shown {
        for shown in address::addresses_shown(text) {
            if !id.from.iter().any(|m| m.address == shown) {
                return Err(Failure::DisplayNameTrick {
                    place: *place,
                    shown,
                });
            }
        }
    }
    Ok(())
}

/// The responsible address must be one of the certificate's (RFC 8550 §3); returns it. A
/// Sender that is not a From address is delegation: named in the result, and allowed or
/// failed by `opts.sender_delegation`.
fn check_address(
    id: &Identity,
    cert: &X509Certificate<'_>,
    opts: VerifyOptions,
    v: &mut Verdict,
) -> Result<String, Failure> {
    let (field, address) = match (id.sender.first(), id.from.as_slice()) {
        (Some(s), _) => ("Sender", &s.address),
        (None, [one]) => ("From", &one.address),
        (None, many) => return Err(Failure::FromNeedsSender { count: many.len() }),
    };
    let emails = cert_emails(cert);
    if !emails.iter().any(|e| e == address) {
        return Err(Failure::AddressMismatch {
            field,
            address: address.clone(),
            cert: if emails.is_empty() {
                "none".into()
            } else {
                emails.join(", ")
            },
        });
    }
    if field == "Sender" && !id.from.iter().any(|m| m.address == *address) {
        let from = id
            .from
            .iter()
            .map(|m| m.address.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if opts.sender_delegation == SenderDelegation::Fail {
            return Err(Failure::SenderDelegation {
                sender: address.clone(),
                from,
            });
        }
        v.notes_en.push(format!(
            "signed by the Sender <{address}> on behalf of the From <{from}> [RFC 8550 delegation]"
        ));
        v.notes_vi
            .push(format!("Ký bởi Sender <{address}> thay mặt From <{from}>"));
    }
    Ok(address.clone())
}

/// SAN rfc822Name entries and subject emailAddress attributes, lower case.
fn cert_emails(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::RFC822Name(e) = n {
                out.push(e.trim().to_ascii_lowercase());
            }
        }
    }
    for atv in cert.subject().iter_email() {
        if let Ok(e) = atv.as_str() {
            out.push(e.trim().to_ascii_lowercase());
        }
    }
    out.dedup();
    out
}

// ---------------------------------------------------------------------------------------------
// CMS
// ---------------------------------------------------------------------------------------------

fn cms_err(e: BerError) -> Failure {
    Failure::Cms(e.to_string())
}

/// How a SignerInfo names its certificate.
enum SignerId<'a> {
    IssuerSerial { issuer: &'a [u8], serial: &'a [u8] },
    KeyId(&'a [u8]),
}

impl SignerId<'_> {
    fn matches(&self, der: &[u8]) -> bool {
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

struct SignerInfo<'a> {
    sid: SignerId<'a>,
    digest_alg: &'a [u8],
    /// The signed attributes with the SET OF tag (0x31), as received; `None` when absent.
    signed_attrs: Option<Vec<u8>>,
    signed_attr_list: Vec<Tlv<'a>>,
    sig_alg: &'a [u8],
    sig_params: Option<Tlv<'a>>,
    signature: Vec<u8>,
}

struct SignedData<'a> {
    econtent_type: Vec<u8>,
    econtent: Option<Vec<u8>>,
    certificates: Vec<&'a [u8]>,
    signers: Vec<SignerInfo<'a>>,
}

fn oid_of(t: &Tlv<'_>) -> Result<Vec<u8>, Failure> {
    Ok(t.expect(ber::OID, "an OID")
        .map_err(cms_err)?
        .content
        .to_vec())
}

/// AlgorithmIdentifier: (OID content, parameters).
fn algorithm<'a>(t: &Tlv<'a>) -> Result<(&'a [u8], Option<Tlv<'a>>), Failure> {
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
    fn parse(cms: &'a [u8]) -> Result<SignedData<'a>, Failure> {
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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Hash {
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_oid(oid: &[u8]) -> Option<Hash> {
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

    fn ring(self) -> &'static ring::digest::Algorithm {
        match self {
            Hash::Sha256 => &ring::digest::SHA256,
            Hash::Sha384 => &ring::digest::SHA384,
            Hash::Sha512 => &ring::digest::SHA512,
        }
    }
}

/// The signed attributes, the message digest and the signature.
fn check_signature(
    si: &SignerInfo<'_>,
    econtent_type: &[u8],
    content: &[u8],
    cert: &X509Certificate<'_>,
) -> Result<(), Failure> {
    let digest_hash = Hash::from_oid(si.digest_alg).ok_or_else(|| {
        Failure::Unsupported(format!("digest algorithm {}", oid_text(si.digest_alg)))
    })?;
    let verifier = verification_algorithm(si, digest_hash, cert)?;
    let signed: &[u8] = match &si.signed_attrs {
        None => content,
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
            let actual = ring::digest::digest(digest_hash.ring(), content);
            if md.content != actual.as_ref() {
                return Err(Failure::DigestMismatch);
            }
            bytes
        }
    };
    verifier.verify(cert, signed, &si.signature)
}

/// The named curves of ECDSA signer keys.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Curve {
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
enum Verifier {
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
    fn verify(
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
fn verification_algorithm(
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

fn oid_text(oid: &[u8]) -> String {
    const_oid::ObjectIdentifier::from_bytes(oid)
        .map(|o| o.to_string())
        .unwrap_or_else(|_| hex::encode(oid))
}

// ---------------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------------

/// Path validation with rustls-webpki, then revocation coverage and CRL freshness.
fn validate_path(
    leaf: &[u8],
    intermediates: &[&[u8]],
    anchors: &TrustStore,
    crls: &[Vec<u8>],
    at: OffsetDateTime,
    opts: VerifyOptions,
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
    let secs = u64::try_from(at.unix_timestamp()).unwrap_or(0);
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs));
    let path = ee
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &tas,
            &inter,
            time,
            webpki::KeyUsage::required_if_present(EKU_EMAIL_PROTECTION),
            revocation,
            None,
        )
        .map_err(|e| webpki_failure(e, leaf))?;

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

fn webpki_failure(e: webpki::Error, leaf: &[u8]) -> Failure {
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
        E::RequiredEkuNotFoundContext(_) => Failure::NoEmailProtection,
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

/// The CMS half of verification on its own, for the `cms` fuzz target (fuzz/README.md): reads
/// `cms` as [`verify_message`] does (ContentInfo, SignedData, SignerInfos), picks the content
/// (`detached`, or the eContent), finds the signer's certificate and checks the signature. The
/// steps are those of `run`; path validation and addresses are left out.
#[doc(hidden)]
pub fn check_cms(cms: &[u8], detached: Option<&[u8]>) -> Result<(), Failure> {
    let sd = SignedData::parse(cms)?;
    let content: &[u8] = match (detached, sd.econtent.as_deref()) {
        (Some(_), Some(_)) => return Err(Failure::ContentTwice),
        (Some(d), None) => d,
        (None, Some(e)) => e,
        (None, None) => return Err(Failure::Cms("no content".into())),
    };
    let [si] = sd.signers.as_slice() else {
        return Err(Failure::NoSigner);
    };
    let signer_der = sd
        .certificates
        .iter()
        .copied()
        .find(|c| si.sid.matches(c))
        .ok_or(Failure::SignerCertificateMissing)?;
    let (_, cert) = X509Certificate::from_der(signer_der)
        .map_err(|e| Failure::Cms(format!("signer certificate: {e}")))?;
    check_signature(si, &sd.econtent_type, content, &cert)?;
    check_leaf(&cert)
}

/// The signer's own keyUsage and extendedKeyUsage (RFC 8550 §4.4).
fn check_leaf(cert: &X509Certificate<'_>) -> Result<(), Failure> {
    match cert.key_usage() {
        Ok(Some(ku)) if !(ku.value.digital_signature() || ku.value.non_repudiation()) => {
            return Err(Failure::KeyUsage)
        }
        Err(_) => return Err(Failure::KeyUsage),
        _ => {}
    }
    match cert.extended_key_usage() {
        Ok(Some(eku)) if !eku.value.email_protection => Err(Failure::NoEmailProtection),
        Err(_) => Err(Failure::NoEmailProtection),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::identity::SigningIdentity;
    use crate::pki::testpki::{self, IdentityFiles};
    use crate::smime::sign::sign_message;

    fn identity(files: &IdentityFiles) -> SigningIdentity {
        SigningIdentity::from_pem(
            &std::fs::read(&files.chain_pem).unwrap(),
            &std::fs::read(&files.key_pem).unwrap(),
        )
        .unwrap()
    }

    fn message(from: &str) -> Vec<u8> {
        format!(
            "From: {from}\r\nTo: vanthu@dev.gov.vn\r\nSubject: Cong van 26/CT-UBND\r\n\
Date: Mon, 03 Mar 2025 09:00:00 +0700\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\r\nNoi dung cong van.\r\n"
        )
        .into_bytes()
    }

    fn signed(files: &IdentityFiles) -> Vec<u8> {
        let m = message("Van thu <vanthu@hadong.hanoi.gov.vn>");
        sign_message(&m, &identity(files), OffsetDateTime::now_utc())
            .unwrap()
            .bytes
    }

    fn anchors() -> TrustStore {
        TrustStore::new(vec![testpki::shared().root.cert_der.clone()])
    }

    fn check(raw: &[u8], crls: &[Vec<u8>], opts: VerifyOptions) -> Verdict {
        verify_message(raw, &anchors(), crls, OffsetDateTime::now_utc(), opts)
    }

    #[test]
    fn own_signature_passes_for_every_key_type() {
        let pki = testpki::shared();
        for files in pki.good_identities() {
            let v = check(&signed(files), &[], VerifyOptions::default());
            assert_eq!(v.result, SmimeResult::Pass, "{}: {v:?}", files.name);
            assert_eq!(v.signer.as_deref(), Some("vanthu@hadong.hanoi.gov.vn"));
            assert_eq!(v.serial.as_deref(), Some(files.serial_hex.as_str()));
            assert!(v
                .issuer
                .as_deref()
                .unwrap()
                .contains("CN=congvan test intermediate CA"));
            assert!(v.header_mismatches.is_empty(), "{v:?}");
            assert!(v.reason_en().contains("not revocation-checked"), "{v:?}");
        }
    }

    #[test]
    fn header_has_the_spec_form() {
        let pki = testpki::shared();
        let v = check(
            &signed(&pki.p256),
            std::slice::from_ref(&pki.crl_der),
            VerifyOptions::default(),
        );
        let h = authentication_results_header("gw.test.gov.vn", &v);
        let want = format!(
            "Authentication-Results: gw.test.gov.vn; smime=pass body.smime-identifier=vanthu@hadong.hanoi.gov.vn body.smime-serial={} body.smime-issuer=\"CN=congvan test intermediate CA,O=Ban C\\C6\\A1 y\\E1\\BA\\BFu Ch\\C3\\ADnh ph\\E1\\BB\\A7 (th\\E1\\BB\\AD nghi\\E1\\BB\\87m),C=VN\" (not revocation-checked: no CRL configured for CN=congvan test root CA",
            pki.p256.serial_hex
        );
        assert!(h.starts_with(&want), "{h}");
        assert!(
            h.ends_with("?=)\r\n") && h.is_ascii() && !h[..h.len() - 2].contains('\n'),
            "{h}"
        );
        let f = Verdict {
            result: SmimeResult::Fail,
            failure: Some(Failure::DigestMismatch),
            ..v
        };
        let h = authentication_results_header("gw", &f);
        assert!(
            h.starts_with("Authentication-Results: gw; smime=fail (digest mismatch: the signed content was changed; not revocation-checked"),
            "{h}"
        );
    }

    #[test]
    fn tampering_fails() {
        let pki = testpki::shared();
        let good = signed(&pki.p256);
        // A body byte.
        let text = String::from_utf8(good.clone()).unwrap();
        let bad = text.replacen("Noi dung cong van.", "Noi dung cong vaN.", 1);
        let v = check(bad.as_bytes(), &[], VerifyOptions::default());
        assert_eq!(v.failure, Some(Failure::DigestMismatch));
        let v = check(
            &signature_byte_flipped(&good),
            &[],
            VerifyOptions::default(),
        );
        assert_eq!(v.failure, Some(Failure::BadSignature), "{v:?}");
    }

    /// The multipart/signed message with the last byte of its CMS flipped: the last byte of
    /// the signature value when the CMS is DER without unsigned attributes.
    fn signature_byte_flipped(good: &[u8]) -> Vec<u8> {
        let e = Entity::parse(good).unwrap();
        let ct = e.content_type().unwrap();
        let parts = mime_walk::split_multipart(e.body, ct.param("boundary").unwrap()).unwrap();
        let sig = Entity::parse(parts[1]).unwrap();
        let mut der = sig.decoded_body().unwrap();
        assert!(der.starts_with(&[0x30, 0x82]), "not definite-length DER");
        *der.last_mut().unwrap() ^= 1;
        let mut b64 = Vec::new();
        crate::smime::canon::write_base64(&der, &mut b64);
        let start = parts[1].as_ptr() as usize - good.as_ptr() as usize
            + (sig.body.as_ptr() as usize - parts[1].as_ptr() as usize);
        let end = start + sig.body.len();
        let mut forged = good[..start].to_vec();
        forged.extend_from_slice(&b64);
        forged.extend_from_slice(&good[end..]);
        forged
    }

    /// `openssl cms -sign` of a message from the office address, with `args` (e.g. `-md`,
    /// `-keyopt`), made CRLF.
    fn openssl_signed(files: &IdentityFiles, args: &[&str]) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.txt");
        std::fs::write(
            &input,
            "Content-Type: text/plain; charset=us-ascii\r\n\r\nNoi dung cong van.\r\n",
        )
        .unwrap();
        let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
        let mut all = vec![
            "cms".to_string(),
            "-sign".into(),
            "-in".into(),
            path(&input),
            "-signer".into(),
            path(&files.cert_pem),
            "-inkey".into(),
            path(&files.key_pem),
            "-certfile".into(),
            path(&files.cert_pem.with_file_name("intermediate.pem")),
            "-from".into(),
            "Van thu <vanthu@hadong.hanoi.gov.vn>".into(),
            "-subject".into(),
            "Cong van 26/CT-UBND".into(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        let out = testpki::run_openssl(&all).unwrap();
        let mut crlf = Vec::with_capacity(out.len() + 200);
        for (i, &c) in out.iter().enumerate() {
            if c == b'\n' && (i == 0 || out[i - 1] != b'\r') {
                crlf.push(b'\r');
            }
            crlf.push(c);
        }
        crlf
    }

    /// Every signature algorithm OpenSSL writes for our key types verifies, through ring or,
    /// for what ring lacks, the RustCrypto crates; and a flipped signature byte fails on
    /// either path.
    #[test]
    fn openssl_signatures_verify_for_every_algorithm() {
        let pki = testpki::shared();
        let p521 = pki
            .issue(
                "p521-algorithms",
                testpki::KeySpec::P521,
                &testpki::LeafOptions::office(&pki.domain),
            )
            .unwrap();
        const PSS: &str = "rsa_padding_mode:pss";
        let table: Vec<(&IdentityFiles, Vec<&str>)> = vec![
            // ring
            (&pki.rsa2048, vec!["-md", "sha256"]),
            (&pki.rsa3072, vec!["-md", "sha512"]),
            (
                &pki.rsa2048,
                vec!["-keyopt", PSS, "-keyopt", "rsa_pss_saltlen:digest"],
            ),
            (&pki.p256, vec!["-md", "sha256"]),
            (&pki.p256, vec!["-md", "sha384"]),
            (&pki.p384, vec!["-md", "sha256"]),
            (&pki.p384, vec!["-md", "sha384"]),
            // rsa: PSS with another salt length (OpenSSL's default is the maximum)
            (&pki.rsa2048, vec!["-keyopt", PSS]),
            (&pki.rsa3072, vec!["-md", "sha384", "-keyopt", PSS]),
            (
                &pki.rsa4096,
                vec![
                    "-md",
                    "sha512",
                    "-keyopt",
                    PSS,
                    "-keyopt",
                    "rsa_pss_saltlen:0",
                ],
            ),
            (
                &pki.rsa2048,
                vec![
                    "-md",
                    "sha512",
                    "-keyopt",
                    PSS,
                    "-keyopt",
                    "rsa_pss_saltlen:32",
                ],
            ),
            // p256, p384, p521: ECDSA with SHA-512, and P-521
            (&pki.p256, vec!["-md", "sha512"]),
            (&pki.p384, vec!["-md", "sha512"]),
            (&p521, vec!["-md", "sha256"]),
            (&p521, vec!["-md", "sha384"]),
            (&p521, vec!["-md", "sha512"]),
        ];
        for (files, args) in &table {
            let good = openssl_signed(files, args);
            let v = check(&good, &[], VerifyOptions::default());
            assert_eq!(
                v.result,
                SmimeResult::Pass,
                "{} {args:?}: {v:?}",
                files.name
            );
            assert_eq!(v.serial.as_deref(), Some(files.serial_hex.as_str()));
            let v = check(
                &signature_byte_flipped(&good),
                &[],
                VerifyOptions::default(),
            );
            assert_eq!(
                v.failure,
                Some(Failure::BadSignature),
                "{} {args:?}: {v:?}",
                files.name
            );
        }
    }

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

    #[test]
    fn revocation_and_trust() {
        let pki = testpki::shared();
        let crls = [pki.crl_der.clone()];
        let v = check(&signed(&pki.revoked), &crls, VerifyOptions::default());
        assert_eq!(v.failure, Some(Failure::Revoked), "{v:?}");
        let v = check(
            &signed(&pki.p256),
            &crls,
            VerifyOptions {
                require_revocation_data: true,
                ..VerifyOptions::default()
            },
        );
        assert_eq!(v.result, SmimeResult::TempError, "{v:?}");
        assert!(v.reason_en().contains("CN=congvan test root CA"), "{v:?}");
        let v = verify_message(
            &signed(&pki.p256),
            &TrustStore::default(),
            &[],
            OffsetDateTime::now_utc(),
            VerifyOptions::default(),
        );
        assert!(
            matches!(v.failure, Some(Failure::Untrusted { .. })),
            "{v:?}"
        );
        // At a time after the signer's notAfter.
        let later = OffsetDateTime::now_utc() + time::Duration::days(400);
        let v = verify_message(
            &signed(&pki.p256),
            &anchors(),
            &[],
            later,
            VerifyOptions::default(),
        );
        assert!(matches!(v.failure, Some(Failure::Expired { .. })), "{v:?}");
    }

    #[test]
    fn a_stale_crl_is_a_temporary_error_not_a_pass() {
        // The test CRL's nextUpdate is a week away; the certificates are valid for a year.
        let pki = testpki::shared();
        let crls = [pki.crl_der.clone()];
        let eight_days = OffsetDateTime::now_utc() + time::Duration::days(8);
        let v = verify_message(
            &signed(&pki.p256),
            &anchors(),
            &crls,
            eight_days,
            VerifyOptions::default(),
        );
        assert!(
            matches!(v.failure, Some(Failure::CrlExpired { .. })),
            "{v:?}"
        );
        assert_eq!(v.result, SmimeResult::TempError, "{v:?}");
        assert!(v.reason_en().contains("CRL"), "{v:?}");
        // Within its validity the same CRL is current.
        let v = verify_message(
            &signed(&pki.p256),
            &anchors(),
            &crls,
            OffsetDateTime::now_utc(),
            VerifyOptions::default(),
        );
        assert_eq!(v.result, SmimeResult::Pass, "{v:?}");
    }

    #[test]
    fn unsigned_and_wrapped() {
        let pki = testpki::shared();
        let v = check(&message("a@b.vn"), &[], VerifyOptions::default());
        assert_eq!(
            (v.result, v.failure),
            (SmimeResult::None, Some(Failure::NotSigned))
        );
        let inner = signed(&pki.p256);
        let body = String::from_utf8(inner.clone()).unwrap();
        let wrapped = format!(
            "From: vanthu@hadong.hanoi.gov.vn\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nPay now.\r\n--X\r\n{}\r\n--X--\r\n",
            body.split_once("\r\n\r\n").map(|(h, b)| {
                let ct: Vec<&str> = h.split("\r\n").skip_while(|l| !l.starts_with("Content-Type")).take(2).collect();
                format!("{}\r\n\r\n{b}", ct.join("\r\n"))
            }).unwrap()
        );
        let v = check(wrapped.as_bytes(), &[], VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::Fail, "{v:?}");
        assert!(
            matches!(v.failure, Some(Failure::PartlySigned { .. })),
            "{v:?}"
        );
        let forwarded = format!(
            "From: x@hadong.hanoi.gov.vn\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=Y\r\n\r\n--Y\r\nContent-Type: text/plain\r\n\r\nFwd\r\n--Y\r\nContent-Type: message/rfc822\r\n\r\n{body}\r\n--Y--\r\n"
        );
        let v = check(forwarded.as_bytes(), &[], VerifyOptions::default());
        assert_eq!(v.failure, Some(Failure::OnlyAttachedMessageSigned), "{v:?}");
    }

    #[test]
    fn two_from_and_sender_rules() {
        let pki = testpki::shared();
        let good = String::from_utf8(signed(&pki.p256)).unwrap();
        let two = format!("From: boss@hadong.hanoi.gov.vn\r\n{good}");
        let v = check(two.as_bytes(), &[], VerifyOptions::default());
        assert_eq!(v.failure, Some(Failure::SeveralFrom { count: 2 }));
        assert_eq!(v.result, SmimeResult::PermError);
        // The signer added Sender because From is not the seal's address: pass via Sender.
        let m = message("Giam doc <giamdoc@hadong.hanoi.gov.vn>");
        let s = sign_message(&m, &identity(&pki.p256), OffsetDateTime::now_utc()).unwrap();
        let v = check(&s.bytes, &[], VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::Pass, "{v:?}");
        assert_eq!(v.signer.as_deref(), Some("vanthu@hadong.hanoi.gov.vn"));
        assert!(v.notes_en.iter().any(|n| n == "signed by the Sender <vanthu@hadong.hanoi.gov.vn> on behalf of the From <giamdoc@hadong.hanoi.gov.vn> [RFC 8550 delegation]"), "{v:?}");
        // Display name showing another address.
        let m = message("\"giamdoc@hadong.hanoi.gov.vn\" <vanthu@hadong.hanoi.gov.vn>");
        let s = sign_message(&m, &identity(&pki.p256), OffsetDateTime::now_utc()).unwrap();
        let v = check(&s.bytes, &[], VerifyOptions::default());
        assert!(
            matches!(v.failure, Some(Failure::DisplayNameTrick { .. })),
            "{v:?}"
        );
    }

    /// Signs a message with this From field (as congvan's signer writes it) and verifies it.
    fn from_field(from: &str, opts: VerifyOptions) -> Verdict {
        let pki = testpki::shared();
        let m = message(from);
        let s = sign_message(&m, &identity(&pki.p256), OffsetDateTime::now_utc()).unwrap();
        check(&s.bytes, &[], opts)
    }

    #[test]
    fn the_from_mailbox_whatever_its_syntax() {
        for from in [
            "Van phong UBND: Van thu <vanthu@hadong.hanoi.gov.vn>;",
            "Van phong:vanthu@hadong.hanoi.gov.vn;",
            "\"vanthu\"@hadong.hanoi.gov.vn",
            "vanthu@hadong.hanoi.gov.vn (Van thu, UBND quan)",
            "=?UTF-8?B?VsSDbiB0aMaw?= <vanthu@hadong.hanoi.gov.vn>",
            "\"vanthu@hadong.hanoi.gov.vn\" <VanThu@Hadong.Hanoi.Gov.Vn>",
            "Văn thư ＵＢＮＤ <vanthu@hadong.hanoi.gov.vn>",
        ] {
            let v = from_field(from, VerifyOptions::default());
            assert_eq!(v.result, SmimeResult::Pass, "{from}: {v:?}");
            assert_eq!(
                v.signer.as_deref(),
                Some("vanthu@hadong.hanoi.gov.vn"),
                "{from}"
            );
            assert!(!v.reason_en().contains("Sender"), "{from}: {v:?}");
        }
    }

    #[test]
    fn another_address_shown_in_the_from_field_fails() {
        let trick = |place, shown: &str| {
            Some(Failure::DisplayNameTrick {
                place,
                shown: shown.into(),
            })
        };
        let cases = [
            // Full-width commercial at (U+FF20), written by the signer as an encoded word.
            (
                "\"boss＠other.gov.vn\" <vanthu@hadong.hanoi.gov.vn>",
                trick(Shown::DisplayName, "boss@other.gov.vn"),
            ),
            (
                "Boss﹫Other．gov．vn <vanthu@hadong.hanoi.gov.vn>",
                trick(Shown::DisplayName, "boss@other.gov.vn"),
            ),
            (
                "=?UTF-8?Q?boss=40other=2Egov=2Evn?= <vanthu@hadong.hanoi.gov.vn>",
                trick(Shown::DisplayName, "boss@other.gov.vn"),
            ),
            (
                "vanthu@hadong.hanoi.gov.vn (boss@other.gov.vn)",
                trick(Shown::Comment, "boss@other.gov.vn"),
            ),
            (
                "<vanthu(=?UTF-8?B?Ym9zc++8oG90aGVyLmdvdi52bg==?=)@hadong.hanoi.gov.vn>",
                trick(Shown::Comment, "boss@other.gov.vn"),
            ),
            (
                "=?UTF-8?Q?boss=40other=2Egov=2Evn?=: vanthu@hadong.hanoi.gov.vn;",
                trick(Shown::GroupName, "boss@other.gov.vn"),
            ),
        ];
        for (from, want) in cases {
            let v = from_field(from, VerifyOptions::default());
            assert_eq!(v.result, SmimeResult::Fail, "{from}: {v:?}");
            assert_eq!(v.failure, want, "{from}");
            assert!(!v.failure.as_ref().unwrap().vietnamese().is_empty());
        }
        let header = authentication_results_header(
            "gw",
            &from_field(
                "vanthu@hadong.hanoi.gov.vn (boss@other.gov.vn)",
                VerifyOptions::default(),
            ),
        )
        .replace("\r\n ", " ");
        assert!(
            header.contains("smime=fail (address mismatch: the From comment shows another address [boss@other.gov.vn];"),
            "{header}"
        );
        // A display name on the outer From only (not protected): still what a reader sees.
        let pki = testpki::shared();
        let good = String::from_utf8(signed(&pki.p256)).unwrap();
        let (head, rest) = good.split_once("\r\n\r\n").unwrap();
        let outer = format!(
            "{}\r\n\r\n{rest}",
            head.replacen(
                "From: Van thu <",
                "From: =?UTF-8?Q?boss=EF=BC=A0other.gov.vn?= <",
                1
            )
        );
        let v = check(outer.as_bytes(), &[], VerifyOptions::default());
        assert_eq!(
            v.failure,
            trick(Shown::DisplayName, "boss@other.gov.vn"),
            "{v:?}"
        );
    }

    #[test]
    fn a_transfer_encoding_on_a_multipart_is_permerror() {
        let pki = testpki::shared();
        let good = String::from_utf8(signed(&pki.p256)).unwrap();
        for cte in ["base64", "Quoted-Printable", "x-uuencode"] {
            let bad = good.replacen(
                "MIME-Version: 1.0\r\n",
                &format!("MIME-Version: 1.0\r\nContent-Transfer-Encoding: {cte}\r\n"),
                1,
            );
            let v = check(bad.as_bytes(), &[], VerifyOptions::default());
            assert_eq!(v.result, SmimeResult::PermError, "{cte}: {v:?}");
            assert_eq!(
                v.failure,
                Some(Failure::EncodedMultipart {
                    content_type: "multipart/signed".into(),
                    encoding: cte.to_ascii_lowercase(),
                })
            );
        }
        for cte in ["7bit", "8BIT", "binary (raw)"] {
            let ok = good.replacen(
                "MIME-Version: 1.0\r\n",
                &format!("MIME-Version: 1.0\r\nContent-Transfer-Encoding: {cte}\r\n"),
                1,
            );
            let v = check(ok.as_bytes(), &[], VerifyOptions::default());
            assert_eq!(v.result, SmimeResult::Pass, "{cte}: {v:?}");
        }
        // Inside the signed content, signed as it is.
        let m = "From: Van thu <vanthu@hadong.hanoi.gov.vn>\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=M\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
--M\r\nContent-Type: text/plain\r\n\r\nNoi dung\r\n--M--\r\n";
        let s = sign_message(
            m.as_bytes(),
            &identity(&pki.p256),
            OffsetDateTime::now_utc(),
        )
        .unwrap();
        let v = check(&s.bytes, &[], VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::PermError, "{v:?}");
        assert!(
            matches!(v.failure, Some(Failure::EncodedMultipart { ref content_type, .. }) if content_type == "multipart/mixed"),
            "{v:?}"
        );
        // In an unsigned message too.
        let unsigned = "From: a@b.vn\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=M\r\nContent-Transfer-Encoding: base64\r\n\r\n--M\r\n\r\nx\r\n--M--\r\n";
        let v = check(unsigned.as_bytes(), &[], VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::PermError, "{v:?}");
    }

    #[test]
    fn sender_delegation_named_and_governed_by_the_policy() {
        let from = "Giam doc <giamdoc@hadong.hanoi.gov.vn>";
        let v = from_field(from, VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::Pass, "{v:?}");
        let header = authentication_results_header("gw", &v).replace("\r\n ", " ");
        assert!(
            header.contains("body.smime-identifier=vanthu@hadong.hanoi.gov.vn")
                && header.contains("signed by the Sender <vanthu@hadong.hanoi.gov.vn> on behalf of the From <giamdoc@hadong.hanoi.gov.vn> [RFC 8550 delegation] / =?UTF-8?B?"),
            "{header}"
        );
        let fail = VerifyOptions {
            sender_delegation: SenderDelegation::Fail,
            ..VerifyOptions::default()
        };
        let v = from_field(from, fail);
        assert_eq!(v.result, SmimeResult::Fail, "{v:?}");
        assert_eq!(
            v.failure,
            Some(Failure::SenderDelegation {
                sender: "vanthu@hadong.hanoi.gov.vn".into(),
                from: "giamdoc@hadong.hanoi.gov.vn".into(),
            })
        );
        assert!(
            v.reason_vi().contains("không chấp nhận ký thay"),
            "{}",
            v.reason_vi()
        );
        // The author's own signature is not delegation, whatever the policy.
        let v = from_field("Van thu <vanthu@hadong.hanoi.gov.vn>", fail);
        assert_eq!(v.result, SmimeResult::Pass, "{v:?}");
        assert!(!v.reason_en().contains("Sender"), "{v:?}");
    }

    #[test]
    fn outer_headers_compared_with_protected_ones() {
        let pki = testpki::shared();
        let good = String::from_utf8(signed(&pki.p256)).unwrap();
        let (head, rest) = good.split_once("\r\n\r\n").unwrap();
        let changed = format!(
            "{}\r\n\r\n{rest}",
            head.replacen(
                "Subject: Cong van 26/CT-UBND",
                "Subject: Khan: chuyen tien",
                1
            )
        );
        let v = check(changed.as_bytes(), &[], VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::Pass, "{v:?}");
        assert_eq!(v.header_mismatches, vec!["Subject".to_string()]);
        assert!(authentication_results_header("gw", &v)
            .replace("\r\n ", " ")
            .contains("differ from the signed ones: Subject"));
        let from = format!(
            "{}\r\n\r\n{rest}",
            head.replacen(
                "From: Van thu <vanthu@hadong",
                "From: Van thu <giamdoc@hadong",
                1
            )
        );
        let v = check(from.as_bytes(), &[], VerifyOptions::default());
        assert_eq!(
            v.failure,
            Some(Failure::OuterIdentityDiffers { field: "From" }),
            "{v:?}"
        );
    }

    #[test]
    fn strips_only_our_results() {
        let raw = b"Authentication-Results: GW.test.gov.vn; smime=pass\r\n\tbody.smime-identifier=x@y\r\nAuthentication-Results: other.example; dkim=pass\r\nAuthentication-Results: (c) gw.test.gov.vn; smime=pass\r\nFrom: a@b\r\n\r\nAuthentication-Results: gw.test.gov.vn; in the body\r\n";
        let out = strip_own_results(raw, "gw.test.gov.vn");
        assert_eq!(
            out,
            b"Authentication-Results: other.example; dkim=pass\r\nFrom: a@b\r\n\r\nAuthentication-Results: gw.test.gov.vn; in the body\r\n"
        );
    }

    #[test]
    fn truncated_and_mangled_input_never_panics() {
        let pki = testpki::shared();
        let good = signed(&pki.rsa2048);
        for cut in (0..good.len()).step_by(97) {
            let v = check(&good[..cut], &[], VerifyOptions::default());
            assert_ne!(v.result, SmimeResult::Pass);
        }
        // Any changed byte: never a panic; inside the signed entity: never a pass.
        let m = message("Van thu <vanthu@hadong.hanoi.gov.vn>");
        let s = sign_message(&m, &identity(&pki.p256), OffsetDateTime::now_utc()).unwrap();
        let mut x = s.bytes.clone();
        for i in (0..x.len()).step_by(13) {
            x[i] = x[i].wrapping_add(1);
            let v = check(&x, &[], VerifyOptions::default());
            if s.signed_entity.contains(&i) {
                assert_ne!(v.result, SmimeResult::Pass, "flip at {i}");
            }
            x[i] = s.bytes[i];
        }
    }
}
