//! One PDF part checked: loaded under limits, each signature's bytes, later revisions and
//! CMS checked, and the findings a policy decides on ([`PdfFinding`]).

use lopdf::{Document, LoadOptions};
use time::OffsetDateTime;

use super::revision::{check_later_revisions, ChangedAfter};
use super::signature::{
    check_byte_range, find_signatures, only_whitespace_after, ByteRangeError, FoundSignature,
};
use super::MAX_PDF_SIZE;
use crate::smime::verify::{
    verify_detached, DetachedSigner, Failure, Purpose, TrustStore, VerifyOptions,
};

/// The largest size one stream of the file may decompress to while it is loaded.
const MAX_STREAM_SIZE: usize = 128 * 1024 * 1024;

/// Whose PDF signature counts as the competent signer's (`signers.toml`, SPEC): certificate
/// fingerprints (SHA-256, hex) and e-mail addresses. `None` in [`CheckContext`]: any valid
/// signature does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authorised {
    pub fingerprints: Vec<String>,
    pub emails: Vec<String>,
}

impl Authorised {
    pub fn admits(&self, signer: &DetachedSigner) -> bool {
        self.fingerprints
            .iter()
            .any(|f| f.eq_ignore_ascii_case(&signer.fingerprint))
            || signer
                .emails
                .iter()
                .any(|e| self.emails.iter().any(|a| a.eq_ignore_ascii_case(e)))
    }
}

/// What a check needs besides the file.
pub struct CheckContext<'a> {
    pub anchors: &'a TrustStore,
    pub crls: &'a [Vec<u8>],
    /// The time of reception: certificates are valid at it.
    pub at: OffsetDateTime,
    pub opts: VerifyOptions,
    /// The office's authorised signers for the message's From domain, when the profile has a
    /// list.
    pub authorised: Option<&'a Authorised>,
    /// Bound on the form-field tree walked (`[limits] max_mime_depth`).
    pub max_depth: usize,
}

/// Why a PDF part cannot be examined at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PdfError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the file is encrypted")]
    Encrypted,
    #[error("the file is not a readable PDF: {0}")]
    Unreadable(String),
}

impl PdfError {
    pub fn vietnamese(&self) -> String {
        match self {
            PdfError::TooLarge { limit } => format!("tệp lớn hơn {limit} byte"),
            PdfError::Encrypted => "tệp đã bị mã hóa".into(),
            PdfError::Unreadable(_) => "tệp PDF không đọc được".into(),
        }
    }
}

/// Why one signature does not count.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("{0}")]
    Bytes(ByteRangeError),
    #[error("the content was changed after signing: {0}")]
    ChangedAfter(ChangedAfter),
    #[error("{0}")]
    Cms(Failure),
    #[error("the signer is not on the office's list of authorised signers")]
    NotAuthorised,
    #[error("a document time-stamp, not a signature")]
    TimeStamp,
}

impl SignatureProblem {
    /// Whether the problem is one of integrity (the file or signature was altered, or the
    /// signature's bytes do not hold together), as opposed to a signer who does not count.
    pub fn is_integrity(&self) -> bool {
        match self {
            SignatureProblem::Bytes(_) | SignatureProblem::ChangedAfter(_) => true,
            SignatureProblem::Cms(f) => {
                matches!(f, Failure::DigestMismatch | Failure::BadSignature)
            }
            SignatureProblem::NotAuthorised | SignatureProblem::TimeStamp => false,
        }
    }

    pub fn vietnamese(&self) -> String {
        match self {
            SignatureProblem::Bytes(_) => "cấu trúc chữ ký số trong tệp không hợp lệ".into(),
            SignatureProblem::ChangedAfter(_) => "nội dung tệp đã bị thay đổi sau khi ký".into(),
            SignatureProblem::Cms(f) => f.vietnamese(),
            SignatureProblem::NotAuthorised => {
                "người ký không có trong danh sách người có thẩm quyền của cơ quan".into()
            }
            SignatureProblem::TimeStamp => "dấu thời gian của tài liệu, không phải chữ ký".into(),
        }
    }
}

/// One signature and its result.
#[derive(Debug, Clone, PartialEq)]
pub struct SignatureCheck {
    pub found: FoundSignature,
    /// Who signed, when the CMS could be read that far.
    pub signer: Option<DetachedSigner>,
    /// The signature covers the whole file (else a revision that later ones extended).
    pub covers_whole_file: bool,
    pub problem: Option<SignatureProblem>,
}

impl SignatureCheck {
    /// A valid signature of a competent signer.
    pub fn counts(&self) -> bool {
        self.problem.is_none()
    }
}

/// The check of one PDF part.
#[derive(Debug, Clone, PartialEq)]
pub struct PdfFinding {
    pub name: String,
    /// SHA-256 of the file as received, hex.
    pub sha256: String,
    pub outcome: Result<Vec<SignatureCheck>, PdfError>,
}

