//! End-to-end tests of incoming verification (issue 4): messages signed at test time by
//! OpenSSL and by congvan's own signer, and the published attack shapes, sent over SMTP to
//! the inbound listener; each test asserts the exact Authentication-Results field of the
//! delivered file (or the SMTP reply, or the queue, for the policy actions).

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use congvan::config::Role;
use congvan::pki::identity::SigningIdentity;
use congvan::pki::testpki::{self, IdentityFiles, TestPki};
use congvan::server::Running;

const HOST: &str = "gw.test.gov.vn";
const DOMAIN: &str = "hanoi.gov.vn";
const SIGNER: &str = "vanthu@hanoi.gov.vn";
/// The intermediate CA of the test PKI, as the header writes it (RFC 4514, ASCII escapes).
const ISSUER: &str = "CN=congvan test intermediate CA,O=Ban C\\C6\\A1 y\\E1\\BA\\BFu Ch\\C3\\ADnh ph\\E1\\BB\\A7 (th\\E1\\BB\\AD nghi\\E1\\BB\\87m),C=VN";

/// The trusted PKI and an untrusted one, made once per test binary.
struct Pkis {
    _dir: tempfile::TempDir,
    trusted: TestPki,
    other: TestPki,
    /// A P-521 signer from the trusted intermediate (ring has no P-521).
    p521: IdentityFiles,
    /// A self-signed signer for vanthu@hanoi.gov.vn (cert, key).
    self_signed: (PathBuf, PathBuf),
}

fn pkis() -> &'static Pkis {
    static P: OnceLock<Pkis> = OnceLock::new();
    P.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("trusted");
        let o = dir.path().join("other");
        std::fs::create_dir_all(&t).unwrap();
        std::fs::create_dir_all(&o).unwrap();
        let trusted = testpki::generate(&t, DOMAIN).unwrap();
        let other = testpki::generate(&o, DOMAIN).unwrap();
        let p521 = trusted
            .issue(
                "p521",
                testpki::KeySpec::P521,
                &testpki::LeafOptions::office(DOMAIN),
            )
            .unwrap();
        let cert = dir.path().join("self.pem");
        let key = dir.path().join("self.key.pem");
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            s(&key),
            "-out",
            s(&cert),
            "-days",
            "30",
            "-subj",
            "/CN=Van thu/C=VN",
            "-addext",
            "subjectAltName=email:vanthu@hanoi.gov.vn",
            "-addext",
            "extendedKeyUsage=emailProtection",
            "-addext",
            "keyUsage=digitalSignature",
        ]);
        Pkis {
            _dir: dir,
            trusted,
            other,
            p521,
            self_signed: (cert, key),
        }
    })
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn openssl(args: &[&str]) -> Vec<u8> {
    testpki::run_openssl(args).unwrap_or_else(|e| panic!("{e}"))
}

