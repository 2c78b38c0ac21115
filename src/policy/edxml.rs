//! The edXML part of a message (QCVN 102:2016, the format of the national document hub):
//! finding it among the MIME parts and reading the few fields classification uses from its
//! `MessageHeader`: `Code/CodeNumber`, `Code/CodeNotation`,
//! `PromulgationInfo/PromulgationDate` and `OtherInfo/Priority`.
//!
//! Elements are matched by local name, whatever their namespace prefix (`edXML:` in the
//! standard). Only the `MessageHeader` is read; reading stops at its end, so the base64
//! attachments an edXML envelope may carry after it are never scanned. No DTD or custom
//! entity is expanded.

use mail_parser::{Message, MessagePart, MimeHeaders, PartType};
use quick_xml::events::Event;
use quick_xml::Reader;

/// Raw text of the fields found, trimmed; unknown values are judged by the classifier.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EdxmlFields {
    pub priority: Option<String>,
    pub code_number: Option<String>,
    pub code_notation: Option<String>,
    pub promulgation_date: Option<String>,
}

/// Why an edXML part could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EdxmlError {
    #[error("the edXML part is not well-formed XML: {0}")]
    Malformed(String),
    #[error("the edXML part has no MessageHeader")]
    NoHeader,
}

/// What reading an XML part gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EdxmlPart {
    /// Not an edXML document (another XML attachment): ignored.
    NotEdxml,
    Fields(EdxmlFields),
}

/// Deepest element nesting read (an edXML header is about five deep). The reader is
/// iterative; the bound keeps the element stack small whatever a hostile part holds.
pub const MAX_ELEMENT_DEPTH: usize = crate::nesting::MAX_DEPTH_CEILING;

/// The elements read, as (parent, child) local names.
const PRIORITY: (&[u8], &[u8]) = (b"OtherInfo", b"Priority");
const CODE_NUMBER: (&[u8], &[u8]) = (b"Code", b"CodeNumber");
const CODE_NOTATION: (&[u8], &[u8]) = (b"Code", b"CodeNotation");
const PROMULGATION_DATE: (&[u8], &[u8]) = (b"PromulgationInfo", b"PromulgationDate");

