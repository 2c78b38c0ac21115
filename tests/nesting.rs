//! Deeply nested messages over real sockets (SPEC "Robustness"): refused 554 5.6.0 at end of
//! DATA on every listener, nothing written, the session in sync and the daemon answering;
//! one already queued over the limit is held, not sealed; a panic in the work on one message
//! fails that message only. The attack messages come from `congvan::nesting::attack`.

mod common;

use common::*;
use congvan::config::Role;
use congvan::nesting::attack::*;
use std::time::Duration;

/// Room for the 1,000-times-the-limit attacks (1.6 MB of message/rfc822, 2.7 MB of multipart).
async fn env() -> Env {
    let mut env = Env::new(Setup::default()).await;
    env.config.max_message_size = 8 * 1024 * 1024;
    env
}

async fn session(gw: &congvan::server::Running, role: Role, env: &Env) -> Client {
    if role == Role::Submission {
        return Client::clerk(addr(gw, role), env).await;
    }
    let mut c = Client::connect(addr(gw, role)).await;
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO mail.hanoi.gov.vn", 250).await;
    c
}

/// Sends one message in the open session; returns the reply to the final dot.
async fn send(c: &mut Client, from: &str, to: &str, data: &[u8]) -> (u16, String) {
    c.expect(&format!("MAIL FROM:<{from}>"), 250).await;
    c.expect(&format!("RCPT TO:<{to}>"), 250).await;
    c.expect("DATA", 354).await;
    c.send(data).await;
    c.send(b".\r\n").await;
    c.reply().await
}

fn assert_refused_too_deep((code, text): (u16, String)) {
    assert_eq!(code, 554, "{text}");
    assert!(
        text.contains("5.6.0")
            && text.contains("nested more than 50 levels")
            && text.contains(" / "),
        "{text}"
    );
}

