//! Delivery to an SMTP upstream: STARTTLS policy, per-recipient results, DSNs, deferral
//! and retry, urgent lanes first, and recovery after a crash.

mod common;

use std::time::Duration;

use common::*;
use congvan::config::Role;
use congvan::testkit::sink::{Sink, SinkConfig};

async fn submit(gw: &congvan::server::Running, env: &Env, rcpts: &[&str], headers: &str) -> String {
    let mut c = Client::clerk(addr(gw, Role::Submission), env).await;
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    for r in rcpts {
        c.expect(&format!("RCPT TO:<{r}>"), 250).await;
    }
    c.expect("DATA", 354).await;
    c.send(format!("From: {CLERK_ADDR}\r\n{headers}\r\nbody\r\n.\r\n").as_bytes())
        .await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 250, "{t}");
    c.expect("QUIT", 221).await;
    t.split_whitespace().last().unwrap().to_string()
}

fn queue_json(env: &Env) -> Vec<serde_json::Value> {
    let out = env.cli(&["queue", "list", "--json"]);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

async fn wait_queue_state(env: &Env, id: &str, state: &str) -> serde_json::Value {
    for _ in 0..200 {
        if let Some(e) = queue_json(env)
            .into_iter()
            .find(|e| e["id"] == id && e["state"] == state)
        {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never reached {state}: {:?}", queue_json(env));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_over_required_starttls_with_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let tls = congvan::testkit::TestTls::generate();
    let sink = Sink::start(
        "127.0.0.1:0".parse().unwrap(),
        SinkConfig {
            tls: Some(tls.server_config(dir.path())),
            keep_data: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://localhost:{}", sink.addr.port())),
        outbound_tls: "required",
        outbound_ca: true,
        ..Setup::default()
    })
    .await;
    // The upstream's private CA is the sink's, not the listener's.
    std::fs::write(env.path().join("upstream-ca.pem"), &tls.ca_pem).unwrap();
    let gw = env.start().await;
    let id = submit(
        &gw,
        &env,
        &["a@hanoi.gov.vn", "b@hanoi.gov.vn"],
        "Subject: tls\r\n",
    )
    .await;
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).await, 1);
    let m = &sink.messages()[0];
    assert!(m.tls, "delivered over STARTTLS");
    assert_eq!(m.rcpt_to.len(), 2);
    assert!(m.mail_from.contains(CLERK_ADDR));
    assert!(String::from_utf8_lossy(&m.data).contains(&format!("id {id}")));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_tls_without_starttls_defers_and_never_sends_in_clear() {
    let sink = Sink::start("127.0.0.1:0".parse().unwrap(), SinkConfig::default())
        .await
        .unwrap();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{}", sink.addr.port())),
        outbound_tls: "required",
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let id = submit(&gw, &env, &["a@hanoi.gov.vn"], "Subject: x\r\n").await;
    let e = wait_queue_state(&env, &id, "deferred").await;
    assert!(e["reason"].as_str().unwrap().contains("STARTTLS"), "{e}");
    assert_eq!(sink.messages().len(), 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permanent_failure_sends_a_dsn_to_the_sender_with_null_return_path() {
    let (sink, env) =
        Env::before_a_sink_refusing("nobody@hanoi.gov.vn", "550 5.1.1 no such user").await;
    let gw = env.start().await;
    let mut c = Client::clerk(addr(&gw, Role::Submission), &env).await;
    c.expect(
        &format!("MAIL FROM:<{CLERK_ADDR}> RET=HDRS ENVID=QUYETDINH-05"),
        250,
    )
    .await;
    c.expect("RCPT TO:<ok@hanoi.gov.vn>", 250).await;
    c.expect(
        "RCPT TO:<nobody@hanoi.gov.vn> NOTIFY=FAILURE ORCPT=rfc822;nobody@hanoi.gov.vn",
        250,
    )
    .await;
    c.expect("DATA", 354).await;
    c.send(
        format!("From: {CLERK_ADDR}\r\nSubject: QĐ 05\r\n\r\nsecret body line\r\n.\r\n").as_bytes(),
    )
    .await;
    assert_eq!(c.reply().await.0, 250);
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).await, 1);
    // The DSN goes to the clerk through inbound.deliver_to.
    let files = wait_files(&env.inbox(), 1, 10).await;
    assert_eq!(files.len(), 1, "one DSN");
    let envl = envelope_of(&files[0]);
    assert_eq!(envl["sender"], "", "null return path");
    assert_eq!(envl["recipients"][0], CLERK_ADDR);
    let dsn = std::fs::read_to_string(&files[0]).unwrap();
    assert!(dsn.contains("report-type=delivery-status"), "{dsn}");
    assert!(dsn.contains("Original-Envelope-Id: QUYETDINH-05"));
    assert!(dsn.contains(
        "Final-Recipient: rfc822; nobody@hanoi.gov.vn\r\nAction: failed\r\nStatus: 5.1.1"
    ));
    assert!(dsn.contains("Original-Recipient: rfc822;nobody@hanoi.gov.vn"));
    assert!(
        !dsn.contains("ok@hanoi.gov.vn\r\nAction"),
        "only the failed recipient"
    );
    assert!(
        !dsn.contains("secret body line"),
        "RET=HDRS returns headers only"
    );
    gw.stop().await;
}

/// RFC 2920 on the way out: to a next hop that offers PIPELINING, MAIL, the RCPTs and DATA
/// go in one write; each recipient still gets its own reply (and DSN), and a transaction none
/// of whose recipients was accepted (its DATA refused) leaves the connection usable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_pipelines_its_commands_when_the_next_hop_offers_it() {
    let (sink, env) =
        Env::before_a_sink_refusing("nobody@hanoi.gov.vn", "550 5.1.1 no such user").await;
    let gw = env.start().await;
    let queue_empties = || async {
        for _ in 0..200 {
            if queue_json(&env).is_empty() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    submit(&gw, &env, &["nobody@hanoi.gov.vn"], "Subject: one\r\n").await;
    assert!(queue_empties().await, "{:?}", queue_json(&env));
    assert_eq!(sink.messages().len(), 0, "its only recipient was refused");
    submit(
        &gw,
        &env,
        &["ok@hanoi.gov.vn", "nobody@hanoi.gov.vn"],
        "Subject: two\r\n",
    )
    .await;
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).await, 1);
    assert!(queue_empties().await, "{:?}", queue_json(&env));
    let got = sink.messages();
    assert_eq!(got[0].rcpt_to, ["RCPT TO:<ok@hanoi.gov.vn>"]);
    let seen = |n: &std::sync::atomic::AtomicUsize| n.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(seen(&sink.pipelined), 2, "both transactions pipelined");
    assert_eq!(
        seen(&sink.connections),
        1,
        "the connection outlived the transaction whose DATA was refused"
    );
    // Both messages left the queue (one failed, one delivered): their spool files go too.
    let spool = env.config.spool_dir();
    for _ in 0..100 {
        if eml_files(&spool).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(eml_files(&spool).is_empty(), "{:?}", eml_files(&spool));
    // Each message's refused recipient gets its DSN, with the next hop's own reply.
    let files = wait_files(&env.inbox(), 2, 10).await;
    assert_eq!(files.len(), 2, "two DSNs");
    for f in &files {
        let dsn = std::fs::read_to_string(f).unwrap();
        assert!(
            dsn.contains(
                "Final-Recipient: rfc822; nobody@hanoi.gov.vn\r\nAction: failed\r\nStatus: 5.1.1"
            ),
            "{dsn}"
        );
        assert!(dsn.contains("no such user"), "{dsn}");
        assert!(!dsn.contains("rfc822; ok@hanoi.gov.vn"), "{dsn}");
    }
    gw.stop().await;
}

/// A next hop that answers a pipelined DATA with 354 although it refused every recipient
/// gets an empty body, so the connection closes cleanly: the message fails at once (it does
/// not wait on a QUIT the server would read as message text), and the next one goes out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_354_without_recipients_is_ended_before_the_connection_closes() {
    let sink = Sink::start(
        "127.0.0.1:0".parse().unwrap(),
        SinkConfig {
            reject: vec![("nobody@hanoi.gov.vn".into(), "550 5.1.1 no".into())],
            data_without_recipients: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{}", sink.addr.port())),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let started = std::time::Instant::now();
    submit(&gw, &env, &["nobody@hanoi.gov.vn"], "Subject: one\r\n").await;
    submit(&gw, &env, &["ok@hanoi.gov.vn"], "Subject: two\r\n").await;
    for _ in 0..100 {
        if queue_json(&env).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(queue_json(&env).is_empty(), "{:?}", queue_json(&env));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "no wait on the closing QUIT: {:?}",
        started.elapsed()
    );
    // The empty body ended the data phase: the sink took it as a message without recipients.
    let got = sink.messages();
    assert!(
        got.iter()
            .any(|m| m.rcpt_to == ["RCPT TO:<ok@hanoi.gov.vn>"]),
        "{got:?}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_never_suppresses_the_dsn_and_null_sender_gets_none() {
    let (_sink, env) = Env::before_a_sink_refusing("x@hanoi.gov.vn", "550 5.1.1 no").await;
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Relay)).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    c.expect("RCPT TO:<x@hanoi.gov.vn> NOTIFY=NEVER", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: a@dev.gov.vn\r\n\r\nx\r\n.\r\n").await;
    assert_eq!(c.reply().await.0, 250);
    c.expect("MAIL FROM:<>", 250).await;
    c.expect("RCPT TO:<x@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: MAILER-DAEMON@dev.gov.vn\r\n\r\nbounce\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await.0, 250);
    // Both fail permanently and leave the queue; neither produces a DSN.
    for _ in 0..100 {
        if queue_json(&env).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(queue_json(&env).is_empty());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(eml_files(&env.inbox()).is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_defers_then_retry_delivers() {
    let port = free_port();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{port}")),
        extra: "retry_base_secs = 3600\n".replace("retry_base_secs = 3600", ""),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let id = submit(
        &gw,
        &env,
        &["a@hanoi.gov.vn"],
        "Subject: later\r\nX-Congvan-Urgency: khan\r\n",
    )
    .await;
    let e = wait_queue_state(&env, &id, "deferred").await;
    assert_eq!(e["direction"], "out");
    assert_eq!(e["sender"], CLERK_ADDR);
    assert_eq!(e["recipients"][0], "a@hanoi.gov.vn");
    assert_eq!(e["urgency"], "khan");
    assert!(
        e["reason"].as_str().unwrap().contains(&port.to_string()),
        "{e}"
    );
    let sink = Sink::start(
        format!("127.0.0.1:{port}").parse().unwrap(),
        SinkConfig::default(),
    )
    .await
    .unwrap();
    let out = env.cli(&["queue", "retry", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).await, 1);
    gw.stop().await;
}

/// Where the slow next hop stands: the outgoing upstream, or the office's mail system.
enum Hop {
    Upstream,
    Office,
}

/// A gateway with one ordinary delivery slot, whose next hop answers each DATA after
/// `delay_ms`: a backlog forms behind it.
async fn one_slot_before_a_slow_next_hop(
    delay_ms: u64,
    hop: Hop,
) -> (Sink, Env, congvan::server::Running) {
    let sink = Sink::start(
        "127.0.0.1:0".parse().unwrap(),
        SinkConfig {
            keep_data: true,
            data_delay_ms: delay_ms,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let next_hop = Some(format!("smtp://127.0.0.1:{}", sink.addr.port()));
    let (upstream, inbound_deliver_to) = match hop {
        Hop::Upstream => (next_hop, None),
        Hop::Office => (None, next_hop),
    };
    let env = Env::new(Setup {
        upstream,
        inbound_deliver_to,
        extra: "concurrency = 1\n".into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    (sink, env, gw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urgent_documents_overtake_the_backlog() {
    // A slow upstream and one delivery at a time: a real backlog of 1,000 forms.
    let (sink, env, gw) = one_slot_before_a_slow_next_hop(20, Hop::Upstream).await;
    let mut c = Client::clerk(addr(&gw, Role::Submission), &env).await;
    for i in 0..1000 {
        c.send(
            format!("MAIL FROM:<{CLERK_ADDR}>\r\nRCPT TO:<a@hanoi.gov.vn>\r\nDATA\r\n").as_bytes(),
        )
        .await;
        for want in [250, 250, 354] {
            assert_eq!(c.reply().await.0, want);
        }
        c.send(format!("From: {CLERK_ADDR}\r\nSubject: normal {i}\r\n\r\nx\r\n.\r\n").as_bytes())
            .await;
        assert_eq!(c.reply().await.0, 250);
    }
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    c.expect("RCPT TO:<a@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(format!("From: {CLERK_ADDR}\r\nSubject: urgent\r\nX-Congvan-Urgency: =?UTF-8?Q?h=E1=BB=8Fa_t=E1=BB=91c?=\r\n\r\nx\r\n.\r\n").as_bytes()).await;
    assert_eq!(c.reply().await.0, 250);
    let delivered_before = sink.count.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        delivered_before < 900,
        "the backlog must still be there ({delivered_before} delivered)"
    );
    let is_urgent = |m: &congvan::testkit::sink::Received| {
        String::from_utf8_lossy(&m.data).contains("X-Congvan-Urgency")
    };
    let mut pos = None;
    for _ in 0..400 {
        pos = sink.messages().iter().position(is_urgent);
        if pos.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let pos = pos.expect("the hỏa tốc document reached the upstream");
    // It runs in a slot kept for urgent documents while the ordinary slot goes on with the
    // backlog (20 ms each): ahead of it only the delivery in flight when it arrived and the
    // few the ordinary slot finishes meanwhile, not the hundreds still queued.
    assert!(
        pos <= delivered_before + 10,
        "urgent at {pos}, {delivered_before} were delivered when it arrived"
    );
    gw.stop().await;
}

/// An urgent document accepted while every ordinary delivery slot is busy starts at once, in
/// a slot kept for urgent documents: with one ordinary slot held by a slow delivery, the
/// hỏa tốc document reaches the upstream over a second connection, not after the first
/// delivery on its cached connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_urgent_document_does_not_wait_for_a_busy_slot() {
    let (sink, env, gw) = one_slot_before_a_slow_next_hop(1500, Hop::Upstream).await;
    submit(&gw, &env, &["a@hanoi.gov.vn"], "Subject: normal\r\n").await;
    // The normal document's delivery holds the only ordinary slot (the upstream answers its
    // DATA after 1.5 s).
    let connections = || sink.connections.load(std::sync::atomic::Ordering::SeqCst);
    for _ in 0..200 {
        if connections() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(connections(), 1, "the normal document's delivery started");
    submit(
        &gw,
        &env,
        &["a@hanoi.gov.vn"],
        "Subject: urgent\r\nX-Congvan-Urgency: hoa-toc\r\n",
    )
    .await;
    assert_eq!(sink.wait_for(2, Duration::from_secs(20)).await, 2);
    assert_eq!(
        connections(),
        2,
        "the urgent delivery opened its own connection while the first was busy"
    );
    assert_eq!(
        sink.count.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "each document once"
    );
    gw.stop().await;
}

/// SPEC "Incoming mail" 6: an incoming hỏa tốc document received behind 1,000 normal
/// incoming ones is delivered to the office mail system ahead of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn urgent_incoming_documents_overtake_the_backlog() {
    // A slow office mail system and one delivery at a time: a real backlog of 1,000 forms.
    let (sink, _env, gw) = one_slot_before_a_slow_next_hop(20, Hop::Office).await;
    let mut c = Client::connect(addr(&gw, Role::Inbound)).await;
    c.reply().await;
    c.expect("EHLO mx.hanoi.gov.vn", 250).await;
    let from = "vanthu@hanoi.gov.vn";
    for i in 0..1000 {
        c.send(format!("MAIL FROM:<{from}>\r\nRCPT TO:<vanthu@dev.gov.vn>\r\nDATA\r\n").as_bytes())
            .await;
        for want in [250, 250, 354] {
            assert_eq!(c.reply().await.0, want);
        }
        c.send(format!("From: {from}\r\nSubject: normal {i}\r\n\r\nx\r\n.\r\n").as_bytes())
            .await;
        assert_eq!(c.reply().await.0, 250);
    }
    c.expect(&format!("MAIL FROM:<{from}>"), 250).await;
    c.expect("RCPT TO:<vanthu@dev.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(
        format!("From: {from}\r\nSubject: urgent\r\nX-Congvan-Urgency: hoa-toc\r\n\r\nx\r\n.\r\n")
            .as_bytes(),
    )
    .await;
    assert_eq!(c.reply().await.0, 250);
    let delivered_before = sink.count.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        delivered_before < 900,
        "the backlog must still be there ({delivered_before} delivered)"
    );
    let is_urgent = |m: &congvan::testkit::sink::Received| {
        String::from_utf8_lossy(&m.data).contains("X-Congvan-Urgency")
    };
    let mut pos = None;
    for _ in 0..400 {
        pos = sink.messages().iter().position(is_urgent);
        if pos.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let pos = pos.expect("the hỏa tốc document reached the office mail system");
    // It runs in a slot kept for urgent documents while the ordinary slot goes on with the
    // backlog (20 ms each): ahead of it only the delivery in flight when it arrived and the
    // few the ordinary slot finishes meanwhile, not the hundreds still queued.
    assert!(
        pos <= delivered_before + 10,
        "urgent at {pos}, {delivered_before} were delivered when it arrived"
    );
    // It went the inbound way: verified (unsigned here) and addressed to the office.
    let urgent = &sink.messages()[pos];
    let text = String::from_utf8_lossy(&urgent.data);
    assert!(
        text.starts_with("Authentication-Results: gw.test.gov.vn; smime=none"),
        "{text}"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hold_release_and_delete_from_the_cli() {
    let port = free_port();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{port}")),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let a = submit(&gw, &env, &["a@hanoi.gov.vn"], "Subject: a\r\n").await;
    let b = submit(&gw, &env, &["b@hanoi.gov.vn"], "Subject: b\r\n").await;
    wait_queue_state(&env, &a, "deferred").await;
    let out = env.cli(&["queue", "hold", &a, "--reason", "chờ lãnh đạo duyệt"]);
    assert!(out.status.success(), "{out:?}");
    let e = wait_queue_state(&env, &a, "held").await;
    assert_eq!(e["reason"], "chờ lãnh đạo duyệt");
    let show = env.cli(&["queue", "show", &a]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(
        text.contains("state:       held") && text.contains("chờ lãnh đạo duyệt"),
        "{text}"
    );
    // Wrong-state operations are refused with exit 1 and a reason.
    let out = env.cli(&["queue", "release", &b]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("needs a message that is held"));
    let out = env.cli(&["queue", "delete", &b]);
    assert!(out.status.success(), "{out:?}");
    assert!(!env.config.spool_dir().join(format!("{b}.eml")).exists());
    let sink = Sink::start(
        format!("127.0.0.1:{port}").parse().unwrap(),
        SinkConfig::default(),
    )
    .await
    .unwrap();
    let out = env.cli(&["queue", "release", &a]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(sink.wait_for(1, Duration::from_secs(10)).await, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.messages().len(), 1, "the deleted message never left");
    let out = env.cli(&["queue", "show", "0123456789abcdef0123456789abcdef"]);
    assert_eq!(out.status.code(), Some(1));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_deferral_tells_the_sender_once_unless_notify_excludes_delay() {
    let port = free_port();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{port}")),
        // 1.8 s: the first retries (1–2 s apart) find the message old enough.
        extra: "delay_notice_hours = 0.0005\n".into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let mut c = Client::clerk(addr(&gw, Role::Submission), &env).await;
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}> ENVID=KH-07"), 250)
        .await;
    c.expect("RCPT TO:<a@hanoi.gov.vn>", 250).await;
    c.expect("RCPT TO:<b@hanoi.gov.vn> NOTIFY=FAILURE", 250)
        .await;
    c.expect("DATA", 354).await;
    c.send(format!("From: {CLERK_ADDR}\r\nSubject: KH 07\r\n\r\nx\r\n.\r\n").as_bytes())
        .await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 250, "{t}");
    let id = t.split_whitespace().last().unwrap().to_string();
    c.expect("QUIT", 221).await;

    let files = wait_files(&env.inbox(), 1, 20).await;
    assert_eq!(files.len(), 1, "one delay notice");
    let dsn = std::fs::read_to_string(&files[0]).unwrap();
    assert_eq!(envelope_of(&files[0])["sender"], "", "null return path");
    assert!(dsn.contains("Action: delayed"), "{dsn}");
    assert!(
        dsn.contains("Final-Recipient: rfc822; a@hanoi.gov.vn"),
        "{dsn}"
    );
    assert!(
        !dsn.contains("b@hanoi.gov.vn"),
        "NOTIFY=FAILURE excludes the delay notice: {dsn}"
    );
    assert!(dsn.contains("Original-Envelope-Id: KH-07"), "{dsn}");
    // Still deferred, and told only once however many retries follow.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(eml_files(&env.inbox()).len(), 1, "only one delay notice");
    let e = wait_queue_state(&env, &id, "deferred").await;
    assert_eq!(e["id"], id.as_str());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_connections_are_reused_and_a_dead_one_is_replaced() {
    let port = free_port();
    let sink = Sink::start(
        format!("127.0.0.1:{port}").parse().unwrap(),
        SinkConfig::default(),
    )
    .await
    .unwrap();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{port}")),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    // One after another: each message goes over the connection the previous one used.
    for n in 1..=5 {
        submit(&gw, &env, &["a@hanoi.gov.vn"], &format!("Subject: {n}\r\n")).await;
        assert_eq!(sink.wait_for(n, Duration::from_secs(10)).await, n);
    }
    let opened = sink.connections.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(opened, 1, "five messages over one connection");
    // The upstream restarts: the kept connection is dead; the next message opens a new one
    // and is delivered, not deferred.
    sink.stop();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let again = Sink::start(
        format!("127.0.0.1:{port}").parse().unwrap(),
        SinkConfig::default(),
    )
    .await
    .unwrap();
    let id = submit(&gw, &env, &["a@hanoi.gov.vn"], "Subject: 6\r\n").await;
    assert_eq!(again.wait_for(1, Duration::from_secs(5)).await, 1);
    // Delivered at the first attempt (the handover book counts attempts).
    let mut attempts = None;
    for _ in 0..100 {
        let out = env.cli(&["register", "show", &id, "--json"]);
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if v["state"] == "delivered" {
            attempts = v["handover"][0]["attempts"].as_i64();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(attempts, Some(1));
    gw.stop().await;
}
