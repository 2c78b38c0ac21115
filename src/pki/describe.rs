//! What is wrong with a file that should hold a certificate, a CRL or a PKCS#12 archive, in
//! words an administrator can act on (not the parser's internals).

/// Why `bytes` is not `expected` (e.g. "a PKCS#12 file"), judged from how the file begins.
pub fn not_what_expected(bytes: &[u8], expected: &str) -> String {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| &bytes[i..])
        .unwrap_or_default();
    if start.is_empty() {
        return format!("the file is empty, not {expected}");
    }
    if let Some(rest) = start.strip_prefix(b"-----BEGIN ") {
        let label: String = rest
            .iter()
            .take_while(|&&b| b != b'-' && b != b'\n')
            .map(|&b| b as char)
            .collect();
        return format!("the file is PEM text with a \"{label}\" block, not {expected}");
    }
    if start[0] != 0x30 {
        let text = start
            .iter()
            .take(64)
            .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
        return if text {
            format!("the file is text, not {expected} (neither PEM nor DER)")
        } else {
            format!("the file is not {expected}: it does not begin as DER or PEM does")
        };
    }
    format!("the file is DER but not {expected}, or it is truncated or damaged")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_the_file_is() {
        let p = |b: &[u8]| not_what_expected(b, "a CRL");
        assert_eq!(p(b""), "the file is empty, not a CRL");
        assert_eq!(
            p(b"-----BEGIN CERTIFICATE-----\nMII"),
            "the file is PEM text with a \"CERTIFICATE\" block, not a CRL"
        );
        assert!(p(b"garbage\n").starts_with("the file is text"));
        assert!(p(&[0x30, 0x03, 0x02]).ends_with("truncated or damaged"));
        assert!(p(&[0xff, 0x00]).contains("does not begin as DER"));
    }
}
