//! The header fields of the message to seal: which are protected (RFC 9788), the address put
//! in Sender, and reading raw fields (addresses, CRLF, where the body starts).

use crate::pki::identity::SigningIdentity;

/// Header fields carried inside the signed part (RFC 9788), besides every `X-Congvan-*`.
pub const PROTECTED_FIELDS: &[&str] = &[
    "Subject",
    "From",
    "Sender",
    "To",
    "Cc",
    "Reply-To",
    "Date",
    "Message-ID",
    "In-Reply-To",
    "References",
    "Priority",
    "Importance",
    "X-Priority",
];

/// Whether a header field is carried inside the signed part.
pub fn is_protected(name: &str) -> bool {
    let name = name.trim();
    PROTECTED_FIELDS
        .iter()
        .any(|p| p.eq_ignore_ascii_case(name))
        || (name.len() >= 10 && name[..10].eq_ignore_ascii_case("x-congvan-"))
}

/// The identity address to put in Sender: one in the From domain if the seal has it.
pub(super) fn seal_address(identity: &SigningIdentity, from: Option<&str>) -> String {
    let domain = from.and_then(|f| f.rsplit_once('@')).map(|(_, d)| d);
    let emails = identity.email_addresses();
    domain
        .and_then(|d| {
            emails.iter().find(|e| {
                e.rsplit_once('@')
                    .is_some_and(|(_, ed)| ed.eq_ignore_ascii_case(d))
            })
        })
        .or_else(|| emails.first())
        .cloned()
        .unwrap_or_default()
}

/// The addr-specs of an address header field, read as the verifier reads them.
pub(super) fn addresses(raw: &[u8], header: &mail_parser::Header<'_>) -> Vec<String> {
    let value = raw
        .get(header.offset_start as usize..header.offset_end as usize)
        .unwrap_or_default();
    crate::address::parse_address_field(value)
        .mailboxes
        .into_iter()
        .map(|m| m.address)
        .collect()
}

/// Where the body starts: after the first empty line (CRLF or LF), or at the end.
pub(super) fn body_start(raw: &[u8]) -> usize {
    let mut pos = 0usize;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| pos + p + 1)
            .unwrap_or(raw.len());
        if matches!(&raw[pos..end], b"\n" | b"\r\n") {
            return end;
        }
        pos = end;
    }
    raw.len()
}

/// A header field with CRLF line endings and a final CRLF.
pub(super) fn crlf(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len() + 4);
    for (i, &b) in field.iter().enumerate() {
        if b == b'\n' && (i == 0 || field[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out
}
