//! The audit log through the real binary: CLI changes (also from concurrent processes) each
//! leave one entry; the daemon's events (policy load and SIGHUP reloads, a refused
//! confidential document, queue hold/release/retry/delete, a quarantine release) too; and
//! `audit verify` exits 1 naming the first bad entry once the table is tampered with by SQL.

mod common;

use std::time::Duration;

use common::*;
use congvan::store::entity::audit_log;
use sea_orm::{ConnectionTrait, EntityTrait, QueryOrder, Statement};

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `audit verify` (with extra args); (exit code, stdout, stderr).
fn verify(env: &Env, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["audit", "verify"];
    args.extend_from_slice(extra);
    let o = env.cli(&args);
    (
        o.status.code().unwrap_or(-1),
        stdout(&o),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

async fn entries(env: &Env) -> Vec<audit_log::Model> {
    let db = env.db().await;
    let v = audit_log::Entity::find()
        .order_by_asc(audit_log::Column::Seq)
        .all(&db)
        .await
        .unwrap();
    db.close().await.ok();
    v
}

async fn sql(env: &Env, s: &str) {
    let db = env.db().await;
    db.execute_raw(Statement::from_string(db.get_database_backend(), s))
        .await
        .unwrap();
    db.close().await.ok();
}

fn ok(o: std::process::Output) -> std::process::Output {
    assert!(o.status.success(), "{o:?}");
    o
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_changes_are_audited_and_tampering_is_named() {
    let env = Env::new(Setup::default()).await;
    let pw = env.path().join("pw");
    std::fs::write(&pw, "mat-khau-moi\n").unwrap();
    let pw = pw.to_str().unwrap();
    // Env::new added the clerk and the seal (actor "test"): entries #1 and #2.
    ok(env.cli(&[
        "account",
        "add",
        "alice",
        "--allow-from",
        "alice@dev.gov.vn",
        "--password-file",
        pw,
    ]));
    ok(env.cli(&["account", "disable", "alice"]));
    ok(env.cli(&["account", "passwd", "alice", "--password-file", pw]));
    ok(env.cli(&["cert", "trust", "add", env.seal_ca().to_str().unwrap()]));
    ok(env.cli(&["cert", "disable", "1"]));
    // A refused change leaves no entry.
    assert_eq!(
        env.cli(&["account", "disable", "nobody"]).status.code(),
        Some(1)
    );

    // Several processes at once: one chain, no lost entry.
    let children: Vec<_> = (0..6)
        .map(|i| {
            std::process::Command::new(env!("CARGO_BIN_EXE_congvan"))
                .arg("--config")
                .arg(&env.config_path)
                .args(["account", "add", &format!("clerk{i}"), "--allow-from"])
                .arg(format!("clerk{i}@dev.gov.vn"))
                .args(["--password-file", pw])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let o = c.wait_with_output().unwrap();
        assert!(o.status.success(), "{o:?}");
    }

    let (code, out, _) = verify(&env, &[]);
    assert_eq!(code, 0, "{out}");
    let rows = entries(&env).await;
    assert_eq!(rows.len(), 13);
    let head = &rows[12];
    assert_eq!(
        out.trim(),
        format!("intact: 13 entries, head #13 {}", head.hash)
    );
    let actions: Vec<(&str, &str)> = rows
        .iter()
        .take(7)
        .map(|r| (r.action.as_str(), r.subject.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("account.add", "vanthu"),
            ("identity.import", "1"),
            ("account.add", "alice"),
            ("account.disable", "alice"),
            ("account.passwd", "alice"),
            ("trust.add", "1"),
            ("identity.disable", "1"),
        ]
    );
    assert_eq!(rows[0].actor, "test");
    assert!(rows[2].actor.starts_with("cli:"), "{:?}", rows[2]);
    assert_eq!(rows[2].details, r#"{"allowed_from":["alice@dev.gov.vn"]}"#);
    assert_eq!(rows[4].details, "{}", "no password or hash in the log");
    let listed = stdout(&ok(env.cli(&["audit", "list", "--json", "--last", "3"])));
    let listed: serde_json::Value = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 3);
    assert_eq!(listed[2]["seq"], 13);

    // A changed field: exit 1, the entry named, the entries before it still good.
    let original_actor = rows[2].actor.clone();
    sql(
        &env,
        "UPDATE audit_log SET actor = 'cli:mallory' WHERE seq = 3",
    )
    .await;
    let (code, out, err) = verify(&env, &[]);
    assert_eq!(code, 1, "{out}");
    assert!(out.starts_with("broken at entry #3: changed"), "{out}");
    assert!(err.contains("broken at entry #3"), "{err}");
    let o = env.cli(&["audit", "verify", "--json"]);
    assert_eq!(o.status.code(), Some(1));
    let j: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(j["intact"], false);
    assert_eq!(j["entries"], 2);
    assert_eq!(j["first_bad"]["seq"], 3);
    assert_eq!(j["first_bad"]["kind"], "fields_changed");
    sql(
        &env,
        &format!("UPDATE audit_log SET actor = '{original_actor}' WHERE seq = 3"),
    )
    .await;
    assert_eq!(verify(&env, &[]).0, 0);

    // A removed entry: a gap.
    sql(&env, "DELETE FROM audit_log WHERE seq = 5").await;
    let (code, out, _) = verify(&env, &[]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("broken at entry #5: missing: entry #5 was removed"),
        "{out}"
    );
    let db = env.db().await;
    audit_log::Entity::insert(audit_log::ActiveModel::from(rows[4].clone()))
        .exec_without_returning(&db)
        .await
        .unwrap();
    db.close().await.ok();
    assert_eq!(verify(&env, &[]).0, 0);

    // Two entries swapped.
    sql(&env, "UPDATE audit_log SET seq = -7 WHERE seq = 7").await;
    sql(&env, "UPDATE audit_log SET seq = 7 WHERE seq = 4").await;
    sql(&env, "UPDATE audit_log SET seq = 4 WHERE seq = -7").await;
    let (code, out, _) = verify(&env, &[]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("broken at entry #4: holds the contents of entry #7"),
        "{out}"
    );
    sql(&env, "UPDATE audit_log SET seq = -7 WHERE seq = 7").await;
    sql(&env, "UPDATE audit_log SET seq = 7 WHERE seq = 4").await;
    sql(&env, "UPDATE audit_log SET seq = 4 WHERE seq = -7").await;

    // Truncation: invisible to the chain, caught against a noted head.
    let noted = format!("13:{}", head.hash);
    assert_eq!(verify(&env, &["--head", &noted]).0, 0);
    sql(&env, "DELETE FROM audit_log WHERE seq >= 12").await;
    assert_eq!(verify(&env, &[]).0, 0);
    let (code, out, _) = verify(&env, &["--head", &noted]);
    assert_eq!(code, 1);
    assert!(
        out.starts_with("broken at entry #13: the noted head"),
        "{out}"
    );

    // Bad usage.
    assert_eq!(verify(&env, &["--head", "nonsense"]).0, 2);
    let help = stdout(&env.cli(&["audit", "verify", "--help"]));
    assert!(help.contains("truncation"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemon_events_are_audited() {
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let dead = free_port();
    let env = Env::new(Setup {
        ports: Some(ports),
        upstream: Some(format!("smtp://127.0.0.1:{dead}")),
        ..Setup::default()
    })
    .await;
    let policy = env.path().join("policies/default.toml");
    let mut text = std::fs::read_to_string(&policy).unwrap();
    text.push_str("\"hanoi.gov.vn\" = \"quarantine\"\n");
    std::fs::write(&policy, &text).unwrap();
    let mut daemon = Daemon::spawn(&env, &[]);
    let submission: std::net::SocketAddr = format!("127.0.0.1:{}", ports[0]).parse().unwrap();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(submission).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A confidential document: refused, and its entry holds metadata only.
    let marker = "MAT-NOI-DUNG-4b2d";
    let mut c = Client::clerk(submission, &env).await;
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    c.expect("RCPT TO:<a@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(
        format!("From: {CLERK_ADDR}\r\nSubject: [MẬT] {marker}\r\n\r\n{marker}\r\n.\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(c.reply().await.0, 550);
    // An ordinary one, which waits in the queue (the upstream is down).
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(format!("From: {CLERK_ADDR}\r\nSubject: thường\r\n\r\nx\r\n.\r\n").as_bytes())
        .await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 250, "{t}");
    let id = t.split_whitespace().last().unwrap().to_string();
    c.expect("QUIT", 221).await;

    // An unsigned incoming document from hanoi.gov.vn: quarantined.
    let inbound: std::net::SocketAddr = format!("127.0.0.1:{}", ports[3]).parse().unwrap();
    let mut i = Client::connect(inbound).await;
    i.reply().await;
    i.expect("EHLO mail.hanoi.gov.vn", 250).await;
    i.expect("MAIL FROM:<vanthu@hanoi.gov.vn>", 250).await;
    i.expect("RCPT TO:<vanthu@dev.gov.vn>", 250).await;
    i.expect("DATA", 354).await;
    i.send(b"From: vanthu@hanoi.gov.vn\r\nSubject: den\r\n\r\nx\r\n.\r\n")
        .await;
    let (code, t) = i.reply().await;
    assert_eq!(code, 250, "{t}");
    let quarantined = t.split_whitespace().last().unwrap().to_string();
    i.expect("QUIT", 221).await;

    let state_of = |qid: &str| {
        let out = env.cli(&["queue", "list", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        list.as_array()
            .unwrap()
            .iter()
            .find(|e| e["id"] == qid)
            .map(|e| e["state"].as_str().unwrap().to_string())
    };
    let wait_deferred = |qid: String| {
        let state_of = &state_of;
        async move {
            for _ in 0..200 {
                if state_of(&qid).as_deref() == Some("deferred") {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("{qid} never deferred");
        }
    };
    wait_deferred(id.clone()).await;
    ok(env.cli(&["queue", "hold", &id]));
    ok(env.cli(&["queue", "release", &id]));
    wait_deferred(id.clone()).await;
    ok(env.cli(&["queue", "retry", &id]));
    wait_deferred(id.clone()).await;
    ok(env.cli(&["queue", "delete", &id]));
    assert_eq!(state_of(&quarantined).as_deref(), Some("held"));
    ok(env.cli(&["queue", "release", &quarantined]));

    // SIGHUP with a broken policy, then with a good one.
    std::fs::write(&policy, format!("{text}\n[[[broken\n")).unwrap();
    daemon.signal(libc::SIGHUP);
    let mut reloads = Vec::new();
    for _ in 0..200 {
        reloads = entries(&env)
            .await
            .into_iter()
            .filter(|e| e.action.starts_with("policy.reload"))
            .collect();
        if !reloads.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::fs::write(&policy, &text).unwrap();
    daemon.signal(libc::SIGHUP);
    for _ in 0..200 {
        reloads = entries(&env)
            .await
            .into_iter()
            .filter(|e| e.action.starts_with("policy.reload"))
            .collect();
        if reloads.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(daemon.stop().success());

    let rows = entries(&env).await;
    let find = |action: &str| {
        rows.iter()
            .filter(|e| e.action == action)
            .cloned()
            .collect::<Vec<_>>()
    };
    let load = &find("policy.load")[0];
    assert_eq!(load.actor, "daemon");
    let d: serde_json::Value = serde_json::from_str(&load.details).unwrap();
    assert_eq!(d["profile"], "default");
    assert_eq!(d["digest"].as_str().unwrap().len(), 64);
    assert_eq!(
        reloads
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        ["policy.reload_failed", "policy.reload"]
    );
    let d: serde_json::Value = serde_json::from_str(&reloads[0].details).unwrap();
    assert!(
        d["errors"].as_str().unwrap().contains("default.toml"),
        "{d}"
    );
    assert_ne!(
        serde_json::from_str::<serde_json::Value>(&reloads[1].details).unwrap()["digest"],
        d["digest"]
    );

    let refused = &find("document.refused_confidential")[0];
    assert_eq!(refused.actor, CLERK);
    assert_eq!(refused.subject, "secrecy.mat");
    let d: serde_json::Value = serde_json::from_str(&refused.details).unwrap();
    assert_eq!(d["recipients"], 1);
    assert_eq!(d["listener"], "submission");
    assert_eq!(d["sender"], CLERK_ADDR);
    assert!(rows
        .iter()
        .all(|e| !e.details.contains(marker) && !e.subject.contains(marker)));

    let queue: Vec<(String, String)> = rows
        .iter()
        .filter(|e| e.action.starts_with("queue."))
        .map(|e| (e.action.clone(), e.subject.clone()))
        .collect();
    let q = |a: &str, s: &str| (a.to_string(), s.to_string());
    assert_eq!(
        queue,
        [
            // The quarantine when the unsigned document came in, by the daemon.
            q("queue.hold", &quarantined),
            q("queue.hold", &id),
            q("queue.release", &id),
            q("queue.retry", &id),
            q("queue.delete", &id),
            q("queue.release", &quarantined),
        ]
    );
    let auto_hold: serde_json::Value =
        serde_json::from_str(&find("queue.hold")[0].details).unwrap();
    assert_eq!(find("queue.hold")[0].actor, "daemon");
    assert_eq!(auto_hold["quarantine"], true);
    assert!(auto_hold["reason"]
        .as_str()
        .unwrap()
        .starts_with("quarantined: smime=none"));
    let releases = find("queue.release");
    let quarantine = |e: &audit_log::Model| {
        serde_json::from_str::<serde_json::Value>(&e.details).unwrap()["quarantine"].clone()
    };
    assert_eq!(quarantine(&releases[0]), false);
    assert_eq!(quarantine(&releases[1]), true);

    let (code, out, _) = verify(&env, &[]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.starts_with(&format!("intact: {} entries", rows.len())),
        "{out}"
    );
}
