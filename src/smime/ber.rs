//! A small, bounded BER reader for the CMS that arrives from other offices.
//!
//! Why not decode CMS into typed structures and re-encode? A verifier must work on the bytes
//! as received: the signed attributes are hashed exactly as transmitted (a decoder that sorts
//! SET OF would change them), certificates are handed to the path validator unchanged, and
//! `openssl smime -sign` writes BER with indefinite lengths and constructed OCTET STRINGs.
//! This reader only splits tag-length-value elements and keeps slices of the input; it never
//! allocates except to join the chunks of a constructed OCTET STRING. Nesting is bounded, so
//! hostile input cannot exhaust the stack.

/// The deepest nesting accepted (a CMS SignedData needs about 10).
pub const MAX_DEPTH: usize = 40;

/// Why BER input could not be read. Always about the input, never a caller bug.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BerError {
    #[error("truncated BER element")]
    Truncated,
    #[error("BER length is not supported (more than 4 length octets, or reserved form)")]
    BadLength,
    #[error("high tag numbers are not used by CMS")]
    HighTag,
    #[error("indefinite length on a primitive element")]
    IndefinitePrimitive,
    #[error("BER nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
    #[error("expected {expected}, found tag 0x{found:02x}")]
    Unexpected { expected: &'static str, found: u8 },
    #[error("missing {0}")]
    Missing(&'static str),
}

/// One element: its identifier octet, the content octets (without the end-of-contents
/// octets of an indefinite length), and the whole encoding.
#[derive(Debug, Clone, Copy)]
pub struct Tlv<'a> {
    pub tag: u8,
    pub content: &'a [u8],
    pub raw: &'a [u8],
    /// Whether the length was written in definite form.
    pub definite: bool,
}

pub const SEQUENCE: u8 = 0x30;
pub const SET: u8 = 0x31;
pub const OID: u8 = 0x06;
pub const INTEGER: u8 = 0x02;
pub const OCTET_STRING: u8 = 0x04;
pub const BIT_STRING: u8 = 0x03;
/// `[0]` constructed (EXPLICIT, or IMPLICIT of a constructed type).
pub const CTX0: u8 = 0xa0;
/// `[1]` constructed.
pub const CTX1: u8 = 0xa1;
/// `[2]` constructed.
pub const CTX2: u8 = 0xa2;
/// `[3]` constructed.
pub const CTX3: u8 = 0xa3;
/// `[0]` primitive (IMPLICIT of a primitive type, e.g. SubjectKeyIdentifier).
pub const CTX0_PRIM: u8 = 0x80;

impl<'a> Tlv<'a> {
    pub fn is_constructed(&self) -> bool {
        self.tag & 0x20 != 0
    }

    /// The children of a constructed element.
    pub fn children(&self) -> Result<Vec<Tlv<'a>>, BerError> {
        children_at(self.content, 1)
    }

    /// Fails unless the tag is `tag`.
    pub fn expect(self, tag: u8, what: &'static str) -> Result<Tlv<'a>, BerError> {
        if self.tag == tag {
            Ok(self)
        } else {
            Err(BerError::Unexpected {
                expected: what,
                found: self.tag,
            })
        }
    }

    /// The value of an OCTET STRING, joining the chunks of a constructed (BER) one.
    pub fn octets(&self) -> Result<Vec<u8>, BerError> {
        let mut out = Vec::with_capacity(self.content.len());
        collect_octets(self, &mut out, 0)?;
        Ok(out)
    }
}

fn collect_octets(t: &Tlv<'_>, out: &mut Vec<u8>, depth: usize) -> Result<(), BerError> {
    if depth > MAX_DEPTH {
        return Err(BerError::TooDeep);
    }
    if !t.is_constructed() {
        out.extend_from_slice(t.content);
        return Ok(());
    }
    for c in children_at(t.content, depth + 1)? {
        if c.tag & 0x1f != OCTET_STRING {
            return Err(BerError::Unexpected {
                expected: "an OCTET STRING chunk",
                found: c.tag,
            });
        }
        collect_octets(&c, out, depth + 1)?;
    }
    Ok(())
}

/// Reads exactly one element that fills `input`.
pub fn parse_single(input: &[u8]) -> Result<Tlv<'_>, BerError> {
    let (t, rest) = parse_at(input, 0)?;
    // Trailing zero padding after an indefinite-length ContentInfo is common; other trailing
    // bytes are not ours to interpret.
    if rest.iter().any(|&b| b != 0) {
        return Err(BerError::Unexpected {
            expected: "end of data",
            found: rest[0],
        });
    }
    Ok(t)
}

/// Reads one element from the start of `input`; returns it and the rest.
pub fn parse(input: &[u8]) -> Result<(Tlv<'_>, &[u8]), BerError> {
    parse_at(input, 0)
}