/// Every bare LF made CRLF (OpenSSL writes LF outside the signed part).
fn crlf(b: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(b.len() + 100);
    for (i, &c) in b.iter().enumerate() {
        if c == b'\n' && (i == 0 || b[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(c);
    }
    out
}

const CONTENT: &str = "Content-Type: text/plain; charset=us-ascii\r\n\r\nKinh gui: UBND quan Ha Dong\r\n\r\nCong van so 26/CT-UBND.\r\n";

fn write_tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = pkis()._dir.path().join("msgs");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}-{}", congvan::util::new_queue_id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

/// `openssl smime -sign` (multipart/signed, BER, x-pkcs7-signature), CRLF.
fn smime_sign(id: &IdentityFiles, from: &str, extra: &[&str]) -> Vec<u8> {
    let inp = write_tmp("c", CONTENT.as_bytes());
    let inter = id.chain_pem.with_file_name("intermediate.pem");
    let mut args = vec![
        "smime",
        "-sign",
        "-in",
        s(&inp),
        "-signer",
        s(&id.cert_pem),
        "-inkey",
        s(&id.key_pem),
        "-certfile",
        s(&inter),
        "-from",
        from,
        "-to",
        "vanthu@dev.gov.vn",
        "-subject",
        "Cong van 26/CT-UBND",
    ];
    args.extend_from_slice(extra);
    crlf(&openssl(&args))
}

/// `openssl cms -sign` with extra options (e.g. -nodetach, -keyid, -md, -keyopt), CRLF.
fn cms_sign(
    cert: &Path,
    key: &Path,
    certfile: Option<&Path>,
    from: &str,
    extra: &[&str],
) -> Vec<u8> {
    let inp = write_tmp("c", CONTENT.as_bytes());
    let mut args = vec![
        "cms",
        "-sign",
        "-in",
        s(&inp),
        "-signer",
        s(cert),
        "-inkey",
        s(key),
        "-from",
        from,
        "-to",
        "vanthu@dev.gov.vn",
        "-subject",
        "Cong van 26/CT-UBND",
    ];
    if let Some(c) = certfile {
        args.extend_from_slice(&["-certfile", s(c)]);
    }
    args.extend_from_slice(extra);
    let out = openssl(&args);
    if extra.contains(&"DER") {
        out
    } else {
        crlf(&out)
    }
}

fn plain_message(from: &str) -> Vec<u8> {
    format!(
        "From: {from}\r\nTo: vanthu@dev.gov.vn\r\nSubject: Cong van 26/CT-UBND\r\nDate: Mon, 23 Nov 2026 08:00:00 +0700\r\nMIME-Version: 1.0\r\n{CONTENT}"
    )
    .into_bytes()
}

/// congvan's own signer (DER, RFC 9788 header protection).
fn congvan_sign(id: &IdentityFiles, from: &str) -> Vec<u8> {
    let idn = SigningIdentity::from_pem(
        &std::fs::read(&id.chain_pem).unwrap(),
        &std::fs::read(&id.key_pem).unwrap(),
    )
    .unwrap();
    congvan::smime::sign::sign_message(&plain_message(from), &idn, time::OffsetDateTime::now_utc())
        .unwrap()
        .bytes
}

/// A test gateway with the trusted root configured (and the CRL when `crl`).
async fn gateway(crl: bool, policy_edit: impl FnOnce(&Path)) -> (Env, Running) {
    let env = Env::new(Setup::default()).await;
    policy_edit(&env.path().join("policies/default.toml"));
    let db = env.db().await;
    let p = pkis();
    congvan::pki::store::trust_add(
        &db,
        "test",
        &std::fs::read(&p.trusted.root.cert_pem).unwrap(),
    )
    .await
    .unwrap();
    if crl {
        congvan::pki::store::crl_add(&db, "test", &p.trusted.crl_der)
            .await
            .unwrap();
    }
    db.close().await.ok();
    let gw = env.start().await;
    (env, gw)
}

/// Sends one message to `<case>@dev.gov.vn` over the inbound listener; the final reply.
async fn send(gw: &Running, case: &str, msg: &[u8]) -> (u16, String) {
    let mut c = Client::connect(addr(gw, Role::Inbound)).await;
    c.reply().await;
    c.expect("EHLO mx.hanoi.gov.vn", 250).await;
    c.expect("MAIL FROM:<vanthu@hanoi.gov.vn>", 250).await;
    c.expect(&format!("RCPT TO:<{case}@dev.gov.vn>"), 250).await;
    c.expect("DATA", 354).await;
    let mut data = Vec::with_capacity(msg.len() + 64);
    for line in msg.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
    }
    if !data.ends_with(b"\r\n") {
        data.extend_from_slice(b"\r\n");
    }
    data.extend_from_slice(b".\r\n");
    c.send(&data).await;
    c.reply().await
}

