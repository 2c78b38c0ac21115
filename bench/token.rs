//! Signing through a PKCS#11 token next to the same key in a file, in one run: raw
//! signatures per second and 10 KB messages sealed per second, for RSA-2048 and P-256, on a
//! throw-away SoftHSM2 token; then two threads at once on one token identity (one key, one
//! logged-in session) next to two threads on the file identity and on two token identities.
//!
//!     cargo run --release --example token [-- --seconds 3]
//!
//! Needs SoftHSM2 (`softhsm2-util`, /usr/lib/softhsm/libsofthsm2.so), OpenSC's `pkcs11-tool`
//! and the `openssl` CLI (the test PKI's RSA keys).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use congvan::pki::identity::{KeyAlgorithm, SigningIdentity};
use congvan::pki::testpki::{self, IdentityFiles};
use congvan::pki::token::{Pkcs11Uri, TokenKey};
use congvan::smime::sign::sign_message;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, RsaKeyPair, ECDSA_P256_SHA256_ASN1_SIGNING, RSA_PKCS1_SHA256};

#[path = "common.rs"]
mod common;
use common::{message, rate};

const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const TOKEN: &str = "congvan-bench";
const PIN: &str = "1234";

fn run(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Puts `who`'s key and certificate on the token as `label` with CKA_ID `id` (as
/// tests/token.rs does).
fn import(dir: &Path, who: &IdentityFiles, label: &str, id: &str) {
    let der = dir.join(format!("{label}.der"));
    std::fs::write(&der, &who.cert_der).expect("certificate");
    let key = who.key_pem.to_str().expect("path");
    run(
        "softhsm2-util",
        &[
            "--import", key, "--token", TOKEN, "--label", label, "--id", id, "--pin", PIN,
        ],
    );
    let der = der.to_str().expect("path");
    run(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--token-label",
            TOKEN,
            "--login",
            "--pin",
            PIN,
            "--write-object",
            der,
            "--type",
            "cert",
            "--id",
            id,
            "--label",
            label,
        ],
    );
}

/// A throw-away SoftHSM2 token under `dir`; must run before the module is first loaded.
fn init_token(dir: &Path) {
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).expect("token dir");
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .expect("softhsm2.conf");
    // SoftHSM reads it once, when the module is loaded (here and in the tools).
    std::env::set_var("SOFTHSM2_CONF", &conf);
    run(
        "softhsm2-util",
        &[
            "--init-token",
            "--free",
            "--label",
            TOKEN,
            "--pin",
            PIN,
            "--so-pin",
            "5678",
        ],
    );
}

fn token_key(object: &str) -> TokenKey {
    let uri = Pkcs11Uri::parse(&format!("pkcs11:token={TOKEN};object={object}")).expect("uri");
    TokenKey::new(Path::new(MODULE), uri, PIN)
}

/// Calls `f(thread)` on `threads` threads at once for `secs` seconds; returns calls per
/// second, all threads together.
fn rate_threads<F: Fn(usize) + Sync>(secs: f64, threads: usize, f: F) -> f64 {
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(secs);
    let f = &f;
    let calls: u64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                s.spawn(move || {
                    let mut n = 0u64;
                    while Instant::now() < end {
                        f(t);
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).sum()
    });
    calls as f64 / start.elapsed().as_secs_f64()
}

/// The file key as ring holds it (what `SigningIdentity` does with a key file).
enum FileKey {
    Rsa(RsaKeyPair),
    Ec(EcdsaKeyPair),
}

impl FileKey {
    fn sign(&self, rng: &SystemRandom, data: &[u8]) {
        match self {
            FileKey::Rsa(k) => {
                let mut sig = vec![0u8; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, rng, data, &mut sig)
                    .expect("sign");
            }
            FileKey::Ec(k) => {
                k.sign(rng, data).expect("sign");
            }
        }
    }
}

struct Row {
    key: &'static str,
    place: &'static str,
    op: String,
    per_second: f64,
    /// This token row over the file row of the same key and operation.
    ratio: Option<f64>,
}