fn children_at(mut content: &[u8], depth: usize) -> Result<Vec<Tlv<'_>>, BerError> {
    let mut out = Vec::new();
    while !content.is_empty() {
        let (t, rest) = parse_at(content, depth)?;
        out.push(t);
        content = rest;
    }
    Ok(out)
}

fn parse_at(input: &[u8], depth: usize) -> Result<(Tlv<'_>, &[u8]), BerError> {
    if depth > MAX_DEPTH {
        return Err(BerError::TooDeep);
    }
    let tag = *input.first().ok_or(BerError::Truncated)?;
    if tag & 0x1f == 0x1f {
        return Err(BerError::HighTag);
    }
    let first = *input.get(1).ok_or(BerError::Truncated)?;
    let mut pos = 2usize;
    if first == 0x80 {
        // Indefinite length: children up to the end-of-contents octets.
        if tag & 0x20 == 0 {
            return Err(BerError::IndefinitePrimitive);
        }
        let start = pos;
        loop {
            let rest = input.get(pos..).ok_or(BerError::Truncated)?;
            if rest.len() < 2 {
                return Err(BerError::Truncated);
            }
            if rest[0] == 0 && rest[1] == 0 {
                let t = Tlv {
                    tag,
                    content: &input[start..pos],
                    raw: &input[..pos + 2],
                    definite: false,
                };
                return Ok((t, &input[pos + 2..]));
            }
            let (child, after) = parse_at(rest, depth + 1)?;
            pos += child.raw.len();
            debug_assert_eq!(input.len() - pos, after.len());
        }
    }
    let len = if first < 0x80 {
        first as usize
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || first == 0xff {
            return Err(BerError::BadLength);
        }
        let bytes = input.get(2..2 + n).ok_or(BerError::Truncated)?;
        pos += n;
        bytes.iter().fold(0usize, |acc, &b| (acc << 8) | b as usize)
    };
    let end = pos.checked_add(len).ok_or(BerError::BadLength)?;
    if end > input.len() {
        return Err(BerError::Truncated);
    }
    Ok((
        Tlv {
            tag,
            content: &input[pos..end],
            raw: &input[..end],
            definite: true,
        },
        &input[end..],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definite_and_indefinite() {
        // SEQUENCE (indefinite) { INTEGER 5, OCTET STRING (constructed, indefinite) { "ab", "c" } }
        let ber = [
            0x30, 0x80, 0x02, 0x01, 0x05, 0x24, 0x80, 0x04, 0x02, b'a', b'b', 0x04, 0x01, b'c',
            0x00, 0x00, 0x00, 0x00,
        ];
        let t = parse_single(&ber).unwrap();
        assert!(!t.definite);
        let c = t.children().unwrap();
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].content, &[5]);
        assert_eq!(c[1].octets().unwrap(), b"abc");
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        for bad in [
            &[][..],
            &[0x30],
            &[0x30, 0x85, 1, 2, 3, 4, 5],
            &[0x30, 0x82, 0xff],
            &[0x04, 0x80, 0, 0],
            &[0x1f, 0x01, 0x00],
            &[0x30, 0x03, 0x02, 0x05],
        ] {
            assert!(parse_single(bad).is_err(), "{bad:?}");
        }
        let deep: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], 200).flatten().collect();
        assert_eq!(parse_single(&deep).unwrap_err(), BerError::TooDeep);
    }

    /// Nested CMS at 10 and 1,000 times [`MAX_DEPTH`]: indefinite-length SEQUENCEs,
    /// constructed OCTET STRINGs (BER chunks inside chunks) and definite lengths read on
    /// demand all end in an error.
    #[test]
    fn nesting_at_10_and_1000_times_the_limit() {
        for n in [10 * MAX_DEPTH, 1000 * MAX_DEPTH] {
            let mut seq: Vec<u8> = std::iter::repeat_n([0x30u8, 0x80], n).flatten().collect();
            seq.extend(std::iter::repeat_n(0u8, 2 * n));
            assert_eq!(parse_single(&seq).unwrap_err(), BerError::TooDeep, "{n}");

            // OCTET STRING (constructed, indefinite) { OCTET STRING (constructed) { ... "x" } }
            let mut chunks: Vec<u8> = std::iter::repeat_n([0x24u8, 0x80], n).flatten().collect();
            chunks.extend_from_slice(&[0x04, 0x01, b'x']);
            chunks.extend(std::iter::repeat_n(0u8, 2 * n));
            assert_eq!(parse_single(&chunks).unwrap_err(), BerError::TooDeep);

            // Definite lengths: the outer element parses (its content is not read), and
            // walking down child by child stops at the limit.
            let mut def = vec![0x04, 0x01, b'x'];
            for _ in 0..n {
                let len = def.len();
                let mut outer = vec![0x24, 0x84];
                outer.extend_from_slice(&(len as u32).to_be_bytes());
                outer.extend_from_slice(&def);
                def = outer;
            }
            let t = parse_single(&def).unwrap();
            assert_eq!(t.octets().unwrap_err(), BerError::TooDeep);
        }
    }
}
