//! Header fields made 7-bit: RFC 2047 words and RFC 2231 parameters written with mail-builder,
//! and reading a raw field's name and value.

use mail_builder::headers::address::Address as BuilderAddress;
use mail_builder::headers::content_type::ContentType as BuilderContentType;
use mail_builder::headers::text::Text as BuilderText;
use mail_builder::headers::Header as _;
use mail_parser::{Address, ContentType, HeaderName, HeaderValue};

use super::{is_canonical, CanonError};

/// Encodes one header field as 7-bit: RFC 2231 parameters for Content-Type and
/// Content-Disposition, RFC 2047 phrases for addresses, RFC 2047 text otherwise.
pub fn encode_field(
    name: &str,
    header_name: &HeaderName<'_>,
    value: &HeaderValue<'_>,
    raw_value: &str,
) -> Result<Vec<u8>, CanonError> {
    let mut line = format!("{name}: ").into_bytes();
    let column = line.len();
    match (header_name, value) {
        (
            HeaderName::ContentType | HeaderName::ContentDisposition,
            HeaderValue::ContentType(ct),
        ) => {
            builder_content_type(ct, &[]).write_header(&mut line, column);
        }
        (_, HeaderValue::Address(address)) => {
            builder_address(name, address)?.write_header(&mut line, column);
        }
        (_, HeaderValue::Text(text)) => {
            BuilderText::new(text.as_ref()).write_header(&mut line, column)
        }
        _ => BuilderText::new(raw_value).write_header(&mut line, column),
    }
    checked_field(name, line)
}

/// A rewritten field must be canonical; one that is not (a word of over 998 characters that
/// cannot be folded) is refused rather than sent damaged.
pub(super) fn checked_field(name: &str, line: Vec<u8>) -> Result<Vec<u8>, CanonError> {
    if is_canonical(&line) {
        Ok(line)
    } else {
        Err(CanonError::UnfoldableHeader {
            field: name.to_string(),
        })
    }
}

/// Rebuilds a parsed Content-Type/Disposition for mail-builder, which writes parameter values
/// with RFC 2231 when needed. The type and parameter names keep only RFC 2045 token
/// characters; the parameters named in `replaced` are left out (the caller sets them).
pub(super) fn builder_content_type(
    ct: &ContentType<'_>,
    replaced: &[(&str, &str)],
) -> BuilderContentType<'static> {
    /// An RFC 2045 token, or `None`: a damaged name is dropped, never repaired into another.
    fn token(s: &str) -> Option<&str> {
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c));
        ok.then_some(s)
    }
    let full = match (token(ct.ctype()), ct.subtype().map(token)) {
        (Some(t), Some(Some(sub))) => format!("{t}/{sub}"),
        (Some(t), None) => t.to_string(),
        _ => "application/octet-stream".to_string(),
    };
    let mut b = BuilderContentType::new(full);
    for a in ct.attributes().unwrap_or_default() {
        let Some(name) = token(&a.name) else { continue };
        if replaced.iter().any(|(k, _)| name.eq_ignore_ascii_case(k)) {
            continue;
        }
        b = b.attribute(name.to_string(), a.value.to_string());
    }
    b
}

/// Converts a parsed address list for mail-builder, refusing addr-specs that are not printable
/// ASCII (SMTPUTF8 addresses cannot be written in a 7-bit header).
fn builder_address<'a>(
    field: &str,
    address: &'a Address<'_>,
) -> Result<BuilderAddress<'a>, CanonError> {
    let one = |name: Option<&'a str>, email: &'a str| {
        if !email.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(CanonError::UnencodableAddress {
                field: field.to_string(),
                address: email.to_string(),
            });
        }
        Ok(BuilderAddress::new_address(name, email))
    };
    let list = match address {
        Address::List(list) => list
            .iter()
            .map(|a| one(a.name.as_deref(), a.address.as_deref().unwrap_or("")))
            .collect::<Result<Vec<_>, _>>()?,
        Address::Group(groups) => groups
            .iter()
            .map(|g| {
                let members = g
                    .addresses
                    .iter()
                    .map(|a| one(a.name.as_deref(), a.address.as_deref().unwrap_or("")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(BuilderAddress::new_group(g.name.as_deref(), members))
            })
            .collect::<Result<Vec<_>, CanonError>>()?,
    };
    Ok(if list.len() == 1 {
        list.into_iter()
            .next()
            .unwrap_or(BuilderAddress::List(Vec::new()))
    } else {
        BuilderAddress::new_list(list)
    })
}

pub(super) fn attribute<'c>(ct: &'c ContentType<'_>, name: &str) -> Option<&'c str> {
    ct.attributes()?
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_ref())
}

/// The field name as written (before the colon, white space trimmed), or `None` when it is not
/// a valid name (RFC 5322 ftext: printable ASCII except colon); such a field is dropped.
pub fn field_name(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == b':')?;
    let name = std::str::from_utf8(&field[..end])
        .ok()?
        .trim_end_matches([' ', '\t']);
    (!name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b))).then_some(name)
}

/// The unfolded field value (after the colon), lossily decoded as UTF-8.
pub fn field_value(field: &[u8]) -> String {
    let start = field
        .iter()
        .position(|&b| b == b':')
        .map(|p| p + 1)
        .unwrap_or(0);
    let unfolded: Vec<u8> = field[start..]
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    String::from_utf8_lossy(&unfolded).trim().to_string()
}
