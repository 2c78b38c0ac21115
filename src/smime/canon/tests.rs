//! Tests of canonicalisation: clean, 8-bit, binary and long-lined parts, nested structures and
//! boundaries, root header options, mutated inputs, and the nesting bound.

use super::planner::contains_delimiter;
use super::*;
use base64::Engine as _;
use mail_parser::{MessageParser, MimeHeaders};

fn canon(s: &[u8]) -> String {
    let out = canonicalize(s).unwrap();
    assert!(
        is_canonical(&out),
        "not canonical: {:?}",
        String::from_utf8_lossy(&out)
    );
    String::from_utf8(out).unwrap()
}

#[test]
fn clean_entity_is_unchanged() {
    let e = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nHello\r\nworld\r\n";
    assert_eq!(canon(e).as_bytes(), e);
}

#[test]
fn bare_lf_becomes_crlf() {
    let e = b"Content-Type: text/plain\n\nHello\nworld\n";
    assert_eq!(
        canon(e),
        "Content-Type: text/plain\r\n\r\nHello\r\nworld\r\n"
    );
}

#[test]
fn eight_bit_text_becomes_quoted_printable() {
    let e = "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nCông văn số 26\nKính gửi: UBND\n";
    let out = canon(e.as_bytes());
    assert!(
        out.contains("Content-Transfer-Encoding: quoted-printable\r\n"),
        "{out}"
    );
    assert!(!out.contains("8bit"));
    let body = out.split("\r\n\r\n").nth(1).unwrap();
    let decoded = decode_quoted_printable(body.as_bytes());
    assert_eq!(decoded, "Công văn số 26\r\nKính gửi: UBND\r\n".as_bytes());
}

#[test]
fn eight_bit_text_without_charset_gets_utf8() {
    let e = "Content-Type: text/plain\n\nĐây là thư\n";
    let out = canon(e.as_bytes());
    assert!(out.contains("charset=\"utf-8\""), "{out}");
    let e = "Subject: x\n\nĐây là thư\n";
    let out = canon(e.as_bytes());
    assert!(
        out.contains("Content-Type: text/plain; charset=\"utf-8\""),
        "{out}"
    );
}

#[test]
fn binary_attachment_becomes_base64() {
    let mut e = b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
    let payload: Vec<u8> = (0..=255u8)
        .cycle()
        .take(3000)
        .filter(|&b| b != b'-')
        .collect();
    e.extend_from_slice(&payload);
    e.extend_from_slice(b"\r\n--b1--\r\n");
    let out = canon(&e);
    assert!(out.contains("Content-Transfer-Encoding: base64\r\n"));
    let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
    assert_eq!(parsed.attachment(0).unwrap().contents(), &payload[..]);
    assert!(out.contains("--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1\r\n"));
    assert!(out.ends_with("\r\n--b1--\r\n"));
}

#[test]
fn long_lines_are_encoded() {
    let line = "a".repeat(1500);
    let e = format!("Content-Type: text/html\r\n\r\n{line}\r\n");
    let out = canon(e.as_bytes());
    assert!(out.contains("quoted-printable"));
    let body = out.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(
        decode_quoted_printable(body.as_bytes()),
        format!("{line}\r\n").as_bytes()
    );
}

#[test]
fn long_base64_lines_are_rewrapped() {
    let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
    let e = format!("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n");
    let out = canon(e.as_bytes());
    let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
    assert_eq!(parsed.parts[0].contents(), &data[..]);
}

#[test]
fn quoted_printable_with_raw_8bit_is_requoted() {
    let e = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nC=C3=B4ng v\u{103}n\r\n";
    let out = canon(e.as_bytes());
    let body = out.split("\r\n\r\n").nth(1).unwrap();
    assert_eq!(
        decode_quoted_printable(body.as_bytes()),
        "Công văn\r\n".as_bytes()
    );
}

#[test]
fn nested_structure_and_boundaries_are_kept() {
    let e = "Content-Type: multipart/mixed; boundary=outer\n\nThis is a multi-part message in MIME format.\n--outer\nContent-Type: multipart/alternative; boundary=\"inner\"\n\n--inner\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nXin chào\n--inner\nContent-Type: text/html; charset=utf-8\n\n<p>Xin chào</p>\n--inner--\n\n--outer\nContent-Type: application/octet-stream; name=\"Công văn.pdf\"\nContent-Disposition: attachment; filename=\"Công văn.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--outer--\nepilogue\n";
    let out = canon(e.as_bytes());
    assert!(out.starts_with("Content-Type: multipart/mixed; boundary=outer\r\n\r\nThis is a multi-part message in MIME format.\r\n--outer\r\n"), "{out}");
    assert!(out.contains("--inner\r\n"));
    assert!(out.contains("--inner--\r\n--outer\r\n"));
    assert!(
        out.contains("filename*=UTF-8''C%C3%B4ng%20v%C4%83n.pdf"),
        "{out}"
    );
    assert!(!out.contains("epilogue"));
    let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
    assert_eq!(parsed.body_text(0).unwrap(), "Xin chào");
    assert_eq!(parsed.body_html(0).unwrap(), "<p>Xin chào</p>");
    assert_eq!(
        parsed.attachment(0).unwrap().attachment_name(),
        Some("Công văn.pdf")
    );
    assert_eq!(parsed.attachment(0).unwrap().contents(), b"%PDF-1.4\n");
}

#[test]
fn message_rfc822_is_canonicalised_inside() {
    let e = "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\nFrom: Văn thư <vanthu@a.gov.vn>\nSubject: Công văn\nContent-Type: text/plain; charset=utf-8\n\nNội dung\n--b--\n";
    let out = canon(e.as_bytes());
    assert!(
        out.contains(
            "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\nFrom: "
        ),
        "{out}"
    );
    let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
    let inner = parsed.attachment(0).unwrap().message().unwrap();
    assert_eq!(inner.subject(), Some("Công văn"));
    assert_eq!(
        inner.from().unwrap().first().unwrap().name(),
        Some("Văn thư")
    );
    assert_eq!(inner.body_text(0).unwrap(), "Nội dung");
}

