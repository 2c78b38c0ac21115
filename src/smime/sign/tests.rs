//! Tests of sealing: every key type and message shape checked by OpenSSL, protected header
//! fields, opaque seals over a clerk's own signature, Sender, the CMS, limits and speed.

use super::*;
use crate::pki::identity::KeyAlgorithm;
use crate::pki::testpki::{self, IdentityFiles};
use ::cms::content_info::{CmsVersion, ContentInfo};
use ::cms::signed_data::{SignedData, SignerIdentifier};
use base64::Engine as _;
use const_oid::db::rfc5911;
use der::asn1::{OctetString, UtcTime};
use der::Decode;
use std::process::Command;

const DOMAIN_FROM: &str = "Van thu UBND <vanthu@hadong.hanoi.gov.vn>";

fn identity(files: &IdentityFiles) -> SigningIdentity {
    SigningIdentity::from_pem(
        &std::fs::read(&files.chain_pem).unwrap(),
        &std::fs::read(&files.key_pem).unwrap(),
    )
    .unwrap()
}

fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn headers(from: &str) -> String {
    format!(
        "Received: from clerk.local by gw\r\n\tfor <x@y>; Mon, 3 Mar 2025 09:00:00 +0700\r\n\
From: {from}\r\n\
To: Van thu Quan 1 <vanthu@quan1.hochiminh.gov.vn>,\r\n so-noivu@hanoi.gov.vn\r\n\
Cc: lanhdao@hadong.hanoi.gov.vn\r\n\
Subject: Cong van so 26/CT-UBND ve viec\r\n  tang cuong phong chong thien tai\r\n\
Date: Mon, 03 Mar 2025 09:00:00 +0700\r\n\
Message-ID: <26.ct-ubnd@hadong.hanoi.gov.vn>\r\n\
X-Congvan-Urgency: khan\r\n\
X-Congvan-Number: 26/CT-UBND\r\n\
X-Mailer: test\r\n\
MIME-Version: 1.0\r\n"
    )
}

fn plain() -> Vec<u8> {
    format!(
        "{}Content-Type: text/plain; charset=us-ascii\r\n\r\nKinh gui: UBND quan 1\r\n\r\nNoi dung cong van.\r\n",
        headers(DOMAIN_FROM)
    )
    .into_bytes()
}

/// UTF-8 Vietnamese, 8bit, LF-only line endings, raw UTF-8 in Subject and From.
fn vietnamese_lf() -> Vec<u8> {
    "From: Văn thư UBND quận Hà Đông <vanthu@hadong.hanoi.gov.vn>\n\
To: vanthu@quan1.hochiminh.gov.vn\n\
Subject: [HỎA TỐC] Công văn số 26/CT-UBND về việc tăng cường phòng, chống thiên tai\n\
Date: Mon, 03 Mar 2025 09:00:00 +0700\n\
X-Congvan-Urgency: hỏa tốc\n\
MIME-Version: 1.0\n\
Content-Type: text/plain; charset=utf-8\n\
Content-Transfer-Encoding: 8bit\n\
\n\
Kính gửi: Ủy ban nhân dân các phường\n\
\n\
Thực hiện Chỉ thị số 26/CT-UBND, đề nghị các đơn vị khẩn trương triển khai.\n\
From đây trở đi, dòng này bắt đầu bằng From.\n\
.\n"
    .as_bytes()
    .to_vec()
}

fn alternative() -> Vec<u8> {
    format!(
        "{}Content-Type: multipart/alternative; boundary=\"alt-1\"\r\n\r\n\
--alt-1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
K=C3=ADnh g=E1=BB=ADi: UBND\r\n\
--alt-1\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\
<html><body><p>Kính gửi: <b>UBND</b></p></body></html>\r\n\
--alt-1--\r\n",
        headers(DOMAIN_FROM)
    )
    .into_bytes()
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut data = vec![0u8; len];
    ring::rand::SystemRandom::new().fill(&mut data).unwrap();
    data[..9].copy_from_slice(b"%PDF-1.7\n");
    data
}

fn base64_lines(data: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let mut out = String::with_capacity(b64.len() * 78 / 76 + 4);
    for chunk in b64.as_bytes().chunks(76) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push_str("\r\n");
    }
    out
}

fn with_pdf(pdf: &[u8]) -> Vec<u8> {
    format!(
        "{}Content-Type: multipart/mixed; boundary=\"mix-1\"\r\n\r\n\
--mix-1\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nXem van ban dinh kem.\r\n\
--mix-1\r\nContent-Type: application/pdf; name=\"26-CT-UBND.pdf\"\r\n\
Content-Disposition: attachment; filename=\"26-CT-UBND.pdf\"\r\n\
Content-Transfer-Encoding: base64\r\n\r\n{}--mix-1--\r\n",
        headers(DOMAIN_FROM),
        base64_lines(pdf)
    )
    .into_bytes()
}

