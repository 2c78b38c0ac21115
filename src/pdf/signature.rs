//! The signatures a PDF carries, found through its form fields (`/AcroForm /Fields`, fields
//! of type `/Sig` with a value), and the byte-level checks of each: the ByteRange and the
//! `/Contents` gap it leaves.

use lopdf::{Dictionary, Document, Object, ObjectId};

/// A signature dictionary and the field that holds it.
#[derive(Clone, PartialEq)]
pub struct FoundSignature {
    /// The field's full name (`/T` of the field and its parents, joined with `.`).
    pub field: String,
    /// The signature dictionary's object.
    pub object: ObjectId,
    /// `/Type /DocTimeStamp` (a document time-stamp, RFC 3161) rather than a signature.
    pub timestamp: bool,
    pub sub_filter: String,
    /// `/Name`: the signer's name as the signing tool wrote it.
    pub name: Option<String>,
    /// `/M`: the signing time as the signing tool wrote it (`D:YYYYMMDDHHmmSS+07'00'`).
    pub time: Option<String>,
    /// The CMS, with the trailing zero padding of the reserved space removed.
    pub contents: Vec<u8>,
    pub byte_range: Option<[usize; 4]>,
    /// The widget's page and rectangle, when the signature is visible (a non-empty `/Rect`).
    pub widget: Option<(ObjectId, [f32; 4])>,
}

impl std::fmt::Debug for FoundSignature {
    /// The CMS by its length: a test failure should show what was found, not kilobytes.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FoundSignature")
            .field("field", &self.field)
            .field("object", &self.object)
            .field("timestamp", &self.timestamp)
            .field("sub_filter", &self.sub_filter)
            .field("name", &self.name)
            .field("time", &self.time)
            .field("contents_len", &self.contents.len())
            .field("byte_range", &self.byte_range)
            .field("widget", &self.widget)
            .finish()
    }
}

/// Why a signature's bytes do not hold together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ByteRangeError {
    #[error("the signature has no usable /ByteRange")]
    Missing,
    #[error("the /ByteRange does not start at byte 0 or is not in order")]
    Shape,
    #[error("the /ByteRange goes beyond the end of the file")]
    BeyondEnd,
    #[error("the gap the /ByteRange leaves is not exactly the signature's /Contents")]
    Gap,
    #[error("the signature dictionary is not where the /ByteRange says")]
    Misplaced,
    #[error("the signed bytes do not end at the end of a revision (%%EOF)")]
    NotARevision,
}

/// Walks `/AcroForm /Fields` (and `/Kids`), at most `max_depth` levels, and returns every
/// field of type `/Sig` that has a signature dictionary as its value.
pub fn find_signatures(doc: &Document, max_depth: usize) -> Vec<FoundSignature> {
    let mut out = Vec::new();
    let Ok(catalog) = doc.catalog() else {
        return out;
    };
    let Some(form) = deref_dict(doc, catalog.get(b"AcroForm").ok()) else {
        return out;
    };
    let Some(Object::Array(fields)) = deref(doc, form.get(b"Fields").ok()) else {
        return out;
    };
    let mut seen = std::collections::HashSet::new();
    for f in fields {
        walk(doc, f, "", None, max_depth, &mut seen, &mut out);
    }
    out
}

fn walk(
    doc: &Document,
    node: &Object,
    parent_name: &str,
    inherited_ft: Option<&[u8]>,
    depth: usize,
    seen: &mut std::collections::HashSet<ObjectId>,
    out: &mut Vec<FoundSignature>,
) {
    if depth == 0 {
        return;
    }
    if let Object::Reference(id) = node {
        if !seen.insert(*id) {
            return;
        }
    }
    let Some(dict) = deref_dict(doc, Some(node)) else {
        return;
    };
    let partial = dict
        .get(b"T")
        .ok()
        .and_then(|t| t.as_str().ok())
        .map(text_string);
    let name = match (parent_name.is_empty(), partial) {
        (_, None) => parent_name.to_string(),
        (true, Some(p)) => p,
        (false, Some(p)) => format!("{parent_name}.{p}"),
    };
    let ft = dict
        .get(b"FT")
        .ok()
        .and_then(|o| o.as_name().ok())
        .or(inherited_ft);
    if let Ok(Object::Array(kids)) = dict.get(b"Kids").map(|k| deref(doc, Some(k)).unwrap_or(k)) {
        for kid in kids {
            walk(doc, kid, &name, ft, depth - 1, seen, out);
        }
    }
    if ft != Some(b"Sig") {
        return;
    }
    let Ok(v) = dict.get(b"V") else {
        return;
    };
    let (Some(object), Some(sig)) = (v.as_reference().ok(), deref_dict(doc, Some(v))) else {
        return;
    };
    let string = |key: &[u8]| {
        sig.get(key)
            .ok()
            .and_then(|o| o.as_str().ok())
            .map(text_string)
    };
    let name_of = |key: &[u8]| {
        sig.get(key)
            .ok()
            .and_then(|o| o.as_name().ok())
            .map(|n| String::from_utf8_lossy(n).into_owned())
    };
    let mut contents = sig
        .get(b"Contents")
        .ok()
        .and_then(|o| o.as_str().ok())
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    // The reserved space is padded with zeros after the DER.
    if let Some(end) = der_length(&contents) {
        contents.truncate(end);
    }
    out.push(FoundSignature {
        field: name,
        object,
        timestamp: name_of(b"Type").as_deref() == Some("DocTimeStamp"),
        sub_filter: name_of(b"SubFilter").unwrap_or_default(),
        name: string(b"Name"),
        time: string(b"M"),
        contents,
        byte_range: byte_range(sig),
        widget: widget(doc, node, dict),
    });
}

