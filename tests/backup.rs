//! `congvan backup --to DIR` while the daemon runs, and a restore from it (SPEC "Operating
//! it", docs/restore.md).

mod common;

use std::os::unix::fs::PermissionsExt;

use common::{addr, Client, Env, Setup};
use congvan::config::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_the_daemon_runs_restores_the_registers_and_keys() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Relay)).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(
        "From: a@dev.gov.vn\r\nSubject: sao luu\r\nX-Congvan-Number: 07/QĐ-UBND\r\n\r\nx\r\n.\r\n"
            .as_bytes(),
    )
    .await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 250, "{t}");
    let id = t.split_whitespace().last().unwrap().to_string();
    assert_eq!(common::wait_files(&env.outbox(), 1, 20).await.len(), 1);

    let to = env.path().join("backups/2026-11-28");
    let out = env.cli(&["backup", "--to", to.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("backup in "), "{said}");
    let mode = std::fs::metadata(&to).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let keys: Vec<_> = std::fs::read_dir(to.join("keys"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".key.pem"))
        .collect();
    assert_eq!(keys.len(), 1, "the seal's key");
    assert_eq!(
        keys[0].metadata().unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Not over an earlier backup.
    let out = env.cli(&["backup", "--to", to.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    gw.stop().await;

    if !env.db_url.starts_with("sqlite:") {
        assert!(said.contains("pg_dump"), "{said}");
        return;
    }
    // Restore into a new data directory, as docs/restore.md says: the register is there.
    let restored = env.path().join("restored");
    std::fs::create_dir_all(&restored).unwrap();
    for sub in ["congvan.db", "keys", "spool", "archive"] {
        let from = to.join(sub);
        if from.exists() {
            let st = std::process::Command::new("cp")
                .arg("-a")
                .arg(&from)
                .arg(restored.join(sub))
                .status()
                .unwrap();
            assert!(st.success());
        }
    }
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    let text = text
        .lines()
        .map(|l| {
            if l.starts_with("data_dir") {
                format!("data_dir = \"{}\"", restored.display())
            } else if l.starts_with("database_url") {
                format!(
                    "database_url = \"sqlite://{}/congvan.db\"",
                    restored.display()
                )
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let config = env.path().join("restored.toml");
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args([
            "--config",
            config.to_str().unwrap(),
            "register",
            "show",
            &id,
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let entry: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entry["number"], "07/QĐ-UBND", "{entry}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args(["--config", config.to_str().unwrap(), "audit", "verify"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}
