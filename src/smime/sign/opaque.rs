//! The opaque seal (RFC 8551 §3.5.2): a document that carries a signature of its own over 8-bit
//! text is encapsulated in the CMS as it is, instead of being made 7-bit.

use time::OffsetDateTime;

use super::cms::signed_data;
use super::{OuterField, SignError, SignedMessage};
use crate::pki::identity::{DigestAlgorithm, SigningIdentity};
use crate::smime::canon;

/// The root's Content-* fields for the opaque content entity, with `hp="clear"` (RFC 9788)
/// added to Content-Type (which is written first; `text/plain` when there is none).
pub(super) fn write_content_fields(fields: &[(String, Vec<u8>)], out: &mut Vec<u8>) {
    if !fields.iter().any(|(n, _)| n == "content-type") {
        out.extend_from_slice(b"Content-Type: text/plain; charset=us-ascii; hp=\"clear\"\r\n");
    }
    for (name, bytes) in fields {
        if name != "content-type" {
            out.extend_from_slice(bytes);
            continue;
        }
        let mut end = bytes.len();
        while end > 0 && matches!(bytes[end - 1], b'\r' | b'\n' | b' ' | b'\t') {
            end -= 1;
        }
        out.extend_from_slice(&bytes[..end]);
        if !bytes[..end].ends_with(b";") {
            out.push(b';');
        }
        out.extend_from_slice(b"\r\n hp=\"clear\"\r\n");
    }
}

/// Seals `content` (a complete MIME entity, 8-bit allowed) as opaque signed-data under the
/// outer header fields.
pub(super) fn sign_opaque(
    fields: &[OuterField],
    content: &[u8],
    identity: &SigningIdentity,
    signing_time: OffsetDateTime,
    sender_set: Option<String>,
) -> Result<SignedMessage, SignError> {
    let algorithm = identity.algorithm();
    let digest_alg = algorithm.digest();
    let sha256 = ring::digest::digest(&ring::digest::SHA256, content);
    let message_digest = match digest_alg {
        DigestAlgorithm::Sha256 => sha256.as_ref().to_vec(),
        other => ring::digest::digest(other.ring(), content)
            .as_ref()
            .to_vec(),
    };
    let cms = signed_data(
        identity,
        algorithm,
        &message_digest,
        signing_time,
        Some(content),
    )?;
    let mut out = Vec::with_capacity(cms.len() * 4 / 3 + cms.len() / 38 + 4096);
    for f in fields {
        out.extend_from_slice(&f.bytes);
    }
    out.extend_from_slice(
        b"MIME-Version: 1.0\r\n\
Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n\
Content-Transfer-Encoding: base64\r\n\
Content-Disposition: attachment; filename=smime.p7m\r\n\
Content-Description: S/MIME Signed Message\r\n\r\n",
    );
    let start = out.len();
    canon::write_base64(&cms, &mut out);
    let signed_entity = start..out.len();
    Ok(SignedMessage {
        bytes: out,
        digest_sha256_hex: hex::encode(sha256.as_ref()),
        signer_serial_hex: identity.serial_hex().to_string(),
        micalg: digest_alg.micalg(),
        signed_entity,
        sender_set,
        opaque: true,
    })
}
