//! Keys on a token (SPEC "Keys on a token (PKCS#11)"), against SoftHSM2: a token initialised
//! at test time, the test PKI's RSA and P-256 keys imported onto it with their certificates,
//! and congvan signing through it (cryptoki, the module loaded at run time). OpenSSL verifies
//! what it signs, as for file keys.

mod common;

use common::softhsm::{self, import, MODULE, PIN};

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use congvan::pki::identity::{IdentityError, KeyAlgorithm, SigningIdentity};
use congvan::pki::testpki::{self, IssuedCert, LeafOptions, TestPki};
use congvan::pki::token::{Pkcs11Uri, TokenError, TokenKey};

const LABEL: &str = "Con dau UBND";

struct Fixture {
    dir: PathBuf,
    pki: TestPki,
    /// Certificates for keys generated on the token (RSA-2048, P-256).
    generated: Vec<(&'static str, IssuedCert, KeyAlgorithm)>,
}

/// One token for the whole file: SoftHSM reads its configuration once per process.
fn fx() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("congvan-token-{}", std::process::id()));
        softhsm::configure(&dir);
        softhsm::init_token(LABEL);
        let pki = testpki::generate(&dir, "hadong.gov.vn").unwrap();
        import(&dir, LABEL, &pki.rsa2048, "seal-rsa", "01");
        import(&dir, LABEL, &pki.p256, "seal-ec", "02");
        // Keys made by the token itself, certified by the test CA.
        let mut generated = Vec::new();
        for (label, id, key_type, algorithm) in [
            (
                "gen-rsa",
                "03",
                "rsa:2048",
                KeyAlgorithm::Rsa { bits: 2048 },
            ),
            ("gen-ec", "04", "EC:prime256v1", KeyAlgorithm::EcdsaP256),
        ] {
            let spki = softhsm::generate_on_token(&dir, LABEL, key_type, label, id);
            let cert = pki
                .issue_for_public_key(label, &spki, &LeafOptions::office("hadong.gov.vn"))
                .unwrap();
            softhsm::write_certificate(&dir, LABEL, &cert.cert_der, label, id);
            generated.push((label, cert, algorithm));
        }
        // Here, before any test logs in: PKCS#11 keeps a token logged in for the whole
        // process once a session has logged in, whatever PIN comes next.
        a_wrong_pin_a_missing_token_or_key_are_told_apart();
        Fixture {
            dir,
            pki,
            generated,
        }
    })
}

fn key(uri: &str, pin: &str) -> TokenKey {
    TokenKey::new(Path::new(MODULE), Pkcs11Uri::parse(uri).unwrap(), pin)
}

