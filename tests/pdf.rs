//! PDF signatures checked (SPEC "Documents"): test documents are made at test time by
//! reportlab and Ghostscript, signed by pyHanko with a test PKI made at test time, and
//! changed, encrypted or broken by pyHanko, qpdf and byte edits; congvan's check must agree
//! with pyHanko's own validation on each.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use base64::Engine;
use common::{addr, Client, Env, Setup};
use congvan::config::Role;
use congvan::pdf::{check_pdf, Authorised, CheckContext, PdfError, PdfFinding, SignatureProblem};
use congvan::pki::testpki::{self, IdentityFiles, KeySpec, LeafOptions, TestPki};
use congvan::smime::verify::{Failure, TrustStore, VerifyOptions};
use rcgen::ExtendedKeyUsagePurpose;
use time::OffsetDateTime;

const TOOL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pdf/tool.py");

struct Fixture {
    dir: PathBuf,
    pki: TestPki,
    /// A competent signer: RSA, the document-signing EKU only.
    signer: IdentityFiles,
    /// A second signer (ECDSA, emailProtection), for documents with two signatures.
    deputy: IdentityFiles,
    /// A signer whose CA is not a trust anchor.
    stranger: IdentityFiles,
    stranger_ca: PathBuf,
}

/// One PKI for the whole file (openssl makes RSA keys slowly).
fn fx() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("congvan-pdf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let pki = testpki::generate(&dir, "hadong.gov.vn").unwrap();
        let mut opts = LeafOptions::office("hadong.gov.vn");
        opts.emails = vec!["nguyenvana@hadong.gov.vn".into()];
        opts.common_name = "Nguyễn Văn A".into();
        opts.extended_key_usages = vec![ExtendedKeyUsagePurpose::Other(vec![
            1, 3, 6, 1, 5, 5, 7, 3, 36,
        ])];
        let signer = pki.issue("signer", KeySpec::Rsa(2048), &opts).unwrap();
        let mut opts = LeafOptions::office("hadong.gov.vn");
        opts.emails = vec!["phochutich@hadong.gov.vn".into()];
        opts.common_name = "Trần Thị B".into();
        let deputy = pki.issue("deputy", KeySpec::P256, &opts).unwrap();
        let other_dir = dir.join("other");
        std::fs::create_dir_all(&other_dir).unwrap();
        let other = testpki::generate(&other_dir, "hadong.gov.vn").unwrap();
        Fixture {
            dir,
            stranger_ca: other.root.cert_pem.clone(),
            stranger: other.p256.clone(),
            pki,
            signer,
            deputy,
        }
    })
}

