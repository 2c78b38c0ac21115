//! A token that goes away under the running daemon (SPEC "Keys on a token"): documents are
//! held with the reason, never sent unsigned; the administrator is told once; they go out by
//! themselves once the token signs again. Then the token's PIN is changed: the old PIN is
//! refused and reported once, and a new PIN file brings delivery back. Its own test binary:
//! SoftHSM reads its token directory once per process, and pulling the token must not
//! disturb the other token tests.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::softhsm::{self, MODULE, PIN};
use common::{addr, eml_files, envelope_of, Client, Env, Setup};
use congvan::config::Role;
use congvan::server::Running;

const LABEL: &str = "Con dau Ha Dong";
const TO: &str = "vanphong@hanoi.gov.vn";
const ADMIN: &str = "chanhvp@dev.gov.vn";

async fn send(gw: &Running, from: &str, n: u32) {
    let mut c = Client::connect(addr(gw, Role::Relay)).await;
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO mail.hadong.gov.vn", 250).await;
    c.expect(&format!("MAIL FROM:<{from}>"), 250).await;
    c.expect(&format!("RCPT TO:<{TO}>"), 250).await;
    c.expect("DATA", 354).await;
    c.send(
        format!(
            "From: {from}\r\nTo: {TO}\r\nSubject: Cong van so {n}\r\nMessage-ID: <outage-{n}@hadong.gov.vn>\r\n\r\nKinh gui.\r\n.\r\n"
        )
        .as_bytes(),
    )
    .await;
    assert_eq!(c.reply().await.0, 250, "document {n} accepted");
    c.expect("QUIT", 221).await;
}

/// The documents delivered to the outside recipient (not the notices).
fn delivered(env: &Env) -> Vec<PathBuf> {
    eml_files(&env.outbox())
        .into_iter()
        .filter(|f| envelope_of(f)["recipients"][0] == TO)
        .collect()
}

async fn wait_delivered(env: &Env, n: usize, secs: u64) -> Vec<PathBuf> {
    for _ in 0..secs * 10 {
        if delivered(env).len() >= n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    delivered(env)
}

fn admin_notices(env: &Env) -> usize {
    eml_files(&env.inbox())
        .into_iter()
        .filter(|f| envelope_of(f)["recipients"][0] == ADMIN)
        .count()
}

fn queue(env: &Env) -> Vec<serde_json::Value> {
    let out = env.cli(&["queue", "list", "--json"]);
    assert!(out.status.success());
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "out" && m["sender"] != "")
        .cloned()
        .collect()
}

