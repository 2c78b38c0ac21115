//! Keys on a token (SPEC "Keys on a token (PKCS#11)"), against SoftHSM2: a token initialised
//! at test time, the test PKI's RSA and P-256 keys imported onto it with their certificates,
//! and congvan signing through it (cryptoki, the module loaded at run time). OpenSSL verifies
//! what it signs, as for file keys.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use congvan::pki::identity::{IdentityError, KeyAlgorithm, SigningIdentity};
use congvan::pki::testpki::{self, IdentityFiles, TestPki};
use congvan::pki::token::{Pkcs11Uri, TokenError, TokenKey};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "1234";
const LABEL: &str = "Con dau UBND";

struct Fixture {
    dir: PathBuf,
    pki: TestPki,
}

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Puts `who`'s key and certificate on `token` as `label` with CKA_ID `id`.
fn import(dir: &Path, token: &str, who: &IdentityFiles, label: &str, id: &str) {
    let der = dir.join(format!("{label}.der"));
    std::fs::write(&der, &who.cert_der).unwrap();
    run(
        "softhsm2-util",
        &[
            "--import",
            who.key_pem.to_str().unwrap(),
            "--token",
            token,
            "--label",
            label,
            "--id",
            id,
            "--pin",
            PIN,
        ],
    );
    run(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--token-label",
            token,
            "--login",
            "--pin",
            PIN,
            "--write-object",
            der.to_str().unwrap(),
            "--type",
            "cert",
            "--id",
            id,
            "--label",
            label,
        ],
    );
}

/// One token for the whole file: SoftHSM reads its configuration once per process.
fn fx() -> &'static Fixture {
    static FX: OnceLock<Fixture> = OnceLock::new();
    FX.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("congvan-token-{}", std::process::id()));
        let tokens = dir.join("tokens");
        std::fs::create_dir_all(&tokens).unwrap();
        let conf = dir.join("softhsm2.conf");
        std::fs::write(
            &conf,
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .unwrap();
        // Before the module is first loaded, in this process and the tools'.
        std::env::set_var("SOFTHSM2_CONF", &conf);
        run(
            "softhsm2-util",
            &[
                "--init-token",
                "--free",
                "--label",
                LABEL,
                "--pin",
                PIN,
                "--so-pin",
                "5678",
            ],
        );
        let pki = testpki::generate(&dir, "hadong.gov.vn").unwrap();
        import(&dir, LABEL, &pki.rsa2048, "seal-rsa", "01");
        import(&dir, LABEL, &pki.p256, "seal-ec", "02");
        Fixture { dir, pki }
    })
}

fn key(uri: &str, pin: &str) -> TokenKey {
    TokenKey::new(Path::new(MODULE), Pkcs11Uri::parse(uri).unwrap(), pin)
}

/// One test, in this order: PKCS#11 keeps a token logged in for the whole process once a
/// session has logged in, whatever PIN comes next, so the wrong PIN is tried first.
#[test]
fn the_token_signs_and_openssl_verifies() {
    let fx = fx();
    a_wrong_pin_a_missing_token_or_key_are_told_apart();
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
    }
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
