//! The transfer encodings the canonical form writes: CRLF line endings, quoted-printable (and
//! its lenient decoding), base64 and re-wrapped base64, in 76-column lines.

use base64::Engine as _;

/// Copies `src`, turning bare LF into CRLF.
pub(super) fn write_crlf(src: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    while let Some(pos) = src[start..].iter().position(|&b| b == b'\n') {
        let line = &src[start..start + pos];
        out.extend_from_slice(line);
        if line.last() != Some(&b'\r') {
            out.push(b'\r');
        }
        out.push(b'\n');
        start += pos + 1;
    }
    out.extend_from_slice(&src[start..]);
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Quoted-printable (RFC 2045 §6.7) for text: LF and CRLF are hard line breaks written as
/// CRLF; a lone CR is encoded; lines are soft-broken at 76 columns; trailing white space and a
/// leading `From ` or `.` are encoded so that no transport alters them.
pub(super) fn write_quoted_printable(src: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < src.len() {
        // One input line, without its line break.
        let end = src[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(src.len(), |p| i + p);
        let has_break = end < src.len();
        let mut line = &src[i..end];
        if has_break && line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let mut column = 0;
        for (j, &b) in line.iter().enumerate() {
            let last = j + 1 == line.len();
            let literal = match b {
                b'=' => false,
                b' ' | b'\t' => !last,
                b'.' if j == 0 => false,
                b'F' if j == 0 && line.starts_with(b"From ") => false,
                // "--" never appears literally, so no boundary can be read in the text.
                b'-' if line.get(j + 1) == Some(&b'-') => false,
                33..=126 => true,
                _ => false,
            };
            let width = if literal { 1 } else { 3 };
            // Leave room for the soft break's "=" (76 columns in all).
            if column + width > 75 {
                out.extend_from_slice(b"=\r\n");
                column = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
            column += width;
        }
        if has_break {
            out.extend_from_slice(b"\r\n");
        }
        i = end + 1;
    }
}

/// Lenient quoted-printable decoding: invalid escapes are kept as written.
pub(super) fn decode_quoted_printable(src: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'A'..=b'F' => Some(b - b'A' + 10),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        if b == b'=' {
            // Soft line break: "=" then optional white space then CRLF or LF.
            let mut j = i + 1;
            while j < src.len() && (src[j] == b' ' || src[j] == b'\t') {
                j += 1;
            }
            if src.get(j) == Some(&b'\n') {
                i = j + 1;
                continue;
            }
            if src.get(j) == Some(&b'\r') && src.get(j + 1) == Some(&b'\n') {
                i = j + 2;
                continue;
            }
            if let (Some(h), Some(l)) = (
                src.get(i + 1).and_then(|&c| hex(c)),
                src.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Base64 in 76-column lines, each ending in CRLF.
pub fn write_base64(src: &[u8], out: &mut Vec<u8>) {
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut buf = [0u8; 76];
    for chunk in src.chunks(57) {
        let n = engine.encode_slice(chunk, &mut buf).unwrap_or(0);
        out.extend_from_slice(&buf[..n]);
        out.extend_from_slice(b"\r\n");
    }
}

pub(super) fn write_rewrapped_base64(src: &[u8], out: &mut Vec<u8>) {
    let mut column = 0;
    for &b in src {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            out.push(b);
            column += 1;
            if column == 76 {
                out.extend_from_slice(b"\r\n");
                column = 0;
            }
        }
    }
    if column > 0 {
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_encoder_limits() {
        let mut out = Vec::new();
        let text = format!("{}é \nFrom here\n.\nend ", "x".repeat(200));
        write_quoted_printable(text.as_bytes(), &mut out);
        for line in out.split(|&b| b == b'\n') {
            assert!(line.len() <= 77, "{:?}", String::from_utf8_lossy(line));
        }
        let s = String::from_utf8(out.clone()).unwrap();
        assert!(
            s.contains("=C3=A9=20\r\n=46rom here\r\n=2E\r\nend=20"),
            "{s}"
        );
        assert_eq!(
            decode_quoted_printable(&out),
            text.replace('\n', "\r\n").as_bytes()
        );
    }
}
