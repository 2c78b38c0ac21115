//! Signing outgoing mail (SPEC "Outgoing mail" item 3): the message becomes an S/MIME
//! `multipart/signed` (RFC 8551 §3.5.3) whose first part is the original content, made 7-bit
//! clean with CRLF line endings and carrying the protected header fields (RFC 9788), and whose
//! second part is a detached CMS SignedData (RFC 5652) made with the office's seal.
//!
//! The message shape, for a signed-only message with RFC 9788 header protection:
//!
//! ```text
//! From: ... To: ... Subject: ... Date: ... (outer header fields)
//! Sender: <seal address>                   (only when From is not an address of the seal)
//! MIME-Version: 1.0
//! Content-Type: multipart/signed; protocol="application/pkcs7-signature"; micalg=sha-256; boundary=B
//!
//! --B
//! From: ... To: ... Subject: ... Date: ... (the same protected fields, byte for byte)
//! Content-Type: <original type>; hp="clear"
//! <original content, canonical>
//! --B
//! Content-Type: application/pkcs7-signature; name=smime.p7s
//! Content-Transfer-Encoding: base64
//! Content-Disposition: attachment; filename=smime.p7s
//!
//! <CMS SignedData, base64>
//! --B--
//! ```
//!
//! Opaque seal: when the document carries a signature of its own (a clerk's S/MIME
//! `multipart/signed` made over 8-bit text, as `openssl smime -sign -binary` or a mail client
//! with 8BITMIME writes it), making the content 7-bit would break that inner signature. Such a
//! message is sealed as `application/pkcs7-mime; smime-type=signed-data` instead (RFC 8551
//! §3.5.2): the content entity (protected fields, the root's Content-* fields, the body byte
//! for byte) is encapsulated in the CMS, which carries 8-bit bytes unchanged, and the message
//! itself is 7-bit (base64). [`SignedMessage::opaque`] says which form was written.
//!
//! Protected fields: those SPEC.md names (Subject, From, To, Cc, Date, `X-Congvan-*`) plus the
//! ones RFC 9788 §2.1 counts as user-facing or that steer handling here (Sender, Reply-To,
//! Message-ID, In-Reply-To, References, and the urgency marks Priority, Importance,
//! X-Priority). They are written identically outside and inside: a field that is not 7-bit
//! clean is RFC 2047-encoded in both places, so the inner copy equals the outer one byte for
//! byte and a verifier can compare them directly.

use std::ops::Range;

use mail_parser::{Header, HeaderName, MessageParser};
use ring::rand::SecureRandom;
use time::OffsetDateTime;

use self::cms::signed_data;
use self::headers::{addresses, body_start, crlf, seal_address};
use self::opaque::{sign_opaque, write_content_fields};
use crate::pki::identity::{DigestAlgorithm, SigningIdentity, Unusable};
use crate::smime::canon::{self, CanonError, RootHeaders};

pub(crate) mod cms;
mod headers;
mod opaque;
#[cfg(test)]
mod tests;

pub use headers::{is_protected, PROTECTED_FIELDS};

/// A signed message and what the registers record about it.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignedMessage {
    /// The complete RFC 5322 message, CRLF line endings.
    pub bytes: Vec<u8>,
    /// SHA-256 of the signed entity (the first part of the multipart/signed), lower-case hex.
    pub digest_sha256_hex: String,
    /// Serial number of the signing certificate, lower-case hex.
    pub signer_serial_hex: String,
    /// The `micalg` written (`sha-256`, or `sha-384` for a P-384 seal).
    pub micalg: &'static str,
    /// Where the signed entity lies in `bytes`.
    pub signed_entity: Range<usize>,
    /// The Sender address the gateway set, when it set one (RFC 8550 §3).
    pub sender_set: Option<String>,
    /// Sealed as opaque signed-data (the content inside the CMS), not `multipart/signed`:
    /// the document carries a signature of its own that 7-bit re-encoding would break. Then
    /// [`SignedMessage::signed_entity`] is the base64 CMS and the digest is the content's.
    pub opaque: bool,
}

