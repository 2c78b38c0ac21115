//! Signing throughput on one core: messages sealed per second for 10 KB and 5 MB messages,
//! for RSA-2048 and P-256 seals, next to ring's raw signatures per second in the same run
//! (the physical limit), and the peak memory of sealing one large message.
//!
//!     cargo run --release --example sign [-- --seconds 3]

use std::time::Instant;

use congvan::pki::identity::SigningIdentity;
use congvan::pki::testpki;
use congvan::smime::sign::sign_message;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, RSA_PKCS1_SHA256};

#[path = "common.rs"]
mod common;
use common::{message, rate};

fn vm_hwm_kb() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let l = s.lines().find(|l| l.starts_with("VmHWM"))?;
    l.split_whitespace().nth(1)?.parse().ok()
}

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

    println!("congvan signing bench, one core, {secs} s per figure");
    let rsa = RsaKeyPair::from_pkcs8(&pki.rsa2048.key_pkcs8_der).expect("rsa key");
    let mut sig = vec![0u8; rsa.public().modulus_len()];
    let raw_rsa = rate(secs, || {
        rsa.sign(&RSA_PKCS1_SHA256, &rng, &data, &mut sig)
            .expect("sign")
    });
    let ec = EcdsaKeyPair::from_pkcs8(
        &ECDSA_P256_SHA256_ASN1_SIGNING,
        &pki.p256.key_pkcs8_der,
        &rng,
    )
    .expect("ec key");
    let raw_ec = rate(secs, || {
        ec.sign(&rng, &data).expect("sign");
    });
    println!("ring raw: RSA-2048 {raw_rsa:.0} signatures/s, P-256 {raw_ec:.0} signatures/s");

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
            let m = message(size);
            let r = rate(secs, || {
                sign_message(&m, &id, now).expect("seal");
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
    let before = vm_hwm_kb().unwrap_or(0);
    let big = message(35_000_000);
    let id = SigningIdentity::from_pem(
        &std::fs::read(&pki.p256.chain_pem).expect("chain"),
        &std::fs::read(&pki.p256.key_pem).expect("key"),
    )
    .expect("identity");
    let t = Instant::now();
    let out = sign_message(&big, &id, now).expect("seal");
    let after = vm_hwm_kb().unwrap_or(0);
    println!(
        "35 MB message: sealed in {:.2} s; peak RSS grew {} MB over the input's {} MB ({:.1}x the message)",
        t.elapsed().as_secs_f64(),
        (after.saturating_sub(before)) / 1024,
        big.len() / 1_000_000,
        (after as f64 * 1024.0) / big.len() as f64
    );
    drop(out);
}