/// Sends every case, expects 250 for each, and returns the delivered files by case.
async fn deliver_all(
    env: &Env,
    gw: &Running,
    cases: &[(&str, Vec<u8>)],
) -> HashMap<String, Vec<u8>> {
    for (name, msg) in cases {
        let (code, text) = send(gw, name, msg).await;
        assert_eq!(code, 250, "{name}: {text}");
    }
    let files = wait_files(&env.inbox(), cases.len(), 30).await;
    assert_eq!(files.len(), cases.len());
    files
        .iter()
        .map(|f| {
            let rcpt = envelope_of(f)["recipients"][0]
                .as_str()
                .unwrap()
                .to_string();
            let case = rcpt.split('@').next().unwrap().to_string();
            (case, std::fs::read(f).unwrap())
        })
        .collect()
}

/// Every Authentication-Results field of the delivered message, unfolded.
fn results(msg: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(msg);
    let head = text.split("\r\n\r\n").next().unwrap_or("");
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded
        .split("\r\n")
        .filter(|l| {
            l.to_ascii_lowercase()
                .starts_with("authentication-results:")
        })
        .map(str::to_string)
        .collect()
}

/// Our single result field, which must be the first line of the message.
fn our_result(case: &str, msg: &[u8]) -> String {
    assert!(
        msg.starts_with(format!("Authentication-Results: {HOST}; smime=").as_bytes()),
        "{case}: {}",
        String::from_utf8_lossy(&msg[..200.min(msg.len())])
    );
    let ours: Vec<String> = results(msg)
        .into_iter()
        .filter(|r| r.contains(&format!(": {HOST};")))
        .collect();
    assert_eq!(ours.len(), 1, "{case}: {ours:?}");
    ours[0].clone()
}

fn pass_prefix(serial: &str) -> String {
    format!(
        "Authentication-Results: {HOST}; smime=pass body.smime-identifier={SIGNER} body.smime-serial={serial} body.smime-issuer=\"{ISSUER}\""
    )
}