/// The page and rectangle of a field that is its own widget, when it is visible: its page
/// is `/P` when that names a page of the document, else the page whose `/Annots` lists it
/// (`/P` is optional).
fn widget(doc: &Document, node: &Object, field: &Dictionary) -> Option<(ObjectId, [f32; 4])> {
    let listed_on = |page: &ObjectId| {
        let annots = doc.get_dictionary(*page).ok()?.get(b"Annots").ok()?;
        let Some(Object::Array(a)) = deref(doc, Some(annots)) else {
            return None;
        };
        Some(a.iter().any(|o| o == node))
    };
    let named = field.get(b"P").and_then(Object::as_reference).ok();
    let page = doc
        .page_iter()
        .find(|p| Some(*p) == named)
        .or_else(|| match node {
            Object::Reference(_) => doc.page_iter().find(|p| listed_on(p) == Some(true)),
            _ => None,
        })?;
    let rect = match deref(doc, field.get(b"Rect").ok())? {
        Object::Array(r) if r.len() == 4 => r,
        _ => return None,
    };
    let mut v = [0f32; 4];
    for (slot, o) in v.iter_mut().zip(rect) {
        *slot = o.as_float().ok()?;
    }
    let [x1, y1, x2, y2] = v;
    ((x2 - x1).abs() > 0.5 && (y2 - y1).abs() > 0.5).then_some((page, v))
}

fn byte_range(sig: &Dictionary) -> Option<[usize; 4]> {
    let Ok(Object::Array(a)) = sig.get(b"ByteRange") else {
        return None;
    };
    if a.len() != 4 {
        return None;
    }
    let mut out = [0usize; 4];
    for (slot, o) in out.iter_mut().zip(a) {
        *slot = usize::try_from(o.as_i64().ok()?).ok()?;
    }
    Some(out)
}

/// The length of the DER (or definite-length BER) element at the start of `b`, when it
/// fits in `b`; `None` for an indefinite length (nothing is cut then).
fn der_length(b: &[u8]) -> Option<usize> {
    let first = *b.get(1)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let mut len = 0usize;
        for i in 0..n {
            len = (len << 8) | usize::from(*b.get(2 + i)?);
        }
        (len, 2 + n)
    };
    let end = header.checked_add(len)?;
    (end <= b.len()).then_some(end)
}

