//! Who signed, end to end (issue 10, SPEC "Incoming: who signed"): From fields in every
//! syntax and the addresses their display names, group names and comments show, a transfer
//! encoding on multipart/signed, and Sender delegation under both policies, over the inbound
//! listener; and on the way out, DKIM-Signature removed before sealing and a clerk's own
//! S/MIME signature over 8-bit text surviving the seal (opaque signed-data), checked with
//! OpenSSL and with congvan's own verifier.

mod common;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use common::*;
use congvan::config::Role;
use congvan::pki::testpki::{self, IdentityFiles, TestPki};
use congvan::server::Running;

const HOST: &str = "gw.test.gov.vn";
const DOMAIN: &str = "hanoi.gov.vn";
const SIGNER: &str = "vanthu@hanoi.gov.vn";

/// The trusted test PKI for hanoi.gov.vn, made once per test binary.
struct Pki {
    dir: tempfile::TempDir,
    trusted: TestPki,
}

fn pki() -> &'static Pki {
    static P: OnceLock<Pki> = OnceLock::new();
    P.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let trusted = testpki::generate(dir.path(), DOMAIN).unwrap();
        Pki { dir, trusted }
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

fn write_tmp(name: &str, bytes: &[u8]) -> PathBuf {
    let dir = pki().dir.path().join("msgs");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(format!("{name}-{}", congvan::util::new_queue_id()));
    std::fs::write(&p, bytes).unwrap();
    p
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

const CONTENT: &str = "Content-Type: text/plain; charset=us-ascii\r\n\r\nKinh gui: UBND quan Ha Dong\r\n\r\nCong van so 26/CT-UBND.\r\n";

/// `openssl smime -sign` by the hanoi.gov.vn P-256 signer, with this From field as written.
fn smime_sign(from: &str) -> Vec<u8> {
    let t = &pki().trusted;
    let inp = write_tmp("c", CONTENT.as_bytes());
    crlf(&openssl(&[
        "smime",
        "-sign",
        "-in",
        s(&inp),
        "-signer",
        s(&t.p256.cert_pem),
        "-inkey",
        s(&t.p256.key_pem),
        "-certfile",
        s(&t.intermediate.cert_pem),
        "-from",
        from,
        "-to",
        "vanthu@dev.gov.vn",
        "-subject",
        "Cong van 26/CT-UBND",
    ]))
}

/// congvan's own signer (RFC 9788 header protection; sets Sender when From is not the seal's).
fn congvan_sign(id: &IdentityFiles, from: &str) -> Vec<u8> {
    let idn = congvan::pki::identity::SigningIdentity::from_pem(
        &std::fs::read(&id.chain_pem).unwrap(),
        &std::fs::read(&id.key_pem).unwrap(),
    )
    .unwrap();
    let msg = format!(
        "From: {from}\r\nTo: vanthu@dev.gov.vn\r\nSubject: Cong van 26/CT-UBND\r\nDate: Mon, 23 Nov 2026 08:00:00 +0700\r\nMIME-Version: 1.0\r\n{CONTENT}"
    );
    congvan::smime::sign::sign_message(msg.as_bytes(), &idn, time::OffsetDateTime::now_utc())
        .unwrap()
        .bytes
}

/// A gateway trusting the hanoi.gov.vn root, its default policy edited by `policy_edit`.
async fn gateway(policy_edit: impl FnOnce(&Path)) -> (Env, Running) {
    let env = Env::new(Setup::default()).await;
    policy_edit(&env.path().join("policies/default.toml"));
    let db = env.db().await;
    congvan::pki::store::trust_add(
        &db,
        "test",
        &std::fs::read(&pki().trusted.root.cert_pem).unwrap(),
    )
    .await
    .unwrap();
    db.close().await.ok();
    let gw = env.start().await;
    (env, gw)
}

/// DATA with dot-stuffing and the final dot.
fn data_of(msg: &[u8]) -> Vec<u8> {
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
    data
}

/// Sends one message to `<case>@dev.gov.vn` over the inbound listener; the final reply.
async fn send_inbound(gw: &Running, case: &str, msg: &[u8]) -> (u16, String) {
    let mut c = Client::connect(addr(gw, Role::Inbound)).await;
    c.reply().await;
    c.expect("EHLO mx.hanoi.gov.vn", 250).await;
    c.expect("MAIL FROM:<vanthu@hanoi.gov.vn>", 250).await;
    c.expect(&format!("RCPT TO:<{case}@dev.gov.vn>"), 250).await;
    c.expect("DATA", 354).await;
    c.send(&data_of(msg)).await;
    c.reply().await
}

/// Sends every case over the inbound listener, expects 250, and returns each delivered
/// message's (unfolded) Authentication-Results field of ours, by case.
async fn results_of(
    env: &Env,
    gw: &Running,
    cases: &[(&str, Vec<u8>)],
) -> std::collections::HashMap<String, String> {
    for (name, msg) in cases {
        let (code, text) = send_inbound(gw, name, msg).await;
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
            let msg = std::fs::read(f).unwrap();
            assert!(
                msg.starts_with(format!("Authentication-Results: {HOST}; smime=").as_bytes()),
                "{case}"
            );
            let text = String::from_utf8_lossy(&msg).into_owned();
            let head = text.split("\r\n\r\n").next().unwrap_or("");
            let first = head
                .replace("\r\n ", " ")
                .replace("\r\n\t", " ")
                .split("\r\n")
                .next()
                .unwrap()
                .to_string();
            (case, first)
        })
        .collect()
}