#[test]
fn the_token_signs_and_openssl_verifies() {
    let fx = fx();
    for (object, who, algorithm) in [
        (
            "seal-rsa",
            &fx.pki.rsa2048,
            KeyAlgorithm::Rsa { bits: 2048 },
        ),
        ("seal-ec", &fx.pki.p256, KeyAlgorithm::EcdsaP256),
    ] {
        // The certificate read from the token, then the chain given by the admin.
        let uri = format!("pkcs11:token={};object={object}", LABEL.replace(' ', "%20"));
        let from_token = SigningIdentity::from_token(key(&uri, PIN), None).unwrap();
        assert_eq!(from_token.algorithm(), algorithm);
        assert_eq!(from_token.serial_hex(), who.serial_hex);
        assert_eq!(from_token.chain_der().len(), 1);
        let chain = std::fs::read(&who.chain_pem).unwrap();
        let id = SigningIdentity::from_token(key(&uri, PIN), Some(&chain)).unwrap();
        assert_eq!(id.chain_der().len(), 2);
        assert!(id.token().unwrap().contains(object));

        let msg = format!(
            "From: {}\r\nTo: vanphong@hanoi.gov.vn\r\nSubject: Cong van\r\n\r\nKinh gui.\r\n",
            who.email
        );
        let signed = congvan::smime::sign::sign_message(
            msg.as_bytes(),
            &id,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let eml = fx.dir.join(format!("{object}.eml"));
        std::fs::write(&eml, &signed.bytes).unwrap();
        let (ok, out) = common::openssl_verify(&eml, &fx.pki.root.cert_pem);
        assert!(ok, "{object}: {out}");
        let (ok, out) = common::gpgsm_verify(&eml, &fx.pki.root.cert_pem);
        assert!(ok, "gpgsm, {object}: {out}");
    }
}

/// Keys generated on the token (never outside it): the certificate read from the token, a
/// seal OpenSSL and gpgsm verify.
#[test]
fn keys_generated_on_the_token_seal_and_openssl_and_gpgsm_verify() {
    let fx = fx();
    for (label, cert, algorithm) in &fx.generated {
        let id = SigningIdentity::from_token(key(&softhsm::uri(LABEL, label), PIN), None).unwrap();
        assert_eq!(id.algorithm(), *algorithm);
        assert_eq!(id.serial_hex(), cert.serial_hex);
        let chain = std::fs::read(&cert.chain_pem).unwrap();
        let id = SigningIdentity::from_token(key(&softhsm::uri(LABEL, label), PIN), Some(&chain))
            .unwrap();
        let msg = "From: vanthu@hadong.gov.vn\r\nTo: vanphong@hanoi.gov.vn\r\nSubject: Khoa tao tren token\r\n\r\nKinh gui.\r\n";
        let signed = congvan::smime::sign::sign_message(
            msg.as_bytes(),
            &id,
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
        let eml = fx.dir.join(format!("{label}.eml"));
        std::fs::write(&eml, &signed.bytes).unwrap();
        let (ok, out) = common::openssl_verify(&eml, &fx.pki.root.cert_pem);
        assert!(ok, "{label}: {out}");
        let (ok, out) = common::gpgsm_verify(&eml, &fx.pki.root.cert_pem);
        assert!(ok, "gpgsm, {label}: {out}");
    }
}

/// The organisation's PDF signature made on the token: pyHanko finds it valid, intact and
/// trusted, as for a key in a file.
#[test]
fn the_token_seals_a_pdf_and_pyhanko_validates_it() {
    let fx = fx();
    const TOOL: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/pdf/tool.py");
    let python = |args: &[&str]| {
        let out = std::process::Command::new("python3")
            .arg(TOOL)
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "tool.py {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let plain = fx.dir.join("cong-van.pdf");
    python(&["make", plain.to_str().unwrap(), "--producer", "reportlab"]);
    let chain = std::fs::read(&fx.pki.p256.chain_pem).unwrap();
    let id = SigningIdentity::from_token(key(&softhsm::uri(LABEL, "seal-ec"), PIN), Some(&chain))
        .unwrap();
    let bytes = std::fs::read(&plain).unwrap();
    let sealed = congvan::pdf::seal_pdf(
        &bytes,
        &congvan::pdf::SealOptions {
            identity: &id,
            at: time::OffsetDateTime::now_utc(),
            organisation: "Ủy ban nhân dân quận Hà Đông",
            seal_image: None,
            tsa: None,
        },
        None,
    )
    .unwrap();
    let out = fx.dir.join("cong-van-sealed.pdf");
    std::fs::write(&out, sealed).unwrap();
    let said = python(&[
        "validate",
        out.to_str().unwrap(),
        "--trust",
        fx.pki.root.cert_pem.to_str().unwrap(),
    ]);
    assert_eq!(
        said.matches("intact=True valid=True trusted=True").count(),
        1,
        "pyHanko: {said}"
    );
}

fn a_wrong_pin_a_missing_token_or_key_are_told_apart() {
    let uri = format!("pkcs11:token={};object=seal-ec", LABEL.replace(' ', "%20"));
    let err = SigningIdentity::from_token(key(&uri, "0000"), None).unwrap_err();
    assert!(
        matches!(err, IdentityError::Token(TokenError::PinIncorrect)),
        "{err:?}"
    );
    let err = SigningIdentity::from_token(key("pkcs11:token=Other;object=seal-rsa", PIN), None)
        .unwrap_err();
    assert!(
        matches!(err, IdentityError::Token(TokenError::NoToken { .. })),
        "{err:?}"
    );
    let uri = format!("pkcs11:token={};object=nothing", LABEL.replace(' ', "%20"));
    let err = SigningIdentity::from_token(key(&uri, PIN), None).unwrap_err();
    assert!(
        matches!(err, IdentityError::Token(TokenError::NoKey { .. })),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cert_import_pkcs11_and_the_daemon_seals_with_the_token() {
    use common::{addr, Client, Env, Setup};
    use congvan::config::Role;
    let fx = fx();
    let env = Env::new(Setup::default()).await;
    let pin_file = env.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let uri = format!("pkcs11:token={};object=seal-rsa", LABEL.replace(' ', "%20"));
    let import = |pin: &Path, extra: &[&str]| {
        let mut args = vec![
            "cert",
            "import",
            "--pkcs11",
            &uri,
            "--module",
            MODULE,
            "--pin-file",
            pin.to_str().unwrap(),
            "--domain",
            "hadong.gov.vn",
        ];
        args.extend_from_slice(extra);
        env.cli(&args)
    };
    // Not a URI congvan takes: nothing imported.
    let out = env.cli(&[
        "cert",
        "import",
        "--pkcs11",
        "pkcs11:object=seal-rsa?pin-value=1234",
        "--module",
        MODULE,
        "--pin-file",
        pin_file.to_str().unwrap(),
        "--domain",
        "hadong.gov.vn",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pin-value"));

    let chain = fx.pki.rsa2048.chain_pem.to_str().unwrap().to_string();
    let out = import(&pin_file, &["--cert", &chain]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list: serde_json::Value =
        serde_json::from_slice(&env.cli(&["cert", "list", "--json"]).stdout).unwrap();
    let row = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key_store"] == "token")
        .expect("the token identity");
    assert_eq!(row["pkcs11_uri"], uri.as_str());
    assert_eq!(row["serial"], fx.pki.rsa2048.serial_hex.as_str());
    let id = row["id"].to_string();
    let shown = String::from_utf8(env.cli(&["cert", "show", &id]).stdout).unwrap();
    assert!(
        shown.contains("key:         on a token: pkcs11:"),
        "{shown}"
    );
    // The CLI does not log in to the token (each wrong PIN counts towards locking it).
    assert!(shown.contains("the daemon tests it"), "{shown}");
    assert!(
        shown.contains("signatures:  0 document(s) and 0 PDF part(s)"),
        "{shown}"
    );
    // Nothing of the key under the data directory.
    let keys: Vec<_> = std::fs::read_dir(env.path().join("keys"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(
        keys.iter()
            .filter(|n| n.to_string_lossy().ends_with(".key.pem"))
            .count(),
        1,
        "only the dev identity's key file: {keys:?}"
    );

    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Relay)).await;
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO mail.hadong.gov.vn", 250).await;
    c.expect(&format!("MAIL FROM:<{}>", fx.pki.rsa2048.email), 250)
        .await;
    c.expect("RCPT TO:<vanphong@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(
        format!(
            "From: {}\r\nTo: vanphong@hanoi.gov.vn\r\nSubject: Cong van so 26\r\nMessage-ID: <token@hadong.gov.vn>\r\n\r\nKinh gui.\r\n.\r\n",
            fx.pki.rsa2048.email
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(c.reply().await.0, 250);
    let emls = common::wait_files(&env.outbox(), 1, 20).await;
    assert_eq!(emls.len(), 1, "delivered");
    let (ok, out) = common::openssl_verify(&emls[0], &fx.pki.root.cert_pem);
    assert!(ok, "sealed on the token: {out}");
    gw.stop().await;
}
