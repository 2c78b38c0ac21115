//! End-to-end tests of [`verify_message`]: messages signed by congvan and by OpenSSL, tampered,
//! wrapped and re-addressed, checked against the test PKI.

use super::*;
use crate::address::Shown;
use crate::pki::identity::SigningIdentity;
use crate::pki::testpki::{self, IdentityFiles};
use crate::smime::mime_walk;
use crate::smime::sign::sign_message;

fn identity(files: &IdentityFiles) -> SigningIdentity {
    SigningIdentity::from_pem(
        &std::fs::read(&files.chain_pem).unwrap(),
        &std::fs::read(&files.key_pem).unwrap(),
    )
    .unwrap()
}

fn message(from: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: vanthu@dev.gov.vn\r\nSubject: Cong van 26/CT-UBND\r\n\
Date: Mon, 03 Mar 2025 09:00:00 +0700\r\nMIME-Version: 1.0\r\n\
Content-Type: text/plain; charset=us-ascii\r\n\r\nNoi dung cong van.\r\n"
    )
    .into_bytes()
}

fn signed(files: &IdentityFiles) -> Vec<u8> {
    let m = message("Van thu <vanthu@hadong.hanoi.gov.vn>");
    sign_message(&m, &identity(files), OffsetDateTime::now_utc())
        .unwrap()
        .bytes
}

fn anchors() -> TrustStore {
    TrustStore::new(vec![testpki::shared().root.cert_der.clone()])
}

fn check(raw: &[u8], crls: &[Vec<u8>], opts: VerifyOptions) -> Verdict {
    verify_message(raw, &anchors(), crls, OffsetDateTime::now_utc(), opts)
}

#[test]
fn own_signature_passes_for_every_key_type() {
    let pki = testpki::shared();
    for files in pki.good_identities() {
        let v = check(&signed(files), &[], VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::Pass, "{}: {v:?}", files.name);
        assert_eq!(v.signer.as_deref(), Some("vanthu@hadong.hanoi.gov.vn"));
        assert_eq!(v.serial.as_deref(), Some(files.serial_hex.as_str()));
        assert!(v
            .issuer
            .as_deref()
            .unwrap()
            .contains("CN=congvan test intermediate CA"));
        assert!(v.header_mismatches.is_empty(), "{v:?}");
        assert!(v.reason_en().contains("not revocation-checked"), "{v:?}");
    }
}

#[test]
fn header_has_the_spec_form() {
    let pki = testpki::shared();
    let v = check(
        &signed(&pki.p256),
        std::slice::from_ref(&pki.crl_der),
        VerifyOptions::default(),
    );
    let h = authentication_results_header("gw.test.gov.vn", &v);
    let want = format!(
        "Authentication-Results: gw.test.gov.vn; smime=pass body.smime-identifier=vanthu@hadong.hanoi.gov.vn body.smime-serial={} body.smime-issuer=\"CN=congvan test intermediate CA,O=Ban C\\C6\\A1 y\\E1\\BA\\BFu Ch\\C3\\ADnh ph\\E1\\BB\\A7 (th\\E1\\BB\\AD nghi\\E1\\BB\\87m),C=VN\" (not revocation-checked: no CRL configured for CN=congvan test root CA",
        pki.p256.serial_hex
    );
    assert!(h.starts_with(&want), "{h}");
    assert!(
        h.ends_with("?=)\r\n") && h.is_ascii() && !h[..h.len() - 2].contains('\n'),
        "{h}"
    );
    let f = Verdict {
        result: SmimeResult::Fail,
        failure: Some(Failure::DigestMismatch),
        ..v
    };
    let h = authentication_results_header("gw", &f);
    assert!(
        h.starts_with("Authentication-Results: gw; smime=fail (digest mismatch: the signed content was changed; not revocation-checked"),
        "{h}"
    );
}

#[test]
fn tampering_fails() {
    let pki = testpki::shared();
    let good = signed(&pki.p256);
    // A body byte.
    let text = String::from_utf8(good.clone()).unwrap();
    let bad = text.replacen("Noi dung cong van.", "Noi dung cong vaN.", 1);
    let v = check(bad.as_bytes(), &[], VerifyOptions::default());
    assert_eq!(v.failure, Some(Failure::DigestMismatch));
    let v = check(
        &signature_byte_flipped(&good),
        &[],
        VerifyOptions::default(),
    );
    assert_eq!(v.failure, Some(Failure::BadSignature), "{v:?}");
}

