//! Strict SMTP: CRLF only, only <CRLF>.<CRLF> ends DATA (no smuggling), SIZE enforced,
//! pipelined plaintext after STARTTLS discarded, limits, and no false 250.

mod common;

use common::*;
use congvan::config::Role;
use std::time::Duration;

async fn relay_client(gw: &congvan::server::Running) -> Client {
    let mut c = Client::connect(addr(gw, Role::Relay)).await;
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO mail.dev.gov.vn", 250).await;
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_lf_in_data_is_refused_after_the_real_end() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = relay_client(&gw).await;
    c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: a@dev.gov.vn\r\nSubject: lf\r\n\r\nline one\nline two\r\n.\r\n")
        .await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 554, "{t}");
    assert!(t.contains("5.6.0") && t.contains("bare CR or LF"), "{t}");
    // The session is in sync: the next command gets its own reply.
    c.expect("NOOP", 250).await;
    c.expect("QUIT", 221).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(eml_files(&env.outbox()).is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smuggled_message_after_lf_dot_lf_is_not_split_off() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    for smuggle in ["\n.\n", "\n.\r\n", "\r\n.\n", "\r.\r\n"] {
        let mut c = relay_client(&gw).await;
        c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
        c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
        c.expect("DATA", 354).await;
        let payload = format!(
            "From: a@dev.gov.vn\r\nSubject: outer\r\n\r\nhello{smuggle}MAIL FROM:<chutich@dev.gov.vn>\r\nRCPT TO:<victim@hanoi.gov.vn>\r\nDATA\r\nFrom: chutich@dev.gov.vn\r\nSubject: smuggled\r\n\r\nforged\r\n.\r\n"
        );
        c.send(payload.as_bytes()).await;
        // Exactly one reply, to the real end of DATA: a refusal.
        let (code, t) = c.reply().await;
        assert_eq!(code, 554, "{smuggle:?}: {t}");
        c.expect("NOOP", 250).await;
        c.expect("QUIT", 221).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        eml_files(&env.outbox()).is_empty(),
        "nothing of a smuggling attempt is delivered"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_lf_in_a_command_closes_the_connection() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = relay_client(&gw).await;
    c.send(b"MAIL FROM:<a@dev.gov.vn>\n").await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 500, "{t}");
    assert!(t.contains("5.5.2"), "{t}");
    assert_eq!(c.reply().await.0, 0, "closed");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_is_announced_and_enforced() {
    let env = Env::new(Setup::default()).await; // max_message_size = 1 MiB
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Relay)).await;
    c.reply().await;
    let ehlo = c.expect("EHLO x", 250).await;
    for kw in [
        "SIZE 1048576",
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "DSN",
    ] {
        assert!(ehlo.contains(kw), "{kw} missing from {ehlo}");
    }
    let t = c.expect("MAIL FROM:<a@dev.gov.vn> SIZE=2000000", 552).await;
    assert!(t.contains("5.3.4"), "{t}");
    // Declared small, sent big: read to the end, then 552.
    c.expect("mail from:<a@dev.gov.vn> size=1000", 250).await;
    c.expect("rcpt to:<b@hanoi.gov.vn>", 250).await;
    c.expect("data", 354).await;
    let mut big = b"From: a@dev.gov.vn\r\n\r\n".to_vec();
    let line = [b'x'; 998];
    while big.len() < 1_200_000 {
        big.extend_from_slice(&line);
        big.extend_from_slice(b"\r\n");
    }
    big.extend_from_slice(b".\r\n");
    c.send(&big).await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 552, "{t}");
    assert!(t.contains("5.3.4"));
    c.expect("NOOP", 250).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(eml_files(&env.outbox()).is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_plaintext_after_starttls_is_discarded() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Submission)).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    // The injected commands ride in the same packet as STARTTLS.
    c.send(
        format!("STARTTLS\r\nMAIL FROM:<{CLERK_ADDR}>\r\nRCPT TO:<victim@hanoi.gov.vn>\r\n")
            .as_bytes(),
    )
    .await;
    let (code, _) = c.reply().await;
    assert_eq!(code, 220);
    c.tls(&env.tls.ca_pem).await;
    // The first reply after the handshake answers our EHLO, not the injected commands.
    let (code, t) = c.cmd("EHLO x").await;
    assert_eq!(code, 250, "{t}");
    assert!(t.starts_with("250-gw.test.gov.vn greets x"), "{t}");
    c.expect(&format!("AUTH PLAIN {}", plain(CLERK, PASSWORD)), 235)
        .await;
    // No transaction survived the switch.
    c.expect("RCPT TO:<b@hanoi.gov.vn>", 503).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_bit_without_body_param_and_case_insensitive_keywords() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = relay_client(&gw).await;
    c.expect("mAiL fRoM:<a@dev.gov.vn>", 250).await;
    c.expect(
        "RcPt To:<b@hanoi.gov.vn> notify=success,failure orcpt=rfc822;b@hanoi.gov.vn",
        250,
    )
    .await;
    c.expect("DaTa", 354).await;
    c.send("From: a@dev.gov.vn\r\nSubject: Công văn số 26/CT-UBND\r\n\r\nVề việc tăng cường\r\n..dot line\r\n.\r\n".as_bytes())
        .await;
    assert_eq!(c.reply().await.0, 250);
    let files = wait_files(&env.outbox(), 1, 10).await;
    let (text, subject) = text_and_subject(&files[0]);
    assert_eq!(subject, "Công văn số 26/CT-UBND");
    assert!(
        text.ends_with("Về việc tăng cường\n.dot line\n")
            || text.ends_with("Về việc tăng cường\r\n.dot line\r\n"),
        "unstuffed once: {text:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelining_gets_replies_in_order() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = relay_client(&gw).await;
    c.send(b"MAIL FROM:<a@dev.gov.vn>\r\nRCPT TO:<b@hanoi.gov.vn>\r\nRCPT TO:<c@gmail.com>\r\nDATA\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 550);
    assert_eq!(c.reply().await.0, 354);
    c.send(b"From: a@dev.gov.vn\r\n\r\nx\r\n.\r\nQUIT\r\n")
        .await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(c.reply().await.0, 221);
    let files = wait_files(&env.outbox(), 1, 10).await;
    assert_eq!(
        envelope_of(&files[0])["recipients"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_on_recipients_errors_and_line_length() {
    let env = Env::new(Setup {
        extra: "[limits]\nmax_recipients = 3\nmax_errors = 4\nmax_line_length = 600\n".into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let mut c = relay_client(&gw).await;
    c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    for i in 0..3 {
        c.expect(&format!("RCPT TO:<r{i}@hanoi.gov.vn>"), 250).await;
    }
    let t = c.expect("RCPT TO:<r9@hanoi.gov.vn>", 452).await;
    assert!(t.contains("4.5.3"), "{t}");
    c.expect("RSET", 250).await;
    // Refusals count as errors (the 452 was the first); past the limit the server says
    // 421 on its own and closes.
    for _ in 0..4 {
        c.expect("BOGUS", 500).await;
    }
    let (code, t) = c.reply().await;
    assert_eq!(code, 421, "{t}");
    assert_eq!(c.reply().await.0, 0);

    let mut c = relay_client(&gw).await;
    let long = format!("NOOP {}", "a".repeat(700));
    let (code, t) = c.cmd(&long).await;
    assert_eq!(code, 500, "{t}");
    assert!(t.contains("too long"), "{t}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_spool_gives_4xx_never_a_false_250() {
    // The spool directory holds messages' bytes with SQLite only (PostgreSQL keeps them in
    // the database, where storage_faults tests its faults).
    let env = Env::new(Setup {
        database: TestDb::Sqlite,
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let spool = env.config.spool_dir();
    std::fs::remove_dir_all(&spool).unwrap();
    std::fs::write(&spool, b"not a directory").unwrap();
    let mut c = relay_client(&gw).await;
    c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: a@dev.gov.vn\r\n\r\nx\r\n.\r\n").await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 451, "{t}");
    assert!(t.contains("4.3.0"), "{t}");
    let out = env.cli(&["queue", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        list.as_array().unwrap().len(),
        0,
        "no row for a refused message"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postmaster_is_accepted_and_unannounced_parameters_are_refused() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Inbound)).await;
    c.reply().await;
    c.expect("EHLO mx.hanoi.gov.vn", 250).await;
    let t = c.expect("MAIL FROM:<a@hanoi.gov.vn> REQUIRETLS", 555).await;
    assert!(t.contains("5.5.4") && t.contains("REQUIRETLS"), "{t}");
    c.expect("MAIL FROM:<a@hanoi.gov.vn> BODY=BINARYMIME", 555)
        .await;
    c.expect("MAIL FROM:<a@hanoi.gov.vn>", 250).await;
    c.expect("RCPT TO:<Postmaster>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: a@hanoi.gov.vn\r\nSubject: hi\r\n\r\nx\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await.0, 250);
    let files = wait_files(&env.inbox(), 1, 10).await;
    assert_eq!(
        envelope_of(&files[0])["recipients"][0],
        "postmaster@dev.gov.vn"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_session() {
    let env = Env::new(Setup {
        extra: "[limits]\nmax_connections_per_ip = 2\n".into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let mut a = Client::connect(addr(&gw, Role::Inbound)).await;
    let mut b = Client::connect(addr(&gw, Role::Inbound)).await;
    assert_eq!(a.reply().await.0, 220);
    assert_eq!(b.reply().await.0, 220);
    let mut c = Client::connect(addr(&gw, Role::Inbound)).await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 421, "{t}");
    assert!(t.contains("4.7.0"));
    // The relay's trusted network is exempt: the office server opens many connections.
    let mut relays = Vec::new();
    for _ in 0..4 {
        let mut r = Client::connect(addr(&gw, Role::Relay)).await;
        assert_eq!(r.reply().await.0, 220);
        relays.push(r);
    }
    // A slot is freed when a session ends.
    a.expect("QUIT", 221).await;
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut d = Client::connect(addr(&gw, Role::Inbound)).await;
    assert_eq!(d.reply().await.0, 220);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_the_shared_memory_budget_gets_452_and_the_session_goes_on() {
    let env = Env::new(Setup {
        extra: "[limits]\nmax_data_memory_mb = 1\n".into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let body = |lines: usize| {
        let mut m = Vec::new();
        for _ in 0..lines {
            m.extend_from_slice(&[b'x'; 998]);
            m.extend_from_slice(b"\r\n");
        }
        m
    };
    // Session A is in the middle of a 700 KB message: it holds that much of the 1 MiB budget.
    let mut a = relay_client(&gw).await;
    a.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    a.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    a.expect("DATA", 354).await;
    a.send(b"From: a@dev.gov.vn\r\nSubject: first\r\n\r\n")
        .await;
    a.send(&body(700)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Session B's 700 KB message does not fit beside it: refused for now, read to its end.
    let mut b = relay_client(&gw).await;
    b.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    b.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    b.expect("DATA", 354).await;
    let mut msg = b"From: a@dev.gov.vn\r\nSubject: second\r\n\r\n".to_vec();
    msg.extend_from_slice(&body(700));
    msg.extend_from_slice(b".\r\n");
    b.send(&msg).await;
    let (code, t) = b.reply().await;
    assert_eq!(code, 452, "{t}");
    assert!(t.starts_with("452 4.3.1 "), "{t}");
    // A finishes and is accepted; then B, in sync, sends again and now fits.
    a.send(b".\r\n").await;
    let (code, t) = a.reply().await;
    assert_eq!(code, 250, "{t}");
    b.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    b.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    b.expect("DATA", 354).await;
    b.send(&msg).await;
    let (code, t) = b.reply().await;
    assert_eq!(code, 250, "{t}");
    gw.stop().await;
}