/// Checks the ByteRange of `sig` against the file: `[0, a, b, c]` with `a < b`, the gap
/// `a..b` exactly `<hex>` of this dictionary's `/Contents` inside this dictionary's own
/// object, and the signed bytes ending at the end of a revision. Returns the end of the
/// signed bytes (`b + c`).
pub fn check_byte_range(
    file: &[u8],
    doc: &Document,
    sig: &FoundSignature,
) -> Result<usize, ByteRangeError> {
    let [start, a, b, c] = sig.byte_range.ok_or(ByteRangeError::Missing)?;
    if start != 0 || a == 0 || b <= a + 1 {
        return Err(ByteRangeError::Shape);
    }
    let end = b.checked_add(c).ok_or(ByteRangeError::BeyondEnd)?;
    if end > file.len() {
        return Err(ByteRangeError::BeyondEnd);
    }
    if file[a] != b'<' || file[b - 1] != b'>' {
        return Err(ByteRangeError::Gap);
    }
    let gap = &file[a + 1..b - 1];
    let decoded = decode_hex(gap).ok_or(ByteRangeError::Gap)?;
    let raw_contents = doc
        .get_object(sig.object)
        .ok()
        .and_then(|o| o.as_dict().ok())
        .and_then(|d| d.get(b"Contents").ok())
        .and_then(|o| o.as_str().ok())
        .ok_or(ByteRangeError::Gap)?;
    if decoded != raw_contents {
        return Err(ByteRangeError::Gap);
    }
    // The signature dictionary's own object holds the gap: it starts before `a` (at the
    // offset the cross-reference table gives) and does not end before `b`.
    match doc.reference_table.get(sig.object.0) {
        Some(lopdf::xref::XrefEntry::Normal { offset, .. }) => {
            let offset = *offset as usize;
            if offset >= a || find(&file[offset..a], b"endobj").is_some() {
                return Err(ByteRangeError::Misplaced);
            }
        }
        _ => return Err(ByteRangeError::Misplaced),
    }
    if !ends_revision(&file[..end]) {
        return Err(ByteRangeError::NotARevision);
    }
    Ok(end)
}

/// Whether `prefix` ends with `%%EOF` and at most an end of line after it.
pub fn ends_revision(prefix: &[u8]) -> bool {
    let trimmed = prefix
        .strip_suffix(b"\r\n")
        .or_else(|| prefix.strip_suffix(b"\n"))
        .or_else(|| prefix.strip_suffix(b"\r"))
        .unwrap_or(prefix);
    trimmed.ends_with(b"%%EOF")
}

/// Whether everything after `end` is white space (some tools end a file with a newline
/// after the signed `%%EOF`).
pub fn only_whitespace_after(file: &[u8], end: usize) -> bool {
    file.get(end..)
        .is_some_and(|rest| rest.iter().all(|b| matches!(b, b'\r' | b'\n' | b' ' | 0)))
}

fn decode_hex(hex: &[u8]) -> Option<Vec<u8>> {
    let digits: Vec<u8> = hex
        .iter()
        .copied()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|p| {
            let hi = (p[0] as char).to_digit(16)?;
            let lo = (p[1] as char).to_digit(16)?;
            Some((hi * 16 + lo) as u8)
        })
        .collect()
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

pub(crate) fn deref<'a>(doc: &'a Document, o: Option<&'a Object>) -> Option<&'a Object> {
    doc.dereference(o?).ok().map(|(_, o)| o)
}

pub(crate) fn deref_dict<'a>(doc: &'a Document, o: Option<&'a Object>) -> Option<&'a Dictionary> {
    deref(doc, o)?.as_dict().ok()
}

/// A PDF text string: UTF-16BE with its byte-order mark, UTF-8 with its mark, or
/// PDFDocEncoding (read as Latin-1, which it equals for the letters names use).
pub(crate) fn text_string(b: &[u8]) -> String {
    if let Some(rest) = b.strip_prefix(&[0xfe, 0xff]) {
        let units: Vec<u16> = rest
            .chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else if let Some(rest) = b.strip_prefix(&[0xef, 0xbb, 0xbf]) {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        b.iter().map(|&c| c as char).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn der_length_cuts_the_padding() {
        assert_eq!(der_length(&[0x30, 0x03, 1, 2, 3, 0, 0, 0]), Some(5));
        assert_eq!(der_length(&[0x30, 0x82, 0x00, 0x02, 1, 2, 0]), Some(6));
        assert_eq!(der_length(&[0x30, 0x80, 1, 2]), None);
        assert_eq!(der_length(&[0x30, 0x05, 1]), None);
        assert_eq!(der_length(&[]), None);
    }

    #[test]
    fn revision_ends() {
        assert!(ends_revision(b"...%%EOF"));
        assert!(ends_revision(b"...%%EOF\r\n"));
        assert!(ends_revision(b"...%%EOF\n"));
        assert!(!ends_revision(b"...%%EOF\n\n"));
        assert!(!ends_revision(b"...%%EO"));
    }

    #[test]
    fn hex_and_text() {
        assert_eq!(decode_hex(b"30 0a\nff"), Some(vec![0x30, 0x0a, 0xff]));
        assert_eq!(decode_hex(b"3"), None);
        assert_eq!(decode_hex(b"zz"), None);
        assert_eq!(text_string(&[0xfe, 0xff, 0x00, 0x41, 0x1e, 0xa1]), "Aạ");
        assert_eq!(text_string(b"Sig 1"), "Sig 1");
    }
}
