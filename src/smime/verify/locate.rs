//! Where the signature is: the signed entity and its CMS at the top of the body, or why the
//! body is not (wholly) signed; and the transfer encodings a multipart may have.

use std::borrow::Cow;

use super::Failure;
use crate::smime::mime_walk::{self, ContentType, Entity, MimeError};

/// The signed content and its CMS, located in the message.
pub(super) struct Located<'a> {
    /// The CMS bytes (decoded from base64).
    pub(super) cms: Vec<u8>,
    /// For `multipart/signed`: the signed entity, canonicalised to CRLF.
    pub(super) detached: Option<Cow<'a, [u8]>>,
}

/// RFC 2045 §6.4: a multipart (and a `message/rfc822`, which congvan looks into) may only be
/// 7bit, 8bit or binary; one "encoded" otherwise is read as a multipart by some readers and
/// as an opaque blob by others. Walks the whole tree iteratively, within the walk limits.
pub(super) fn check_multipart_encodings(root: &Entity<'_>) -> Result<(), Failure> {
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
pub(super) fn locate<'a>(root: &Entity<'a>, ct: &ContentType) -> Result<Located<'a>, Failure> {
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