#[test]
fn root_headers_options() {
    let m = b"From: a@b.vn\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain;\r\n charset=us-ascii\r\n\r\nhi\r\n";
    let root = RootHeaders {
        prepend: b"Subject: s\r\n",
        content_fields_only: true,
        content_type_param: Some(("hp", "clear")),
    };
    let c = plan(m, &root).unwrap();
    let mut out = Vec::new();
    c.write(m, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "Subject: s\r\nContent-Type: text/plain;\r\n charset=us-ascii;\r\n hp=\"clear\"\r\n\r\nhi\r\n"
    );
}

#[test]
fn duplicate_content_type_keeps_the_last() {
    let e = b"Content-Type: text/html\r\nContent-Type: text/plain\r\n\r\nhi\r\n";
    assert_eq!(canon(e), "Content-Type: text/plain\r\n\r\nhi\r\n");
}

/// Mutated inputs never panic and whatever is accepted comes out canonical (also when fed
/// back in, if accepted again). The canonical form of a well-formed entity is a fixed point; damaged ones may
/// be read differently the second time (mail-parser is lenient), which is harmless since
/// the signature covers the bytes as written.
#[test]
fn mutated_inputs_are_canonical_and_idempotent() {
    let samples: [&[u8]; 3] = [
        b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npre\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one\r\nline two\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ninner\r\n--b--\r\n",
        b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nabc=3D=\r\ndef\r\n",
        b"Content-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/html\n\n<p>x</p>\n--a--\n",
    ];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for round in 0..600 {
        let mut input = samples[round % samples.len()].to_vec();
        let mutations = next() % 6;
        for _ in 0..mutations {
            let pos = (next() as usize) % (input.len() + 1);
            match next() % 5 {
                0 => input.insert(pos, 0xc3),
                1 => input.insert(pos, b'\n'),
                2 => input.insert(pos, b'\r'),
                3 if pos < input.len() => {
                    input.remove(pos);
                }
                _ => input
                    .splice(pos..pos, std::iter::repeat_n(b'z', 1000))
                    .for_each(drop),
            }
        }
        if let Ok(out) = canonicalize(&input) {
            assert!(
                is_canonical(&out),
                "round {round}: {:?}",
                String::from_utf8_lossy(&out)
            );
            let Ok(again) = canonicalize(&out) else {
                assert!(mutations > 0, "round {round}: second pass refused");
                continue;
            };
            assert!(is_canonical(&again), "round {round}: second pass");
            assert!(
                mutations > 0 || again == out,
                "round {round}: not a fixed point\ninput: {:?}\nfirst: {:?}\nsecond: {:?}",
                String::from_utf8_lossy(&input),
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&again)
            );
        }
    }
}

#[test]
fn no_delimiter_survives_re_encoding() {
    let mut out = Vec::new();
    write_quoted_printable(b"--b--\nsee x--b and ---\n", &mut out);
    assert!(
        !out.windows(2).any(|w| w == b"--"),
        "{:?}",
        String::from_utf8_lossy(&out)
    );
    assert_eq!(
        decode_quoted_printable(&out),
        b"--b--\r\nsee x--b and ---\r\n"
    );
    let delimiters = [b"--b".to_vec()];
    assert!(contains_delimiter(b"x\r\n--b\r\n", &delimiters));
    assert!(contains_delimiter(b"mid--b-line", &delimiters));
    assert!(!contains_delimiter(b"-b -- b", &delimiters));
}

#[test]
fn unusable_boundary_is_replaced() {
    let long = "x".repeat(300);
    let e = format!("Content-Type: multipart/mixed; boundary=\"{long}\"\r\n\r\n--{long}\r\nContent-Type: text/plain\r\n\r\none\r\n--{long}\r\nContent-Type: text/plain\r\n\r\ntwo\r\n--{long}--\r\n");
    let out = canon(e.as_bytes());
    assert!(!out.contains(&long));
    let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
    let boundary = parsed
        .content_type()
        .unwrap()
        .attribute("boundary")
        .unwrap();
    assert!(boundary.starts_with("=_cv_"), "{boundary}");
    assert_eq!(parsed.body_text(0).unwrap(), "one");
    assert_eq!(parsed.body_text(1).unwrap(), "two");
}

/// The walk counts attached messages as well as multiparts (it used to count only
/// delimiters, so `message/rfc822` inside itself recursed without bound and a 4,000-deep
/// message took the daemon down when it was sealed).
#[test]
fn nesting_is_bounded_for_every_kind() {
    use crate::nesting::attack::*;
    let (from, to) = ("a@dev.gov.vn", "b@other.gov.vn");
    // The deepest accepted nesting is canonicalised on an ordinary test thread.
    for raw in [
        nested_message("rfc822", MAX_DEPTH, from, to),
        nested_multipart(MAX_DEPTH, from, to),
        nested_mixed(MAX_DEPTH, from, to),
    ] {
        canon(&raw);
    }
    // 10 and 1,000 times the default limit: an error, not a crash.
    for n in [500, 50_000] {
        for raw in [
            nested_message("rfc822", n, from, to),
            nested_message("global", n, from, to),
            nested_multipart(n, from, to),
            nested_mixed(n, from, to),
            encoded_nested_message(n, from, to),
        ] {
            assert!(
                matches!(canonicalize(&raw), Err(CanonError::TooDeep)),
                "{n}"
            );
        }
    }
}