/// Nothing of a refused message is anywhere: no queue row, no spool file.
fn assert_queue_empty(env: &Env) {
    let out = env.cli(&["queue", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list, serde_json::json!([]), "queue: {list}");
    assert!(eml_files(&env.path().join("spool")).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_incoming_messages_are_refused_and_the_daemon_goes_on() {
    let env = env().await;
    let gw = env.start().await;
    let (from, to) = ("vanthu@hanoi.gov.vn", "lanhdao@dev.gov.vn");
    let mut c = session(&gw, Role::Inbound, &env).await;
    // The remote crash of the issue: 50,000 message/rfc822 (1.6 MB), then the other shapes.
    for attack in [
        nested_message("rfc822", 50_000, from, to),
        nested_message("global", 50_000, from, to),
        nested_multipart(50_000, from, to),
        nested_mixed(500, from, to),
        encoded_nested_message(4_000, from, to),
        nested_message("rfc822", 51, from, to),
    ] {
        assert_refused_too_deep(send(&mut c, from, to, &attack).await);
    }
    // In sync: the next transaction in the same session is an ordinary one, delivered.
    let ok = send(&mut c, from, to, simple_message(from, to, "sau").as_bytes()).await;
    assert_eq!(ok.0, 250, "{}", ok.1);
    assert_eq!(wait_files(&env.inbox(), 1, 10).await.len(), 1);
    c.expect("QUIT", 221).await;
    // And the daemon answers new sessions.
    let mut d = session(&gw, Role::Inbound, &env).await;
    d.expect("NOOP", 250).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(eml_files(&env.inbox()).len(), 1);
    assert_queue_empty(&env);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_outgoing_messages_from_a_clerk_and_the_relay_are_refused() {
    let env = env().await;
    let gw = env.start().await;
    let to = "vanthu@hanoi.gov.vn";
    for role in [Role::Submission, Role::Relay] {
        let from = if role == Role::Submission {
            CLERK_ADDR
        } else {
            "phongtc@dev.gov.vn"
        };
        let mut c = session(&gw, role, &env).await;
        // The crash loop of the issue: 4,000 deep (128 KB) got 250 and killed the sealing.
        for attack in [
            nested_message("rfc822", 4_000, from, to),
            nested_message("global", 4_000, from, to),
            nested_multipart(4_000, from, to),
            nested_message("rfc822", 50_000, from, to),
            nested_mixed(51, from, to),
        ] {
            assert_refused_too_deep(send(&mut c, from, to, &attack).await);
        }
        c.expect("NOOP", 250).await;
        c.expect("QUIT", 221).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(eml_files(&env.outbox()).is_empty());
    assert_queue_empty(&env);

    // At the limit a document is accepted, sealed and sent: the walkers follow 50 levels.
    let mut c = session(&gw, Role::Submission, &env).await;
    let ok = send(&mut c, CLERK_ADDR, to, &nested_mixed(50, CLERK_ADDR, to)).await;
    assert_eq!(ok.0, 250, "{}", ok.1);
    let files = wait_files(&env.outbox(), 1, 20).await;
    assert_eq!(files.len(), 1);
    let (ok, out) = openssl_verify(&files[0], &env.seal_ca());
    assert!(ok, "{out}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lower_limit_applies_to_the_door() {
    let mut env = env().await;
    env.config.limits.max_mime_depth = 5;
    let gw = env.start().await;
    let (from, to) = ("vanthu@hanoi.gov.vn", "lanhdao@dev.gov.vn");
    let mut c = session(&gw, Role::Inbound, &env).await;
    let (code, text) = send(&mut c, from, to, &nested_multipart(6, from, to)).await;
    assert_eq!(code, 554, "{text}");
    assert!(text.contains("more than 5 levels"), "{text}");
    let ok = send(&mut c, from, to, &nested_multipart(5, from, to)).await;
    assert_eq!(ok.0, 250, "{}", ok.1);
    gw.stop().await;
}

/// A message queued over the limit (before the upgrade, or before the limit was lowered) is
/// held with the reason when its turn comes; it is never sealed, so it cannot crash the
/// daemon, and the daemon goes on serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_message_over_the_limit_is_held_not_sealed() {
    use congvan::queue::{NewMessage, NewRecipient, Queue, Route};
    let env = env().await;
    let to = "vanthu@hanoi.gov.vn";
    {
        let db = env.db().await;
        let queue = Queue::start(db, env.config.spool_dir()).await.unwrap();
        let mut meta = NewMessage::generated(
            CLERK_ADDR.into(),
            "rfc822-4000",
            vec![NewRecipient {
                address: to.into(),
                route: Route::Outbound,
                notify: 0,
                orcpt: None,
            }],
        );
        meta.generated = false;
        meta.sender = CLERK_ADDR.into();
        meta.listener = "submission".into();
        queue
            .enqueue(
                meta,
                Vec::new(),
                nested_message("rfc822", 4_000, CLERK_ADDR, to),
            )
            .await
            .unwrap();
    }
    let gw = env.start().await;
    let mut held = None;
    for _ in 0..200 {
        let out = env.cli(&["queue", "list", "--json"]);
        let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if let Some(e) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["state"] == "held")
        {
            held = Some(e.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let held = held.expect("the message is held");
    assert!(
        held["reason"]
            .as_str()
            .unwrap()
            .contains("nested more than 50 levels"),
        "{held}"
    );
    // Still serving, and nothing left unsigned.
    let mut c = session(&gw, Role::Submission, &env).await;
    let ok = send(
        &mut c,
        CLERK_ADDR,
        to,
        simple_message(CLERK_ADDR, to, "sau").as_bytes(),
    )
    .await;
    assert_eq!(ok.0, 250, "{}", ok.1);
    let files = wait_files(&env.outbox(), 1, 20).await;
    assert_eq!(files.len(), 1);
    let (_, subject) = text_and_subject(&files[0]);
    assert_eq!(subject, "sau");
    gw.stop().await;
}

/// A panic in the work on one message (injected by a debug-build test hook) fails that
/// message with 451 4.3.0; the same session then sends the next one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_fails_one_message_only() {
    let env = env().await;
    let gw = env.start().await;
    let to = "vanthu@hanoi.gov.vn";
    let mut c = session(&gw, Role::Submission, &env).await;
    let poison = simple_message(CLERK_ADDR, to, "panic").replacen(
        "\r\n",
        "\r\nX-Congvan-Test-Fault: panic\r\n",
        1,
    );
    let (code, text) = send(&mut c, CLERK_ADDR, to, poison.as_bytes()).await;
    assert_eq!(code, 451, "{text}");
    assert!(text.contains("4.3.0") && text.contains(" / "), "{text}");
    let ok = send(
        &mut c,
        CLERK_ADDR,
        to,
        simple_message(CLERK_ADDR, to, "sau").as_bytes(),
    )
    .await;
    assert_eq!(ok.0, 250, "{}", ok.1);
    assert_eq!(wait_files(&env.outbox(), 1, 20).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        eml_files(&env.outbox()).len(),
        1,
        "the failed one was not queued"
    );
    gw.stop().await;
}

/// The regression messages under `tests/corpus/` (each under 200 KB), as the generators make
/// them: `CONGVAN_REGENERATE_CORPUS=1 cargo test --test nesting corpus` writes them again.
fn corpus() -> Vec<(&'static str, Vec<u8>)> {
    let (from, to) = ("vanthu@dev.gov.vn", "vanthu@hanoi.gov.vn");
    vec![
        (
            "nested-rfc822-4000.eml",
            nested_message("rfc822", 4_000, from, to),
        ),
        (
            "nested-global-4000.eml",
            nested_message("global", 4_000, from, to),
        ),
        (
            "nested-multipart-2000.eml",
            nested_multipart(2_000, from, to),
        ),
        ("nested-mixed-500.eml", nested_mixed(500, from, to)),
        (
            "nested-base64-rfc822-3000.eml",
            encoded_nested_message(3_000, from, to),
        ),
    ]
}

#[test]
fn corpus_files_are_the_generated_attacks_and_too_deep() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let regenerate = std::env::var_os("CONGVAN_REGENERATE_CORPUS").is_some();
    for (name, bytes) in corpus() {
        let path = dir.join(name);
        if regenerate {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &bytes).unwrap();
        }
        let file = std::fs::read(&path).unwrap();
        assert!(file.len() < 200 * 1024, "{name}");
        assert!(file == bytes, "{name} differs from its generator");
        assert!(
            congvan::nesting::check(&file, congvan::nesting::DEFAULT_MAX_DEPTH).is_err(),
            "{name}"
        );
    }
}
