//! PDF documents (SPEC "Documents: the signer's and the organisation's signatures on PDF
//! files"): the PDF parts of a message, the signatures each one carries, and whether each
//! signature is intact, valid and a competent signer's.
//!
//! A PDF part is parsed with lopdf under limits (size, lopdf's own nesting bound, the
//! `[limits] max_mime_depth` bound on the form-field tree we walk); each signature is checked
//! in three steps, each in its own file:
//! 1. [`signature`]: its ByteRange covers the file from byte 0 to the end of a revision, except
//!    exactly its own `/Contents` hex string, which lies inside its own signature dictionary;
//! 2. [`revision`]: what later revisions changed is only what adding signatures changes
//!    (signature fields and widgets, the AcroForm, the pages' annotation lists, the document
//!    security store, document information): anything else is content changed after signing;
//! 3. the CMS, digest, signature and the signer's path to a trust anchor at the time of
//!    reception, with the CRLs, by the verifier the S/MIME check uses
//!    ([`crate::smime::verify::verify_detached`]).

pub mod appearance;
pub mod check;
pub mod incoming;
pub mod parts;
pub mod revision;
pub mod seal;
pub mod signature;
pub mod tsa;

pub use appearance::{Placement, SealImage, SealImageError};
pub use check::{
    check_pdf, Authorised, CheckContext, PdfError, PdfFinding, SignatureCheck, SignatureProblem,
};
pub use parts::{pdf_parts, PdfPart};
pub use seal::{
    seal_message, seal_pdf, seal_pdf_stamped, PartSealed, SealError, SealOptions, SealedPdf,
    SignatureSummary,
};
pub use tsa::{TimeStamp, TimeStamper, TsaError};

/// The largest PDF part examined (bytes, decoded). SPEC's `max_message_size` (36 MB of
/// base64) holds a PDF of about 27 MB; a larger one cannot arrive.
pub const MAX_PDF_SIZE: usize = 64 * 1024 * 1024;
