//! A SoftHSM2 token for the tests of keys on a token: a token directory and configuration
//! of the test process's own (SoftHSM reads `SOFTHSM2_CONF` once per process), tokens
//! initialised at test time, and the test PKI's keys and certificates put on them with
//! SoftHSM's and OpenSC's tools.

use std::path::{Path, PathBuf};
use std::process::Command;

use congvan::pki::testpki::IdentityFiles;

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
pub const PIN: &str = "1234";
pub const SO_PIN: &str = "5678";

pub fn run(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Points this process (and the tools it runs) at a token directory under `dir`; call it
/// before the module is first loaded. Returns the token directory.
pub fn configure(dir: &Path) -> PathBuf {
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
    std::env::set_var("SOFTHSM2_CONF", &conf);
    tokens
}

/// Initialises a new token labelled `label` with [`PIN`].
pub fn init_token(label: &str) {
    run(
        "softhsm2-util",
        &[
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            PIN,
            "--so-pin",
            SO_PIN,
        ],
    );
}

/// Puts `who`'s key and certificate on `token` as `label` with CKA_ID `id`.
pub fn import(dir: &Path, token: &str, who: &IdentityFiles, label: &str, id: &str) {
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
    write_certificate(dir, token, &who.cert_der, label, id);
}

/// Changes the user PIN of `token` from `old` to `new`, as the admin would with OpenSC.
pub fn change_pin(token: &str, old: &str, new: &str) {
    run(
        "pkcs11-tool",
        &[
            "--module",
            MODULE,
            "--token-label",
            token,
            "--login",
            "--pin",
            old,
            "--change-pin",
            "--new-pin",
            new,
        ],
    );
}

/// A `pkcs11:` URI for `object` on `token` (spaces percent-encoded).
pub fn uri(token: &str, object: &str) -> String {
    format!("pkcs11:token={};object={object}", token.replace(' ', "%20"))
}

/// Generates a key pair on `token` itself (the private key never exists outside it), as
/// `key_type` says (`rsa:2048`, `EC:prime256v1`), labelled `label` with CKA_ID `id`; returns
/// its public key as a DER SubjectPublicKeyInfo.
pub fn generate_on_token(
    dir: &Path,
    token: &str,
    key_type: &str,
    label: &str,
    id: &str,
) -> Vec<u8> {
    let common = [
        "--module",
        MODULE,
        "--token-label",
        token,
        "--login",
        "--pin",
        PIN,
    ];
    let mut args = common.to_vec();
    args.extend([
        "--keypairgen",
        "--key-type",
        key_type,
        "--label",
        label,
        "--id",
        id,
    ]);
    run("pkcs11-tool", &args);
    let out = dir.join(format!("{label}.spki.der"));
    let mut args = common.to_vec();
    args.extend([
        "--read-object",
        "--type",
        "pubkey",
        "--id",
        id,
        "--output-file",
        out.to_str().unwrap(),
    ]);
    run("pkcs11-tool", &args);
    std::fs::read(out).unwrap()
}

/// Writes `cert_der` on `token` beside the key `label`/`id`.
pub fn write_certificate(dir: &Path, token: &str, cert_der: &[u8], label: &str, id: &str) {
    let der = dir.join(format!("{label}.der"));
    std::fs::write(&der, cert_der).unwrap();
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
