//! `congvan check` (SPEC "Operating it"): each problem with what to do and exit 1; and
//! `serve` refusing to start, before READY, on a problem that stops all mail.

mod common;

use common::{Env, Setup};

fn check(env: &Env) -> (i32, String) {
    let out = env.cli(&["check"]);
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test]
async fn a_good_installation_passes_and_its_seal_signs() {
    let env = Env::new(Setup::default()).await;
    let (code, out) = check(&env);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("no problems found"), "{out}");
    assert!(out.contains("seal: dev.gov.vn identity"), "{out}");
    assert!(out.contains("signs"), "{out}");
    assert!(out.contains("reachable and writable"), "{out}");
    let json = env.cli(&["check", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    // The test TLS certificate is short-lived: at most a warning, which does not fail.
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["severity"] == "warning"),
        "{v}"
    );
}

#[tokio::test]
async fn a_local_domain_without_a_seal_is_a_problem_with_what_to_do() {
    let env = Env::new(Setup {
        local_domains: vec!["dev.gov.vn", "hadong.gov.vn"],
        ..Setup::default()
    })
    .await;
    let (code, out) = check(&env);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("PROBLEM  seal: hadong.gov.vn has no signing identity"),
        "{out}"
    );
    assert!(
        out.contains("congvan cert import --p12 FILE --domain hadong.gov.vn"),
        "{out}"
    );
}

#[tokio::test]
async fn a_mistyped_sqlite_database_is_reported_and_not_created() {
    let env = Env::new(Setup::default()).await;
    let typo = env.path().join("congvan-typo.db");
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("database_url") {
                format!("database_url = \"sqlite://{}\"", typo.display())
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&env.config_path, text).unwrap();
    let (code, out) = check(&env);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FATAL    database"), "{out}");
    assert!(out.contains("does not exist"), "{out}");
    assert!(!typo.exists(), "check created the database");
}

#[tokio::test]
async fn unreadable_tls_files_stop_serve_before_ready() {
    let env = Env::new(Setup::default()).await;
    std::fs::rename(env.path().join("key.pem"), env.path().join("key.pem.old")).unwrap();
    let (code, out) = check(&env);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("FATAL    tls: tls.key"), "{out}");
    assert!(out.contains("what to do: give [tls] cert"), "{out}");
    // serve exits 1 at once, saying why, and never listens.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_congvan"))
        .arg("--config")
        .arg(&env.config_path)
        .arg("serve")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("problem(s) stop all mail"), "{err}");
    assert!(err.contains("tls.key"), "{err}");
}

/// Manual pages for every command, and shell completions (for a package to install).
#[test]
fn manual_pages_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_congvan");
    let out = std::process::Command::new(bin)
        .args(["man", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for page in [
        "congvan.1",
        "congvan-check.1",
        "congvan-backup.1",
        "congvan-cert-enable.1",
        "congvan-cert-import.1",
        "congvan-queue-release.1",
    ] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap();
        assert!(
            text.starts_with(".ie") || text.contains(".TH"),
            "{page}: {text}"
        );
    }
    assert!(!dir.path().join("congvan-help.1").exists());
    let out = std::process::Command::new(bin)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    let script = dir.path().join("congvan.bash");
    std::fs::write(&script, &out.stdout).unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("check"));
    let syntax = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .status()
        .unwrap();
    assert!(syntax.success());
}