/// Reads an XML document. `named_edxml`: the part's file name ends in `.edxml`, so it is
/// edXML whatever its root element is called; otherwise the root must be `edXMLEnvelope`.
pub fn read(xml: &[u8], named_edxml: bool) -> Result<EdxmlPart, EdxmlError> {
    let mut reader = Reader::from_reader(xml);
    reader.config_mut().trim_text(true);
    let mut stack: Vec<Vec<u8>> = Vec::new();
    let mut fields = EdxmlFields::default();
    // Depth of the MessageHeader element while inside it.
    let mut header_depth: Option<usize> = None;
    let mut seen_root = false;
    let mut seen_header = false;
    let mut text = String::new();
    let malformed = |e: &dyn std::fmt::Display| EdxmlError::Malformed(e.to_string());
    loop {
        let event = match reader.read_event() {
            Ok(e) => e,
            // Before the root element it may not be XML at all (a mislabelled part).
            Err(e) if !seen_root && !named_edxml => {
                tracing::debug!(error = %e, "XML part is not readable: ignored");
                return Ok(EdxmlPart::NotEdxml);
            }
            Err(e) => return Err(malformed(&e)),
        };
        match event {
            Event::Start(start) if !seen_root => {
                seen_root = true;
                let name = start.local_name().as_ref().to_vec();
                if !named_edxml && !name.eq_ignore_ascii_case(b"edXMLEnvelope") {
                    return Ok(EdxmlPart::NotEdxml);
                }
                stack.push(name);
            }
            Event::Empty(start) if !seen_root => {
                seen_root = true;
                if !named_edxml
                    && !start
                        .local_name()
                        .as_ref()
                        .eq_ignore_ascii_case(b"edXMLEnvelope")
                {
                    return Ok(EdxmlPart::NotEdxml);
                }
                break;
            }
            Event::Start(start) => {
                if stack.len() >= MAX_ELEMENT_DEPTH {
                    return Err(EdxmlError::Malformed(format!(
                        "elements nested more than {MAX_ELEMENT_DEPTH} deep"
                    )));
                }
                let name = start.local_name().as_ref().to_vec();
                if header_depth.is_none() && !seen_header && name == b"MessageHeader" {
                    header_depth = Some(stack.len());
                    seen_header = true;
                }
                stack.push(name);
                text.clear();
            }
            Event::Empty(_) => text.clear(),
            Event::Text(t) if header_depth.is_some() => {
                text.push_str(&t.xml10_content().map_err(|e| malformed(&e))?);
            }
            Event::CData(c) if header_depth.is_some() => {
                text.push_str(&c.decode().map_err(|e| malformed(&e))?);
            }
            Event::GeneralRef(r) if header_depth.is_some() => {
                if let Some(ch) = r.resolve_char_ref().map_err(|e| malformed(&e))? {
                    text.push(ch);
                } else {
                    let name = r.decode().map_err(|e| malformed(&e))?;
                    match quick_xml::escape::resolve_predefined_entity(&name) {
                        Some(s) => text.push_str(s),
                        None => {
                            return Err(EdxmlError::Malformed(format!("unknown entity &{name};")))
                        }
                    }
                }
            }
            Event::End(_) => {
                let child = stack.pop();
                if let Some(depth) = header_depth {
                    if stack.len() == depth {
                        // </MessageHeader>: everything needed has been seen.
                        return Ok(EdxmlPart::Fields(fields));
                    }
                    if let (Some(child), Some(parent)) = (child, stack.last()) {
                        let value = text.trim();
                        for (target, slot) in [
                            (PRIORITY, &mut fields.priority),
                            (CODE_NUMBER, &mut fields.code_number),
                            (CODE_NOTATION, &mut fields.code_notation),
                            (PROMULGATION_DATE, &mut fields.promulgation_date),
                        ] {
                            if parent.as_slice() == target.0
                                && child.as_slice() == target.1
                                && slot.is_none()
                                && !value.is_empty()
                            {
                                *slot = Some(value.to_string());
                            }
                        }
                    }
                }
                text.clear();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !seen_root {
        if named_edxml {
            return Err(EdxmlError::Malformed("no root element".into()));
        }
        return Ok(EdxmlPart::NotEdxml);
    }
    if !stack.is_empty() {
        return Err(EdxmlError::Malformed(
            "the document ends inside an element".into(),
        ));
    }
    if !seen_header {
        return Err(EdxmlError::NoHeader);
    }
    Ok(EdxmlPart::Fields(fields))
}

/// The edXML part of `message`, if it has one: the first part whose type is XML
/// (`application/xml`, `text/xml`, `application/*+xml`) or whose file name ends in `.xml` or
/// `.edxml`, and whose root is `edXMLEnvelope` (any root for `.edxml`). Parts of attached
/// messages (a forwarded document) are not this document's and are not looked at.
pub fn find(message: &Message<'_>) -> Option<(usize, Result<EdxmlFields, EdxmlError>)> {
    for (index, part) in message.parts.iter().enumerate() {
        if matches!(part.body, PartType::Multipart(_) | PartType::Message(_)) {
            continue;
        }
        let (xml_type, named_edxml) = xml_kind(part);
        if !xml_type && !named_edxml {
            continue;
        }
        match read(part.contents(), named_edxml) {
            Ok(EdxmlPart::NotEdxml) => continue,
            Ok(EdxmlPart::Fields(f)) => return Some((index, Ok(f))),
            Err(e) => return Some((index, Err(e))),
        }
    }
    None
}

/// (looks like XML, is named `*.edxml`)
fn xml_kind(part: &MessagePart<'_>) -> (bool, bool) {
    let name = part.attachment_name().unwrap_or("").to_ascii_lowercase();
    let named_edxml = name.ends_with(".edxml");
    let typed = part.content_type().is_some_and(|ct| {
        let sub = ct.subtype().unwrap_or("").to_ascii_lowercase();
        matches!(
            ct.ctype().to_ascii_lowercase().as_str(),
            "application" | "text"
        ) && (sub == "xml" || sub.ends_with("+xml") || sub == "edxml")
    });
    (typed || name.ends_with(".xml"), named_edxml)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<edXML:edXMLEnvelope xmlns:edXML="http://www.e-doc.vn/Schema/">
  <edXML:edXMLHeader>
    <edXML:MessageHeader>
      <edXML:From><edXML:OrganId>000.00.00.H26</edXML:OrganId></edXML:From>
      <edXML:Code>
        <edXML:CodeNumber>26</edXML:CodeNumber>
        <edXML:CodeNotation>CT-UBND</edXML:CodeNotation>
      </edXML:Code>
      <edXML:PromulgationInfo>
        <edXML:Place>Hà Đông</edXML:Place>
        <edXML:PromulgationDate>2026-02-13</edXML:PromulgationDate>
      </edXML:PromulgationInfo>
      <edXML:Subject>Về việc A &amp; B</edXML:Subject>
      <edXML:OtherInfo>
        <edXML:Priority>3</edXML:Priority>
      </edXML:OtherInfo>
    </edXML:MessageHeader>
  </edXML:edXMLHeader>
  <edXML:edXMLBody>not even read &undefined;</edXML:edXMLBody>
</edXML:edXMLEnvelope>"#;

    fn fields(xml: &str) -> EdxmlFields {
        match read(xml.as_bytes(), false).unwrap() {
            EdxmlPart::Fields(f) => f,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_the_header_fields() {
        let f = fields(SAMPLE);
        assert_eq!(f.priority.as_deref(), Some("3"));
        assert_eq!(f.code_number.as_deref(), Some("26"));
        assert_eq!(f.code_notation.as_deref(), Some("CT-UBND"));
        assert_eq!(f.promulgation_date.as_deref(), Some("2026-02-13"));
    }

    #[test]
    fn any_prefix_cdata_and_entities() {
        let xml = "<e:edXMLEnvelope xmlns:e=\"x\"><e:MessageHeader><Code><CodeNumber><![CDATA[05]]></CodeNumber><CodeNotation>Q&#272;-UBND</CodeNotation></Code></e:MessageHeader></e:edXMLEnvelope>";
        let f = fields(xml);
        assert_eq!(f.code_number.as_deref(), Some("05"));
        assert_eq!(f.code_notation.as_deref(), Some("QĐ-UBND"));
        assert_eq!(f.priority, None);
    }

    #[test]
    fn elements_outside_their_parent_do_not_count() {
        // A Priority that is not inside OtherInfo, a CodeNumber outside Code.
        let xml = "<edXMLEnvelope><MessageHeader><Priority>3</Priority><CodeNumber>9</CodeNumber></MessageHeader></edXMLEnvelope>";
        assert_eq!(fields(xml), EdxmlFields::default());
        // Outside the MessageHeader.
        let xml = "<edXMLEnvelope><MessageHeader/><OtherInfo><Priority>3</Priority></OtherInfo></edXMLEnvelope>";
        assert_eq!(read(xml.as_bytes(), false), Err(EdxmlError::NoHeader));
    }

    #[test]
    fn other_xml_is_ignored_and_broken_edxml_is_an_error() {
        assert_eq!(
            read(
                b"<invoice><OtherInfo><Priority>3</Priority></OtherInfo></invoice>",
                false
            ),
            Ok(EdxmlPart::NotEdxml)
        );
        assert_eq!(read(b"not xml at all", false), Ok(EdxmlPart::NotEdxml));
        assert!(matches!(
            read(
                b"<edXMLEnvelope><MessageHeader><Code></MessageHeader>",
                false
            ),
            Err(EdxmlError::Malformed(_))
        ));
        assert!(matches!(
            read(b"<edXMLEnvelope><MessageHeader><Code><CodeNumber>&x;</CodeNumber></Code></MessageHeader></edXMLEnvelope>", false),
            Err(EdxmlError::Malformed(_))
        ));
        // A .edxml file is edXML whatever its root.
        assert!(matches!(
            read(b"<Envelope><MessageHeader><OtherInfo><Priority>1</Priority></OtherInfo></MessageHeader></Envelope>", true),
            Ok(EdxmlPart::Fields(EdxmlFields { priority: Some(_), .. }))
        ));
    }

    /// Element nesting at 10 and 1,000 times the limit is an error, inside the header or
    /// before it.
    #[test]
    fn deep_element_nesting_is_an_error() {
        for n in [10 * MAX_ELEMENT_DEPTH, 1000 * MAX_ELEMENT_DEPTH] {
            for inside_header in [false, true] {
                let mut xml = String::from("<edXMLEnvelope>");
                if inside_header {
                    xml.push_str("<MessageHeader>");
                }
                xml.push_str(&"<a>".repeat(n));
                xml.push_str(&"</a>".repeat(n));
                if inside_header {
                    xml.push_str("</MessageHeader>");
                }
                xml.push_str("</edXMLEnvelope>");
                assert!(
                    matches!(read(xml.as_bytes(), false), Err(EdxmlError::Malformed(m)) if m.contains("nested")),
                    "{n}"
                );
            }
        }
        // At the limit it is read.
        let xml = format!(
            "<edXMLEnvelope><MessageHeader><OtherInfo><Priority>3</Priority></OtherInfo>{}{}</MessageHeader></edXMLEnvelope>",
            "<a>".repeat(MAX_ELEMENT_DEPTH - 2),
            "</a>".repeat(MAX_ELEMENT_DEPTH - 2)
        );
        assert!(matches!(
            read(xml.as_bytes(), false),
            Ok(EdxmlPart::Fields(_))
        ));
    }

    #[test]
    fn finds_the_part_in_a_message() {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(SAMPLE);
        let msg = format!(
            "From: a@dev.gov.vn\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nxin chao\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"vb.edxml\"\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--b--\r\n"
        );
        let parsed = mail_parser::MessageParser::default()
            .parse(msg.as_bytes())
            .unwrap();
        let (_, f) = find(&parsed).unwrap();
        assert_eq!(f.unwrap().priority.as_deref(), Some("3"));
    }
}
