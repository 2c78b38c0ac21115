//! Delivery-side robustness: a message whose delivery stopped the daemon twice is held as
//! poison (real binary, SIGKILL mid-delivery against a slow upstream); `queue hold`/`delete`
//! on a message left `delivering` by a stopped daemon, refused while a live daemon holds it;
//! a panic in one delivery holds that message only; a DSN commits exactly with the result
//! that causes it.

mod common;

use std::time::Duration;

use common::*;
use congvan::config::Role;
use congvan::queue::delivery::POISON_REASON;
use congvan::store::entity::{audit_log, message};
use congvan::testkit::sink::{Sink, SinkConfig};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter};

async fn wait_port(port: u16) {
    for _ in 0..1200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("port {port} never opened");
}

fn with_escalation(env: &Env) {
    let profile = env.path().join("policies/default.toml");
    let text = std::fs::read_to_string(&profile).unwrap();
    assert!(text.contains("notify = []"));
    std::fs::write(
        &profile,
        text.replacen("notify = []", "notify = [\"chanhvp@dev.gov.vn\"]", 1),
    )
    .unwrap();
}

/// An upstream that reads each message and then never answers (the attempt stays open).
async fn stalled_sink(port: u16) -> Sink {
    Sink::start(
        format!("127.0.0.1:{port}").parse().unwrap(),
        SinkConfig {
            data_delay_ms: 600_000,
            ..Default::default()
        },
    )
    .await
    .unwrap()
}

/// Sends one message on the relay listener; returns its queue id.
async fn relay_one(relay: std::net::SocketAddr, rcpt: &str, subject: &str) -> String {
    let mut c = Client::connect(relay).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    c.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
    c.expect("DATA", 354).await;
    c.send(
        format!("From: a@dev.gov.vn\r\nTo: {rcpt}\r\nSubject: {subject}\r\n\r\nx\r\n.\r\n")
            .as_bytes(),
    )
    .await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 250, "{t}");
    t.split_whitespace().last().unwrap().to_string()
}

async fn row(env: &Env, id: &str) -> Option<message::Model> {
    let db = env.db().await;
    let m = message::Entity::find_by_id(id.to_string())
        .one(&db)
        .await
        .unwrap();
    db.close().await.ok();
    m
}

