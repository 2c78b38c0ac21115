//! Verification throughput on one core: incoming messages verified per second (MIME walk,
//! CMS, digest, signature, path validation with a CRL, address check) for 10 KB and 5 MB
//! messages signed with RSA-2048 and P-256 seals, next to ring's raw signature
//! verifications per second in the same run (the cryptographic floor); then 10 KB messages
//! signed by `openssl cms -sign` in what ring cannot verify (RSA-PSS with OpenSSL's default,
//! maximum salt length, and ECDSA P-521 with SHA-512), which go to the RustCrypto crates.
//!
//!     cargo run --release --example verify [-- --seconds 3]

use congvan::pki::identity::SigningIdentity;
use congvan::pki::testpki::{self, IdentityFiles};
use congvan::smime::sign::sign_message;
use congvan::smime::verify::{verify_message, SmimeResult, TrustStore, VerifyOptions};
use ring::rand::SystemRandom;
use ring::signature::{
    EcdsaKeyPair, KeyPair, RsaKeyPair, UnparsedPublicKey, ECDSA_P256_SHA256_ASN1,
    ECDSA_P256_SHA256_ASN1_SIGNING, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256,
};

#[path = "common.rs"]
mod common;
use common::{message, rate};

fn main() {
    let secs: f64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = testpki::generate(dir.path(), "bench.gov.vn")
        .expect("test PKI (needs openssl for RSA keys)");
    let rng = SystemRandom::new();
    let data = [0u8; 32];

    println!("congvan verification bench, one core, {secs} s per figure");
    let rsa = RsaKeyPair::from_pkcs8(&pki.rsa2048.key_pkcs8_der).expect("rsa key");
    let mut rsa_sig = vec![0u8; rsa.public().modulus_len()];
    rsa.sign(&RSA_PKCS1_SHA256, &rng, &data, &mut rsa_sig)
        .expect("sign");
    let rsa_pub = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, rsa.public().as_ref());
    let raw_rsa = rate(secs, || rsa_pub.verify(&data, &rsa_sig).expect("verify"));
    let ec = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &pki.p256.key_pkcs8_der,
        &rng,
    )
    .expect("ec key");
    let ec_sig = ec.sign(&rng, &data).expect("sign");
    let ec_pub = UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, ec.public_key().as_ref());
    let raw_ec = rate(secs, || {
        ec_pub.verify(&data, ec_sig.as_ref()).expect("verify")
    });
    println!("ring raw: RSA-2048 {raw_rsa:.0} verifications/s, P-256 {raw_ec:.0} verifications/s");

    let anchors = TrustStore::new(vec![pki.root.cert_der.clone()]);
    let crls = vec![pki.crl_der.clone()];
    let now = time::OffsetDateTime::now_utc();
    for (name, files, raw) in [
        ("RSA-2048", &pki.rsa2048, raw_rsa),
        ("P-256", &pki.p256, raw_ec),
    ] {
        let id = SigningIdentity::from_pem(
            &std::fs::read(&files.chain_pem).expect("chain"),
            &std::fs::read(&files.key_pem).expect("key"),
        )
        .expect("identity");
        for (label, size) in [("10 KB", 10_000), ("5 MB", 5_000_000)] {
            let signed = sign_message(&message(size), &id, now).expect("seal").bytes;
            let v = verify_message(&signed, &anchors, &crls, now, VerifyOptions::default());
            assert_eq!(v.result, SmimeResult::Pass, "{v:?}");
            let r = rate(secs, || {
                verify_message(&signed, &anchors, &crls, now, VerifyOptions::default());
            });
            let mbps = r * size as f64 / 1e6;
            let extra = if size < 100_000 {
                format!(" ({:.0} % of ring's raw rate)", 100.0 * r / raw)
            } else {
                String::new()
            };
            println!("{name} {label}: {r:.1} messages/s, {mbps:.1} MB/s{extra}");
        }
    }

    let p521 = pki
        .issue(
            "p521",
            testpki::KeySpec::P521,
            &testpki::LeafOptions::office("bench.gov.vn"),
        )
        .expect("P-521 leaf");
    for (name, files, args) in [
        (
            "RSA-2048 PSS, max salt (rsa crate)",
            &pki.rsa2048,
            &["-keyopt", "rsa_padding_mode:pss"][..],
        ),
        ("P-521 SHA-512 (p521 crate)", &p521, &["-md", "sha512"][..]),
    ] {
        let signed = openssl_signed(dir.path(), files, 10_000, args);
        let v = verify_message(&signed, &anchors, &crls, now, VerifyOptions::default());
        assert_eq!(v.result, SmimeResult::Pass, "{name}: {v:?}");
        let r = rate(secs, || {
            verify_message(&signed, &anchors, &crls, now, VerifyOptions::default());
        });
        println!("{name} 10 KB: {r:.1} messages/s");
    }
}

/// A message of about `size` bytes signed by `openssl cms -sign` with `args`, made CRLF.
fn openssl_signed(
    dir: &std::path::Path,
    files: &IdentityFiles,
    size: usize,
    args: &[&str],
) -> Vec<u8> {
    let m = message(size);
    let entity = m
        .windows(13)
        .position(|w| w == b"Content-Type:")
        .expect("content type");
    let input = dir.join(format!("{}-content", files.name));
    std::fs::write(&input, &m[entity..]).expect("write");
    let inter = dir.join("intermediate.pem");
    let path = |p: &std::path::Path| p.to_str().expect("utf-8 path").to_string();
    let mut all = vec![
        "cms".to_string(),
        "-sign".into(),
        "-binary".into(),
        "-in".into(),
        path(&input),
        "-signer".into(),
        path(&files.cert_pem),
        "-inkey".into(),
        path(&files.key_pem),
        "-certfile".into(),
        path(&inter),
        "-from".into(),
        "vanthu@bench.gov.vn".into(),
        "-subject".into(),
        "bench".into(),
    ];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let out = testpki::run_openssl(&all).expect("openssl cms -sign");
    let mut crlf = Vec::with_capacity(out.len() + out.len() / 50);
    for (i, &c) in out.iter().enumerate() {
        if c == b'\n' && (i == 0 || out[i - 1] != b'\r') {
            crlf.push(b'\r');
        }
        crlf.push(c);
    }
    crlf
}
