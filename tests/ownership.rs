//! The command line run as root on a data directory that belongs to the daemon's user acts
//! as that user (SPEC "Operating it"): what it creates there belongs to that user, while the
//! files the administrator names are read as root.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::{Env, Setup};

fn chown_tree(path: &std::path::Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).unwrap();
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).unwrap().flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

#[tokio::test]
async fn as_root_the_cli_creates_files_as_the_data_directorys_owner() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: needs root (CI runs as root), to act as another user");
        return;
    }
    let (uid, gid) = (65534, 65534); // nobody:nogroup
    let env = Env::new(Setup::default()).await;
    chown_tree(env.path(), uid, gid);
    // A PKCS#12-less import: chain and key in a directory only root can read.
    let secret = tempfile::tempdir().unwrap();
    std::fs::set_permissions(secret.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let pki = congvan::pki::testpki::generate(secret.path(), "dev.gov.vn").unwrap();
    let password = secret.path().join("pw");
    std::fs::write(&password, "mot-mat-khau-dai\n").unwrap();

    let out = env.cli(&[
        "account",
        "add",
        "vanthu2",
        "--allow-from",
        "vanthu2@dev.gov.vn",
        "--password-file",
        password.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = env.cli(&[
        "cert",
        "import",
        "--cert",
        pki.p256.chain_pem.to_str().unwrap(),
        "--key",
        pki.p256.key_pem.to_str().unwrap(),
        "--domain",
        "dev.gov.vn",
    ]);
    assert!(out.status.success(), "{out:?}");
    // Everything under the data directory belongs to its owner, the new key file included.
    let mut seen = 0;
    let mut stack = vec![env.path().to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid()),
            (uid, gid),
            "{} belongs to root",
            p.display()
        );
        seen += 1;
        if meta.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().flatten().map(|e| e.path()));
        }
    }
    let keys: Vec<_> = std::fs::read_dir(env.path().join("keys"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".key.pem"))
        .collect();
    assert_eq!(keys.len(), 2, "the harness's key and the new one");
    assert!(seen > 5);
    // `check` runs as the user that runs it (root here), and finds the installation good.
    let out = env.cli(&["check"]);
    assert!(out.status.success(), "{out:?}");
}
