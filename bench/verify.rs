//! Verification throughput on one core: incoming messages verified per second (MIME walk,
//! CMS, digest, signature, path validation with a CRL, address check) for 10 KB and 5 MB
//! messages signed with RSA-2048 and P-256 seals, next to ring's raw signature
//! verifications per second in the same run (the cryptographic floor).
//!
//!     cargo run --release --example verify [-- --seconds 3]

use congvan::pki::identity::SigningIdentity;
use congvan::pki::testpki;
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
}
