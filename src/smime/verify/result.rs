//! The outcome of verification: the RFC 7281 result values, the typed [`Failure`] with its
//! English and Vietnamese reasons, and the [`Verdict`] that carries them.

use std::fmt;

use crate::address::Shown;
use crate::smime::mime_walk::MimeError;

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
    #[error("the signer's certificate allows neither document signing nor emailProtection (EKU)")]
    NoDocumentSigning,
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
            NoDocumentSigning => {
                "Chứng thư số không có mục đích ký văn bản (documentSigning) hay bảo vệ thư điện tử"
                    .into()
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
    /// `pass` with nothing found yet: where verification starts.
    pub(super) fn passing() -> Verdict {
        Verdict {
            result: SmimeResult::Pass,
            signer: None,
            serial: None,
            issuer: None,
            failure: None,
            notes_en: Vec::new(),
            notes_vi: Vec::new(),
            header_mismatches: Vec::new(),
        }
    }

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