fn nested() -> Vec<u8> {
    format!(
        "{}Content-Type: multipart/mixed; boundary=\"outer\"\r\n\r\n\
This is a multi-part message in MIME format.\r\n\
--outer\r\nContent-Type: multipart/alternative; boundary=\"inner\"\r\n\r\n\
--inner\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nXin chào\r\n\
--inner\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Xin chào</p>\r\n\
--inner--\r\n\r\n\
--outer\r\nContent-Type: application/octet-stream; name=\"Công văn.docx\"\r\n\
Content-Disposition: attachment; filename=\"Công văn.docx\"\r\n\
Content-Transfer-Encoding: binary\r\n\r\n\x01\x02 binary\r\n\
--outer--\r\n",
        headers("Nguyen Van A <nguyenvana@hadong.hanoi.gov.vn>")
    )
    .into_bytes()
}

/// Runs `openssl smime -verify` and `openssl cms -verify`; Ok(content from cms) or the
/// error output.
fn openssl_verify(signed: &[u8], extra: &[&str]) -> Result<Vec<u8>, String> {
    let pki = testpki::shared();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("signed.eml");
    std::fs::write(&path, signed).unwrap();
    let content = dir.path().join("content");
    let ca = pki.root.cert_pem.to_string_lossy().into_owned();
    let input = path.to_string_lossy().into_owned();
    let content_path = content.to_string_lossy().into_owned();
    let runs: [Vec<&str>; 2] = [
        vec![
            "smime",
            "-verify",
            "-CAfile",
            &ca,
            "-purpose",
            "smimesign",
            "-in",
            &input,
            "-out",
            "/dev/null",
        ],
        vec![
            "cms",
            "-verify",
            "-CAfile",
            &ca,
            "-purpose",
            "smimesign",
            "-in",
            &input,
            "-out",
            &content_path,
        ],
    ];
    for mut args in runs {
        args.extend_from_slice(extra);
        let out = Command::new("openssl").args(&args).output().unwrap();
        if !out.status.success() {
            return Err(format!(
                "openssl {}: {}",
                args[0],
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(std::fs::read(content).unwrap())
}

/// The unfolded values of `name` in a header block.
fn field_values(block: &[u8], name: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(block)
        .replace("\r\n ", " ")
        .replace("\r\n\t", "\t");
    text.split("\r\n")
        .filter_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.to_string())
        })
        .collect()
}

fn header_block(bytes: &[u8]) -> &[u8] {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    &bytes[..end + 2]
}

/// Checks the structure every signed message must have.
fn check_shape(signed: &SignedMessage, original: &[u8]) {
    let bytes = &signed.bytes;
    // CRLF only, lines within limits, 7-bit signed part.
    assert!(
        !bytes.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r') && bytes[0] != b'\n',
        "bare LF in output"
    );
    let entity = &bytes[signed.signed_entity.clone()];
    assert!(canon::is_canonical(entity));
    assert_eq!(
        signed.digest_sha256_hex,
        hex::encode(ring::digest::digest(&ring::digest::SHA256, entity))
    );

    let outer = header_block(bytes);
    let inner = header_block(entity);
    let ct = field_values(outer, "Content-Type").join("");
    assert!(ct.contains("multipart/signed"), "{ct}");
    assert!(ct.contains("protocol=\"application/pkcs7-signature\""));
    assert!(ct.contains(&format!("micalg={}", signed.micalg)));
    assert_eq!(field_values(outer, "MIME-Version"), [" 1.0"]);
    let inner_ct = field_values(inner, "Content-Type").join("");
    assert!(inner_ct.contains("hp=\"clear\""), "{inner_ct}");

    // RFC 9788: each protected field is inside, equal to the outer one.
    let names = [
        "Subject",
        "From",
        "Sender",
        "To",
        "Cc",
        "Date",
        "Message-ID",
        "X-Congvan-Urgency",
        "X-Congvan-Number",
    ];
    for name in names {
        assert_eq!(
            field_values(outer, name),
            field_values(inner, name),
            "{name}"
        );
    }
    for name in ["Subject", "From", "To", "Date"] {
        assert_eq!(field_values(inner, name).len(), 1, "{name} missing inside");
    }
    assert!(field_values(inner, "Received").is_empty());
    assert!(field_values(inner, "X-Mailer").is_empty());
    assert!(field_values(inner, "MIME-Version").is_empty());
    assert_eq!(
        field_values(outer, "Received").len(),
        usize::from(original.starts_with(b"Received"))
    );

    // The parsed structure: two parts, the second the signature.
    let parsed = MessageParser::new().parse(bytes).unwrap();
    let p7s = parsed
        .attachment(parsed.attachments.len() as u32 - 1)
        .unwrap();
    use mail_parser::MimeHeaders;
    assert_eq!(p7s.content_type().unwrap().ctype(), "application");
    assert_eq!(
        p7s.content_type().unwrap().subtype(),
        Some("pkcs7-signature")
    );
    assert_eq!(p7s.attachment_name(), Some("smime.p7s"));
    let sig_body = &bytes[p7s.offset_body as usize..p7s.offset_end as usize];
    for line in sig_body.split(|&b| b == b'\n') {
        assert!(line.len() <= 77, "signature line too long");
    }
}

fn flip_body_byte(signed: &SignedMessage) -> Vec<u8> {
    let mut bytes = signed.bytes.clone();
    let entity = signed.signed_entity.clone();
    let body_start = entity.start
        + bytes[entity.clone()]
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap()
        + 4;
    let target = (body_start + entity.end) / 2;
    let pos = (target..entity.end)
        .find(|&i| bytes[i].is_ascii_alphabetic())
        .or_else(|| {
            (body_start..target)
                .rev()
                .find(|&i| bytes[i].is_ascii_alphabetic())
        })
        .unwrap();
    bytes[pos] ^= 0x20; // swap case
    bytes
}

fn sign_and_verify(files: &IdentityFiles, message: &[u8], label: &str) -> SignedMessage {
    let id = identity(files);
    let signed =
        sign_message(message, &id, now()).unwrap_or_else(|e| panic!("{} {label}: {e}", files.name));
    if let Ok(dir) = std::env::var("CONGVAN_DUMP") {
        std::fs::write(format!("{dir}/{}-{label}.eml", files.name), &signed.bytes).unwrap();
    }
    check_shape(&signed, message);
    let content = openssl_verify(&signed.bytes, &[])
        .unwrap_or_else(|e| panic!("{} {label}: {e}", files.name));
    let expected = &signed.bytes[signed.signed_entity.clone()];
    assert_eq!(
        String::from_utf8_lossy(&content).replace("\r\n", "\n"),
        String::from_utf8_lossy(expected).replace("\r\n", "\n"),
        "{} {label}: openssl's content differs",
        files.name
    );
    signed
}

#[test]
fn every_key_type_and_message_verifies_with_openssl() {
    let pki = testpki::shared();
    let pdf = random_bytes(5 * 1024 * 1024);
    let messages: [(&str, Vec<u8>); 5] = [
        ("plain", plain()),
        ("vietnamese-8bit-lf", vietnamese_lf()),
        ("alternative", alternative()),
        ("pdf-5mb", with_pdf(&pdf)),
        ("nested", nested()),
    ];
    for files in pki.good_identities() {
        for (label, message) in &messages {
            let signed = sign_and_verify(files, message, label);
            let expected_micalg = if files.name == "p384" {
                "sha-384"
            } else {
                "sha-256"
            };
            assert_eq!(signed.micalg, expected_micalg);
            assert_eq!(signed.signer_serial_hex, files.serial_hex);
            if *label == "pdf-5mb" {
                let parsed = MessageParser::new().parse(&signed.bytes).unwrap();
                let found = parsed.attachments().any(|a| a.contents() == pdf.as_slice());
                assert!(found, "{}: attachment changed", files.name);
            }
            let tampered = flip_body_byte(&signed);
            assert!(
                openssl_verify(&tampered, &[]).is_err(),
                "{} {label}: tampered message verified",
                files.name
            );
        }
    }
}

#[test]
fn eight_bit_headers_are_encoded_identically_inside_and_out() {
    let pki = testpki::shared();
    let signed = sign_and_verify(&pki.p256, &vietnamese_lf(), "vietnamese");
    let outer = header_block(&signed.bytes);
    assert!(
        outer.is_ascii(),
        "outer protected headers must be RFC 2047-encoded"
    );
    let subject = field_values(outer, "Subject").join("");
    assert!(subject.contains("=?utf-8?"), "{subject}");
    let parsed = MessageParser::new().parse(&signed.bytes).unwrap();
    assert_eq!(
        parsed.subject(),
        Some("[HỎA TỐC] Công văn số 26/CT-UBND về việc tăng cường phòng, chống thiên tai")
    );
    assert_eq!(
        parsed.from().unwrap().first().unwrap().name(),
        Some("Văn thư UBND quận Hà Đông")
    );
    let inner = MessageParser::new()
        .parse(&signed.bytes[signed.signed_entity.clone()])
        .unwrap();
    assert_eq!(inner.subject(), parsed.subject());
    // Unknown fields come back as written (encoded words); decoding them is the reader's
    // job, as SPEC.md says for X-Congvan-* values.
    let urgency = inner
        .header("X-Congvan-Urgency")
        .unwrap()
        .as_text()
        .unwrap();
    assert!(urgency.starts_with("=?utf-8?"), "{urgency}");
    let as_subject = format!("Subject: {urgency}\r\n\r\n");
    let decoded = MessageParser::new().parse(as_subject.as_bytes()).unwrap();
    assert_eq!(decoded.subject(), Some("hỏa tốc"));
    let text = inner.body_text(0).unwrap();
    assert!(text.contains("Thực hiện Chỉ thị số 26/CT-UBND"));
    assert!(text.contains("From đây trở đi"));
}

/// Every bare LF made CRLF.
fn lf_to_crlf(b: &[u8]) -> Vec<u8> {
    crate::smime::mime_walk::to_crlf(b).into_owned()
}

/// A clerk's own `openssl smime -sign -binary` signature over `content` (as the clerk's
/// client submits it: CRLF, without openssl's MIME-Version line), and the exact bytes
/// of its signed first part.
fn clerk_signed(content: &str) -> (Vec<u8>, Vec<u8>) {
    let pki = testpki::shared();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("content");
    std::fs::write(&input, content).unwrap();
    let inter = pki.intermediate.cert_pem.to_string_lossy().into_owned();
    let out = testpki::run_openssl(&[
        "smime",
        "-sign",
        "-binary",
        "-in",
        &input.to_string_lossy(),
        "-signer",
        &pki.p256.cert_pem.to_string_lossy(),
        "-inkey",
        &pki.p256.key_pem.to_string_lossy(),
        "-certfile",
        &inter,
    ])
    .unwrap();
    let out = lf_to_crlf(&out);
    let out = out
        .strip_prefix(b"MIME-Version: 1.0\r\n".as_slice())
        .unwrap_or(&out)
        .to_vec();
    (out, content.as_bytes().to_vec())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// `openssl smime -verify` of a MIME entity (the extracted inner document).
fn openssl_verify_entity(entity: &[u8]) -> Result<(), String> {
    let pki = testpki::shared();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("inner.eml");
    std::fs::write(&path, entity).unwrap();
    let out = Command::new("openssl")
        .args([
            "smime",
            "-verify",
            "-binary",
            "-purpose",
            "smimesign",
            "-CAfile",
        ])
        .arg(&pki.root.cert_pem)
        .arg("-in")
        .arg(&path)
        .args(["-out", "/dev/null"])
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

#[test]
fn a_clerks_signature_over_8bit_text_survives_an_opaque_seal() {
    let pki = testpki::shared();
    let content = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nKính gửi: UBND quận Hà Đông\r\n\r\nCông văn số 26/CT-UBND về việc tăng cường phòng chống thiên tai.\r\n";
    let (inner, signed_part) = clerk_signed(content);
    // The whole document is the clerk's signed message, and as an attachment of one.
    let whole = [headers(DOMAIN_FROM).as_bytes(), &inner].concat();
    let attached = format!(
        "{}Content-Type: multipart/mixed; boundary=\"m\"\r\n\r\n--m\r\nContent-Type: text/plain\r\n\r\nXem van ban dinh kem.\r\n--m\r\n{}\r\n--m--\r\n",
        headers(DOMAIN_FROM),
        String::from_utf8(inner.clone()).unwrap()
    )
    .into_bytes();
    // Before sealing, the inner signature verifies.
    openssl_verify_entity(&inner).unwrap();
    for (label, msg) in [("whole", whole), ("attached", attached)] {
        for files in [&pki.rsa2048, &pki.p384] {
            let s = sign_message(&msg, &identity(files), now()).unwrap();
            assert!(s.opaque, "{label}");
            assert!(canon::is_canonical(&s.bytes), "{label}: the seal is 7-bit");
            let head = String::from_utf8_lossy(header_block(&s.bytes)).into_owned();
            assert!(
                head.contains("Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"),
                "{label}: {head}"
            );
            assert_eq!(field_values(head.as_bytes(), "Subject").len(), 1);
            // The outer seal verifies with OpenSSL (smime and cms); the content is the
            // document with its 8-bit signed part byte for byte.
            let econtent = openssl_verify(&s.bytes, &[])
                .unwrap_or_else(|e| panic!("{label} {}: {e}", files.name));
            assert!(
                find(&econtent, &signed_part).is_some(),
                "{label}: {:?}",
                String::from_utf8_lossy(&econtent)
            );
            assert_eq!(
                hex::encode(ring::digest::digest(&ring::digest::SHA256, &econtent)),
                s.digest_sha256_hex
            );
            // The inner signature verifies on the extracted document.
            let inner_entity = if label == "whole" {
                econtent.clone()
            } else {
                let at = find(&econtent, b"Content-Type: multipart/signed").unwrap();
                let end = find(&econtent, b"\r\n--m--").unwrap();
                econtent[at..end].to_vec()
            };
            openssl_verify_entity(&inner_entity)
                .unwrap_or_else(|e| panic!("{label}: inner signature: {e}"));
            // Protected header fields inside, and congvan's own verifier passes the seal.
            assert!(econtent.starts_with(b"From: Van thu UBND <vanthu@hadong.hanoi.gov.vn>\r\n"));
            let v = crate::smime::verify::verify_message(
                &s.bytes,
                &crate::smime::verify::TrustStore::new(vec![pki.root.cert_der.clone()]),
                &[],
                now(),
                Default::default(),
            );
            assert_eq!(
                v.result,
                crate::smime::verify::SmimeResult::Pass,
                "{label}: {v:?}"
            );
            assert!(v.header_mismatches.is_empty(), "{v:?}");
            // A changed byte in the CMS never verifies.
            let mut bad = s.bytes.clone();
            let i = s.signed_entity.start + s.signed_entity.len() / 2;
            bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
            assert!(openssl_verify(&bad, &[]).is_err());
        }
    }
}

#[test]
fn a_7bit_inner_signature_is_kept_byte_for_byte() {
    let pki = testpki::shared();
    // A Thunderbird-shaped first part: a multipart with an empty line after its closing
    // delimiter, which canonicalisation would otherwise drop.
    let content = "Content-Type: multipart/mixed; boundary=\"in\"\r\n\r\n--in\r\nContent-Type: text/plain\r\n\r\nKinh gui.\r\n--in\r\nContent-Type: application/pdf; name=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--in--\r\n\r\n";
    let (inner, signed_part) = clerk_signed(content);
    let msg = [headers(DOMAIN_FROM).as_bytes(), &inner].concat();
    let s = sign_message(&msg, &identity(&pki.p256), now()).unwrap();
    assert!(!s.opaque);
    let entity = &s.bytes[s.signed_entity.clone()];
    assert!(find(entity, &signed_part).is_some());
    openssl_verify(&s.bytes, &[]).unwrap();
    let at = find(entity, b"Content-Type: multipart/signed").unwrap();
    openssl_verify_entity(&entity[at..]).unwrap();
}

#[test]
fn sender_is_set_when_from_is_not_the_seal_address() {
    let pki = testpki::shared();
    let id = identity(&pki.rsa2048);
    let body = "Content-Type: text/plain\r\n\r\nx\r\n";

    // From is the seal address: nothing added.
    let m = format!("From: {DOMAIN_FROM}\r\nTo: a@b.gov.vn\r\nSubject: s\r\nDate: Mon, 03 Mar 2025 09:00:00 +0700\r\n{body}");
    let s = sign_message(m.as_bytes(), &id, now()).unwrap();
    assert_eq!(s.sender_set, None);
    assert!(field_values(header_block(&s.bytes), "Sender").is_empty());

    // A clerk's own address: Sender added after From, outside and inside.
    let m = format!("From: Nguyen Van A <nguyenvana@hadong.hanoi.gov.vn>\r\nTo: a@b.gov.vn\r\nSubject: s\r\nDate: Mon, 03 Mar 2025 09:00:00 +0700\r\n{body}");
    let s = sign_message(m.as_bytes(), &id, now()).unwrap();
    assert_eq!(s.sender_set.as_deref(), Some("vanthu@hadong.hanoi.gov.vn"));
    let outer = header_block(&s.bytes);
    assert_eq!(
        field_values(outer, "Sender"),
        [" vanthu@hadong.hanoi.gov.vn"]
    );
    let text = String::from_utf8_lossy(outer);
    assert!(
        text.contains("<nguyenvana@hadong.hanoi.gov.vn>\r\nSender: vanthu@hadong.hanoi.gov.vn\r\n")
    );
    let inner = header_block(&s.bytes[s.signed_entity.clone()]);
    assert_eq!(
        field_values(inner, "Sender"),
        [" vanthu@hadong.hanoi.gov.vn"]
    );
    openssl_verify(&s.bytes, &[]).unwrap();

    // An existing Sender that is not the seal's is replaced (receivers check Sender).
    let m = format!("From: {DOMAIN_FROM}\r\nSender: clerk@hadong.hanoi.gov.vn\r\nTo: a@b.gov.vn\r\nSubject: s\r\n{body}");
    let s = sign_message(m.as_bytes(), &id, now()).unwrap();
    assert_eq!(s.sender_set.as_deref(), Some("vanthu@hadong.hanoi.gov.vn"));
    assert_eq!(
        field_values(header_block(&s.bytes), "Sender"),
        [" vanthu@hadong.hanoi.gov.vn"]
    );

    // Several From mailboxes need a Sender.
    let m = format!(
        "From: {DOMAIN_FROM}, b@hadong.hanoi.gov.vn\r\nTo: a@b.gov.vn\r\nSubject: s\r\n{body}"
    );
    let s = sign_message(m.as_bytes(), &id, now()).unwrap();
    assert_eq!(s.sender_set.as_deref(), Some("vanthu@hadong.hanoi.gov.vn"));

    // Case does not matter.
    let m = format!("From: VanThu@HaDong.Hanoi.gov.vn\r\nTo: a@b.gov.vn\r\nSubject: s\r\n{body}");
    assert_eq!(
        sign_message(m.as_bytes(), &id, now()).unwrap().sender_set,
        None
    );
}

#[test]
fn sender_prefers_the_seal_address_in_the_from_domain() {
    let pki = testpki::shared();
    let mut options = testpki::LeafOptions::office(&pki.domain);
    options.emails = vec![
        "vanthu@ubnd.gov.vn".into(),
        "vanthu@hadong.hanoi.gov.vn".into(),
    ];
    let files = pki
        .issue("two-domains", testpki::KeySpec::P256, &options)
        .unwrap();
    let id = identity(&files);
    let m = "From: a@hadong.hanoi.gov.vn\r\nTo: b@c.gov.vn\r\nSubject: s\r\n\r\nx\r\n";
    let s = sign_message(m.as_bytes(), &id, now()).unwrap();
    assert_eq!(s.sender_set.as_deref(), Some("vanthu@hadong.hanoi.gov.vn"));
}

#[test]
fn cms_structure() {
    let pki = testpki::shared();
    for files in [&pki.rsa3072, &pki.p256, &pki.p384] {
        let id = identity(files);
        let at = OffsetDateTime::from_unix_timestamp(1_741_000_000).unwrap()
            + time::Duration::milliseconds(750);
        let id_usable_at = if id.usability(at).is_ok() { at } else { now() };
        let signed = sign_message(&plain(), &id, id_usable_at).unwrap();
        let parsed = MessageParser::new().parse(&signed.bytes).unwrap();
        let p7s = parsed.attachment(0).unwrap().contents().to_vec();
        let info = ContentInfo::from_der(&p7s).unwrap();
        assert_eq!(info.content_type, rfc5911::ID_SIGNED_DATA);
        let sd: SignedData = info.content.decode_as().unwrap();
        assert_eq!(sd.version, CmsVersion::V1);
        let digest_oid = id.algorithm().digest().oid();
        assert_eq!(sd.digest_algorithms.len(), 1);
        assert_eq!(sd.digest_algorithms.get(0).unwrap().oid, digest_oid);
        assert!(sd.digest_algorithms.get(0).unwrap().parameters.is_none());
        assert_eq!(sd.encap_content_info.econtent_type, rfc5911::ID_DATA);
        assert!(sd.encap_content_info.econtent.is_none());
        assert_eq!(sd.certificates.as_ref().unwrap().0.len(), 2);
        assert!(sd.crls.is_none());
        assert_eq!(sd.signer_infos.0.len(), 1);
        let si = sd.signer_infos.0.get(0).unwrap();
        assert_eq!(si.version, CmsVersion::V1);
        let SignerIdentifier::IssuerAndSerialNumber(isn) = &si.sid else {
            panic!("sid")
        };
        assert_eq!(hex::encode(isn.serial_number.as_bytes()), files.serial_hex);
        assert_eq!(si.signature_algorithm.oid, id.algorithm().signature_oid());
        assert_eq!(
            si.signature_algorithm.parameters.is_some(),
            matches!(id.algorithm(), KeyAlgorithm::Rsa { .. })
        );
        let attrs = si.signed_attrs.as_ref().unwrap();
        assert_eq!(attrs.len(), 3);
        let entity = &signed.bytes[signed.signed_entity.clone()];
        for attr in attrs.iter() {
            let value = attr.values.get(0).unwrap();
            if attr.oid == rfc5911::ID_CONTENT_TYPE {
                assert_eq!(
                    value.decode_as::<const_oid::ObjectIdentifier>().unwrap(),
                    rfc5911::ID_DATA
                );
            } else if attr.oid == rfc5911::ID_MESSAGE_DIGEST {
                let digest = ring::digest::digest(id.algorithm().digest().ring(), entity);
                assert_eq!(
                    value.decode_as::<OctetString>().unwrap().as_bytes(),
                    digest.as_ref()
                );
            } else if attr.oid == rfc5911::ID_SIGNING_TIME {
                let t: UtcTime = value.decode_as().unwrap();
                assert_eq!(
                    t.to_unix_duration().as_secs() as i64,
                    id_usable_at.unix_timestamp()
                );
            } else {
                panic!("unexpected attribute {}", attr.oid);
            }
        }
    }
}

#[test]
fn unusable_identity_refuses_to_sign() {
    let pki = testpki::shared();
    for files in [&pki.expired, &pki.not_yet_valid, &pki.no_email_eku] {
        let err = sign_message(&plain(), &identity(files), now()).unwrap_err();
        assert!(
            matches!(err, SignError::Unusable(_)),
            "{}: {err:?}",
            files.name
        );
    }
}

#[test]
fn revoked_identity_fails_openssl_crl_check() {
    let pki = testpki::shared();
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("ca-crl.pem");
    let mut pem = std::fs::read(&pki.root.cert_pem).unwrap();
    pem.extend(std::fs::read(&pki.crl_pem).unwrap());
    std::fs::write(&bundle, pem).unwrap();
    let ca = bundle.to_string_lossy().into_owned();
    let verify = |signed: &[u8]| {
        let path = dir.path().join("m.eml");
        std::fs::write(&path, signed).unwrap();
        Command::new("openssl")
            .args([
                "smime",
                "-verify",
                "-CAfile",
                &ca,
                "-purpose",
                "smimesign",
                "-crl_check",
                "-out",
                "/dev/null",
                "-in",
            ])
            .arg(&path)
            .output()
            .unwrap()
    };
    let good = sign_message(&plain(), &identity(&pki.p256), now()).unwrap();
    let out = verify(&good.bytes);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let revoked = sign_message(&plain(), &identity(&pki.revoked), now()).unwrap();
    let out = verify(&revoked.bytes);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked"));
}

#[test]
fn message_problems() {
    let pki = testpki::shared();
    let id = identity(&pki.p256);
    let err = sign_message(b"To: a@b.vn\r\nSubject: s\r\n\r\nx\r\n", &id, now()).unwrap_err();
    assert!(matches!(err, SignError::NoFrom), "{err:?}");
    let err = sign_message(
        b"From: a@b.vn\r\nFrom: c@d.vn\r\nSubject: s\r\n\r\nx\r\n",
        &id,
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, SignError::MultipleFrom { count: 2 }),
        "{err:?}"
    );
    let err = sign_message(
        "From: vanthu@hadong.hanoi.gov.vn\r\nTo: Bộ <bộ@gov.vn>\r\nSubject: s\r\n\r\nx\r\n"
            .as_bytes(),
        &id,
        now(),
    )
    .unwrap_err();
    assert!(
        matches!(err, SignError::Canon(CanonError::UnencodableAddress { .. })),
        "{err:?}"
    );
    // No header section at all, or an empty one.
    for raw in [&b""[..], b"\r\n", b"\r\nbody\r\n", b"\n\nbody\n"] {
        let err = sign_message(raw, &id, now()).unwrap_err();
        assert!(matches!(err, SignError::NoHeaders), "{raw:?}: {err:?}");
    }
    // Header fields and no body: signed.
    sign_message(
        b"From: vanthu@hadong.hanoi.gov.vn\r\nSubject: s\r\n",
        &id,
        now(),
    )
    .unwrap();
    // A header problem is reported before the canonical form's (here, the nesting).
    let deep = crate::nesting::attack::nested_multipart(500, "a@b.vn", "c@d.vn");
    let no_from = String::from_utf8_lossy(&deep).replacen("From:", "X-From:", 1);
    let err = sign_message(no_from.as_bytes(), &id, now()).unwrap_err();
    assert!(matches!(err, SignError::NoFrom), "{err:?}");
}

/// Sealing walks the MIME tree through canonicalisation: at 10 and 1,000 times the
/// default depth limit it refuses (4,000 deep used to overflow the stack and take the
/// daemon down at every restart).
#[test]
fn deep_nesting_is_refused_not_followed() {
    use crate::nesting::attack::*;
    let pki = testpki::shared();
    let id = identity(&pki.p256);
    let from = "vanthu@hadong.hanoi.gov.vn";
    for n in [500, 4_000, 50_000] {
        for raw in [
            nested_message("rfc822", n, from, "b@x.vn"),
            nested_message("global", n, from, "b@x.vn"),
            nested_multipart(n, from, "b@x.vn"),
        ] {
            let err = sign_message(&raw, &id, now()).unwrap_err();
            assert!(
                matches!(err, SignError::Canon(CanonError::TooDeep)),
                "{n}: {err:?}"
            );
        }
    }
}

#[test]
fn boundary_never_occurs_in_the_signed_part() {
    assert!(contains_delimiter(
        b"ab\r\n--=_congvan_x\r\n",
        b"=_congvan_x"
    ));
    assert!(contains_delimiter(b"x--=_congvan_x", b"=_congvan_x"));
    assert!(!contains_delimiter(b"-=_congvan_x", b"=_congvan_x"));
    let b = new_boundary().unwrap();
    assert!(b.starts_with("=_congvan_") && b.len() == 42);
}

/// Damaged messages never make the signer panic; what it signs is well formed and, for a
/// sample, verifies with OpenSSL.
#[test]
fn mutated_messages_sign_cleanly() {
    let pki = testpki::shared();
    let id = identity(&pki.p256);
    let samples = [plain(), vietnamese_lf(), alternative(), nested()];
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut verified = 0;
    for round in 0..400 {
        let mut input = samples[round % samples.len()].clone();
        for _ in 0..(1 + next() % 4) {
            let pos = (next() as usize) % (input.len() + 1);
            match next() % 6 {
                0 => input.insert(pos, 0xe1),
                1 => input.insert(pos, b'\n'),
                2 => input.insert(pos, b'\r'),
                3 => input.insert(pos, b'-'),
                4 if pos < input.len() => {
                    input.remove(pos);
                }
                _ => input.insert(pos, b':'),
            }
        }
        let Ok(signed) = sign_message(&input, &id, now()) else {
            continue;
        };
        let bytes = &signed.bytes;
        assert!(
            !bytes.windows(2).any(|w| w[1] == b'\n' && w[0] != b'\r'),
            "round {round}: bare LF"
        );
        assert!(canon::is_canonical(&bytes[signed.signed_entity.clone()]));
        if round % 10 == 0 {
            openssl_verify(bytes, &[]).unwrap_or_else(|e| {
                panic!(
                    "round {round}: {e}\n{}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(3000)])
                )
            });
            verified += 1;
        }
    }
    assert!(verified > 20);
}

/// Peak memory for a 35 MB message (a 26 MB PDF in base64), as VmHWM; run alone:
/// `cargo test --release -- --ignored --nocapture peak_memory_35mb`
#[test]
#[ignore]
fn peak_memory_35mb() {
    fn hwm() -> String {
        std::fs::read_to_string("/proc/self/status")
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmHWM"))
            .unwrap_or("VmHWM: ?")
            .to_string()
    }
    let pki = testpki::shared();
    let id = identity(&pki.rsa2048);
    let message = with_pdf(&random_bytes(26 * 1024 * 1024));
    let message_len = message.len();
    // Reset the high-water mark (Linux: clear_refs 5), so it counts the signing only.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    println!("message {message_len} bytes; before: {}", hwm());
    let start = std::time::Instant::now();
    let signed = sign_message(&message, &id, now()).unwrap();
    println!(
        "signed {} bytes in {:?}; after: {}",
        signed.bytes.len(),
        start.elapsed(),
        hwm()
    );
}

/// `cargo test --release -- --ignored --nocapture signing_speed`
#[test]
#[ignore]
fn signing_speed() {
    let pki = testpki::shared();
    let small = {
        let mut m = plain();
        for _ in 0..(10 * 1024 / 72) {
            m.extend_from_slice(&[b'a'; 70]);
            m.extend_from_slice(b"\r\n");
        }
        m
    };
    let large = with_pdf(&random_bytes(5 * 1024 * 1024));
    for files in pki.good_identities() {
        let id = identity(files);
        for (label, m, n) in [("10 KB", &small, 50u32), ("5 MB", &large, 5)] {
            let start = std::time::Instant::now();
            for _ in 0..n {
                std::hint::black_box(sign_message(m, &id, now()).unwrap());
            }
            println!(
                "{:>8} {label:>6}: {:?} per signature",
                files.name,
                start.elapsed() / n
            );
        }
    }
}