fn assert_starts(results: &std::collections::HashMap<String, String>, case: &str, want: &str) {
    let r = &results[case];
    assert!(r.starts_with(want), "{case}:\n got  {r}\n want {want}…");
    if !want.contains("smime=pass") {
        // The reason in English, then the Vietnamese as an encoded word.
        assert!(
            r.contains(" / =?UTF-8?B?") && r.ends_with("?=)"),
            "{case}: {r}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_field_syntax_and_shown_addresses() {
    let t = &pki().trusted;
    let (env, gw) = gateway(|_| {}).await;
    let pass = format!("Authentication-Results: {HOST}; smime=pass body.smime-identifier={SIGNER} body.smime-serial={}", t.p256.serial_hex);
    let fail = |why: &str| format!("Authentication-Results: {HOST}; smime=fail ({why}");
    let signed = String::from_utf8(smime_sign(SIGNER)).unwrap();
    let (head, rest) = signed.split_once("\r\n\r\n").unwrap();
    let encoded = format!(
        "{}\r\nContent-Transfer-Encoding: base64\r\n\r\n{rest}",
        head
    );
    let cases = vec![
        // Group syntax, one mailbox: that mailbox is the From address.
        (
            "group",
            smime_sign("Van phong UBND: Van thu <vanthu@hanoi.gov.vn>;"),
        ),
        ("group-bare", smime_sign("Van phong:vanthu@hanoi.gov.vn;")),
        ("quoted-local", smime_sign("\"vanthu\"@hanoi.gov.vn")),
        (
            "comment-name",
            smime_sign("vanthu@hanoi.gov.vn (Van thu UBND)"),
        ),
        // What a reader is shown names someone else.
        (
            "fullwidth-at",
            smime_sign("\"boss＠other.gov.vn\" <vanthu@hanoi.gov.vn>"),
        ),
        (
            "encoded-name",
            smime_sign("=?UTF-8?B?Ym9zc++8oG90aGVyLmdvdi52bg==?= <vanthu@hanoi.gov.vn>"),
        ),
        (
            "comment-address",
            smime_sign("vanthu@hanoi.gov.vn (boss@other.gov.vn)"),
        ),
        (
            "group-name",
            smime_sign("boss@other.gov.vn: vanthu@hanoi.gov.vn;"),
        ),
        // A transfer encoding on multipart/signed.
        ("encoded-multipart", encoded.into_bytes()),
    ];
    let r = results_of(&env, &gw, &cases).await;
    for case in ["group", "group-bare", "quoted-local", "comment-name"] {
        assert_starts(&r, case, &pass);
    }
    for case in ["fullwidth-at", "encoded-name"] {
        assert_starts(
            &r,
            case,
            &fail(
                "address mismatch: the From display name shows another address [boss@other.gov.vn]",
            ),
        );
    }
    assert_starts(
        &r,
        "comment-address",
        &fail("address mismatch: the From comment shows another address [boss@other.gov.vn]"),
    );
    assert_starts(
        &r,
        "group-name",
        &fail("address mismatch: the From group name shows another address [boss@other.gov.vn]"),
    );
    assert_starts(
        &r,
        "encoded-multipart",
        &format!("Authentication-Results: {HOST}; smime=permerror (a multipart/signed entity has Content-Transfer-Encoding base64; a multipart may only be 7bit, 8bit or binary"),
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_delegation_allowed_by_default_and_failed_by_policy() {
    let t = &pki().trusted;
    // congvan's signer sets Sender: vanthu@ (the seal) on a message From giamdoc@.
    let delegated = congvan_sign(&t.p256, "Giam doc <giamdoc@hanoi.gov.vn>");
    assert!(find(&delegated, b"Sender: vanthu@hanoi.gov.vn\r\n").is_some());
    let own = congvan_sign(&t.p256, "Van thu <vanthu@hanoi.gov.vn>");
    let named = "signed by the Sender <vanthu@hanoi.gov.vn> on behalf of the From <giamdoc@hanoi.gov.vn> [RFC 8550 delegation]";

    let (env, gw) = gateway(|_| {}).await;
    let r = results_of(
        &env,
        &gw,
        &[("delegated", delegated.clone()), ("own", own.clone())],
    )
    .await;
    let pass = format!("Authentication-Results: {HOST}; smime=pass body.smime-identifier={SIGNER} body.smime-serial={}", t.p256.serial_hex);
    assert_starts(&r, "delegated", &pass);
    assert!(r["delegated"].contains(named), "{}", r["delegated"]);
    assert_starts(&r, "own", &pass);
    assert!(!r["own"].contains("on behalf of"), "{}", r["own"]);
    gw.stop().await;

    let (env, gw) = gateway(|policy| {
        let text = std::fs::read_to_string(policy).unwrap();
        let edited = text.replacen(
            "# sender_delegation = \"allow\"",
            "sender_delegation = \"fail\"",
            1,
        );
        assert_ne!(text, edited, "the shipped policy names sender_delegation");
        std::fs::write(policy, edited).unwrap();
    })
    .await;
    let out = env.cli(&["policy", "check"]);
    assert!(out.status.success(), "{out:?}");
    let r = results_of(&env, &gw, &[("delegated", delegated), ("own", own)]).await;
    assert_starts(
        &r,
        "delegated",
        &format!("Authentication-Results: {HOST}; smime=fail (the signer is the Sender <vanthu@hanoi.gov.vn>, not the From <giamdoc@hanoi.gov.vn>, and the policy does not accept signing on behalf of another"),
    );
    assert_starts(&r, "own", &pass);
    gw.stop().await;

    // `policy check` names the file, line and key of a bad value.
    let policy = env.path().join("policies/default.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replacen(
            "sender_delegation = \"fail\"",
            "sender_delegation = \"maybe\"",
            1,
        ),
    )
    .unwrap();
    let out = env.cli(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let line = text
        .lines()
        .position(|l| l.starts_with("sender_delegation"))
        .unwrap()
        + 1;
    assert!(
        err.contains(&format!("{}:{line}:", policy.display()))
            && err.contains("(key `incoming.sender_delegation`): unknown variant `maybe`"),
        "{err}"
    );
}

/// Sends over the relay listener (the office mail server); the final reply.
async fn relay(gw: &Running, from: &str, to: &str, msg: &[u8]) -> (u16, String) {
    let mut c = Client::connect(addr(gw, Role::Relay)).await;
    c.reply().await;
    c.expect("EHLO mail.dev.gov.vn", 250).await;
    c.expect(&format!("MAIL FROM:<{from}>"), 250).await;
    c.expect(&format!("RCPT TO:<{to}>"), 250).await;
    c.expect("DATA", 354).await;
    c.send(&data_of(msg)).await;
    let r = c.reply().await;
    c.cmd("QUIT").await;
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dkim_signature_removed_before_sealing() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let msg = format!(
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=dev.gov.vn; s=mail;\r\n\th=from:to:subject; bh=47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=;\r\n\tb=dGVzdA==\r\n{}",
        simple_message(CLERK_ADDR, "vanthu@hanoi.gov.vn", "Cong van 5/UBND")
    );
    let (code, text) = relay(&gw, CLERK_ADDR, "vanthu@hanoi.gov.vn", msg.as_bytes()).await;
    assert_eq!(code, 250, "{text}");
    let files = wait_files(&env.outbox(), 1, 30).await;
    assert_eq!(files.len(), 1);
    let sealed = std::fs::read(&files[0]).unwrap();
    let lower = String::from_utf8_lossy(&sealed).to_ascii_lowercase();
    assert!(!lower.contains("dkim-signature"), "{lower}");
    assert!(!lower.contains("bh=47deqpj8"), "{lower}");
    let (ok, err) = openssl_verify(&files[0], &env.seal_ca());
    assert!(ok, "{err}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clerks_inner_signature_survives_the_seal() {
    let t = &pki().trusted;
    let env = Env::new(Setup::default()).await;
    // congvan's own verifier, on the inbound listener, trusts the seal's CA. (Two anchors:
    // the daemon caches trust material by anchor row ids, process-wide, and the other tests
    // of this binary run in the same process with one anchor, id 1, of their own database.)
    let db = env.db().await;
    for pem in [
        std::fs::read(&t.root.cert_pem).unwrap(),
        std::fs::read(env.seal_ca()).unwrap(),
    ] {
        congvan::pki::store::trust_add(&db, "test", &pem)
            .await
            .unwrap();
    }
    db.close().await.ok();
    let gw = env.start().await;

    // The clerk signs the document in their own client: 8-bit UTF-8 text, signed as is.
    let content = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nKính gửi: Sở Tài chính Hà Nội\r\n\r\nCông văn số 27/UBND-VP về việc báo cáo tình hình thực hiện.\r\n";
    let inp = write_tmp("clerk", content.as_bytes());
    let inner = crlf(&openssl(&[
        "smime",
        "-sign",
        "-binary",
        "-in",
        s(&inp),
        "-signer",
        s(&t.p256.cert_pem),
        "-inkey",
        s(&t.p256.key_pem),
        "-certfile",
        s(&t.intermediate.cert_pem),
    ]));
    let inner = inner
        .strip_prefix(b"MIME-Version: 1.0\r\n".as_slice())
        .unwrap()
        .to_vec();
    let msg = [
        format!("From: Van thu <{CLERK_ADDR}>\r\nTo: vanthu@hanoi.gov.vn\r\nSubject: Cong van 27/UBND-VP\r\nDate: Mon, 23 Nov 2026 08:00:00 +0700\r\nMessage-ID: <27@client.test>\r\nMIME-Version: 1.0\r\n").into_bytes(),
        inner,
    ]
    .concat();

    let mut c = Client::clerk(addr(&gw, Role::Submission), &env).await;
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    c.expect("RCPT TO:<vanthu@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(&data_of(&msg)).await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    c.cmd("QUIT").await;

    let files = wait_files(&env.outbox(), 1, 30).await;
    assert_eq!(files.len(), 1);
    let sealed = std::fs::read(&files[0]).unwrap();
    assert!(
        find(
            &sealed,
            b"Content-Type: application/pkcs7-mime; smime-type=signed-data; name=smime.p7m\r\n"
        )
        .is_some(),
        "{}",
        String::from_utf8_lossy(&sealed)
    );
    assert!(sealed.is_ascii(), "the sealed message is 7-bit");
    // The outer seal verifies with OpenSSL (smime and cms).
    let (ok, err) = openssl_verify(&files[0], &env.seal_ca());
    assert!(ok, "outer seal: {err}");
    let econtent = env.path().join("econtent.eml");
    let out = std::process::Command::new("openssl")
        .args([
            "cms",
            "-verify",
            "-binary",
            "-purpose",
            "smimesign",
            "-CAfile",
        ])
        .arg(env.seal_ca())
        .arg("-in")
        .arg(&files[0])
        .arg("-out")
        .arg(&econtent)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The document inside carries the clerk's signed part byte for byte, and the clerk's
    // signature verifies on it.
    let document = std::fs::read(&econtent).unwrap();
    assert!(find(&document, content.as_bytes()).is_some());
    let out = std::process::Command::new("openssl")
        .args([
            "smime",
            "-verify",
            "-binary",
            "-purpose",
            "smimesign",
            "-CAfile",
        ])
        .arg(&t.root.cert_pem)
        .arg("-in")
        .arg(&econtent)
        .args(["-out", "/dev/null"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "inner signature: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // congvan's own verifier passes the opaque seal (received on the inbound listener).
    let (code, text) = send_inbound(&gw, "nhan", &sealed).await;
    assert_eq!(code, 250, "{text}");
    let files = wait_files(&env.inbox(), 1, 30).await;
    assert_eq!(files.len(), 1);
    let received = String::from_utf8(std::fs::read(&files[0]).unwrap()).unwrap();
    let first = received.replace("\r\n ", " ");
    let first = first.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "Authentication-Results: {HOST}; smime=pass body.smime-identifier={CLERK_ADDR}"
        )),
        "{first}"
    );
    gw.stop().await;
}