fn tool(args: &[&str]) {
    let out = Command::new("python3")
        .arg(TOOL)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "tool.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path(name: &str) -> PathBuf {
    fx().dir.join(name)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A fresh document from `producer`, under a name unique to the test.
fn document(name: &str, producer: &str) -> PathBuf {
    let out = path(name);
    tool(&["make", s(&out), "--producer", producer]);
    out
}

/// `input` signed by `who` into `name`, visible when `boxed`.
fn signed_by(input: &Path, who: &IdentityFiles, name: &str, field: &str) -> PathBuf {
    let out = path(name);
    let chain = s(&fx().pki.intermediate.cert_pem).to_string();
    tool(&[
        "sign",
        s(input),
        s(&out),
        "--key",
        s(&who.key_pem),
        "--cert",
        s(&who.cert_pem),
        "--chain",
        &chain,
        "--field",
        field,
        "--box",
        "330,80,530,150",
    ]);
    out
}

fn pyhanko_validate(file: &Path) -> String {
    let out = Command::new("python3")
        .arg(TOOL)
        .args(["validate", s(file), "--trust", s(&fx().pki.root.cert_pem)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn check_with(file: &Path, crls: &[Vec<u8>], authorised: Option<&Authorised>) -> PdfFinding {
    let bytes = std::fs::read(file).unwrap();
    let anchors = TrustStore::new(vec![fx().pki.root.cert_der.clone()]);
    let ctx = CheckContext {
        anchors: &anchors,
        crls,
        at: OffsetDateTime::now_utc(),
        opts: VerifyOptions::default(),
        authorised,
        max_depth: 50,
    };
    check_pdf("van-ban.pdf", &bytes, &ctx)
}

fn check(file: &Path) -> PdfFinding {
    check_with(file, &[], None)
}

fn problems(f: &PdfFinding) -> Vec<SignatureProblem> {
    f.outcome
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|c| c.problem.clone())
        .collect()
}

#[test]
fn a_competent_signers_signature_counts_for_both_producers() {
    for producer in ["reportlab", "gs", "libreoffice"] {
        let doc = document(&format!("plain-{producer}.pdf"), producer);
        let signed = signed_by(
            &doc,
            &fx().signer,
            &format!("signed-{producer}.pdf"),
            "ChuKy",
        );
        let py = pyhanko_validate(&signed);
        assert!(py.contains("intact=True valid=True trusted=True"), "{py}");

        let f = check(&signed);
        assert_eq!(f.refusal(), None, "{f:?}");
        let checks = f.outcome.as_ref().unwrap();
        assert_eq!(checks.len(), 1);
        let c = &checks[0];
        assert!(c.covers_whole_file);
        assert_eq!(c.found.field, "ChuKy");
        assert!(
            c.found.widget.is_some(),
            "a visible signature has its widget"
        );
        let signer = c.signer.as_ref().unwrap();
        assert_eq!(signer.common_name.as_deref(), Some("Nguyễn Văn A"));
        assert_eq!(signer.serial, fx().signer.serial_hex);
        assert_eq!(signer.emails, ["nguyenvana@hadong.gov.vn"]);
    }
}

#[test]
fn an_unsigned_pdf_has_no_signature() {
    let doc = document("unsigned.pdf", "reportlab");
    let f = check(&doc);
    assert_eq!(f.outcome.as_ref().unwrap().len(), 0);
    let (en, vi) = f.refusal().unwrap();
    assert_eq!(en, "the file carries no signature");
    assert_eq!(vi, "tệp không có chữ ký số");
}

#[test]
fn a_second_signature_keeps_the_first_valid() {
    let doc = document("two.pdf", "reportlab");
    let one = signed_by(&doc, &fx().signer, "two-1.pdf", "ChuKy");
    let two = signed_by(&one, &fx().deputy, "two-2.pdf", "ChuKy2");
    let py = pyhanko_validate(&two);
    assert_eq!(
        py.matches("intact=True valid=True trusted=True").count(),
        2,
        "{py}"
    );

    let f = check(&two);
    assert_eq!(f.refusal(), None, "{f:?}");
    let checks = f.outcome.as_ref().unwrap();
    assert_eq!(checks.len(), 2);
    assert!(
        !checks[0].covers_whole_file,
        "the first covers its revision"
    );
    assert!(checks[1].covers_whole_file);
    assert!(checks.iter().all(|c| c.counts()));
}

#[test]
fn content_changed_after_signing_is_found() {
    let doc = document("changed.pdf", "reportlab");
    let signed = signed_by(&doc, &fx().signer, "changed-1.pdf", "ChuKy");
    let changed = path("changed-2.pdf");
    tool(&["append", s(&signed), s(&changed)]);
    let py = pyhanko_validate(&changed);
    assert!(py.contains("modification=OTHER"), "pyHanko agrees: {py}");

    let f = check(&changed);
    let p = problems(&f);
    assert!(
        matches!(p.as_slice(), [SignatureProblem::ChangedAfter(_)]),
        "{p:?}"
    );
    let (en, vi) = f.refusal().unwrap();
    assert!(
        en.starts_with("the content was changed after signing"),
        "{en}"
    );
    assert_eq!(vi, "nội dung tệp đã bị thay đổi sau khi ký");
}

#[test]
fn a_byte_changed_inside_the_signed_range_breaks_the_digest() {
    let doc = document("flip.pdf", "reportlab");
    let signed = signed_by(&doc, &fx().signer, "flip-1.pdf", "ChuKy");
    let mut bytes = std::fs::read(&signed).unwrap();
    // "trang 1" is in the page content (uncompressed by reportlab? find any text byte).
    let at = bytes
        .windows(7)
        .position(|w| w == b"/Author" || w == b"/Produc")
        .expect("an Info entry to change");
    bytes[at + 1] = bytes[at + 1].to_ascii_lowercase();
    let flipped = path("flip-2.pdf");
    std::fs::write(&flipped, &bytes).unwrap();
    let f = check(&flipped);
    let p = problems(&f);
    assert!(
        matches!(
            p.as_slice(),
            [SignatureProblem::Cms(Failure::DigestMismatch)]
        ),
        "{p:?}"
    );
    assert!(f.refusal().is_some());
}

#[test]
fn signers_that_do_not_count() {
    let doc = document("others.pdf", "reportlab");
    // A CA that is not a trust anchor.
    let out = path("stranger.pdf");
    tool(&[
        "sign",
        s(&doc),
        s(&out),
        "--key",
        s(&fx().stranger.key_pem),
        "--cert",
        s(&fx().stranger.cert_pem),
        "--chain",
        s(&fx().stranger_ca),
    ]);
    let p = problems(&check(&out));
    assert!(
        matches!(
            p.as_slice(),
            [SignatureProblem::Cms(Failure::Untrusted { .. })]
        ),
        "{p:?}"
    );

    // Expired, and revoked (with the CRL configured).
    let expired = signed_by(&doc, &fx().pki.expired, "expired.pdf", "ChuKy");
    let p = problems(&check(&expired));
    assert!(
        matches!(
            p.as_slice(),
            [SignatureProblem::Cms(Failure::Expired { .. })]
        ),
        "{p:?}"
    );
    let revoked = signed_by(&doc, &fx().pki.revoked, "revoked.pdf", "ChuKy");
    let p = problems(&check_with(&revoked, &[fx().pki.crl_der.clone()], None));
    assert!(
        matches!(p.as_slice(), [SignatureProblem::Cms(Failure::Revoked)]),
        "{p:?}"
    );
    // Without the CRL the revoked certificate still passes, with a remark.
    let f = check(&revoked);
    assert_eq!(f.refusal(), None);
    let signer = f.outcome.as_ref().unwrap()[0].signer.clone().unwrap();
    assert!(
        signer.notes_en[0].starts_with("not revocation-checked"),
        "{signer:?}"
    );

    // A certificate for client authentication only.
    let wrong = signed_by(&doc, &fx().pki.no_email_eku, "wrong-eku.pdf", "ChuKy");
    let p = problems(&check(&wrong));
    assert!(
        matches!(
            p.as_slice(),
            [SignatureProblem::Cms(Failure::NoDocumentSigning)]
        ),
        "{p:?}"
    );
}

#[test]
fn the_authorised_signers_list_decides_who_is_competent() {
    let doc = document("authorised.pdf", "reportlab");
    let signed = signed_by(&doc, &fx().deputy, "authorised-1.pdf", "ChuKy");
    let only_a = Authorised {
        fingerprints: vec![],
        emails: vec!["NguyenVanA@hadong.gov.vn".into()],
    };
    let f = check_with(&signed, &[], Some(&only_a));
    assert_eq!(problems(&f), [SignatureProblem::NotAuthorised]);
    let (_, vi) = f.refusal().unwrap();
    assert!(vi.contains("danh sách người có thẩm quyền"), "{vi}");

    let fingerprint = hex::encode(ring::digest::digest(
        &ring::digest::SHA256,
        &fx().deputy.cert_der,
    ));
    let by_fingerprint = Authorised {
        fingerprints: vec![fingerprint.to_uppercase()],
        emails: vec![],
    };
    assert_eq!(
        check_with(&signed, &[], Some(&by_fingerprint)).refusal(),
        None
    );
}

#[test]
fn encrypted_and_broken_files() {
    let doc = document("enc.pdf", "reportlab");
    let signed = signed_by(&doc, &fx().signer, "enc-1.pdf", "ChuKy");
    let encrypted = path("enc-2.pdf");
    let st = Command::new("qpdf")
        .args([
            "--encrypt",
            "",
            "owner",
            "256",
            "--",
            s(&signed),
            s(&encrypted),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    assert_eq!(check(&encrypted).outcome, Err(PdfError::Encrypted));
    let with_password = path("enc-3.pdf");
    let st = Command::new("qpdf")
        .args([
            "--encrypt",
            "user",
            "owner",
            "256",
            "--",
            s(&signed),
            s(&with_password),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let f = check(&with_password);
    assert_eq!(f.outcome, Err(PdfError::Encrypted));
    assert_eq!(f.refusal().unwrap().0, "the file is encrypted");

    let bytes = std::fs::read(&signed).unwrap();
    let broken = path("broken.pdf");
    std::fs::write(&broken, &bytes[..bytes.len() / 3]).unwrap();
    let f = check(&broken);
    assert!(
        matches!(&f.outcome, Err(PdfError::Unreadable(_)) | Ok(_)),
        "{f:?}"
    );
    assert!(f.refusal().is_some(), "a third of a file is never accepted");
    let f = check_with_bytes(b"not a pdf at all");
    assert!(matches!(f.outcome, Err(PdfError::Unreadable(_))), "{f:?}");
}

fn check_with_bytes(bytes: &[u8]) -> PdfFinding {
    let p = path(&format!("bytes-{}.pdf", bytes.len()));
    std::fs::write(&p, bytes).unwrap();
    check(&p)
}

// ---------------------------------------------------------------------------------------------
// At end of DATA, over SMTP (the relay listener), with `[pdf] require_signer_signature`
// ---------------------------------------------------------------------------------------------

/// A gateway whose profile requires a competent signer's signature, trusting the test PKI's
/// root; `signers` is written as `signers.toml` and named by the profile when given.
async fn gateway(signers: Option<String>) -> Env {
    gateway_with(signers, false).await
}

/// [`gateway`], also sealing PDF parts at delivery when `seal_pdf`.
async fn gateway_with(signers: Option<String>, seal_pdf: bool) -> Env {
    let env = Env::new(Setup::default()).await;
    let profile = env.path().join("policies/default.toml");
    let mut text = std::fs::read_to_string(&profile).unwrap().replace(
        "require_signer_signature = false",
        "require_signer_signature = true",
    );
    if seal_pdf {
        text = text.replace("seal_pdf = false", "seal_pdf = true");
    }
    if let Some(list) = signers {
        std::fs::write(env.path().join("policies/signers.toml"), list).unwrap();
        text = text.replace(
            "# authorised_signers = \"signers.toml\"",
            "authorised_signers = \"signers.toml\"",
        );
    }
    std::fs::write(&profile, text).unwrap();
    let out = env.cli(&["policy", "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.cli(&["cert", "trust", "add", s(&fx().pki.root.cert_pem)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    env
}

fn message_with(pdfs: &[(&str, &[u8])]) -> Vec<u8> {
    let mut m = String::from(
        "From: vanthu@dev.gov.vn\r\nTo: vanphong@hanoi.gov.vn\r\nSubject: Cong van so 26/CT-UBND\r\n\
         Message-ID: <pdf-test@dev.gov.vn>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\nKinh gui.\r\n",
    );
    for (name, bytes) in pdfs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(bytes);
        m.push_str(&format!(
            "--b1\r\nContent-Type: application/pdf; name=\"{name}\"\r\n\
             Content-Disposition: attachment; filename=\"{name}\"\r\n\
             Content-Transfer-Encoding: base64\r\n\r\n"
        ));
        for line in b64.as_bytes().chunks(76) {
            m.push_str(std::str::from_utf8(line).unwrap());
            m.push_str("\r\n");
        }
    }
    m.push_str("--b1--\r\n");
    m.into_bytes()
}

async fn send(gw: &congvan::server::Running, data: &[u8]) -> (u16, String) {
    let mut c = Client::connect(addr(gw, Role::Relay)).await;
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO mail.dev.gov.vn", 250).await;
    c.expect("MAIL FROM:<vanthu@dev.gov.vn>", 250).await;
    c.expect("RCPT TO:<vanphong@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(data).await;
    c.send(b".\r\n").await;
    c.reply().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_data_refuses_a_pdf_without_a_competent_signers_signature() {
    let env = gateway(None).await;
    let gw = env.start().await;
    let doc = document("smtp-plain.pdf", "reportlab");
    let signed = signed_by(&doc, &fx().signer, "smtp-signed.pdf", "ChuKy");
    let plain = std::fs::read(&doc).unwrap();
    let good = std::fs::read(&signed).unwrap();

    let (code, text) = send(&gw, &message_with(&[("qd-26.pdf", &good)])).await;
    assert_eq!(code, 250, "{text}");

    let (code, text) = send(
        &gw,
        &message_with(&[("qd-26.pdf", &good), ("phu-luc.pdf", &plain)]),
    )
    .await;
    assert_eq!(code, 550, "{text}");
    assert!(
        text.contains("550 5.7.1 the PDF \"phu-luc.pdf\" carries no valid signature of a competent signer (rule pdf.signer) / Tệp PDF \"phu-luc.pdf\" chưa có chữ ký số hợp lệ của người có thẩm quyền\r\n"),
        "{text}"
    );
    assert!(
        text.starts_with("550-5.7.1 the PDF \"phu-luc.pdf\": the file carries no signature / tệp không có chữ ký số\r\n"),
        "{text}"
    );

    // Content changed after signing: its own reason.
    let changed = path("smtp-changed.pdf");
    tool(&["append", s(&signed), s(&changed)]);
    let (code, text) = send(
        &gw,
        &message_with(&[("qd-26.pdf", &std::fs::read(&changed).unwrap())]),
    )
    .await;
    assert_eq!(code, 550, "{text}");
    assert!(
        text.contains("the content was changed after signing"),
        "{text}"
    );

    // The register keeps the refusal with its rule and reason, not the content.
    let out = env.cli(&["register", "list", "--direction", "out", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let refused: Vec<&serde_json::Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r.to_string().contains("pdf.signer"))
        .collect();
    assert_eq!(refused.len(), 2, "{rows:#}");
    assert!(
        refused
            .iter()
            .any(|r| r.to_string().contains("changed after signing")),
        "{rows:#}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorised_signers_list_applies_at_end_of_data() {
    let env = gateway(Some(
        "[\"dev.gov.vn\"]\nemails = [\"nguyenvana@hadong.gov.vn\"]\n".into(),
    ))
    .await;
    let gw = env.start().await;
    let doc = document("smtp-list.pdf", "gs");
    let by_a = std::fs::read(signed_by(&doc, &fx().signer, "smtp-list-a.pdf", "ChuKy")).unwrap();
    let by_b = std::fs::read(signed_by(&doc, &fx().deputy, "smtp-list-b.pdf", "ChuKy")).unwrap();
    let (code, text) = send(&gw, &message_with(&[("a.pdf", &by_a)])).await;
    assert_eq!(code, 250, "{text}");
    let (code, text) = send(&gw, &message_with(&[("b.pdf", &by_b)])).await;
    assert_eq!(code, 550, "{text}");
    assert!(
        text.contains("not on the office's list of authorised signers"),
        "{text}"
    );
    gw.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The organisation's signature (sealing), checked by pyHanko, poppler's pdfsig and congvan
// ---------------------------------------------------------------------------------------------

/// The organisation's seal: the office identity (ECDSA P-256, emailProtection), as for S/MIME.
fn organisation() -> congvan::pki::identity::SigningIdentity {
    let id = &fx().pki.p256;
    congvan::pki::identity::SigningIdentity::from_pem(
        &std::fs::read(&id.chain_pem).unwrap(),
        &std::fs::read(&id.key_pem).unwrap(),
    )
    .unwrap()
}

fn seal(input: &Path, name: &str) -> PathBuf {
    let identity = organisation();
    let bytes = std::fs::read(input).unwrap();
    let sealed = congvan::pdf::seal_pdf(
        &bytes,
        &congvan::pdf::SealOptions {
            identity: &identity,
            at: OffsetDateTime::now_utc(),
            organisation: "Ủy ban nhân dân quận Hà Đông",
            seal_image: None,
            tsa: None,
        },
        None,
    )
    .unwrap();
    assert!(sealed.starts_with(&bytes), "an incremental update");
    let out = path(name);
    std::fs::write(&out, sealed).unwrap();
    out
}

/// An NSS database trusting the test root, for pdfsig (made once).
fn nss_db() -> PathBuf {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    DB.get_or_init(|| {
        let dir = fx().dir.join("nssdb");
        std::fs::create_dir_all(&dir).unwrap();
        let db = format!("sql:{}", dir.display());
        let run = |args: &[&str]| {
            let out = Command::new("certutil").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "certutil {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(&["-N", "-d", &db, "--empty-password"]);
        run(&[
            "-A",
            "-d",
            &db,
            "-n",
            "root",
            "-t",
            "CT,C,C",
            "-i",
            s(&fx().pki.root.cert_pem),
        ]);
        dir
    })
    .clone()
}

fn pdfsig(file: &Path) -> String {
    pdfsig_with(file, &nss_db())
}

/// One pdfsig at a time: NSS opens its database for writing, and two processes on the same
/// database at once made one report "Unknown issue with Certificate or corrupted data" for a
/// certificate the other trusted.
fn pdfsig_turn() -> std::sync::MutexGuard<'static, ()> {
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn pdfsig_with(file: &Path, db: &Path) -> String {
    let _turn = pdfsig_turn();
    let out = Command::new("pdfsig")
        .args(["-nssdir", &format!("sql:{}", db.display()), s(file)])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every referee agrees that `file` carries `n` valid, intact, trusted signatures. NSS (under
/// pdfsig) does not know the document-signing EKU and rejects the certificate of a signer
/// that has only that one: `nss_trusted` says how many certificates it should trust (`None`:
/// not asked, see the file sealed twice).
fn assert_all_agree(file: &Path, n: usize, nss_trusted: Option<usize>) {
    let py = pyhanko_validate(file);
    assert_eq!(
        py.matches("intact=True valid=True trusted=True").count(),
        n,
        "pyHanko: {py}"
    );
    let ps = pdfsig(file);
    assert_eq!(
        ps.matches("Signature Validation: Signature is Valid.")
            .count(),
        n,
        "pdfsig: {ps}"
    );
    if let Some(trusted) = nss_trusted {
        assert_eq!(
            ps.matches("Certificate Validation: Certificate is Trusted.")
                .count(),
            trusted,
            "pdfsig: {ps}"
        );
    }
    let f = check(file);
    assert_eq!(f.refusal(), None, "{f:?}");
    let checks = f.outcome.as_ref().unwrap();
    assert_eq!(checks.len(), n);
    assert!(checks.iter().all(|c| c.counts()), "{checks:?}");
}

#[test]
fn the_organisations_signature_keeps_the_signers_and_every_validator_agrees() {
    // The competent signer with the document-signing EKU only, and one with emailProtection.
    for (producer, signer, nss_trusted) in [
        ("reportlab", &fx().signer, 1),
        ("gs", &fx().deputy, 2),
        ("libreoffice", &fx().deputy, 2),
    ] {
        let doc = document(&format!("seal-{producer}.pdf"), producer);
        let signed = signed_by(&doc, signer, &format!("seal-{producer}-1.pdf"), "ChuKy");
        let sealed = seal(&signed, &format!("seal-{producer}-2.pdf"));
        assert_all_agree(&sealed, 2, Some(nss_trusted));
        let f = check(&sealed);
        let checks = f.outcome.as_ref().unwrap();
        assert_eq!(checks[1].found.field, "Dau-co-quan");
        assert_eq!(checks[1].found.sub_filter, "ETSI.CAdES.detached");
        assert_eq!(
            checks[1].found.name.as_deref(),
            Some("Ủy ban nhân dân quận Hà Đông")
        );
        assert!(checks[1]
            .found
            .time
            .as_deref()
            .unwrap()
            .ends_with("+07'00'"));
        assert_eq!(
            checks[1].signer.as_ref().unwrap().serial,
            fx().pki.p256.serial_hex
        );
        assert!(!checks[0].covers_whole_file && checks[1].covers_whole_file);
    }
}

#[test]
fn sealing_a_file_with_cross_reference_streams_and_object_streams() {
    let doc = document("xrefstm.pdf", "reportlab");
    let packed = path("xrefstm-packed.pdf");
    let st = Command::new("qpdf")
        .args(["--object-streams=generate", s(&doc), s(&packed)])
        .status()
        .unwrap();
    assert!(st.success());
    let signed = signed_by(&packed, &fx().signer, "xrefstm-1.pdf", "ChuKy");
    let sealed = seal(&signed, "xrefstm-2.pdf");
    let bytes = std::fs::read(&sealed).unwrap();
    let update = &bytes[std::fs::metadata(&signed).unwrap().len() as usize..];
    assert!(
        update.windows(5).any(|w| w == b"/XRef") && !update.windows(6).any(|w| w == b"\nxref\n"),
        "the update's cross-reference section is a stream, as the file's"
    );
    assert_all_agree(&sealed, 2, Some(1));
    // Sealed twice (a resend): a second field of its own.
    let again = seal(&sealed, "xrefstm-3.pdf");
    // NSS (under pdfsig) trusts the seal's certificate in one of the two signatures that
    // carry it and, now and then, reports "Unknown issue with Certificate" for the other
    // (it also fails to shut down: "objects are still in use"); the signatures themselves
    // it always finds valid. pyHanko and congvan judge trust here.
    assert_all_agree(&again, 3, None);
    let f = check(&again);
    assert_eq!(f.outcome.as_ref().unwrap()[2].found.field, "Dau-co-quan-2");
}

#[test]
fn sealing_an_unsigned_file_gives_one_signature() {
    let doc = document("seal-unsigned.pdf", "gs");
    let sealed = seal(&doc, "seal-unsigned-1.pdf");
    assert_all_agree(&sealed, 1, Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_seals_the_pdf_before_the_smime_seal() {
    let env = gateway_with(None, true).await;
    // The office's seal image, given to the dev identity through the CLI.
    let list = env.cli(&["cert", "list", "--json"]);
    let ids: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = ids[0]["id"].to_string();
    let png = env.path().join("seal.png");
    std::fs::write(&png, seal_png(400, Some(10_000))).unwrap();
    let out = env.cli(&["cert", "seal-image", &id, "--seal-image", s(&png)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let gw = env.start().await;
    let doc = document("deliver.pdf", "reportlab");
    let signed = std::fs::read(signed_by(&doc, &fx().deputy, "deliver-1.pdf", "ChuKy")).unwrap();
    let (code, text) = send(&gw, &message_with(&[("qd-26.pdf", &signed)])).await;
    assert_eq!(code, 250, "{text}");

    let mut emls = Vec::new();
    for _ in 0..200 {
        emls = common::eml_files(&env.outbox());
        if !emls.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(emls.len(), 1, "delivered");
    let (ok, out) = common::openssl_verify(&emls[0], &env.seal_ca());
    assert!(ok, "the S/MIME seal covers the sealed PDF: {out}");

    let eml = std::fs::read(&emls[0]).unwrap();
    let parts = congvan::pdf::pdf_parts(&eml);
    assert_eq!(parts.len(), 1);
    assert_eq!(parts[0].name, "qd-26.pdf");
    let sealed = &parts[0].bytes;
    assert!(
        sealed.starts_with(&signed),
        "an incremental update of the signer's file"
    );
    let file = env.path().join("delivered.pdf");
    std::fs::write(&file, sealed).unwrap();
    // Visible, over the left third of the signer's signature (330..530).
    let checks = check_with_bytes(sealed).outcome.unwrap();
    let (_, rect) = checks[1].found.widget.expect("the seal is visible");
    assert!((rect[2] - (330.0 + 200.0 / 3.0)).abs() < 0.1, "{rect:?}");

    // pyHanko and pdfsig, trusting the signer's root and the office seal's CA.
    let py = Command::new("python3")
        .arg(TOOL)
        .args([
            "validate",
            s(&file),
            "--trust",
            s(&fx().pki.root.cert_pem),
            "--trust",
            s(&env.seal_ca()),
        ])
        .output()
        .unwrap();
    let py = String::from_utf8_lossy(&py.stdout);
    assert_eq!(
        py.matches("intact=True valid=True trusted=True").count(),
        2,
        "{py}"
    );
    let db = env.path().join("nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let sqldb = format!("sql:{}", db.display());
    for (args, what) in [
        (vec!["-N", "-d", &sqldb, "--empty-password"], "create"),
        (
            vec![
                "-A",
                "-d",
                &sqldb,
                "-n",
                "root",
                "-t",
                "CT,C,C",
                "-i",
                s(&fx().pki.root.cert_pem),
            ],
            "root",
        ),
        (
            vec![
                "-A",
                "-d",
                &sqldb,
                "-n",
                "seal",
                "-t",
                "CT,C,C",
                "-i",
                s(&env.seal_ca()),
            ],
            "seal CA",
        ),
    ] {
        assert!(
            Command::new("certutil")
                .args(&args)
                .status()
                .unwrap()
                .success(),
            "{what}"
        );
    }
    let ps = pdfsig_with(&file, &db);
    assert_eq!(ps.matches("Signature is Valid.").count(), 2, "{ps}");
    assert_eq!(ps.matches("Certificate is Trusted.").count(), 2, "{ps}");

    // The register: the part's digests before and after, and both signatures.
    let out = env.cli(&["register", "list", "--direction", "out", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = rows.as_array().unwrap()[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let out = env.cli(&["register", "show", &entry, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let pdf = &shown["pdf"][0];
    assert_eq!(pdf["name"], "qd-26.pdf", "{shown:#}");
    let before = hex::encode(ring::digest::digest(&ring::digest::SHA256, &signed));
    let after = hex::encode(ring::digest::digest(&ring::digest::SHA256, sealed));
    assert_eq!(pdf["sha256_before"], before.as_str());
    assert_eq!(pdf["sha256_after"], after.as_str());
    let sigs = pdf["signatures"].as_array().unwrap();
    assert_eq!(sigs.len(), 2, "{shown:#}");
    assert_eq!(sigs[0]["signer"], "Trần Thị B");
    assert_eq!(sigs[0]["result"], "pass");
    assert_eq!(sigs[1]["result"], "pass (organisation)");
    let text = String::from_utf8(env.cli(&["register", "show", &entry]).stdout).unwrap();
    assert!(
        text.contains("pdf:           qd-26.pdf")
            && text.contains(&format!("sealed:      sha-256 {after}")),
        "{text}"
    );
    gw.stop().await;
}

#[test]
fn only_a_pdf_a_competent_signer_signed_is_sealed() {
    let doc = document("only.pdf", "reportlab");
    let signed = std::fs::read(signed_by(&doc, &fx().signer, "only-1.pdf", "ChuKy")).unwrap();
    let plain = std::fs::read(&doc).unwrap();
    let raw = message_with(&[("a.pdf", &signed), ("b.pdf", &plain)]);
    let anchors = TrustStore::new(vec![fx().pki.root.cert_der.clone()]);
    let ctx = CheckContext {
        anchors: &anchors,
        crls: &[],
        at: OffsetDateTime::now_utc(),
        opts: VerifyOptions::default(),
        authorised: None,
        max_depth: 50,
    };
    let identity = organisation();
    let opts = congvan::pdf::SealOptions {
        identity: &identity,
        at: OffsetDateTime::now_utc(),
        organisation: "UBND",
        seal_image: None,
        tsa: None,
    };
    let (out, report) = congvan::pdf::seal_message(&raw, &opts, &ctx).unwrap();
    assert_eq!(report.len(), 2);
    assert!(report[0].sha256_after.is_some() && report[0].note.is_none());
    assert_eq!(report[1].sha256_after, None);
    assert_eq!(
        report[1].note.as_deref(),
        Some("not sealed: the file carries no signature")
    );
    let parts = congvan::pdf::pdf_parts(&out);
    assert!(parts[0].bytes.len() > signed.len() && parts[0].bytes.starts_with(&signed));
    assert_eq!(parts[1].bytes, plain, "left as it was");
    assert_eq!(check_with_bytes(&parts[0].bytes).outcome.unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Incoming documents: X-Congvan-PDF-Signatures, the register, [pdf] incoming_action
// ---------------------------------------------------------------------------------------------

async fn send_inbound(gw: &congvan::server::Running, data: &[u8]) -> (u16, String) {
    let mut c = Client::connect(addr(gw, Role::Inbound)).await;
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO mx.hanoi.gov.vn", 250).await;
    c.expect("MAIL FROM:<vanthu@hanoi.gov.vn>", 250).await;
    c.expect("RCPT TO:<vanphong@dev.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(data).await;
    c.send(b".\r\n").await;
    c.reply().await
}

fn incoming_message(pdfs: &[(&str, &[u8])]) -> Vec<u8> {
    let m = message_with(pdfs);
    let m = String::from_utf8(m).unwrap().replace(
        "From: vanthu@dev.gov.vn\r\nTo: vanphong@hanoi.gov.vn\r\n",
        "X-Congvan-PDF-Signatures: \"qd-26.pdf\"; signatures=1; 1=pass signer=\"forged\"\r\nFrom: vanthu@hanoi.gov.vn\r\nTo: vanphong@dev.gov.vn\r\n",
    );
    m.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_pdfs_get_their_signature_fields_and_register_rows() {
    let env = Env::new(Setup::default()).await;
    let out = env.cli(&["cert", "trust", "add", s(&fx().pki.root.cert_pem)]);
    assert!(out.status.success());
    let gw = env.start().await;
    let doc = document("in.pdf", "reportlab");
    let signed = std::fs::read(signed_by(&doc, &fx().deputy, "in-1.pdf", "ChuKy")).unwrap();
    let plain = std::fs::read(document("in-annex.pdf", "gs")).unwrap();
    let (code, text) = send_inbound(
        &gw,
        &incoming_message(&[("qd-26.pdf", &signed), ("phu-luc.pdf", &plain)]),
    )
    .await;
    assert_eq!(code, 250, "{text}");
    let mut emls = Vec::new();
    for _ in 0..200 {
        emls = common::eml_files(&env.inbox());
        if !emls.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(emls.len(), 1);
    let eml = String::from_utf8(std::fs::read(&emls[0]).unwrap()).unwrap();
    let head = &eml[..eml.find("\r\n\r\n").unwrap()];
    assert!(
        !head.contains("forged"),
        "the arriving field is removed: {head}"
    );
    let fields: Vec<&str> = head
        .split("\r\nX-Congvan-PDF-Signatures: ")
        .skip(1)
        .collect();
    assert_eq!(fields.len(), 2, "{head}");
    let first = fields[0].replace("\r\n ", " ");
    let b = base64::engine::general_purpose::STANDARD.encode("Trần Thị B".as_bytes());
    assert!(
        first.starts_with(&format!(
            "\"qd-26.pdf\"; signatures=1; 1=pass signer=\"=?UTF-8?B?{b}?=\" serial={}",
            fx().deputy.serial_hex
        )),
        "{first}"
    );
    let second = fields[1].replace("\r\n ", " ");
    assert!(
        second.starts_with("\"phu-luc.pdf\"; signatures=0"),
        "{second}"
    );
    assert!(head.starts_with("Authentication-Results: "), "{head}");

    let out = env.cli(&["register", "list", "--direction", "in", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let entry = rows[0]["id"].as_str().unwrap().to_string();
    let shown: serde_json::Value =
        serde_json::from_slice(&env.cli(&["register", "show", &entry, "--json"]).stdout).unwrap();
    let pdfs = shown["pdf"].as_array().unwrap();
    assert_eq!(pdfs.len(), 2, "{shown:#}");
    assert_eq!(pdfs[0]["signatures"][0]["result"], "pass");
    assert_eq!(pdfs[0]["sha256_after"], serde_json::Value::Null);
    assert_eq!(pdfs[1]["signatures"].as_array().unwrap().len(), 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_action_quarantines_a_document_whose_pdf_is_not_signed() {
    let env = Env::new(Setup::default()).await;
    let profile = env.path().join("policies/default.toml");
    let text = std::fs::read_to_string(&profile).unwrap().replace(
        "# incoming_action = \"deliver\"",
        "incoming_action = \"quarantine\"",
    );
    std::fs::write(&profile, text).unwrap();
    let gw = env.start().await;
    let plain = std::fs::read(document("quarantine.pdf", "reportlab")).unwrap();
    let (code, text) = send_inbound(&gw, &incoming_message(&[("cv.pdf", &plain)])).await;
    assert_eq!(code, 250, "{text}");
    let out = env.cli(&["queue", "list", "--json"]);
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let held = &rows.as_array().unwrap()[0];
    assert_eq!(held["state"], "held", "{rows:#}");
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .starts_with("quarantined: pdf (the PDF \"cv.pdf\": the file carries no signature)"),
        "{rows:#}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_explain_shows_the_pdf_findings() {
    let env = gateway(None).await;
    let doc = document("explain.pdf", "reportlab");
    let signed = std::fs::read(signed_by(&doc, &fx().signer, "explain-1.pdf", "ChuKy")).unwrap();
    let plain = std::fs::read(&doc).unwrap();
    let eml = env.path().join("explain.eml");
    std::fs::write(
        &eml,
        message_with(&[("qd.pdf", &signed), ("pl.pdf", &plain)]),
    )
    .unwrap();
    let out = env.cli(&["policy", "explain", s(&eml)]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pdf:          qd.pdf (sha-256 "), "{text}");
    assert!(text.contains("  1. pass Nguyễn Văn A serial "), "{text}");
    assert!(
        text.contains("  a valid signature of a competent signer\n"),
        "{text}"
    );
    assert!(text.contains("pdf:          pl.pdf"), "{text}");
    assert!(
        text.contains("  no valid signature of a competent signer: the file carries no signature"),
        "{text}"
    );
    assert!(text.contains("rule:         pdf.signer"), "{text}");
    assert!(
        text.contains("action:       refuse: 550 5.7.1 the PDF \"pl.pdf\" carries no valid signature of a competent signer (rule pdf.signer)"),
        "{text}"
    );
    let out = env.cli(&["policy", "explain", s(&eml), "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["pdf"][0]["competent_signer"], true, "{v:#}");
    assert_eq!(v["pdf"][1]["competent_signer"], false);
    assert_eq!(v["pdf"][0]["signatures"][0]["signer"], "Nguyễn Văn A");
    assert_eq!(v["rule"], "pdf.signer");
}

#[test]
fn sealing_a_linearised_file_with_an_earlier_update() {
    // Ghostscript's file, linearised by qpdf (a first-page cross-reference section and hint
    // stream), then given an incremental update (an Info change) before the signer signs.
    let doc = document("linear.pdf", "gs");
    let linear = path("linear-1.pdf");
    let st = Command::new("qpdf")
        .args(["--linearize", s(&doc), s(&linear)])
        .status()
        .unwrap();
    assert!(st.success());
    let updated = path("linear-2.pdf");
    let st = Command::new("python3")
        .arg("-c")
        .arg(
            "import sys\nfrom pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter\n\
             from pyhanko.pdf_utils import generic\n\
             w = IncrementalPdfFileWriter(open(sys.argv[1], 'rb'), strict=False)\n\
             w.set_info(generic.DictionaryObject({generic.pdf_name('/Title'): generic.pdf_string('Cong van')}))\n\
             w.write(open(sys.argv[2], 'wb'))\n",
        )
        .args([s(&linear), s(&updated)])
        .status()
        .unwrap();
    assert!(st.success());
    let signed = signed_by(&updated, &fx().deputy, "linear-3.pdf", "ChuKy");
    let sealed = seal(&signed, "linear-4.pdf");
    assert_all_agree(&sealed, 2, Some(2));
}

// ---------------------------------------------------------------------------------------------
// The signature time-stamp (PAdES B-T, `[pdf] tsa_url`): a TSA made of `openssl ts -reply`
// behind tests/pdf/tsa.py, its certificate issued by the test intermediate
// ---------------------------------------------------------------------------------------------

const TSA_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pdf/tsa.py");

/// The test TSA's key and certificate (P-256; critical extended key usage timeStamping, as
/// RFC 3161 §2.3 and `openssl ts` demand), and the test CA (root and intermediate) in one
/// file for `openssl ts -verify`. Made once.
struct TsaFiles {
    cert: PathBuf,
    key: PathBuf,
    ca_bundle: PathBuf,
}

fn tsa_files() -> &'static TsaFiles {
    static FILES: OnceLock<TsaFiles> = OnceLock::new();
    FILES.get_or_init(|| {
        let dir = fx().dir.join("tsa");
        std::fs::create_dir_all(&dir).unwrap();
        let p = |n: &str| dir.join(n);
        let ext = p("tsa.ext");
        std::fs::write(
            &ext,
            "[tsa]\nbasicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
             extendedKeyUsage = critical,timeStamping\nsubjectKeyIdentifier = hash\n\
             authorityKeyIdentifier = keyid\n",
        )
        .unwrap();
        let inter = &fx().pki.intermediate;
        let ok = |args: &[&str]| {
            testpki::run_openssl(args).unwrap();
        };
        ok(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            s(&p("tsa.key.pem")),
        ]);
        ok(&[
            "req",
            "-new",
            "-key",
            s(&p("tsa.key.pem")),
            "-subj",
            "/C=VN/O=Test TSA/CN=Dich vu cap dau thoi gian (thu nghiem)",
            "-out",
            s(&p("tsa.csr")),
        ]);
        ok(&[
            "x509",
            "-req",
            "-in",
            s(&p("tsa.csr")),
            "-CA",
            s(&inter.cert_pem),
            "-CAkey",
            s(&inter.key_pem),
            "-set_serial",
            "0x5a5a01",
            "-days",
            "30",
            "-sha256",
            "-extfile",
            s(&ext),
            "-extensions",
            "tsa",
            "-out",
            s(&p("tsa.cert.pem")),
        ]);
        let mut bundle = std::fs::read(&fx().pki.root.cert_pem).unwrap();
        bundle.extend(std::fs::read(&inter.cert_pem).unwrap());
        std::fs::write(p("ca-bundle.pem"), bundle).unwrap();
        TsaFiles {
            cert: p("tsa.cert.pem"),
            key: p("tsa.key.pem"),
            ca_bundle: p("ca-bundle.pem"),
        }
    })
}

/// An `openssl ts` configuration of its own (serial file included) under `name`; the token
/// carries the certificates in `certs` (PEM files) beside the TSA's own.
fn tsa_config(name: &str, certs: &[&Path]) -> PathBuf {
    let dir = fx().dir.join(format!("tsa-{name}"));
    std::fs::create_dir_all(&dir).unwrap();
    let mut bundle = Vec::new();
    for c in certs {
        bundle.extend(std::fs::read(c).unwrap());
    }
    std::fs::write(dir.join("certs.pem"), bundle).unwrap();
    std::fs::write(dir.join("serial"), "01\n").unwrap();
    let f = tsa_files();
    let cnf = dir.join("openssl-ts.cnf");
    std::fs::write(
        &cnf,
        format!(
            "[tsa]\ndefault_tsa = tsa_config1\n[tsa_config1]\nserial = {serial}\n\
             crypto_device = builtin\nsigner_cert = {cert}\ncerts = {certs}\nsigner_key = {key}\n\
             signer_digest = sha256\ndefault_policy = 1.2.3.4.1\ndigests = sha256, sha384, sha512\n\
             accuracy = secs:1\nordering = no\ntsa_name = yes\ness_cert_id_chain = no\n\
             ess_cert_id_alg = sha256\n",
            serial = s(&dir.join("serial")),
            cert = s(&f.cert),
            certs = s(&dir.join("certs.pem")),
            key = s(&f.key),
        ),
    )
    .unwrap();
    cnf
}

/// A running tests/pdf/tsa.py; stopped when dropped.
struct Tsa {
    child: std::process::Child,
    port: u16,
}

impl Tsa {
    /// A TSA whose tokens carry the intermediate, on `port` or one the system picks.
    fn start(name: &str, port: Option<u16>) -> Tsa {
        Tsa::with_config(&tsa_config(name, &[&fx().pki.intermediate.cert_pem]), port)
    }

    fn with_config(cnf: &Path, port: Option<u16>) -> Tsa {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .arg(TSA_PY)
            .arg(cnf)
            .args(["--port", &port.unwrap_or(0).to_string()])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("tsa.py prints its port");
        Tsa { child, port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/tsa", self.port)
    }
}

impl Drop for Tsa {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `input` sealed with the organisation's identity and `tsa`.
fn seal_stamped(
    input: &Path,
    name: &str,
    tsa: &congvan::pdf::TimeStamper,
) -> (PathBuf, congvan::pdf::SealedPdf) {
    let identity = organisation();
    let bytes = std::fs::read(input).unwrap();
    let sealed = congvan::pdf::seal_pdf_stamped(
        &bytes,
        &congvan::pdf::SealOptions {
            identity: &identity,
            at: OffsetDateTime::now_utc(),
            organisation: "Ủy ban nhân dân quận Hà Đông",
            seal_image: None,
            tsa: Some(tsa),
        },
        None,
    )
    .unwrap();
    assert!(sealed.bytes.starts_with(&bytes), "an incremental update");
    let out = path(name);
    std::fs::write(&out, &sealed.bytes).unwrap();
    (out, sealed)
}

/// The seal's token taken out by pyHanko, checked by `openssl ts -verify` against the SHA-256
/// of the seal's signature value and the test CA; the token's size.
fn openssl_accepts_the_token(sealed: &Path) -> usize {
    let token = sealed.with_extension("tst");
    let out = Command::new("python3")
        .arg(TOOL)
        .args(["token", s(sealed), s(&token)])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let digest = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-digest", &digest, "-in", s(&token)])
        .args(["-token_in", "-CAfile", s(&tsa_files().ca_bundle)])
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("Verification: OK"), "{said}");
    // And not for another digest.
    let other = format!(
        "{}{}",
        &digest[..63],
        if digest.ends_with('0') { '1' } else { '0' }
    );
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-digest", &other, "-in", s(&token)])
        .args(["-token_in", "-CAfile", s(&tsa_files().ca_bundle)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    std::fs::metadata(&token).unwrap().len() as usize
}

#[test]
fn a_time_stamped_seal_is_valid_for_every_validator_and_openssl_ts() {
    let tsa = Tsa::start("seal", None);
    let stamper = congvan::pdf::TimeStamper::new(&tsa.url());
    let doc = document("bt.pdf", "reportlab");
    let signed = signed_by(&doc, &fx().deputy, "bt-1.pdf", "ChuKy");
    let (sealed, result) = seal_stamped(&signed, "bt-2.pdf", &stamper);
    let stamp = result.time_stamp.expect("time-stamped");
    let now = OffsetDateTime::now_utc();
    assert!(
        (now - stamp.gen_time).whole_seconds().abs() < 120,
        "{stamp:?}"
    );

    assert_all_agree(&sealed, 2, Some(2));
    let py = pyhanko_validate(&sealed);
    let seal_line = py.lines().find(|l| l.starts_with("Dau-co-quan ")).unwrap();
    assert!(seal_line.contains(" timestamp=True/True/True/"), "{py}");
    let token_len = openssl_accepts_the_token(&sealed);
    assert_eq!(token_len, stamp.token.len());
    eprintln!("token with the TSA certificate and the intermediate: {token_len} bytes");
}

#[test]
fn a_token_larger_than_reserved_gets_the_update_written_once_more() {
    // A TSA that sends a dozen certificates it need not send: a token of over 10 KB, more
    // than the room reserved for one (6 KB, and what the seal's CMS leaves of its 4 KB).
    let pki = &fx().pki;
    let many: Vec<&Path> = [
        &pki.root.cert_pem,
        &pki.intermediate.cert_pem,
        &fx().stranger_ca,
    ]
    .into_iter()
    .map(PathBuf::as_path)
    .chain(pki.good_identities().iter().map(|i| i.cert_pem.as_path()))
    .chain(
        [
            &pki.expired,
            &pki.revoked,
            &pki.no_email_eku,
            &fx().signer,
            &fx().deputy,
        ]
        .iter()
        .map(|i| i.cert_pem.as_path()),
    )
    .collect();
    let tsa = Tsa::with_config(&tsa_config("large", &many), None);
    let stamper = congvan::pdf::TimeStamper::new(&tsa.url());
    let doc = document("bt-large.pdf", "gs");
    let signed = signed_by(&doc, &fx().deputy, "bt-large-1.pdf", "ChuKy");
    let (sealed, result) = seal_stamped(&signed, "bt-large-2.pdf", &stamper);
    let token = result.time_stamp.unwrap().token;
    eprintln!("token with thirteen certificates: {} bytes", token.len());
    // The room the seal's /Contents has: more than was first reserved.
    let first = organisation()
        .chain_der()
        .iter()
        .map(Vec::len)
        .sum::<usize>()
        + 4096
        + 6144;
    let f = check(&sealed);
    let [_, a, b, _] = f.outcome.as_ref().unwrap()[1].found.byte_range.unwrap();
    let room = (b - a - 2) / 2;
    assert!(
        room > first && room > token.len(),
        "{room} bytes, {first} first reserved"
    );
    assert_all_agree(&sealed, 2, Some(2));
    openssl_accepts_the_token(&sealed);
}

/// An answer of the test TSA to `request`, made by `openssl ts -reply` (no HTTP).
fn openssl_reply(name: &str, query: &[u8]) -> Vec<u8> {
    let cnf = tsa_config(name, &[]);
    let q = cnf.with_file_name("q.tsq");
    let r = cnf.with_file_name("r.tsr");
    std::fs::write(&q, query).unwrap();
    testpki::run_openssl(&[
        "ts",
        "-reply",
        "-config",
        s(&cnf),
        "-queryfile",
        s(&q),
        "-out",
        s(&r),
    ])
    .unwrap();
    std::fs::read(&r).unwrap()
}

#[test]
fn the_answer_must_be_for_our_imprint_and_nonce() {
    use congvan::pdf::tsa::{parse_response, TimeStampRequest};
    use congvan::pdf::TsaError;
    let ours = TimeStampRequest::for_signature(b"the seal's signature value");
    let answer = openssl_reply("parse", &ours.to_der().unwrap());
    let stamp = parse_response(&answer, &ours).unwrap();
    assert!(congvan::smime::verify::verify_encapsulated(&stamp.token).is_ok());

    let other_nonce = TimeStampRequest {
        nonce: ours.nonce ^ 1,
        ..ours
    };
    assert_eq!(
        parse_response(&answer, &other_nonce),
        Err(TsaError::Mismatch { what: "nonce" })
    );
    let other_imprint = TimeStampRequest::for_signature(b"another signature");
    let other_imprint = TimeStampRequest {
        nonce: ours.nonce,
        ..other_imprint
    };
    let e = parse_response(&answer, &other_imprint).unwrap_err();
    assert_eq!(
        e,
        TsaError::Mismatch {
            what: "message imprint"
        }
    );
    assert!(!e.is_temporary());

    // A byte of the token's TSTInfo changed: its digest no longer matches.
    let mut changed = answer.clone();
    let at = changed
        .windows(ours.imprint.len())
        .position(|w| w == ours.imprint)
        .unwrap();
    changed[at] ^= 1;
    assert!(matches!(
        parse_response(&changed, &ours),
        Err(TsaError::BadToken(Failure::DigestMismatch))
    ));
}

#[test]
fn a_refusal_and_a_broken_tsa_are_told_apart() {
    use congvan::pdf::tsa::{parse_response, TimeStampRequest};
    use congvan::pdf::TsaError;
    // SHA-1 is not among the test TSA's digests: openssl refuses with badAlg.
    let cnf = tsa_config("refuse", &[]);
    let q = cnf.with_file_name("sha1.tsq");
    testpki::run_openssl(&[
        "ts",
        "-query",
        "-digest",
        "0123456789abcdef0123456789abcdef01234567",
        "-sha1",
        "-cert",
        "-out",
        s(&q),
    ])
    .unwrap();
    let answer = openssl_reply("refuse", &std::fs::read(&q).unwrap());
    let ours = TimeStampRequest::for_signature(b"x");
    match parse_response(&answer, &ours) {
        Err(e @ TsaError::Refused { .. }) => {
            assert!(!e.is_temporary());
            let text = e.to_string();
            assert!(
                text.contains("status 2") && text.contains("badAlg"),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }

    // A TSA whose openssl fails (its key is missing) answers HTTP 500: temporary.
    let broken = tsa_config("broken", &[]);
    let text = std::fs::read_to_string(&broken)
        .unwrap()
        .replace(s(&tsa_files().key), "/nonexistent/tsa.key.pem");
    std::fs::write(&broken, text).unwrap();
    let tsa = Tsa::with_config(&broken, None);
    let e = congvan::pdf::TimeStamper::new(&tsa.url())
        .stamp(b"x")
        .unwrap_err();
    assert!(
        matches!(e, TsaError::HttpStatus { status: 500, .. }) && e.is_temporary(),
        "{e:?}"
    );
    drop(tsa);
    // Nobody listening: unreachable, temporary.
    let e = congvan::pdf::TimeStamper::new(&format!("http://127.0.0.1:{}/", common::free_port()))
        .stamp(b"x")
        .unwrap_err();
    assert!(
        matches!(e, TsaError::Unreachable { .. }) && e.is_temporary(),
        "{e:?}"
    );
}

fn queue_json(env: &Env) -> Vec<serde_json::Value> {
    let out = env.cli(&["queue", "list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tsa_outage_defers_the_document_until_it_can_be_time_stamped() {
    let env = gateway_with(None, true).await;
    // The TSA's port is chosen now; nothing listens there until later.
    let port = common::free_port();
    let url = format!("http://127.0.0.1:{port}/tsa");
    let profile = env.path().join("policies/default.toml");
    let text = std::fs::read_to_string(&profile).unwrap().replacen(
        "[pdf]\n",
        &format!("[pdf]\ntsa_url = \"{url}\"\n"),
        1,
    );
    std::fs::write(&profile, text).unwrap();
    let out = env.cli(&["policy", "check"]);
    assert!(out.status.success(), "{out:?}");

    let gw = env.start().await;
    let doc = document("bt-smtp.pdf", "reportlab");
    let signed = std::fs::read(signed_by(&doc, &fx().deputy, "bt-smtp-1.pdf", "ChuKy")).unwrap();
    let (code, text) = send(&gw, &message_with(&[("qd-27.pdf", &signed)])).await;
    assert_eq!(code, 250, "{text}");

    // Deferred, with the reason naming the TSA; not held, nothing sent.
    let mut entry = None;
    for _ in 0..200 {
        entry = queue_json(&env)
            .into_iter()
            .find(|e| e["state"] == "deferred");
        if entry.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let entry = entry.unwrap_or_else(|| panic!("never deferred: {:?}", queue_json(&env)));
    let reason = entry["reason"].as_str().unwrap();
    assert!(
        reason.contains(&url) && reason.contains("qd-27.pdf") && reason.contains("time-stamp"),
        "{entry}"
    );
    assert!(common::eml_files(&env.outbox()).is_empty());

    // The TSA comes up; a retry delivers the document sealed and time-stamped.
    let _tsa = Tsa::start("smtp", Some(port));
    let id = entry["id"].as_str().unwrap().to_string();
    let out = env.cli(&["queue", "retry", &id]);
    assert!(out.status.success(), "{out:?}");
    let mut emls = Vec::new();
    for _ in 0..200 {
        emls = common::eml_files(&env.outbox());
        if !emls.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(emls.len(), 1, "delivered: {:?}", queue_json(&env));
    let (ok, out) = common::openssl_verify(&emls[0], &env.seal_ca());
    assert!(ok, "{out}");
    let eml = std::fs::read(&emls[0]).unwrap();
    let parts = congvan::pdf::pdf_parts(&eml);
    let file = env.path().join("delivered-bt.pdf");
    std::fs::write(&file, &parts[0].bytes).unwrap();
    let py = Command::new("python3")
        .arg(TOOL)
        .args(["validate", s(&file), "--trust", s(&fx().pki.root.cert_pem)])
        .args(["--trust", s(&env.seal_ca())])
        .output()
        .unwrap();
    let py = String::from_utf8_lossy(&py.stdout);
    let seal_line = py.lines().find(|l| l.starts_with("Dau-co-quan ")).unwrap();
    assert!(
        seal_line.contains("intact=True valid=True trusted=True")
            && seal_line.contains(" timestamp=True/True/True/"),
        "{py}"
    );
    openssl_accepts_the_token(&file);

    // The register's organisation row says when it was time-stamped.
    let out = env.cli(&["register", "show", &id, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let sigs = shown["pdf"][0]["signatures"].as_array().unwrap();
    let org = &sigs[1];
    let when = org["time_stamp"].as_str().unwrap();
    assert!(when.ends_with("+07:00"), "{shown:#}");
    assert_eq!(
        org["result"],
        format!("pass (organisation, time-stamped {when})")
    );
    assert!(sigs[0].get("time_stamp").is_none(), "{shown:#}");
    gw.stop().await;
}

/// The `tsa` fuzz target's seeds (fuzz/make-tsa-seeds.sh: `openssl ts -reply` answers to the
/// target's fixed request and to others) read as their names say, so the fuzzer starts from
/// every branch of the answer's check.
#[test]
fn the_tsa_fuzz_seeds_reach_every_outcome() {
    use congvan::pdf::tsa::{parse_response, TimeStampRequest};
    use congvan::pdf::TsaError;
    let request = TimeStampRequest {
        imprint: [0x11; 32],
        nonce: 0x0123_4567_89ab_cdef,
    };
    let seed = |name: &str| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fuzz/corpus/tsa")
            .join(name);
        parse_response(&std::fs::read(p).unwrap(), &request)
    };
    let plain = seed("granted.tsr").unwrap();
    assert_eq!(plain.gen_time.nanosecond(), 0);
    let fine = seed("granted-fractional-time.tsr").unwrap();
    assert!(fine.gen_time > plain.gen_time - time::Duration::seconds(60));
    assert_eq!(
        seed("granted-without-certificates.tsr"),
        Err(TsaError::BadToken(Failure::SignerCertificateMissing))
    );
    assert_eq!(
        seed("another-nonce.tsr"),
        Err(TsaError::Mismatch { what: "nonce" })
    );
    assert!(matches!(
        seed("refused-bad-alg.tsr"),
        Err(TsaError::Refused { status: 2, .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// The visible seal (Decree 30/2020 Appendix I): the seal image over the signer's signature
// ---------------------------------------------------------------------------------------------

/// A `side`×`side` PNG of a red disc on a transparent background (`ppm` pixels per metre
/// recorded in pHYs when given): the shape of an office seal.
fn seal_png(side: u32, ppm: Option<u32>) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Rgba);
        enc.set_depth(png::BitDepth::Eight);
        if let Some(p) = ppm {
            enc.set_pixel_dims(Some(png::PixelDimensions {
                xppu: p,
                yppu: p,
                unit: png::Unit::Meter,
            }));
        }
        let mut writer = enc.write_header().unwrap();
        let r = side as f32 / 2.0;
        let data: Vec<u8> = (0..side * side)
            .flat_map(|i| {
                let (x, y) = ((i % side) as f32 + 0.5 - r, (i / side) as f32 + 0.5 - r);
                if x * x + y * y <= r * r {
                    [220, 0, 0, 255]
                } else {
                    [0, 0, 0, 0]
                }
            })
            .collect();
        writer.write_image_data(&data).unwrap();
    }
    out
}

/// Page 1 of `file` rendered by poppler at 72 dpi (one pixel per point): width, height and
/// RGB pixels.
fn render(file: &Path) -> (usize, usize, Vec<u8>) {
    let stem = path(&format!(
        "{}-render",
        file.file_stem().unwrap().to_string_lossy()
    ));
    let status = Command::new("pdftoppm")
        .args(["-r", "72", "-f", "1", "-l", "1", "-singlefile", "-png"])
        .arg(file)
        .arg(&stem)
        .status()
        .unwrap();
    assert!(status.success(), "pdftoppm");
    let png_file = stem.with_extension("png");
    let decoder = png::Decoder::new(std::io::BufReader::new(
        std::fs::File::open(&png_file).unwrap(),
    ));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!(info.color_type, png::ColorType::Rgb);
    buf.truncate(info.buffer_size());
    (info.width as usize, info.height as usize, buf)
}

/// How many pixels of the rendering are seal red, inside and outside `rect` (PDF points,
/// origin bottom left), with a pixel's margin for anti-aliasing.
fn red_pixels(render: &(usize, usize, Vec<u8>), rect: [f32; 4]) -> (usize, usize) {
    let (w, h, px) = render;
    let (mut inside, mut outside) = (0, 0);
    for (i, p) in px.chunks_exact(3).enumerate() {
        if !(p[0] > 150 && p[1] < 90 && p[2] < 90) {
            continue;
        }
        let (x, y) = ((i % w) as f32 + 0.5, (*h - i / w) as f32 - 0.5);
        if x >= rect[0] - 1.5 && x <= rect[2] + 1.5 && y >= rect[1] - 1.5 && y <= rect[3] + 1.5 {
            inside += 1;
        } else {
            outside += 1;
        }
    }
    (inside, outside)
}

#[test]
fn the_seal_image_shows_at_its_real_size_over_the_left_third_of_the_signature() {
    let doc = document("visible.pdf", "reportlab");
    let signed = signed_by(&doc, &fx().deputy, "visible-1.pdf", "ChuKy");
    let bytes = std::fs::read(&signed).unwrap();
    // 400 px at 10,000 px per metre: a seal 40 mm across.
    let image = congvan::pdf::SealImage::from_png(&seal_png(400, Some(10_000)), None).unwrap();
    let identity = organisation();
    let at = OffsetDateTime::now_utc();
    let opts = congvan::pdf::SealOptions {
        identity: &identity,
        at,
        organisation: "Ủy ban nhân dân quận Hà Đông",
        seal_image: Some(&image),
        tsa: None,
    };
    let checks = check(&signed).outcome.unwrap();
    let (page, signer_rect) = checks[0].found.widget.expect("the signer's is visible");
    assert_eq!(signer_rect, [330.0, 80.0, 530.0, 150.0]);
    let over = congvan::pdf::Placement {
        page,
        rect: signer_rect,
    };
    let sealed = congvan::pdf::seal_pdf(&bytes, &opts, Some(over)).unwrap();
    assert!(sealed.starts_with(&bytes));
    let out = path("visible-2.pdf");
    std::fs::write(&out, &sealed).unwrap();
    assert_all_agree(&out, 2, Some(2));

    let checks = check(&out).outcome.unwrap();
    let (seal_page, rect) = checks[1].found.widget.expect("the seal is visible");
    assert_eq!(seal_page, page, "on the signer's page");
    let side = 40.0 * 72.0 / 25.4;
    let third = 330.0 + 200.0 / 3.0;
    assert!(
        (rect[2] - third).abs() < 0.1,
        "right edge a third into the signature: {rect:?}"
    );
    assert!(
        (rect[2] - rect[0] - side).abs() < 0.1,
        "40 mm wide: {rect:?}"
    );
    let image_box = [rect[0], rect[3] - side, rect[2], rect[3]];
    assert!(
        ((image_box[1] + image_box[3]) / 2.0 - 115.0).abs() < 0.1,
        "level with the signature: {rect:?}"
    );

    // As rendered: the red disc is where the rectangle says and nowhere else; before the
    // seal there was no red on the page.
    let before = red_pixels(&render(&signed), image_box);
    assert_eq!(before, (0, 0));
    let (inside, outside) = red_pixels(&render(&out), image_box);
    let disc = std::f32::consts::PI * (side / 2.0).powi(2);
    assert!(
        inside as f32 > disc * 0.9 && inside as f32 <= side * side,
        "{inside} red pixels for a disc of {disc}"
    );
    assert_eq!(outside, 0);
    // The signing time (ISO 8601, Vietnam time) is drawn under it: dark pixels in the band.
    let (w, h, px) = render(&out);
    let dark = (rect[1] as usize..image_box[1] as usize)
        .flat_map(|y| (rect[0] as usize..rect[2] as usize).map(move |x| (x, y)))
        .filter(|&(x, y)| {
            let i = ((h - 1 - y) * w + x) * 3;
            px[i] < 100 && px[i + 1] < 100 && px[i + 2] < 100
        })
        .count();
    assert!(dark > 40, "the time's text: {dark} dark pixels");
    let form = appearance_text(&sealed, &checks[1]);
    assert!(
        form.contains(&format!("({}) Tj", congvan::pdf::appearance::iso_time(at))),
        "{form}"
    );

    // Without an image, or without a visible signer's signature, the seal is invisible.
    let no_image = congvan::pdf::SealOptions {
        seal_image: None,
        ..opts
    };
    let invisible = congvan::pdf::seal_pdf(&bytes, &no_image, Some(over)).unwrap();
    assert_eq!(
        check_with_bytes(&invisible).outcome.unwrap()[1]
            .found
            .widget,
        None
    );
    let invisible = congvan::pdf::seal_pdf(&bytes, &opts, None).unwrap();
    assert_eq!(
        check_with_bytes(&invisible).outcome.unwrap()[1]
            .found
            .widget,
        None
    );
}

/// The decoded appearance stream of the signature `c`'s widget.
fn appearance_text(pdf: &[u8], c: &congvan::pdf::SignatureCheck) -> String {
    let doc = lopdf::Document::load_mem(pdf).unwrap();
    let field = doc
        .objects
        .values()
        .filter_map(|o| o.as_dict().ok())
        .find(|d| d.get(b"V").and_then(lopdf::Object::as_reference).ok() == Some(c.found.object))
        .unwrap();
    let ap = field.get(b"AP").unwrap().as_dict().unwrap();
    let id = ap.get(b"N").unwrap().as_reference().unwrap();
    let stream = doc.get_object(id).unwrap().as_stream().unwrap();
    String::from_utf8_lossy(&stream.content).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_seal_image_is_checked_when_it_is_given() {
    let env = Env::new(Setup::default()).await;
    let list = env.cli(&["cert", "list", "--json"]);
    let ids: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    let id = ids[0]["id"].to_string();
    let file = env.path().join("seal.png");

    // Not a PNG; a PNG that does not say its size; one whose size is no seal's.
    for (bytes, says) in [
        (b"GIF89a".to_vec(), "not a readable PNG"),
        (seal_png(200, None), "--seal-width-mm"),
        (seal_png(200, Some(100_000)), "not a real seal's size"),
    ] {
        std::fs::write(&file, bytes).unwrap();
        let out = env.cli(&["cert", "seal-image", &id, "--seal-image", s(&file)]);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    let shown = String::from_utf8(env.cli(&["cert", "show", &id]).stdout).unwrap();
    assert!(shown.contains("seal image:  none"), "{shown}");

    // The admin gives the width the PNG does not record.
    let out = env.cli(&[
        "cert",
        "seal-image",
        &id,
        "--seal-image",
        s(&file),
        "--seal-width-mm",
        "36",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8(env.cli(&["cert", "show", &id]).stdout).unwrap();
    assert!(
        shown.contains("seal image:  200×200 px, 36.0 mm wide"),
        "{shown}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&env.cli(&["cert", "show", &id, "--json"]).stdout).unwrap();
    assert_eq!(json["seal_image"]["width_px"], 200);

    // At import: a bad image imports nothing; a good one comes with the new identity.
    let p384 = &fx().pki.p384;
    let import = |png: &Path| {
        env.cli(&[
            "cert",
            "import",
            "--cert",
            s(&p384.chain_pem),
            "--key",
            s(&p384.key_pem),
            "--domain",
            "hadong.gov.vn",
            "--seal-image",
            s(png),
        ])
    };
    let bad = env.path().join("bad.png");
    std::fs::write(&bad, seal_png(200, None)).unwrap();
    let out = import(&bad);
    assert_eq!(out.status.code(), Some(1));
    let count = |env: &Env| {
        let list = env.cli(&["cert", "list", "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
        v.as_array().unwrap().len()
    };
    assert_eq!(count(&env), 1, "nothing imported");
    let good = env.path().join("good.png");
    std::fs::write(&good, seal_png(400, Some(10_000))).unwrap();
    let out = import(&good);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("seal image: 400×400 px, 40.0 mm wide"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(count(&env), 2);

    let out = env.cli(&["cert", "seal-image", &id, "--remove"]);
    assert!(out.status.success());
    let shown = String::from_utf8(env.cli(&["cert", "show", &id]).stdout).unwrap();
    assert!(shown.contains("seal image:  none"), "{shown}");
    let out = env.cli(&["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

// ---------------------------------------------------------------------------------------------
// Other producers and signers: LibreOffice documents, poppler's pdfsig (NSS) signatures
// ---------------------------------------------------------------------------------------------

/// `input` signed with poppler's `pdfsig -add-signature` (NSS, `adbe.pkcs7.detached`) by the
/// test PKI's RSA-2048 office certificate, its key imported into an NSS database of its own.
/// RSA, not ECDSA: pdfsig 22.12 reserves the room a trial signature took, and an ECDSA
/// signature's DER length varies by a byte or two from one signature to the next, so about
/// half of its ECDSA signatures fail with "unable update signature".
fn signed_by_pdfsig(input: &Path, name: &str) -> PathBuf {
    static DB: OnceLock<PathBuf> = OnceLock::new();
    let run = |program: &str, args: &[&str]| {
        let out = Command::new(program).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{program} {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let db = DB.get_or_init(|| {
        let dir = fx().dir.join("nss-signer");
        std::fs::create_dir_all(&dir).unwrap();
        let db = format!("sql:{}", dir.display());
        let p12 = fx().dir.join("rsa2048.p12");
        run("certutil", &["-N", "-d", &db, "--empty-password"]);
        run(
            "openssl",
            &[
                "pkcs12",
                "-export",
                "-inkey",
                s(&fx().pki.rsa2048.key_pem),
                "-in",
                s(&fx().pki.rsa2048.cert_pem),
                "-certfile",
                s(&fx().pki.intermediate.cert_pem),
                "-name",
                "signer",
                "-passout",
                "pass:test",
                "-out",
                s(&p12),
            ],
        );
        run(
            "pk12util",
            &["-i", s(&p12), "-d", &db, "-W", "test", "-K", ""],
        );
        dir
    });
    let out = path(name);
    let _turn = pdfsig_turn();
    run(
        "pdfsig",
        &[
            "-nssdir",
            &format!("sql:{}", db.display()),
            "-add-signature",
            "-new-signature-field-name",
            "ChuKy",
            "-nick",
            "signer",
            s(input),
            s(&out),
        ],
    );
    out
}

#[test]
fn a_signature_made_by_pdfsig_counts_and_stays_valid_under_the_seal() {
    let doc = document("nss.pdf", "reportlab");
    let signed = signed_by_pdfsig(&doc, "nss-1.pdf");
    let f = check(&signed);
    assert_eq!(f.refusal(), None, "{f:?}");
    let checks = f.outcome.as_ref().unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].found.sub_filter, "adbe.pkcs7.detached");
    assert_eq!(
        checks[0].signer.as_ref().unwrap().serial,
        fx().pki.rsa2048.serial_hex
    );
    let sealed = seal(&signed, "nss-2.pdf");
    assert_all_agree(&sealed, 2, Some(2));
}