/// Waits until `n` documents are held and returns their reasons.
async fn wait_held(env: &Env, n: usize) -> Vec<String> {
    for _ in 0..100 {
        let held: Vec<String> = queue(env)
            .iter()
            .filter(|m| m["state"] == "held")
            .map(|m| m["reason"].as_str().unwrap_or_default().to_string())
            .collect();
        if held.len() >= n {
            return held;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{n} documents were not held: {:?}", queue(env));
}

async fn audit_actions(env: &Env) -> Vec<String> {
    use sea_orm::EntityTrait;
    congvan::store::entity::audit_log::Entity::find()
        .all(&env.db().await)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect()
}

fn count(actions: &[String], action: &str) -> usize {
    actions.iter().filter(|a| *a == action).count()
}

/// Moves the token's directory out of SoftHSM's token directory (or back).
fn move_token(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        std::fs::rename(e.path(), to.join(e.file_name())).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_token_holds_documents_until_it_is_back_and_a_changed_pin_until_the_file_says_it()
{
    let dir = tempfile::tempdir().unwrap();
    let tokens = softhsm::configure(dir.path());
    softhsm::init_token(LABEL);
    let pki = congvan::pki::testpki::generate(dir.path(), "hadong.gov.vn").unwrap();
    let seal = &pki.p256;
    softhsm::import(dir.path(), LABEL, seal, "seal", "01");

    let env = Env::new(Setup {
        extra: "monitor_interval_secs = 1\n".into(),
        local_domains: vec!["dev.gov.vn", "hadong.gov.vn"],
        ..Setup::default()
    })
    .await;
    let profile = env.path().join("policies/default.toml");
    let text = std::fs::read_to_string(&profile).unwrap();
    std::fs::write(
        &profile,
        text.replacen("notify = []", &format!("notify = [\"{ADMIN}\"]"), 1),
    )
    .unwrap();
    let pin_file = env.path().join("token.pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let uri = softhsm::uri(LABEL, "seal");
    let out = env.cli(&[
        "cert",
        "import",
        "--pkcs11",
        &uri,
        "--module",
        MODULE,
        "--pin-file",
        pin_file.to_str().unwrap(),
        "--cert",
        seal.chain_pem.to_str().unwrap(),
        "--domain",
        "hadong.gov.vn",
    ]);
    assert!(out.status.success(), "{out:?}");
    let list: serde_json::Value =
        serde_json::from_slice(&env.cli(&["cert", "list", "--json"]).stdout).unwrap();
    let id = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["key_store"] == "token")
        .unwrap()["id"]
        .to_string();

    // `check` makes a test signature through the token.
    let out = env.cli(&["check"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!(
            "seal: hadong.gov.vn identity {id} signs (on the token"
        )),
        "{said}"
    );

    let gw = env.start().await;
    send(&gw, &seal.email, 1).await;
    assert_eq!(
        wait_delivered(&env, 1, 20).await.len(),
        1,
        "sealed on the token"
    );

    // The token is pulled out.
    let saved = dir.path().join("pulled");
    move_token(&tokens, &saved);
    send(&gw, &seal.email, 2).await;
    send(&gw, &seal.email, 3).await;
    let reasons = wait_held(&env, 2).await;
    for r in &reasons {
        assert!(
            r.starts_with(&format!("the token of identity {id} cannot sign: ")),
            "{r}"
        );
    }
    // Nothing went out unsigned or at all; one notice to the administrator, one audit entry.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(delivered(&env).len(), 1);
    assert_eq!(admin_notices(&env), 1, "one notice for the outage");
    let actions = audit_actions(&env).await;
    assert_eq!(count(&actions, "identity.token_failed"), 1, "{actions:?}");
    assert_eq!(count(&actions, "queue.hold"), 2, "{actions:?}");
    let shown = String::from_utf8(env.cli(&["cert", "show", &id]).stdout).unwrap();
    assert!(shown.contains("token:       cannot sign"), "{shown}");
    let out = env.cli(&["check"]);
    let said = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("PROBLEM  seal: hadong.gov.vn"), "{said}");
    assert!(said.contains("no token"), "{said}");

    // Put back: both go out by themselves, sealed on the token.
    move_token(&saved, &tokens);
    let emls = wait_delivered(&env, 3, 30).await;
    assert_eq!(emls.len(), 3, "released when the token signs again");
    for eml in &emls {
        let (ok, said) = common::openssl_verify(eml, &pki.root.cert_pem);
        assert!(ok, "{}: {said}", eml.display());
    }
    let actions = audit_actions(&env).await;
    assert_eq!(
        count(&actions, "identity.token_recovered"),
        1,
        "{actions:?}"
    );
    assert_eq!(count(&actions, "queue.release"), 2, "{actions:?}");
    let shown = String::from_utf8(env.cli(&["cert", "show", &id]).stdout).unwrap();
    assert!(shown.contains("token:       signs again"), "{shown}");
    assert!(shown.contains("signatures:  3 document(s)"), "{shown}");

    // The PIN is changed on the token, and the token is pulled and put back: the daemon
    // logs in again with the old PIN, which is refused, reported once and not tried again.
    softhsm::change_pin(LABEL, PIN, "8765");
    move_token(&tokens, &saved);
    send(&gw, &seal.email, 4).await;
    wait_held(&env, 1).await;
    move_token(&saved, &tokens);
    let mut actions = Vec::new();
    for _ in 0..100 {
        actions = audit_actions(&env).await;
        if count(&actions, "identity.pin_refused") > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(count(&actions, "identity.pin_refused"), 1, "{actions:?}");
    tokio::time::sleep(Duration::from_millis(3000)).await;
    let actions = audit_actions(&env).await;
    assert_eq!(
        count(&actions, "identity.pin_refused"),
        1,
        "once: {actions:?}"
    );
    assert_eq!(delivered(&env).len(), 3, "held while the PIN is wrong");
    let shown = String::from_utf8(env.cli(&["cert", "show", &id]).stdout).unwrap();
    assert!(shown.contains("token:       PIN refused"), "{shown}");

    // The administrator writes the new PIN: delivery resumes without a restart.
    std::fs::write(&pin_file, "8765\n").unwrap();
    let emls = wait_delivered(&env, 4, 30).await;
    assert_eq!(emls.len(), 4, "released with the new PIN");
    assert!(queue(&env).is_empty(), "{:?}", queue(&env));
    gw.stop().await;
}