fn assert_result(files: &HashMap<String, Vec<u8>>, case: &str, prefix: &str) {
    let r = our_result(case, &files[case]);
    assert!(r.starts_with(prefix), "{case}:\n got  {r}\n want {prefix}…");
    if !prefix.contains("smime=pass") {
        // A reason in English, then the Vietnamese as an encoded word.
        assert!(
            r.contains(" / =?UTF-8?B?") && r.ends_with("?=)"),
            "{case}: {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_signatures_pass() {
    let p = pkis();
    let t = &p.trusted;
    let (env, gw) = gateway(true, |_| {}).await;
    let inter = t.intermediate.cert_pem.clone();
    let own = congvan_sign(&t.p256, SIGNER);
    let own_text = String::from_utf8(own.clone()).unwrap();
    let cases = vec![
        ("congvan-p256", own.clone()),
        ("congvan-rsa2048", congvan_sign(&t.rsa2048, SIGNER)),
        ("congvan-p384", congvan_sign(&t.p384, SIGNER)),
        ("smime-rsa-ber", smime_sign(&t.rsa3072, SIGNER, &[])),
        (
            "smime-rsa2048-sha512",
            smime_sign(&t.rsa2048, SIGNER, &["-md", "sha512"]),
        ),
        (
            "cms-opaque-keyid-p384",
            cms_sign(
                &t.p384.cert_pem,
                &t.p384.key_pem,
                Some(&inter),
                SIGNER,
                &["-nodetach", "-keyid", "-md", "sha384"],
            ),
        ),
        (
            "cms-rsa-pss",
            cms_sign(
                &t.rsa2048.cert_pem,
                &t.rsa2048.key_pem,
                Some(&inter),
                SIGNER,
                &[
                    "-keyopt",
                    "rsa_padding_mode:pss",
                    "-keyopt",
                    "rsa_pss_saltlen:digest",
                ],
            ),
        ),
        (
            "upper-case-no-protocol",
            own_text
                .replacen(
                    "Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\";",
                    "Content-Type: MULTIPART/Signed;",
                    1,
                )
                .into_bytes(),
        ),
        (
            "x-pkcs7-protocol",
            own_text
                .replacen(
                    "protocol=\"application/pkcs7-signature\"",
                    "protocol=\"Application/X-PKCS7-Signature\"",
                    1,
                )
                .into_bytes(),
        ),
    ];
    let files = deliver_all(&env, &gw, &cases).await;
    let serial = |f: &IdentityFiles| f.serial_hex.clone();
    for (case, id) in [
        ("congvan-p256", &t.p256),
        ("congvan-rsa2048", &t.rsa2048),
        ("congvan-p384", &t.p384),
        ("smime-rsa-ber", &t.rsa3072),
        ("smime-rsa2048-sha512", &t.rsa2048),
        ("cms-opaque-keyid-p384", &t.p384),
        ("cms-rsa-pss", &t.rsa2048),
        ("upper-case-no-protocol", &t.p256),
        ("x-pkcs7-protocol", &t.p256),
    ] {
        assert_result(&files, case, &pass_prefix(&serial(id)));
        // The CRL covers the intermediate's leaves; the root has none: the comment says so.
        let r = our_result(case, &files[case]);
        assert!(
            r.contains("(not revocation-checked: no CRL configured for CN=congvan test root CA"),
            "{case}: {r}"
        );
    }
    // The delivered message is the received one below our field and the Received line.
    let delivered = &files["congvan-p256"];
    assert!(delivered.ends_with(&own), "body changed");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_untrusted_and_unusable_signers_fail() {
    let p = pkis();
    let t = &p.trusted;
    let (env, gw) = gateway(true, |_| {}).await;
    let own = String::from_utf8(congvan_sign(&t.p256, SIGNER)).unwrap();
    let body_byte = own.replacen("Cong van so 26/CT-UBND.", "Cong van so 27/CT-UBND.", 1);
    // Change one byte in the middle of the signature's base64 (inside the signature value,
    // near the end of the DER).
    let sig_start = own.find("filename=smime.p7s").unwrap();
    let end = own.rfind("\r\n--").unwrap();
    let at = (sig_start..end - 10)
        .rev()
        .find(|&i| own.as_bytes()[i].is_ascii_alphanumeric())
        .unwrap();
    let mut sig_byte = own.clone().into_bytes();
    sig_byte[at] = if sig_byte[at] == b'A' { b'B' } else { b'A' };
    let forged_ar = format!(
        "Authentication-Results: {HOST}; smime=pass body.smime-identifier=giamdoc@hanoi.gov.vn\r\nAuthentication-Results: mx.hanoi.gov.vn; spf=pass smtp.mailfrom=hanoi.gov.vn\r\n{}",
        String::from_utf8(plain_message(SIGNER)).unwrap()
    );
    let (sc, sk) = &p.self_signed;
    let cases = vec![
        ("body-byte", body_byte.into_bytes()),
        ("signature-byte", sig_byte),
        ("untrusted-root", smime_sign(&p.other.p256, SIGNER, &[])),
        ("self-signed", cms_sign(sc, sk, None, SIGNER, &[])),
        ("expired", smime_sign(&t.expired, SIGNER, &[])),
        ("revoked", smime_sign(&t.revoked, SIGNER, &[])),
        ("no-email-eku", smime_sign(&t.no_email_eku, SIGNER, &[])),
        (
            "from-mismatch",
            smime_sign(&t.p256, "giamdoc@hanoi.gov.vn", &[]),
        ),
        (
            "two-from",
            [
                b"From: giamdoc@hanoi.gov.vn\r\n".to_vec(),
                smime_sign(&t.p256, SIGNER, &[]),
            ]
            .concat(),
        ),
        ("forged-results", forged_ar.into_bytes()),
    ];
    let files = deliver_all(&env, &gw, &cases).await;
    let fail = |why: &str| format!("Authentication-Results: {HOST}; smime=fail ({why}");
    assert_result(
        &files,
        "body-byte",
        &fail("digest mismatch: the signed content was changed"),
    );
    assert_result(
        &files,
        "signature-byte",
        &fail("the signature does not verify"),
    );
    assert_result(
        &files,
        "untrusted-root",
        &fail("untrusted signer: no path to a configured trust anchor"),
    );
    assert_result(&files, "self-signed", &fail("untrusted signer:"));
    assert_result(
        &files,
        "expired",
        &fail("the signer's certificate expired at "),
    );
    assert_result(
        &files,
        "revoked",
        &fail("a certificate on the signer's path is revoked"),
    );
    assert_result(
        &files,
        "no-email-eku",
        &fail("the signer's certificate does not allow emailProtection [EKU]"),
    );
    assert_result(
        &files,
        "from-mismatch",
        &fail("address mismatch: From <giamdoc@hanoi.gov.vn> is not an address of the signer's certificate [vanthu@hanoi.gov.vn, vanphong@hanoi.gov.vn]"),
    );
    assert_result(
        &files,
        "two-from",
        &format!(
            "Authentication-Results: {HOST}; smime=permerror (the message has 2 From header fields"
        ),
    );
    assert_result(
        &files,
        "forged-results",
        &format!("Authentication-Results: {HOST}; smime=none (not signed"),
    );
    let all = results(&files["forged-results"]);
    assert_eq!(all.len(), 2, "{all:?}");
    assert!(
        all[1].starts_with("Authentication-Results: mx.hanoi.gov.vn; spf=pass"),
        "{all:?}"
    );
    assert!(!String::from_utf8_lossy(&files["forged-results"]).contains("giamdoc"));
    gw.stop().await;
}

/// What ring cannot verify, as OpenSSL writes it: RSA-PSS with its default (maximum) salt
/// length or another explicit one, ECDSA with SHA-512, and P-521; each passes, and fails once
/// a body byte or a signature byte is changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pss_salt_lengths_sha512_ecdsa_and_p521_verify() {
    let p = pkis();
    let t = &p.trusted;
    let (env, gw) = gateway(true, |_| {}).await;
    let inter = t.intermediate.cert_pem.clone();
    let sign = |id: &IdentityFiles, extra: &[&str]| {
        cms_sign(&id.cert_pem, &id.key_pem, Some(&inter), SIGNER, extra)
    };
    const PSS: &str = "rsa_padding_mode:pss";
    let pss_max = sign(&t.rsa2048, &["-keyopt", PSS]);
    let p521 = sign(&p.p521, &["-md", "sha512"]);
    let body_byte = |signed: &[u8]| {
        String::from_utf8(signed.to_vec())
            .unwrap()
            .replacen("Cong van so 26/CT-UBND.", "Cong van so 27/CT-UBND.", 1)
            .into_bytes()
    };
    let cases = vec![
        ("pss-max-salt", pss_max.clone()),
        (
            "pss-salt32",
            sign(
                &t.rsa2048,
                &["-keyopt", PSS, "-keyopt", "rsa_pss_saltlen:32"],
            ),
        ),
        (
            "pss-sha512-salt32",
            sign(
                &t.rsa3072,
                &[
                    "-md",
                    "sha512",
                    "-keyopt",
                    PSS,
                    "-keyopt",
                    "rsa_pss_saltlen:32",
                ],
            ),
        ),
        ("p256-sha512", sign(&t.p256, &["-md", "sha512"])),
        ("p384-sha512", sign(&t.p384, &["-md", "sha512"])),
        ("p521-sha256", sign(&p.p521, &["-md", "sha256"])),
        ("p521-sha512", p521.clone()),
        ("pss-body-byte", body_byte(&pss_max)),
        ("pss-signature-byte", signature_byte_flipped(&pss_max)),
        ("p521-body-byte", body_byte(&p521)),
        ("p521-signature-byte", signature_byte_flipped(&p521)),
    ];
    let files = deliver_all(&env, &gw, &cases).await;
    for (case, id) in [
        ("pss-max-salt", &t.rsa2048),
        ("pss-salt32", &t.rsa2048),
        ("pss-sha512-salt32", &t.rsa3072),
        ("p256-sha512", &t.p256),
        ("p384-sha512", &t.p384),
        ("p521-sha256", &p.p521),
        ("p521-sha512", &p.p521),
    ] {
        assert_result(&files, case, &pass_prefix(&id.serial_hex));
    }
    let fail = |why: &str| format!("Authentication-Results: {HOST}; smime=fail ({why}");
    for case in ["pss-body-byte", "p521-body-byte"] {
        assert_result(
            &files,
            case,
            &fail("digest mismatch: the signed content was changed"),
        );
    }
    for case in ["pss-signature-byte", "p521-signature-byte"] {
        assert_result(&files, case, &fail("the signature does not verify"));
    }
    gw.stop().await;
}

/// The entity of a signed message (its content header fields and body), for wrapping.
fn as_part(signed: &[u8]) -> String {
    let text = String::from_utf8(signed.to_vec()).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let unfolded = head.replace("\r\n ", " ");
    let ct: Vec<&str> = unfolded
        .split("\r\n")
        .filter(|l| l.to_ascii_lowercase().starts_with("content-"))
        .collect();
    format!("{}\r\n\r\n{body}", ct.join("\r\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_classes_never_pass() {
    let p = pkis();
    let t = &p.trusted;
    let (env, gw) = gateway(true, |_| {}).await;
    let inter = t.intermediate.cert_pem.clone();
    let own = congvan_sign(&t.p256, SIGNER);
    let own_text = String::from_utf8(own.clone()).unwrap();
    let outer = format!(
        "From: {SIGNER}\r\nTo: vanthu@dev.gov.vn\r\nSubject: Khan\r\nMIME-Version: 1.0\r\n"
    );
    let mixed = |first: &str, second: &str| {
        format!("{outer}Content-Type: multipart/mixed; boundary=\"MIX\"\r\n\r\n--MIX\r\n{first}\r\n--MIX\r\n{second}\r\n--MIX--\r\n").into_bytes()
    };
    let prepended = mixed(
        "Content-Type: text/plain\r\n\r\nChuyen ngay 2 ty dong vao tai khoan sau.",
        &as_part(&own),
    );
    let html = mixed(
        "Content-Type: text/html\r\n\r\n<p>Lenh chuyen tien</p><div style=\"display:none\">",
        &as_part(&own),
    );
    let attachment = mixed(
        "Content-Type: text/plain\r\n\r\nXem tep dinh kem.",
        &as_part(&own).replacen(
            "Content-Type:",
            "Content-Disposition: attachment; filename=signed.eml\r\nContent-Type:",
            1,
        ),
    );
    let rfc822 = mixed(
        "Content-Type: text/plain\r\n\r\nChuyen tiep.",
        &format!("Content-Type: message/rfc822\r\n\r\n{own_text}"),
    );
    // eContent inside a detached multipart/signed: the p7s of an opaque signature.
    let opaque = cms_sign(
        &t.p256.cert_pem,
        &t.p256.key_pem,
        Some(&inter),
        SIGNER,
        &["-nodetach", "-outform", "DER"],
    );
    let both = replace_p7s(&own_text, &opaque);
    // Zero SignerInfos: a certificates-only SignedData.
    let certs_only = openssl(&[
        "crl2pkcs7",
        "-nocrl",
        "-certfile",
        s(&t.p256.cert_pem),
        "-outform",
        "DER",
    ]);
    let zero = replace_p7s(&own_text, &certs_only);
    // Two signers, one of them untrusted.
    let two = cms_sign(
        &t.p256.cert_pem,
        &t.p256.key_pem,
        Some(&inter),
        SIGNER,
        &[
            "-signer",
            s(&p.other.p256.cert_pem),
            "-inkey",
            s(&p.other.p256.key_pem),
        ],
    );
    let display = congvan_sign(&t.p256, "\"giamdoc@hanoi.gov.vn\" <vanthu@hanoi.gov.vn>");
    let signed_smime = String::from_utf8(smime_sign(&t.p256, SIGNER, &[])).unwrap();
    let sender = signed_smime.replacen(
        "MIME-Version: 1.0\r\n",
        "Sender: giamdoc@hanoi.gov.vn\r\nMIME-Version: 1.0\r\n",
        1,
    );
    let (head, rest) = own_text.split_once("\r\n\r\n").unwrap();
    let boundary = own_text
        .split("boundary=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let three_parts = own_text.replacen(
        &format!("--{boundary}--"),
        &format!(
            "--{boundary}\r\nContent-Type: text/plain\r\n\r\nPhan them khong ky.\r\n--{boundary}--"
        ),
        1,
    );
    let subject = format!(
        "{}\r\n\r\n{rest}",
        head.replacen(
            "Subject: Cong van 26/CT-UBND",
            "Subject: Khan: chuyen tien",
            1
        )
    );
    let outer_from = format!(
        "{}\r\n\r\n{rest}",
        head.replacen(&format!("From: {SIGNER}"), "From: giamdoc@hanoi.gov.vn", 1)
    );
    let cases = vec![
        ("prepended-text", prepended),
        ("html-hiding", html),
        ("signed-attachment", attachment),
        ("embedded-rfc822", rfc822),
        ("econtent-and-detached", both),
        ("zero-signerinfos", zero),
        ("two-signers", two),
        ("display-name", display),
        ("sender-confusion", sender.into_bytes()),
        ("three-parts", three_parts.into_bytes()),
        ("outer-subject", subject.into_bytes()),
        ("outer-from", outer_from.into_bytes()),
    ];
    let files = deliver_all(&env, &gw, &cases).await;
    let fail = |why: &str| format!("Authentication-Results: {HOST}; smime=fail ({why}");
    for case in ["prepended-text", "html-hiding", "signed-attachment"] {
        assert_result(
            &files,
            case,
            &fail("partly signed: the signed part is inside unsigned content"),
        );
    }
    assert_result(
        &files,
        "embedded-rfc822",
        &format!("Authentication-Results: {HOST}; smime=none (not signed: the only signature belongs to an attached message"),
    );
    assert_result(
        &files,
        "econtent-and-detached",
        &fail("the signature carries its own content besides the signed part"),
    );
    assert_result(
        &files,
        "zero-signerinfos",
        &fail("the signature has no signer"),
    );
    assert_result(
        &files,
        "two-signers",
        &fail("the signature has 2 signers; exactly one is accepted"),
    );
    assert_result(
        &files,
        "display-name",
        &fail(
            "address mismatch: the From display name shows another address [giamdoc@hanoi.gov.vn]",
        ),
    );
    assert_result(
        &files,
        "sender-confusion",
        &fail("address mismatch: Sender <giamdoc@hanoi.gov.vn> is not an address of the signer's certificate"),
    );
    assert_result(
        &files,
        "three-parts",
        &fail("partly signed: multipart/signed has 3 parts instead of 2"),
    );
    let r = our_result("outer-subject", &files["outer-subject"]);
    assert!(r.starts_with(&pass_prefix(&t.p256.serial_hex)), "{r}");
    assert!(
        r.contains("outer header fields differ from the signed ones: Subject /"),
        "{r}"
    );
    assert_result(
        &files,
        "outer-from",
        &fail("address mismatch: the outer From differs from the signed From"),
    );
    gw.stop().await;
}

/// Where the base64 body of the signature part of a multipart/signed message (congvan's or
/// OpenSSL's, CRLF) starts and ends.
fn p7s_span(signed: &str) -> (usize, usize) {
    let end = signed.rfind("\r\n--").unwrap() + 2;
    let part = signed[..end].rfind("pkcs7-signature").unwrap();
    let start = part + signed[part..].find("\r\n\r\n").unwrap() + 4;
    (start, end)
}

/// The same multipart/signed with another CMS (base64) in its signature part.
fn replace_p7s(signed: &str, der: &[u8]) -> Vec<u8> {
    let (start, end) = p7s_span(signed);
    let mut b64 = Vec::new();
    congvan::smime::canon::write_base64(der, &mut b64);
    [&signed.as_bytes()[..start], &b64, &signed.as_bytes()[end..]].concat()
}

/// The multipart/signed message with the last byte of its CMS flipped, which is the last byte
/// of the signature value when the CMS is DER without unsigned attributes (as `openssl cms
/// -sign` and congvan write it).
fn signature_byte_flipped(signed: &[u8]) -> Vec<u8> {
    use base64::Engine as _;
    let text = String::from_utf8(signed.to_vec()).unwrap();
    let (start, end) = p7s_span(&text);
    let b64: String = text[start..end]
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let mut der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    assert!(der.starts_with(&[0x30, 0x82]), "not definite-length DER");
    *der.last_mut().unwrap() ^= 1;
    replace_p7s(&text, &der)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_actions_and_live_trust_changes() {
    let p = pkis();
    let t = &p.trusted;
    let env = Env::new(Setup::default()).await;
    let policy = env.path().join("policies/default.toml");
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str("\"hanoi.gov.vn\" = \"quarantine\"\n\"danang.gov.vn\" = \"refuse\"\n");
    std::fs::write(&policy, text).unwrap();
    let gw = env.start().await;

    // No trust anchor yet: untrusted, quarantined (hanoi.gov.vn), recorded on the message.
    let (code, _) = send(&gw, "before", &congvan_sign(&t.p256, SIGNER)).await;
    assert_eq!(code, 250);
    let out = env.cli(&["queue", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let held = &list[0];
    assert_eq!(held["state"], "held", "{list}");
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .starts_with("quarantined: smime=fail (untrusted signer"),
        "{list}"
    );
    let id = held["id"].as_str().unwrap().to_string();
    let show = String::from_utf8(env.cli(&["queue", "show", &id]).stdout).unwrap();
    assert!(
        show.contains("s/mime:      fail (untrusted signer: no trust anchor is configured"),
        "{show}"
    );

    // `cert trust add` applies to the next message without a restart.
    let out = env.cli(&["cert", "trust", "add", s(&t.root.cert_pem)]);
    assert!(out.status.success(), "{out:?}");
    let (code, _) = send(&gw, "after", &congvan_sign(&t.p256, SIGNER)).await;
    assert_eq!(code, 250);
    let files = wait_files(&env.inbox(), 1, 20).await;
    assert_eq!(files.len(), 1);
    let r = our_result("after", &std::fs::read(&files[0]).unwrap());
    assert!(r.starts_with(&pass_prefix(&t.p256.serial_hex)), "{r}");

    // Refused at SMTP time for danang.gov.vn, with the reason in both languages.
    let (code, text) = send(&gw, "refused", &plain_message("vanthu@danang.gov.vn")).await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("5.7.5 S/MIME verification: smime=none (not signed) / Kiểm tra chữ ký số: Thư không có chữ ký số"), "{text}");

    // The quarantined message is delivered, with its result field, after `queue release`.
    let out = env.cli(&["queue", "release", &id]);
    assert!(out.status.success(), "{out:?}");
    let files = wait_files(&env.inbox(), 2, 20).await;
    assert_eq!(files.len(), 2);
    let released = files
        .iter()
        .find(|f| envelope_of(f)["recipients"][0] == "before@dev.gov.vn")
        .unwrap();
    let r = our_result("before", &std::fs::read(released).unwrap());
    assert!(
        r.starts_with(&format!(
            "Authentication-Results: {HOST}; smime=fail (untrusted signer"
        )),
        "{r}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_revocation_data_is_temperror() {
    let p = pkis();
    let t = &p.trusted;
    let (env, gw) = gateway(true, |policy| {
        let text = std::fs::read_to_string(policy).unwrap();
        std::fs::write(
            policy,
            text.replacen(
                "require_revocation_data = false",
                "require_revocation_data = true",
                1,
            ),
        )
        .unwrap();
    })
    .await;
    let files = deliver_all(&env, &gw, &[("required", congvan_sign(&t.p256, SIGNER))]).await;
    assert_result(
        &files,
        "required",
        &format!("Authentication-Results: {HOST}; smime=temperror (no revocation data [CRL] for CN=congvan test root CA"),
    );
    gw.stop().await;
}