/// The multipart/signed message with the last byte of its CMS flipped: the last byte of
/// the signature value when the CMS is DER without unsigned attributes.
fn signature_byte_flipped(good: &[u8]) -> Vec<u8> {
    let e = Entity::parse(good).unwrap();
    let ct = e.content_type().unwrap();
    let parts = mime_walk::split_multipart(e.body, ct.param("boundary").unwrap()).unwrap();
    let sig = Entity::parse(parts[1]).unwrap();
    let mut der = sig.decoded_body().unwrap();
    assert!(der.starts_with(&[0x30, 0x82]), "not definite-length DER");
    *der.last_mut().unwrap() ^= 1;
    let mut b64 = Vec::new();
    crate::smime::canon::write_base64(&der, &mut b64);
    let start = parts[1].as_ptr() as usize - good.as_ptr() as usize
        + (sig.body.as_ptr() as usize - parts[1].as_ptr() as usize);
    let end = start + sig.body.len();
    let mut forged = good[..start].to_vec();
    forged.extend_from_slice(&b64);
    forged.extend_from_slice(&good[end..]);
    forged
}

/// `openssl cms -sign` of a message from the office address, with `args` (e.g. `-md`,
/// `-keyopt`), made CRLF.
fn openssl_signed(files: &IdentityFiles, args: &[&str]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(
        &input,
        "Content-Type: text/plain; charset=us-ascii\r\n\r\nNoi dung cong van.\r\n",
    )
    .unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let mut all = vec![
        "cms".to_string(),
        "-sign".into(),
        "-in".into(),
        path(&input),
        "-signer".into(),
        path(&files.cert_pem),
        "-inkey".into(),
        path(&files.key_pem),
        "-certfile".into(),
        path(&files.cert_pem.with_file_name("intermediate.pem")),
        "-from".into(),
        "Van thu <vanthu@hadong.hanoi.gov.vn>".into(),
        "-subject".into(),
        "Cong van 26/CT-UBND".into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = testpki::run_openssl(&all).unwrap();
    let mut crlf = Vec::with_capacity(out.len() + 200);
    for (i, &c) in out.iter().enumerate() {
        if c == b'\n' && (i == 0 || out[i - 1] != b'\r') {
            crlf.push(b'\r');
        }
        crlf.push(c);
    }
    crlf
}

/// Every signature algorithm OpenSSL writes for our key types verifies, through ring or,
/// for what ring lacks, the RustCrypto crates; and a flipped signature byte fails on
/// either path.
#[test]
fn openssl_signatures_verify_for_every_algorithm() {
    let pki = testpki::shared();
    let p521 = pki
        .issue(
            "p521-algorithms",
            testpki::KeySpec::P521,
            &testpki::LeafOptions::office(&pki.domain),
        )
        .unwrap();
    const PSS: &str = "rsa_padding_mode:pss";
    let table: Vec<(&IdentityFiles, Vec<&str>)> = vec![
        // ring
        (&pki.rsa2048, vec!["-md", "sha256"]),
        (&pki.rsa3072, vec!["-md", "sha512"]),
        (
            &pki.rsa2048,
            vec!["-keyopt", PSS, "-keyopt", "rsa_pss_saltlen:digest"],
        ),
        (&pki.p256, vec!["-md", "sha256"]),
        (&pki.p256, vec!["-md", "sha384"]),
        (&pki.p384, vec!["-md", "sha256"]),
        (&pki.p384, vec!["-md", "sha384"]),
        // rsa: PSS with another salt length (OpenSSL's default is the maximum)
        (&pki.rsa2048, vec!["-keyopt", PSS]),
        (&pki.rsa3072, vec!["-md", "sha384", "-keyopt", PSS]),
        (
            &pki.rsa4096,
            vec![
                "-md",
                "sha512",
                "-keyopt",
                PSS,
                "-keyopt",
                "rsa_pss_saltlen:0",
            ],
        ),
        (
            &pki.rsa2048,
            vec![
                "-md",
                "sha512",
                "-keyopt",
                PSS,
                "-keyopt",
                "rsa_pss_saltlen:32",
            ],
        ),
        // p256, p384, p521: ECDSA with SHA-512, and P-521
        (&pki.p256, vec!["-md", "sha512"]),
        (&pki.p384, vec!["-md", "sha512"]),
        (&p521, vec!["-md", "sha256"]),
        (&p521, vec!["-md", "sha384"]),
        (&p521, vec!["-md", "sha512"]),
    ];
    for (files, args) in &table {
        let good = openssl_signed(files, args);
        let v = check(&good, &[], VerifyOptions::default());
        assert_eq!(
            v.result,
            SmimeResult::Pass,
            "{} {args:?}: {v:?}",
            files.name
        );
        assert_eq!(v.serial.as_deref(), Some(files.serial_hex.as_str()));
        let v = check(
            &signature_byte_flipped(&good),
            &[],
            VerifyOptions::default(),
        );
        assert_eq!(
            v.failure,
            Some(Failure::BadSignature),
            "{} {args:?}: {v:?}",
            files.name
        );
    }
}

#[test]
fn revocation_and_trust() {
    let pki = testpki::shared();
    let crls = [pki.crl_der.clone()];
    let v = check(&signed(&pki.revoked), &crls, VerifyOptions::default());
    assert_eq!(v.failure, Some(Failure::Revoked), "{v:?}");
    let v = check(
        &signed(&pki.p256),
        &crls,
        VerifyOptions {
            require_revocation_data: true,
            ..VerifyOptions::default()
        },
    );
    assert_eq!(v.result, SmimeResult::TempError, "{v:?}");
    assert!(v.reason_en().contains("CN=congvan test root CA"), "{v:?}");
    let v = verify_message(
        &signed(&pki.p256),
        &TrustStore::default(),
        &[],
        OffsetDateTime::now_utc(),
        VerifyOptions::default(),
    );
    assert!(
        matches!(v.failure, Some(Failure::Untrusted { .. })),
        "{v:?}"
    );
    // At a time after the signer's notAfter.
    let later = OffsetDateTime::now_utc() + time::Duration::days(400);
    let v = verify_message(
        &signed(&pki.p256),
        &anchors(),
        &[],
        later,
        VerifyOptions::default(),
    );
    assert!(matches!(v.failure, Some(Failure::Expired { .. })), "{v:?}");
}

#[test]
fn a_stale_crl_is_a_temporary_error_not_a_pass() {
    // The test CRL's nextUpdate is a week away; the certificates are valid for a year.
    let pki = testpki::shared();
    let crls = [pki.crl_der.clone()];
    let eight_days = OffsetDateTime::now_utc() + time::Duration::days(8);
    let v = verify_message(
        &signed(&pki.p256),
        &anchors(),
        &crls,
        eight_days,
        VerifyOptions::default(),
    );
    assert!(
        matches!(v.failure, Some(Failure::CrlExpired { .. })),
        "{v:?}"
    );
    assert_eq!(v.result, SmimeResult::TempError, "{v:?}");
    assert!(v.reason_en().contains("CRL"), "{v:?}");
    // Within its validity the same CRL is current.
    let v = verify_message(
        &signed(&pki.p256),
        &anchors(),
        &crls,
        OffsetDateTime::now_utc(),
        VerifyOptions::default(),
    );
    assert_eq!(v.result, SmimeResult::Pass, "{v:?}");
}

#[test]
fn unsigned_and_wrapped() {
    let pki = testpki::shared();
    let v = check(&message("a@b.vn"), &[], VerifyOptions::default());
    assert_eq!(
        (v.result, v.failure),
        (SmimeResult::None, Some(Failure::NotSigned))
    );
    let inner = signed(&pki.p256);
    let body = String::from_utf8(inner.clone()).unwrap();
    let wrapped = format!(
        "From: vanthu@hadong.hanoi.gov.vn\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=X\r\n\r\n--X\r\nContent-Type: text/plain\r\n\r\nPay now.\r\n--X\r\n{}\r\n--X--\r\n",
        body.split_once("\r\n\r\n").map(|(h, b)| {
            let ct: Vec<&str> = h.split("\r\n").skip_while(|l| !l.starts_with("Content-Type")).take(2).collect();
            format!("{}\r\n\r\n{b}", ct.join("\r\n"))
        }).unwrap()
    );
    let v = check(wrapped.as_bytes(), &[], VerifyOptions::default());
    assert_eq!(v.result, SmimeResult::Fail, "{v:?}");
    assert!(
        matches!(v.failure, Some(Failure::PartlySigned { .. })),
        "{v:?}"
    );
    let forwarded = format!(
        "From: x@hadong.hanoi.gov.vn\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=Y\r\n\r\n--Y\r\nContent-Type: text/plain\r\n\r\nFwd\r\n--Y\r\nContent-Type: message/rfc822\r\n\r\n{body}\r\n--Y--\r\n"
    );
    let v = check(forwarded.as_bytes(), &[], VerifyOptions::default());
    assert_eq!(v.failure, Some(Failure::OnlyAttachedMessageSigned), "{v:?}");
}

#[test]
fn two_from_and_sender_rules() {
    let pki = testpki::shared();
    let good = String::from_utf8(signed(&pki.p256)).unwrap();
    let two = format!("From: boss@hadong.hanoi.gov.vn\r\n{good}");
    let v = check(two.as_bytes(), &[], VerifyOptions::default());
    assert_eq!(v.failure, Some(Failure::SeveralFrom { count: 2 }));
    assert_eq!(v.result, SmimeResult::PermError);
    // The signer added Sender because From is not the seal's address: pass via Sender.
    let m = message("Giam doc <giamdoc@hadong.hanoi.gov.vn>");
    let s = sign_message(&m, &identity(&pki.p256), OffsetDateTime::now_utc()).unwrap();
    let v = check(&s.bytes, &[], VerifyOptions::default());
    assert_eq!(v.result, SmimeResult::Pass, "{v:?}");
    assert_eq!(v.signer.as_deref(), Some("vanthu@hadong.hanoi.gov.vn"));
    assert!(v.notes_en.iter().any(|n| n == "signed by the Sender <vanthu@hadong.hanoi.gov.vn> on behalf of the From <giamdoc@hadong.hanoi.gov.vn> [RFC 8550 delegation]"), "{v:?}");
    // Display name showing another address.
    let m = message("\"giamdoc@hadong.hanoi.gov.vn\" <vanthu@hadong.hanoi.gov.vn>");
    let s = sign_message(&m, &identity(&pki.p256), OffsetDateTime::now_utc()).unwrap();
    let v = check(&s.bytes, &[], VerifyOptions::default());
    assert!(
        matches!(v.failure, Some(Failure::DisplayNameTrick { .. })),
        "{v:?}"
    );
}

/// Signs a message with this From field (as congvan's signer writes it) and verifies it.
fn from_field(from: &str, opts: VerifyOptions) -> Verdict {
    let pki = testpki::shared();
    let m = message(from);
    let s = sign_message(&m, &identity(&pki.p256), OffsetDateTime::now_utc()).unwrap();
    check(&s.bytes, &[], opts)
}

#[test]
fn the_from_mailbox_whatever_its_syntax() {
    for from in [
        "Van phong UBND: Van thu <vanthu@hadong.hanoi.gov.vn>;",
        "Van phong:vanthu@hadong.hanoi.gov.vn;",
        "\"vanthu\"@hadong.hanoi.gov.vn",
        "vanthu@hadong.hanoi.gov.vn (Van thu, UBND quan)",
        "=?UTF-8?B?VsSDbiB0aMaw?= <vanthu@hadong.hanoi.gov.vn>",
        "\"vanthu@hadong.hanoi.gov.vn\" <VanThu@Hadong.Hanoi.Gov.Vn>",
        "Văn thư ＵＢＮＤ <vanthu@hadong.hanoi.gov.vn>",
    ] {
        let v = from_field(from, VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::Pass, "{from}: {v:?}");
        assert_eq!(
            v.signer.as_deref(),
            Some("vanthu@hadong.hanoi.gov.vn"),
            "{from}"
        );
        assert!(!v.reason_en().contains("Sender"), "{from}: {v:?}");
    }
}

#[test]
fn another_address_shown_in_the_from_field_fails() {
    let trick = |place, shown: &str| {
        Some(Failure::DisplayNameTrick {
            place,
            shown: shown.into(),
        })
    };
    let cases = [
        // Full-width commercial at (U+FF20), written by the signer as an encoded word.
        (
            "\"boss＠other.gov.vn\" <vanthu@hadong.hanoi.gov.vn>",
            trick(Shown::DisplayName, "boss@other.gov.vn"),
        ),
        (
            "Boss﹫Other．gov．vn <vanthu@hadong.hanoi.gov.vn>",
            trick(Shown::DisplayName, "boss@other.gov.vn"),
        ),
        (
            "=?UTF-8?Q?boss=40other=2Egov=2Evn?= <vanthu@hadong.hanoi.gov.vn>",
            trick(Shown::DisplayName, "boss@other.gov.vn"),
        ),
        (
            "vanthu@hadong.hanoi.gov.vn (boss@other.gov.vn)",
            trick(Shown::Comment, "boss@other.gov.vn"),
        ),
        (
            "<vanthu(=?UTF-8?B?Ym9zc++8oG90aGVyLmdvdi52bg==?=)@hadong.hanoi.gov.vn>",
            trick(Shown::Comment, "boss@other.gov.vn"),
        ),
        (
            "=?UTF-8?Q?boss=40other=2Egov=2Evn?=: vanthu@hadong.hanoi.gov.vn;",
            trick(Shown::GroupName, "boss@other.gov.vn"),
        ),
    ];
    for (from, want) in cases {
        let v = from_field(from, VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::Fail, "{from}: {v:?}");
        assert_eq!(v.failure, want, "{from}");
        assert!(!v.failure.as_ref().unwrap().vietnamese().is_empty());
    }
    let header = authentication_results_header(
        "gw",
        &from_field(
            "vanthu@hadong.hanoi.gov.vn (boss@other.gov.vn)",
            VerifyOptions::default(),
        ),
    )
    .replace("\r\n ", " ");
    assert!(
        header.contains("smime=fail (address mismatch: the From comment shows another address [boss@other.gov.vn];"),
        "{header}"
    );
    // A display name on the outer From only (not protected): still what a reader sees.
    let pki = testpki::shared();
    let good = String::from_utf8(signed(&pki.p256)).unwrap();
    let (head, rest) = good.split_once("\r\n\r\n").unwrap();
    let outer = format!(
        "{}\r\n\r\n{rest}",
        head.replacen(
            "From: Van thu <",
            "From: =?UTF-8?Q?boss=EF=BC=A0other.gov.vn?= <",
            1
        )
    );
    let v = check(outer.as_bytes(), &[], VerifyOptions::default());
    assert_eq!(
        v.failure,
        trick(Shown::DisplayName, "boss@other.gov.vn"),
        "{v:?}"
    );
}

#[test]
fn a_transfer_encoding_on_a_multipart_is_permerror() {
    let pki = testpki::shared();
    let good = String::from_utf8(signed(&pki.p256)).unwrap();
    for cte in ["base64", "Quoted-Printable", "x-uuencode"] {
        let bad = good.replacen(
            "MIME-Version: 1.0\r\n",
            &format!("MIME-Version: 1.0\r\nContent-Transfer-Encoding: {cte}\r\n"),
            1,
        );
        let v = check(bad.as_bytes(), &[], VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::PermError, "{cte}: {v:?}");
        assert_eq!(
            v.failure,
            Some(Failure::EncodedMultipart {
                content_type: "multipart/signed".into(),
                encoding: cte.to_ascii_lowercase(),
            })
        );
    }
    for cte in ["7bit", "8BIT", "binary (raw)"] {
        let ok = good.replacen(
            "MIME-Version: 1.0\r\n",
            &format!("MIME-Version: 1.0\r\nContent-Transfer-Encoding: {cte}\r\n"),
            1,
        );
        let v = check(ok.as_bytes(), &[], VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::Pass, "{cte}: {v:?}");
    }
    // Inside the signed content, signed as it is.
    let m = "From: Van thu <vanthu@hadong.hanoi.gov.vn>\r\nSubject: x\r\nMIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=M\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
--M\r\nContent-Type: text/plain\r\n\r\nNoi dung\r\n--M--\r\n";
    let s = sign_message(
        m.as_bytes(),
        &identity(&pki.p256),
        OffsetDateTime::now_utc(),
    )
    .unwrap();
    let v = check(&s.bytes, &[], VerifyOptions::default());
    assert_eq!(v.result, SmimeResult::PermError, "{v:?}");
    assert!(
        matches!(v.failure, Some(Failure::EncodedMultipart { ref content_type, .. }) if content_type == "multipart/mixed"),
        "{v:?}"
    );
    // In an unsigned message too.
    let unsigned = "From: a@b.vn\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=M\r\nContent-Transfer-Encoding: base64\r\n\r\n--M\r\n\r\nx\r\n--M--\r\n";
    let v = check(unsigned.as_bytes(), &[], VerifyOptions::default());
    assert_eq!(v.result, SmimeResult::PermError, "{v:?}");
}

#[test]
fn sender_delegation_named_and_governed_by_the_policy() {
    let from = "Giam doc <giamdoc@hadong.hanoi.gov.vn>";
    let v = from_field(from, VerifyOptions::default());
    assert_eq!(v.result, SmimeResult::Pass, "{v:?}");
    let header = authentication_results_header("gw", &v).replace("\r\n ", " ");
    assert!(
        header.contains("body.smime-identifier=vanthu@hadong.hanoi.gov.vn")
            && header.contains("signed by the Sender <vanthu@hadong.hanoi.gov.vn> on behalf of the From <giamdoc@hadong.hanoi.gov.vn> [RFC 8550 delegation] / =?UTF-8?B?"),
        "{header}"
    );
    let fail = VerifyOptions {
        sender_delegation: SenderDelegation::Fail,
        ..VerifyOptions::default()
    };
    let v = from_field(from, fail);
    assert_eq!(v.result, SmimeResult::Fail, "{v:?}");
    assert_eq!(
        v.failure,
        Some(Failure::SenderDelegation {
            sender: "vanthu@hadong.hanoi.gov.vn".into(),
            from: "giamdoc@hadong.hanoi.gov.vn".into(),
        })
    );
    assert!(
        v.reason_vi().contains("không chấp nhận ký thay"),
        "{}",
        v.reason_vi()
    );
    // The author's own signature is not delegation, whatever the policy.
    let v = from_field("Van thu <vanthu@hadong.hanoi.gov.vn>", fail);
    assert_eq!(v.result, SmimeResult::Pass, "{v:?}");
    assert!(!v.reason_en().contains("Sender"), "{v:?}");
}

#[test]
fn outer_headers_compared_with_protected_ones() {
    let pki = testpki::shared();
    let good = String::from_utf8(signed(&pki.p256)).unwrap();
    let (head, rest) = good.split_once("\r\n\r\n").unwrap();
    let changed = format!(
        "{}\r\n\r\n{rest}",
        head.replacen(
            "Subject: Cong van 26/CT-UBND",
            "Subject: Khan: chuyen tien",
            1
        )
    );
    let v = check(changed.as_bytes(), &[], VerifyOptions::default());
    assert_eq!(v.result, SmimeResult::Pass, "{v:?}");
    assert_eq!(v.header_mismatches, vec!["Subject".to_string()]);
    assert!(authentication_results_header("gw", &v)
        .replace("\r\n ", " ")
        .contains("differ from the signed ones: Subject"));
    let from = format!(
        "{}\r\n\r\n{rest}",
        head.replacen(
            "From: Van thu <vanthu@hadong",
            "From: Van thu <giamdoc@hadong",
            1
        )
    );
    let v = check(from.as_bytes(), &[], VerifyOptions::default());
    assert_eq!(
        v.failure,
        Some(Failure::OuterIdentityDiffers { field: "From" }),
        "{v:?}"
    );
}

#[test]
fn truncated_and_mangled_input_never_panics() {
    let pki = testpki::shared();
    let good = signed(&pki.rsa2048);
    for cut in (0..good.len()).step_by(97) {
        let v = check(&good[..cut], &[], VerifyOptions::default());
        assert_ne!(v.result, SmimeResult::Pass);
    }
    // Any changed byte: never a panic; inside the signed entity: never a pass.
    let m = message("Van thu <vanthu@hadong.hanoi.gov.vn>");
    let s = sign_message(&m, &identity(&pki.p256), OffsetDateTime::now_utc()).unwrap();
    let mut x = s.bytes.clone();
    for i in (0..x.len()).step_by(13) {
        x[i] = x[i].wrapping_add(1);
        let v = check(&x, &[], VerifyOptions::default());
        if s.signed_entity.contains(&i) {
            assert_ne!(v.result, SmimeResult::Pass, "flip at {i}");
        }
        x[i] = s.bytes[i];
    }
}