/// Why a message could not be signed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The identity cannot sign at the signing time (expired, ...): hold the message.
    #[error("the signing identity cannot be used: {0}")]
    Unusable(#[from] Unusable),
    /// The message has no header section.
    #[error("the message has no header section")]
    NoHeaders,
    /// The message has no From field (RFC 5322 requires exactly one).
    #[error("the message has no From header field")]
    NoFrom,
    /// The message has several From fields.
    #[error("the message has {count} From header fields")]
    MultipleFrom { count: usize },
    /// The content could not be made 7-bit clean.
    #[error(transparent)]
    Canon(#[from] CanonError),
    /// The signing time cannot be written as a CMS Time.
    #[error("signing time {time} cannot be encoded")]
    SigningTime { time: OffsetDateTime },
    /// Encoding the CMS structure failed (a bug, or a certificate der cannot re-encode).
    #[error("CMS encoding failed: {reason}")]
    Cms { reason: String },
    /// The private-key operation failed.
    #[error("the private-key operation failed")]
    Signature,
    /// The key cannot sign now (a token missing, locked, refusing): hold the message.
    #[error("the seal's key cannot sign: {0}")]
    Key(#[from] crate::pki::identity::KeyError),
}

/// One outer header field as it will be written.
struct OuterField {
    bytes: Vec<u8>,
    protected: bool,
}

/// Signs `raw` (a complete RFC 5322 message, CRLF or LF line endings) with `identity` at
/// `signing_time`, which is also the time the identity must be usable at.
///
/// Sender (RFC 8550 §3, and SPEC.md's verifier, which checks Sender when there is one): when
/// the responsible address (Sender if present, else the single From mailbox) is not an address
/// of the seal, Sender is set to the seal's address (the one in the From domain if it has one),
/// replacing any Sender the clerk's client wrote.
///
/// `micalg` and the CMS digest are SHA-256, except for P-384 seals (SHA-384, see
/// [`KeyAlgorithm::digest`](crate::pki::identity::KeyAlgorithm::digest));
/// [`SignedMessage::digest_sha256_hex`] is SHA-256 in every case.
pub fn sign_message(
    raw: &[u8],
    identity: &SigningIdentity,
    signing_time: OffsetDateTime,
) -> Result<SignedMessage, SignError> {
    identity.usability(signing_time)?;

    // One mail-parser pass serves both the split of the root header fields into outer and
    // protected ones and the canonical form. mail-parser's root part holds the same fields,
    // at the same offsets, as its header-only parse, which finds none where the root has
    // none. Should the whole message not parse, the header-only parse reads the fields, so
    // that the header errors come first as they always have and the canonical form's error
    // after them.
    let parsed = canon::parse(raw);
    let headers_only;
    let root_headers = match &parsed {
        Ok(message) => message
            .parts
            .first()
            .map(|p| &p.headers)
            .filter(|h| !h.is_empty())
            .ok_or(SignError::NoHeaders)?,
        Err(CanonError::Unparseable) => return Err(SignError::NoHeaders),
        Err(_) => {
            headers_only = MessageParser::new()
                .parse_headers(raw)
                .ok_or(SignError::NoHeaders)?;
            &headers_only
                .parts
                .first()
                .ok_or(SignError::NoHeaders)?
                .headers
        }
    };

    let sender_set = sender_to_set(raw, root_headers, identity)?;

    let RootFields {
        outer: fields,
        mut content_fields,
    } = root_fields(raw, root_headers, sender_set.as_deref())?;

    let protected: Vec<u8> = fields
        .iter()
        .filter(|f| f.protected)
        .flat_map(|f| f.bytes.iter().copied())
        .collect();
    let root = RootHeaders {
        prepend: &protected,
        content_fields_only: true,
        content_type_param: Some(("hp", "clear")),
    };
    // The parsed tree (with its decoded bodies) goes before anything is written.
    let plan = parsed.and_then(|message| canon::plan_parsed(raw, &message, &root));
    let plan = match plan {
        Ok(plan) => plan,
        Err(CanonError::SignedEntityNot7bit) => {
            let mut content = protected;
            content_fields.sort_by_key(|(n, _)| *n != "content-type");
            write_content_fields(&content_fields, &mut content);
            content.extend_from_slice(b"\r\n");
            let body_start = body_start(raw);
            content.extend_from_slice(&crate::smime::mime_walk::to_crlf(&raw[body_start..]));
            return sign_opaque(&fields, &content, identity, signing_time, sender_set);
        }
        Err(e) => return Err(e.into()),
    };

    multipart_signed(&fields, plan, raw, identity, signing_time, sender_set)
}

/// The Sender address to write (see [`sign_message`]), or `None` when the responsible
/// address is already one of the seal's. Checks that there is exactly one From field.
fn sender_to_set(
    raw: &[u8],
    root_headers: &[Header<'_>],
    identity: &SigningIdentity,
) -> Result<Option<String>, SignError> {
    let froms: Vec<_> = root_headers
        .iter()
        .filter(|h| h.name == HeaderName::From)
        .collect();
    let from = match froms.len() {
        0 => return Err(SignError::NoFrom),
        1 => froms[0],
        count => return Err(SignError::MultipleFrom { count }),
    };
    let from_addrs = addresses(raw, from);
    let sender = root_headers.iter().find(|h| h.name == HeaderName::Sender);
    let responsible = match sender {
        Some(s) => addresses(raw, s).into_iter().next(),
        None if from_addrs.len() == 1 => from_addrs.first().cloned(),
        None => None,
    };
    Ok(match responsible {
        Some(a) if identity.has_email(&a) => None,
        _ => Some(seal_address(
            identity,
            from_addrs.first().map(String::as_str),
        )),
    })
}

/// The root header fields, split for the sealed message.
struct RootFields {
    /// The outer header fields, in order, with the Sender set where it must be.
    outer: Vec<OuterField>,
    /// The root's Content-* fields (for an opaque seal), CRLF; the last Content-Type and
    /// Content-Transfer-Encoding only, as canonicalisation keeps them.
    content_fields: Vec<(String, Vec<u8>)>,
}

/// Splits the root header fields into outer ones (protected or not, a protected field that
/// is not 7-bit clean RFC 2047-encoded) and Content-* ones; MIME-Version is dropped, and
/// `sender_set` replaces the first Sender or follows From.
fn root_fields(
    raw: &[u8],
    root_headers: &[Header<'_>],
    sender_set: Option<&str>,
) -> Result<RootFields, SignError> {
    let mut fields: Vec<OuterField> = Vec::new();
    let sender = root_headers.iter().find(|h| h.name == HeaderName::Sender);
    let mut content_fields: Vec<(String, Vec<u8>)> = Vec::new();
    let mut sender_written = false;
    for header in root_headers {
        let range = (header.offset_field as usize).min(raw.len())
            ..(header.offset_end as usize).min(raw.len());
        let field = &raw[range];
        let Some(name) = canon::field_name(field) else {
            continue;
        };
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("content-") {
            if lower == "content-type" || lower == "content-transfer-encoding" {
                content_fields.retain(|(n, _)| *n != lower);
            }
            content_fields.push((lower, crlf(field)));
            continue;
        }
        if lower == "mime-version" {
            continue;
        }
        if header.name == HeaderName::Sender {
            if sender_written {
                continue;
            }
            if let Some(address) = sender_set {
                fields.push(OuterField {
                    bytes: format!("Sender: {address}\r\n").into_bytes(),
                    protected: true,
                });
                sender_written = true;
                continue;
            }
        }
        let protected = is_protected(name);
        let bytes = if protected && !canon::is_canonical(&crlf(field)) {
            let value = canon::field_value(field);
            canon::encode_field(name, &header.name, &header.value, &value)?
        } else {
            crlf(field)
        };
        fields.push(OuterField { bytes, protected });
        if header.name == HeaderName::From && !sender_written && sender.is_none() {
            if let Some(address) = sender_set {
                fields.push(OuterField {
                    bytes: format!("Sender: {address}\r\n").into_bytes(),
                    protected: true,
                });
                sender_written = true;
            }
        }
    }
    Ok(RootFields {
        outer: fields,
        content_fields,
    })
}

/// Writes the `multipart/signed` message: the outer fields, the canonical entity `plan`
/// makes of `raw`, and the detached CMS signature over it.
fn multipart_signed(
    fields: &[OuterField],
    plan: canon::Canonical,
    raw: &[u8],
    identity: &SigningIdentity,
    signing_time: OffsetDateTime,
    sender_set: Option<String>,
) -> Result<SignedMessage, SignError> {
    let algorithm = identity.algorithm();
    let digest_alg = algorithm.digest();
    // Outer header section and the start of the multipart/signed.
    let mut out = Vec::with_capacity(plan.len_hint() + 16 * 1024);
    for f in fields {
        out.extend_from_slice(&f.bytes);
    }
    let mut boundary = new_boundary()?;
    out.extend_from_slice(b"MIME-Version: 1.0\r\n");
    out.extend_from_slice(
        format!(
            "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";\r\n micalg={}; boundary=\"",
            digest_alg.micalg()
        )
        .as_bytes(),
    );
    let mut boundary_at = vec![out.len()];
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(
        b"\"\r\n\r\nThis is a cryptographically signed message in MIME format.\r\n\r\n--",
    );
    boundary_at.push(out.len());
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"\r\n");

    // The signed entity.
    let start = out.len();
    plan.write(raw, &mut out);
    drop(plan);
    let signed_entity = start..out.len();
    while contains_delimiter(&out[signed_entity.clone()], boundary.as_bytes()) {
        boundary = new_boundary()?;
        for &at in &boundary_at {
            out[at..at + boundary.len()].copy_from_slice(boundary.as_bytes());
        }
    }

    let entity = &out[signed_entity.clone()];
    let sha256 = ring::digest::digest(&ring::digest::SHA256, entity);
    let message_digest = match digest_alg {
        DigestAlgorithm::Sha256 => sha256.as_ref().to_vec(),
        other => ring::digest::digest(other.ring(), entity).as_ref().to_vec(),
    };
    let cms = signed_data(identity, algorithm, &message_digest, signing_time, None)?;

    out.extend_from_slice(b"\r\n--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(
        b"\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=smime.p7s\r\n\
Content-Description: S/MIME Cryptographic Signature\r\n\r\n",
    );
    canon::write_base64(&cms, &mut out);
    out.extend_from_slice(b"--");
    out.extend_from_slice(boundary.as_bytes());
    out.extend_from_slice(b"--\r\n");

    Ok(SignedMessage {
        bytes: out,
        digest_sha256_hex: hex::encode(sha256.as_ref()),
        signer_serial_hex: identity.serial_hex().to_string(),
        micalg: digest_alg.micalg(),
        signed_entity,
        sender_set,
        opaque: false,
    })
}

/// A fresh boundary: `=_` cannot occur in quoted-printable or base64 text.
fn new_boundary() -> Result<String, SignError> {
    let mut random = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| SignError::Signature)?;
    Ok(format!("=_congvan_{}", hex::encode(random)))
}

/// Whether `--boundary` occurs anywhere in `entity` (even mid-line, as lenient parsers match).
fn contains_delimiter(entity: &[u8], boundary: &[u8]) -> bool {
    let n = boundary.len() + 2;
    if entity.len() < n {
        return false;
    }
    (0..=entity.len() - n)
        .any(|i| entity[i] == b'-' && entity[i + 1] == b'-' && &entity[i + 2..i + n] == boundary)
}
