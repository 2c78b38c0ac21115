//! Certificate names and serial numbers as congvan writes them: RFC 4514 distinguished names
//! (UTF-8, or ASCII with escapes for header fields) and serials in lower-case hex.

use x509_parser::asn1_rs::{Tag, ToDer};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Formats a serial number (the INTEGER's content octets) as lower-case hex without the sign
/// padding byte, the form congvan writes in registers and Authentication-Results.
pub fn serial_hex(raw: &[u8]) -> String {
    let start = raw
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(raw.len().saturating_sub(1));
    hex::encode(&raw[start..])
}

/// Formats a distinguished name as an RFC 4514 string: RDNs in reverse order, separated by
/// `,`; multi-valued RDNs joined with `+`; special characters escaped. With `ascii_only`, every
/// non-ASCII character is written as `\XX` escapes of its UTF-8 bytes (RFC 4514 §2.4), for
/// header fields that must stay ASCII.
pub fn name_to_rfc4514(name: &X509Name<'_>, ascii_only: bool) -> String {
    let rdns: Vec<_> = name.iter().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            write_atv(&mut out, atv, ascii_only);
        }
    }
    out
}

fn write_atv(out: &mut String, atv: &AttributeTypeAndValue<'_>, ascii_only: bool) {
    let oid = atv.attr_type().to_id_string();
    let short = match oid.as_str() {
        // RFC 4514 §3
        "2.5.4.3" => Some("CN"),
        "2.5.4.7" => Some("L"),
        "2.5.4.8" => Some("ST"),
        "2.5.4.10" => Some("O"),
        "2.5.4.11" => Some("OU"),
        "2.5.4.6" => Some("C"),
        "2.5.4.9" => Some("STREET"),
        "0.9.2342.19200300.100.1.25" => Some("DC"),
        "0.9.2342.19200300.100.1.1" => Some("UID"),
        // registered LDAP descriptors (RFC 4519, RFC 3280) common in Vietnamese certificates
        "2.5.4.5" => Some("serialNumber"),
        "2.5.4.4" => Some("SN"),
        "2.5.4.42" => Some("GN"),
        "2.5.4.12" => Some("title"),
        "2.5.4.97" => Some("organizationIdentifier"),
        "1.2.840.113549.1.9.1" => Some("emailAddress"),
        _ => None,
    };
    let value = attribute_string(atv);
    match (short, value) {
        (Some(short), Some(value)) => {
            out.push_str(short);
            out.push('=');
            escape_rfc4514_value(out, &value, ascii_only);
        }
        (short, _) => {
            out.push_str(short.unwrap_or(&oid));
            out.push_str("=#");
            match atv.attr_value().to_der_vec() {
                Ok(der) => out.push_str(&hex::encode(der)),
                Err(_) => out.push_str(&hex::encode(atv.attr_value().as_bytes())),
            }
        }
    }
}

/// Decodes the directory string types found in names; `None` for anything else.
pub(super) fn attribute_string(atv: &AttributeTypeAndValue<'_>) -> Option<String> {
    let any = atv.attr_value();
    let data = any.as_bytes();
    match any.tag() {
        Tag::Utf8String
        | Tag::PrintableString
        | Tag::Ia5String
        | Tag::NumericString
        | Tag::VisibleString => std::str::from_utf8(data).ok().map(str::to_string),
        // T.61 in practice carries Latin-1.
        Tag::TeletexString => Some(data.iter().map(|&b| b as char).collect()),
        Tag::BmpString => {
            if data.len() % 2 != 0 {
                return None;
            }
            let units: Vec<u16> = data
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        Tag::UniversalString => {
            if data.len() % 4 != 0 {
                return None;
            }
            data.chunks_exact(4)
                .map(|c| char::from_u32(u32::from_be_bytes([c[0], c[1], c[2], c[3]])))
                .collect()
        }
        _ => None,
    }
}

fn escape_rfc4514_value(out: &mut String, value: &str, ascii_only: bool) {
    let count = value.chars().count();
    for (i, c) in value.chars().enumerate() {
        match c {
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == count => out.push_str("\\ "),
            c if c.is_ascii_control() => out.push_str(&format!("\\{:02X}", c as u8)),
            c if ascii_only && !c.is_ascii() => {
                let mut buf = [0u8; 4];
                for b in c.encode_utf8(&mut buf).bytes() {
                    out.push_str(&format!("\\{b:02X}"));
                }
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pki::testpki;
    use x509_parser::certificate::X509Certificate;
    use x509_parser::prelude::FromDer;

    #[test]
    fn rfc4514_escaping_and_ascii_form() {
        let pki = testpki::shared();
        let (_, cert) = X509Certificate::from_der(&pki.rsa2048.cert_der).unwrap();
        let ascii = name_to_rfc4514(cert.subject(), true);
        assert!(ascii.is_ascii());
        assert!(
            ascii.starts_with("CN=V\\C4\\83n th\\C6\\B0 UBND"),
            "{ascii}"
        );
        let mut out = String::new();
        escape_rfc4514_value(&mut out, "#a, b+c ", false);
        assert_eq!(out, "\\#a\\, b\\+c\\ ");
    }

    #[test]
    fn serial_hex_strips_sign_byte() {
        assert_eq!(serial_hex(&[0x00, 0x8f, 0x01]), "8f01");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0x01]), "01");
    }
}