fn main() {
    let secs: f64 = std::env::args()
        .skip_while(|a| a != "--seconds")
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(3.0);
    let dir = tempfile::tempdir().expect("tempdir");
    init_token(dir.path());
    let pki = testpki::generate(dir.path(), "hadong.gov.vn")
        .expect("test PKI (needs openssl for RSA keys)");
    import(dir.path(), &pki.rsa2048, "seal-rsa", "01");
    import(dir.path(), &pki.p256, "seal-ec", "02");

    let rng = SystemRandom::new();
    let data = [0u8; 32];
    let msg = String::from_utf8(message(10_000))
        .expect("ascii")
        .replace("vanthu@bench.gov.vn", "vanthu@hadong.gov.vn")
        .into_bytes();
    let now = time::OffsetDateTime::now_utc();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("congvan token bench: SoftHSM2 ({MODULE}) next to the key in a file, {secs} s per figure, {cores} cores");

    let mut rows = Vec::new();
    for (name, files, object, algorithm) in [
        (
            "RSA-2048",
            &pki.rsa2048,
            "seal-rsa",
            KeyAlgorithm::Rsa { bits: 2048 },
        ),
        ("P-256", &pki.p256, "seal-ec", KeyAlgorithm::EcdsaP256),
    ] {
        let chain = std::fs::read(&files.chain_pem).expect("chain");
        let key_pem = std::fs::read(&files.key_pem).expect("key");
        let file_id = SigningIdentity::from_pem(&chain, &key_pem).expect("file identity");
        let token_id =
            SigningIdentity::from_token(token_key(object), Some(&chain)).expect("token identity");
        assert_eq!(token_id.algorithm(), algorithm);
        // A second identity on the same key: its own logged-in session.
        let token_id2 =
            SigningIdentity::from_token(token_key(object), Some(&chain)).expect("token identity");
        let seal = |id: &SigningIdentity| {
            sign_message(&msg, id, now).expect("seal");
        };

        // Raw signatures. SigningIdentity's own sign_bytes is crate-private (the CMS builder
        // is its only caller); these are the two calls it makes: ring with the file key,
        // TokenKey::sign with the token's.
        let file_key = match algorithm {
            KeyAlgorithm::Rsa { .. } => {
                FileKey::Rsa(RsaKeyPair::from_pkcs8(&files.key_pkcs8_der).expect("rsa key"))
            }
            _ => FileKey::Ec(
                EcdsaKeyPair::from_pkcs8(
                    &ECDSA_P256_SHA256_ASN1_SIGNING,
                    &files.key_pkcs8_der,
                    &rng,
                )
                .expect("ec key"),
            ),
        };
        let raw_keys = [token_key(object), token_key(object)];
        let raw = |k: &TokenKey| {
            k.sign(algorithm, &data).expect("token sign");
        };
        let raw_file = rate(secs, || file_key.sign(&rng, &data));
        let raw_token = rate(secs, || raw(&raw_keys[0]));
        let raw_file_2 = rate_threads(secs, 2, |_| file_key.sign(&rng, &data));
        let raw_token_2 = rate_threads(secs, 2, |_| raw(&raw_keys[0]));
        let raw_token_2s = rate_threads(secs, 2, |t| raw(&raw_keys[t]));

        let ids = [&token_id, &token_id2];
        let seal_file = rate(secs, || seal(&file_id));
        let seal_token = rate(secs, || seal(ids[0]));
        let seal_file_2 = rate_threads(secs, 2, |_| seal(&file_id));
        let seal_token_2 = rate_threads(secs, 2, |_| seal(ids[0]));
        let seal_token_2s = rate_threads(secs, 2, |t| seal(ids[t]));

        for (op, file_1, token_1, file_2, token_2, token_2s) in [
            (
                "sign 32 bytes",
                raw_file,
                raw_token,
                raw_file_2,
                raw_token_2,
                raw_token_2s,
            ),
            (
                "seal 10 KB",
                seal_file,
                seal_token,
                seal_file_2,
                seal_token_2,
                seal_token_2s,
            ),
        ] {
            let mut push = |place, what: &str, per_second, file: Option<f64>| {
                rows.push(Row {
                    key: name,
                    place,
                    op: format!("{op}{what}"),
                    per_second,
                    ratio: file.map(|f| per_second / f),
                })
            };
            push("file", "", file_1, None);
            push("token", "", token_1, Some(file_1));
            push("file", ", 2 threads", file_2, None);
            push("token", ", 2 threads, 1 identity", token_2, Some(file_2));
            push("token", ", 2 threads, 2 identities", token_2s, Some(file_2));
        }
    }

    println!();
    println!(
        "{:<9} {:<6} {:<40} {:>11} {:>11}",
        "key", "place", "op", "per second", "token/file"
    );
    for r in &rows {
        let ratio = r.ratio.map(|x| format!("{x:.2}")).unwrap_or_default();
        println!(
            "{:<9} {:<6} {:<40} {:>11.1} {:>11}",
            r.key, r.place, r.op, r.per_second, ratio
        );
    }
    println!();
    println!("token/file: over the file key's row for the same operation and number of threads.");
    println!(
        "1 identity: both threads on one TokenKey (its pool of logged-in sessions), as the daemon"
    );
    println!("has it; 2 identities: each thread its own TokenKey on the same key.");
}