impl PdfFinding {
    /// Why this part carries no valid signature of a competent signer, or `None` when it
    /// does: the file's own error, else the first signature whose integrity fails, else
    /// "no valid signature" (with the first signature's problem, when there is one).
    pub fn refusal(&self) -> Option<(String, String)> {
        let checks = match &self.outcome {
            Err(e) => return Some((e.to_string(), e.vietnamese())),
            Ok(c) => c,
        };
        if let Some(p) = checks
            .iter()
            .filter_map(|c| c.problem.as_ref())
            .find(|p| p.is_integrity())
        {
            return Some((p.to_string(), p.vietnamese()));
        }
        if checks.iter().any(SignatureCheck::counts) {
            return None;
        }
        Some(match checks.iter().find_map(|c| c.problem.as_ref()) {
            Some(p) => (p.to_string(), p.vietnamese()),
            None => (
                "the file carries no signature".into(),
                "tệp không có chữ ký số".into(),
            ),
        })
    }
}

/// Checks the PDF `bytes` named `name`.
pub fn check_pdf(name: &str, bytes: &[u8], ctx: &CheckContext<'_>) -> PdfFinding {
    PdfFinding {
        name: name.to_string(),
        sha256: hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes)),
        outcome: check_signatures(bytes, ctx),
    }
}

/// Loads a PDF under the limits; an encrypted file is an error whether or not lopdf could
/// open it.
pub fn load(bytes: &[u8]) -> Result<Document, PdfError> {
    if bytes.len() > MAX_PDF_SIZE {
        return Err(PdfError::TooLarge {
            limit: MAX_PDF_SIZE,
        });
    }
    let options = LoadOptions {
        max_decompressed_size: Some(MAX_STREAM_SIZE),
        ..LoadOptions::default()
    };
    match Document::load_mem_with_options(bytes, options) {
        Ok(doc) if doc.trailer.has(b"Encrypt") || doc.encryption_state.is_some() => {
            Err(PdfError::Encrypted)
        }
        Ok(doc) => Ok(doc),
        Err(_) if declares_encryption(bytes) => Err(PdfError::Encrypted),
        Err(e) => Err(PdfError::Unreadable(e.to_string())),
    }
}

/// A trailer or cross-reference stream with `/Encrypt`, seen in the raw bytes (when lopdf
/// refused the file, e.g. for want of a password).
fn declares_encryption(bytes: &[u8]) -> bool {
    bytes.windows(8).any(|w| w == b"/Encrypt")
}

fn check_signatures(bytes: &[u8], ctx: &CheckContext<'_>) -> Result<Vec<SignatureCheck>, PdfError> {
    let doc = load(bytes)?;
    let found = find_signatures(&doc, ctx.max_depth);
    // Revisions already read, by their end offset.
    let mut revisions: Vec<(usize, Result<(), ChangedAfter>)> = Vec::new();
    let mut out = Vec::with_capacity(found.len());
    for sig in found {
        let mut check = SignatureCheck {
            found: sig,
            signer: None,
            covers_whole_file: false,
            problem: None,
        };
        check.problem = check_one(bytes, &doc, ctx, &mut check, &mut revisions).err();
        out.push(check);
    }
    Ok(out)
}

fn check_one(
    bytes: &[u8],
    doc: &Document,
    ctx: &CheckContext<'_>,
    check: &mut SignatureCheck,
    revisions: &mut Vec<(usize, Result<(), ChangedAfter>)>,
) -> Result<(), SignatureProblem> {
    let sig = &check.found;
    let end = check_byte_range(bytes, doc, sig).map_err(SignatureProblem::Bytes)?;
    check.covers_whole_file = only_whitespace_after(bytes, end);
    if !check.covers_whole_file {
        let later = match revisions.iter().find(|(e, _)| *e == end) {
            Some((_, r)) => r.clone(),
            None => {
                let r = load(&bytes[..end])
                    .map_err(|e| ChangedAfter::Unreadable(e.to_string()))
                    .and_then(|signed| check_later_revisions(&signed, doc));
                revisions.push((end, r.clone()));
                r
            }
        };
        later.map_err(SignatureProblem::ChangedAfter)?;
    }
    if sig.timestamp {
        // Its CMS encapsulates a TSTInfo; it proves a time, not a signer.
        return Err(SignatureProblem::TimeStamp);
    }
    let [_, a, b, c] = sig.byte_range.unwrap_or_default();
    let content: [&[u8]; 2] = [&bytes[..a], &bytes[b..b + c]];
    let signer = verify_detached(
        &sig.contents,
        &content,
        ctx.anchors,
        ctx.crls,
        ctx.at,
        ctx.opts,
        Purpose::Document,
    );
    let failure = signer.failure.clone();
    check.signer = Some(signer);
    if let Some(f) = failure {
        return Err(SignatureProblem::Cms(f));
    }
    if let (Some(list), Some(signer)) = (ctx.authorised, &check.signer) {
        if !list.admits(signer) {
            return Err(SignatureProblem::NotAuthorised);
        }
    }
    Ok(())
}