/// Waits until the message's row satisfies `f`; panics with the daemon log after `secs`.
async fn wait_row(
    env: &Env,
    id: &str,
    secs: u64,
    f: impl Fn(&message::Model) -> bool,
) -> message::Model {
    let until = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(m) = row(env, id).await {
            if f(&m) {
                return m;
            }
            if std::time::Instant::now() > until {
                let log =
                    std::fs::read_to_string(env.path().join("daemon.log")).unwrap_or_default();
                panic!("row never got there: {m:?}\nlog:\n{log}");
            }
        } else if std::time::Instant::now() > until {
            panic!("no row {id}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kill(mut d: Daemon) {
    d.signal(libc::SIGKILL);
    d.child.wait().unwrap();
}

async fn audit_actions(env: &Env, subject: &str) -> Vec<audit_log::Model> {
    let db = env.db().await;
    let v = audit_log::Entity::find()
        .filter(audit_log::Column::Subject.eq(subject))
        .all(&db)
        .await
        .unwrap();
    db.close().await.ok();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_delivering_once_is_retried_and_twice_is_held_as_poison() {
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let up = free_port();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{up}")),
        ports: Some(ports),
        ..Setup::default()
    })
    .await;
    with_escalation(&env);
    let stalled = stalled_sink(up).await;
    let relay: std::net::SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();

    // First run: the attempt is counted when it is claimed, then the daemon dies under it.
    let d = Daemon::spawn(&env, &[]);
    wait_port(ports[2]).await;
    let id = relay_one(relay, "b@hanoi.gov.vn", "van ban doc").await;
    let m = wait_row(&env, &id, 30, |m| m.state == "delivering").await;
    assert_eq!(
        m.unfinished_attempts, 1,
        "counted before the attempt: {m:?}"
    );
    let claim = m.claimed_by.clone().expect("claimed_by");
    assert!(claim.starts_with("gw.test.gov.vn/"), "{claim}");
    assert!(m.lease_until.unwrap() > congvan::util::now_ms());
    // `queue list` names the node that holds it (SPEC "Several nodes on one PostgreSQL").
    let out = env.cli(&["queue", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["node"], "gw.test.gov.vn", "{list}");
    let out = env.cli(&["queue", "list"]);
    let table = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(table.contains("delivering (gw.test.gov.vn)"), "{table}");
    // The listing fits 120 columns and its short id names the message for `queue show`.
    for line in table.lines() {
        assert!(line.chars().count() <= 120, "wider than 120: {line:?}");
    }
    let short = &id[..12];
    assert!(table.contains(short), "{table}");
    let shown = env.cli(&["queue", "show", short, "--json"]);
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["id"], id.as_str(), "{shown}");
    kill(d);

    // Second run: one unfinished attempt is retried (and counted again), and dies again.
    let d = Daemon::spawn(&env, &[]);
    let m = wait_row(&env, &id, 30, |m| {
        m.state == "delivering" && m.unfinished_attempts == 2
    })
    .await;
    assert_ne!(
        m.claimed_by.as_deref(),
        Some(claim.as_str()),
        "a new run's claim"
    );
    kill(d);

    // Third run: two unfinished attempts make it poison: held, told, audited; not retried.
    let d = Daemon::spawn(&env, &[]);
    let m = wait_row(&env, &id, 30, |m| m.state == "held").await;
    assert_eq!(m.reason.as_deref(), Some(POISON_REASON));
    assert_eq!(m.claimed_by, None);
    let notices = wait_files(&env.inbox(), 1, 30).await;
    let text = String::from_utf8_lossy(&std::fs::read(&notices[0]).unwrap()).to_string();
    assert!(text.contains(&id) && text.contains(POISON_REASON), "{text}");
    assert!(envelope_of(&notices[0])["recipients"][0] == "chanhvp@dev.gov.vn");
    let audit = audit_actions(&env, &id).await;
    let hold = audit
        .iter()
        .find(|a| a.action == "queue.hold")
        .expect("audit entry of the hold");
    assert_eq!(hold.actor, "daemon");
    assert!(
        hold.details.contains("\"cause\":\"poison\""),
        "{}",
        hold.details
    );
    let out = env.cli(&["queue", "show", &id]);
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success() && shown.contains(POISON_REASON),
        "{shown}"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        row(&env, &id).await.unwrap().state,
        "held",
        "not retried by itself"
    );

    // Released once the upstream is healthy: delivered, with its chances restored.
    stalled.stop();
    drop(stalled);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let sink = Sink::start(
        format!("127.0.0.1:{up}").parse().unwrap(),
        SinkConfig::default(),
    )
    .await
    .unwrap();
    let out = env.cli(&["queue", "release", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(sink.wait_for(1, Duration::from_secs(30)).await, 1);
    let m = wait_row(&env, &id, 30, |m| m.state == "delivered").await;
    assert_eq!(m.unfinished_attempts, 0);
    assert!(d.stop().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_and_delete_wait_for_a_live_daemon_and_act_once_it_stopped() {
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let up = free_port();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{up}")),
        ports: Some(ports),
        // A short lease: renewed while the attempt runs, so it stays live far past 2 s.
        extra: "lease_secs = 2\n".into(),
        ..Setup::default()
    })
    .await;
    let _stalled = stalled_sink(up).await;
    let relay: std::net::SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();
    let d = Daemon::spawn(&env, &[]);
    wait_port(ports[2]).await;
    let a = relay_one(relay, "b@hanoi.gov.vn", "first").await;
    let b = relay_one(relay, "c@hanoi.gov.vn", "second").await;
    let first = wait_row(&env, &a, 30, |m| m.state == "delivering").await;
    wait_row(&env, &b, 30, |m| m.state == "delivering").await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let later = row(&env, &a).await.unwrap();
    assert_eq!(later.state, "delivering");
    assert_eq!(
        later.claimed_by, first.claimed_by,
        "not taken back from a live daemon"
    );
    assert!(
        later.lease_until.unwrap() > first.lease_until.unwrap(),
        "the lease is renewed while the attempt runs"
    );

    // A live lease: refused with who holds it and what to do; show works.
    for args in [
        ["queue", "hold", a.as_str()],
        ["queue", "delete", a.as_str()],
    ] {
        let out = env.cli(&args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("is being delivered by the daemon gw.test.gov.vn/")
                && err.contains("lease"),
            "{err}"
        );
    }
    let out = env.cli(&["queue", "show", &a]);
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{shown}");
    assert!(
        shown.contains("delivering") && shown.contains("claimed by:"),
        "{shown}"
    );

    // The daemon is gone (its lock with it): the same commands act at once.
    kill(d);
    let out = env.cli(&["queue", "hold", &a, "--reason", "checking"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m = row(&env, &a).await.unwrap();
    assert_eq!(
        (m.state.as_str(), m.reason.as_deref()),
        ("held", Some("checking"))
    );
    assert_eq!((m.claimed_by, m.lease_until), (None, None));
    let out = env.cli(&["queue", "delete", &b]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(row(&env, &b).await.is_none());
    assert!(!env.path().join(format!("spool/{b}.eml")).exists());
    for id in [&a, &b] {
        assert!(
            audit_actions(&env, id)
                .await
                .iter()
                .any(|e| e.actor.starts_with("cli:")),
            "audited"
        );
    }
    let out = env.cli(&["queue", "delete", &a]);
    assert!(out.status.success());
}

fn panic_on_marker(m: &message::Model) {
    // The notice about the held message repeats its subject: it is delivered normally.
    if m.subject.contains("PANIC-HOOK") && !m.generated {
        panic!("injected panic for {}", m.id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_one_delivery_holds_that_message_and_the_daemon_goes_on() {
    let _ = congvan::queue::delivery::FAULT_HOOK.set(panic_on_marker);
    let env = Env::new(Setup::default()).await;
    with_escalation(&env);
    let gw = env.start().await;
    let relay = addr(&gw, Role::Relay);
    let bad = relay_one(relay, "b@hanoi.gov.vn", "PANIC-HOOK").await;
    let good = relay_one(relay, "c@hanoi.gov.vn", "fine").await;
    let m = wait_row(&env, &bad, 30, |m| m.state == "held").await;
    let reason = m.reason.unwrap_or_default();
    assert!(
        reason.starts_with("internal error: ") && reason.contains("injected panic"),
        "{reason}"
    );
    assert_eq!((m.claimed_by, m.unfinished_attempts), (None, 0));
    wait_row(&env, &good, 30, |m| m.state == "delivered").await;
    // Still serving: a later message is accepted and delivered.
    let later = relay_one(relay, "d@hanoi.gov.vn", "after the panic").await;
    wait_row(&env, &later, 30, |m| m.state == "delivered").await;
    let notices = wait_files(&env.inbox(), 1, 30).await;
    let text = String::from_utf8_lossy(&std::fs::read(&notices[0]).unwrap()).to_string();
    assert!(
        text.contains(&bad) && text.contains("internal error"),
        "{text}"
    );
    assert!(audit_actions(&env, &bad)
        .await
        .iter()
        .any(|a| a.action == "queue.hold" && a.details.contains("\"cause\":\"panic\"")));
    gw.stop().await;
}

/// Makes every insert of the gateway's own mail fail, on either database.
async fn refuse_generated_mail(db: &sea_orm::DatabaseConnection, on: bool) {
    let pg = db.get_database_backend() == sea_orm::DbBackend::Postgres;
    let stmts: Vec<&str> = match (pg, on) {
        (false, true) => vec!["CREATE TRIGGER no_notices BEFORE INSERT ON message WHEN NEW.generated BEGIN SELECT RAISE(ABORT, 'injected fault'); END"],
        (false, false) => vec!["DROP TRIGGER no_notices"],
        (true, true) => vec![
            "CREATE FUNCTION no_notices() RETURNS trigger AS $$ BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER no_notices BEFORE INSERT ON message FOR EACH ROW WHEN (NEW.generated) EXECUTE FUNCTION no_notices()",
        ],
        (true, false) => vec!["DROP TRIGGER no_notices ON message"],
    };
    for s in stmts {
        db.execute_unprepared(s).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounce_commits_exactly_with_the_result_that_causes_it() {
    let (_sink, env) =
        Env::before_a_sink_refusing("nobody@hanoi.gov.vn", "550 5.1.1 no such user").await;
    let db = env.db().await;
    refuse_generated_mail(&db, true).await;
    let gw = env.start().await;
    let id = relay_one(addr(&gw, Role::Relay), "nobody@hanoi.gov.vn", "bounces").await;
    // The bounce cannot be inserted, so the failure it reports is not recorded either: the
    // attempt is put back (deferred after the bookkeeping retries), never `failed` alone.
    let m = wait_row(&env, &id, 60, |m| m.state == "deferred").await;
    assert!(
        m.reason.as_deref().unwrap_or("").starts_with("database:"),
        "{m:?}"
    );
    let generated = message::Entity::find()
        .filter(message::Column::Generated.eq(true))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(generated, 0);
    // The original is kept (a spool file, or with PostgreSQL a row), the bounce's is gone.
    let spool: Vec<_> = std::fs::read_dir(env.path().join("spool"))
        .unwrap()
        .flatten()
        .collect();
    let contents = congvan::store::entity::message_content::Entity::find()
        .count(&db)
        .await
        .unwrap() as usize;
    assert_eq!(
        spool.len() + contents,
        1,
        "the staged bounce's content is removed: {spool:?}, {contents} row(s)"
    );

    // Without the fault the next attempt records the failure and its bounce together.
    refuse_generated_mail(&db, false).await;
    let out = env.cli(&["queue", "retry", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_row(&env, &id, 30, |m| m.state == "failed").await;
    let dsns = message::Entity::find()
        .filter(message::Column::Generated.eq(true))
        .all(&db)
        .await
        .unwrap();
    assert_eq!(dsns.len(), 1, "one bounce");
    assert_eq!(dsns[0].header_from, "MAILER-DAEMON@gw.test.gov.vn");
    let dsn_file = wait_files(&env.inbox(), 1, 30).await;
    let text = String::from_utf8_lossy(&std::fs::read(&dsn_file[0]).unwrap()).to_string();
    assert!(
        text.contains("nobody@hanoi.gov.vn") && text.contains("5.1.1"),
        "{text}"
    );
    db.close().await.ok();
    gw.stop().await;
}
