//! Listener roles over real sockets: submission (STARTTLS + AUTH), submissions (implicit
//! TLS), relay (trusted networks), inbound (local domains), and no open relay anywhere.

mod common;

use common::*;
use congvan::config::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtplib_starttls_auth_reaches_outbox_with_envelope() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let port = addr(&gw, Role::Submission).port();
    let script = format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context(cafile="{ca}")
s = smtplib.SMTP("127.0.0.1", {port})
s.ehlo("clerk.test")
assert "auth" not in s.esmtp_features, s.esmtp_features
s.starttls(context=ctx)
s.ehlo("clerk.test")
assert "auth" in s.esmtp_features
s.login("{user}", "{pw}")
msg = "From: {addr}\r\nTo: vanthu@so-noivu.gov.vn\r\nSubject: =?UTF-8?B?Q8O0bmcgdsSDbg==?=\r\n\r\nN\u1ed9i dung.\r\n"
refused = s.sendmail("{addr}", ["vanthu@so-noivu.gov.vn"], msg.encode("utf-8"))
assert refused == {{}}, refused
s.quit()
print("ok")
"#,
        ca = env.ca_file().display(),
        user = CLERK,
        pw = PASSWORD,
        addr = CLERK_ADDR,
    );
    let (ok, out) = python(&script);
    assert!(ok, "{out}");
    let files = wait_files(&env.outbox(), 1, 10).await;
    assert_eq!(files.len(), 1);
    let body = std::fs::read_to_string(&files[0]).unwrap();
    assert!(body.starts_with("Received: from clerk.test"), "{body}");
    assert!(body.contains("with ESMTPSA"), "{body}");
    let (text, subject) = text_and_subject(&files[0]);
    assert!(text.contains("Nội dung."), "{text}");
    assert_eq!(subject, "Công văn");
    let (ok, why) = openssl_verify(&files[0], &env.seal_ca());
    assert!(ok, "signed with the dev.gov.vn seal: {why}");
    let envl = envelope_of(&files[0]);
    assert_eq!(envl["sender"], CLERK_ADDR);
    assert_eq!(envl["recipients"][0], "vanthu@so-noivu.gov.vn");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtplib_implicit_tls_submissions() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let port = addr(&gw, Role::Submissions).port();
    let script = format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context(cafile="{ca}")
s = smtplib.SMTP_SSL("localhost", {port}, context=ctx)
s.login("{user}", "{pw}")
s.sendmail("{addr}", ["a@hanoi.gov.vn", "b@hanoi.gov.vn"], b"From: {addr}\r\nSubject: x\r\n\r\nbody\r\n")
s.quit()
print("ok")
"#,
        ca = env.ca_file().display(),
        user = CLERK,
        pw = PASSWORD,
        addr = CLERK_ADDR,
    );
    let (ok, out) = python(&script);
    assert!(ok, "{out}");
    let files = wait_files(&env.outbox(), 1, 10).await;
    assert_eq!(files.len(), 1);
    let envl = envelope_of(&files[0]);
    assert_eq!(envl["recipients"].as_array().unwrap().len(), 2);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swaks_submission_with_starttls_and_auth_login() {
    if std::process::Command::new("swaks")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("swaks is not installed: .ci/run installs it (apt-get install swaks)");
    }
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let port = addr(&gw, Role::Submission).port();
    let out = tokio::process::Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--tls",
        ])
        .args([
            "--tls-ca-path",
            &env.ca_file().display().to_string(),
            "--tls-verify",
        ])
        .args([
            "--auth",
            "LOGIN",
            "--auth-user",
            CLERK,
            "--auth-password",
            PASSWORD,
        ])
        .args([
            "--from",
            CLERK_ADDR,
            "--to",
            "vanthu@so-tc.gov.vn",
            "--h-From",
            CLERK_ADDR,
        ])
        .args(["--header", "Subject: swaks test"])
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("250 2.0.0 Ok: queued as"), "{text}");
    let files = wait_files(&env.outbox(), 1, 10).await;
    assert_eq!(files.len(), 1);
    assert!(std::fs::read_to_string(&files[0])
        .unwrap()
        .contains("Subject: swaks test"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_before_starttls_is_refused_and_not_advertised() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Submission)).await;
    assert_eq!(c.reply().await.0, 220);
    let ehlo = c.expect("EHLO x", 250).await;
    assert!(ehlo.contains("STARTTLS"));
    assert!(!ehlo.contains("AUTH"), "{ehlo}");
    let (code, text) = c
        .cmd(&format!("AUTH PLAIN {}", plain(CLERK, PASSWORD)))
        .await;
    assert_eq!(code, 538, "{text}");
    assert!(text.contains("5.7.11"));
    let (code, text) = c.cmd(&format!("MAIL FROM:<{CLERK_ADDR}>")).await;
    assert_eq!(code, 530, "{text}");
    assert!(text.contains("5.7.0 Authentication required"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_then_throttled() {
    let env = Env::new(Setup {
        extra: "[limits]\nmax_auth_failures = 3\n".into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Submission)).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    c.starttls(&env.tls.ca_pem).await;
    c.expect("EHLO x", 250).await;
    for _ in 0..3 {
        let t = c
            .expect(&format!("AUTH PLAIN {}", plain(CLERK, "wrong")), 535)
            .await;
        assert!(t.contains("5.7.8"), "{t}");
    }
    // Now even the right password is refused for a while from this address.
    let t = c
        .expect(&format!("AUTH PLAIN {}", plain(CLERK, PASSWORD)), 454)
        .await;
    assert!(t.contains("4.7.0") && t.contains("Too many failed"), "{t}");
    // An unknown user is refused the same way as a wrong password.
    let env2 = Env::new(Setup::default()).await;
    let gw2 = env2.start().await;
    let mut c = Client::connect(addr(&gw2, Role::Submission)).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    c.starttls(&env2.tls.ca_pem).await;
    c.expect("EHLO x", 250).await;
    c.expect(&format!("AUTH PLAIN {}", plain("nobody", PASSWORD)), 535)
        .await;
    // AUTH LOGIN works too.
    c.expect("AUTH LOGIN", 334).await;
    use base64::Engine;
    let b = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    c.expect(&b(CLERK), 334).await;
    c.expect(&b(PASSWORD), 235).await;
    gw.stop().await;
    gw2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_account_cannot_authenticate() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let out = env.cli(&["account", "disable", CLERK]);
    assert!(out.status.success(), "{:?}", out);
    let mut c = Client::connect(addr(&gw, Role::Submission)).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    c.starttls(&env.tls.ca_pem).await;
    c.expect("EHLO x", 250).await;
    c.expect(&format!("AUTH PLAIN {}", plain(CLERK, PASSWORD)), 535)
        .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_must_be_an_allowed_address() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = Client::clerk(addr(&gw, Role::Submission), &env).await;
    let t = c.expect("MAIL FROM:<chutich@dev.gov.vn>", 553).await;
    assert!(t.contains("5.7.1"), "{t}");
    // Envelope allowed, header From not: refused at end of DATA.
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    c.expect("RCPT TO:<a@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: chutich@dev.gov.vn\r\nSubject: x\r\n\r\nbody\r\n.\r\n")
        .await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 550, "{t}");
    assert!(
        t.contains("5.7.1") && t.contains("chutich@dev.gov.vn"),
        "{t}"
    );
    // Two From fields are refused too.
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    c.expect("RCPT TO:<a@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(format!("From: {CLERK_ADDR}\r\nFrom: x@evil.example\r\n\r\nbody\r\n.\r\n").as_bytes())
        .await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 550, "{t}");
    c.expect("QUIT", 221).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(eml_files(&env.outbox()).is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_accepts_trusted_and_refuses_untrusted() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Relay)).await;
    assert_eq!(c.reply().await.0, 220);
    let ehlo = c.expect("EHLO mail.dev.gov.vn", 250).await;
    assert!(!ehlo.contains("AUTH"));
    c.expect("MAIL FROM:<chanhvp@dev.gov.vn>", 250).await;
    c.expect("RCPT TO:<vanthu@hanoi.gov.vn>", 250).await;
    // Outside the allowed recipient domains (default gov.vn): refused.
    let t = c.expect("RCPT TO:<someone@gmail.com>", 550).await;
    assert!(t.contains("5.7.1"), "{t}");
    c.expect("DATA", 354).await;
    c.send(b"From: chanhvp@dev.gov.vn\r\nSubject: relay\r\n\r\nx\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await.0, 250);
    let files = wait_files(&env.outbox(), 1, 10).await;
    assert_eq!(files.len(), 1);
    // A sender outside the allowed domains is refused.
    c.expect("MAIL FROM:<x@gmail.com>", 553).await;
    gw.stop().await;

    let env = Env::new(Setup {
        relay_networks: vec!["10.99.0.0/16"],
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Relay)).await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 554, "{t}");
    assert!(t.contains("5.7.1") && t.contains("trusted_networks"), "{t}");
    assert_eq!(c.reply().await.0, 0, "connection closed");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_only_for_local_domains_and_goes_to_deliver_to() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Inbound)).await;
    c.reply().await;
    c.expect("EHLO mx.hanoi.gov.vn", 250).await;
    c.expect("MAIL FROM:<vanthu@hanoi.gov.vn>", 250).await;
    let t = c.expect("RCPT TO:<x@hanoi.gov.vn>", 550).await;
    assert!(
        t.contains("5.7.1") && t.contains("not a local domain"),
        "{t}"
    );
    c.expect("RCPT TO:<vanthu@DEV.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: vanthu@hanoi.gov.vn\r\nTo: vanthu@dev.gov.vn\r\nSubject: den\r\n\r\nx\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await.0, 250);
    let files = wait_files(&env.inbox(), 1, 10).await;
    assert_eq!(files.len(), 1);
    assert!(eml_files(&env.outbox()).is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_recipients_go_inbound_whichever_listener() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = Client::clerk(addr(&gw, Role::Submission), &env).await;
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    c.expect("RCPT TO:<chanhvp@dev.gov.vn>", 250).await;
    c.expect("RCPT TO:<vanthu@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(format!("From: {CLERK_ADDR}\r\nSubject: both\r\n\r\nx\r\n.\r\n").as_bytes())
        .await;
    assert_eq!(c.reply().await.0, 250);
    let inbox = wait_files(&env.inbox(), 1, 10).await;
    let outbox = wait_files(&env.outbox(), 1, 10).await;
    assert_eq!(
        envelope_of(&inbox[0])["recipients"][0],
        "chanhvp@dev.gov.vn"
    );
    assert_eq!(
        envelope_of(&outbox[0])["recipients"][0],
        "vanthu@hanoi.gov.vn"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_open_relay_tricks_on_any_listener() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let tricks = [
        "RCPT TO:<@dev.gov.vn:victim@evil.example>",
        "RCPT TO:<victim%evil.example@dev.gov.vn>",
        "RCPT TO:<evil.example!victim@dev.gov.vn>",
        "RCPT TO:<\"victim@evil.example\"@dev.gov.vn>",
    ];
    for role in [Role::Inbound, Role::Relay] {
        let mut c = Client::connect(addr(&gw, role)).await;
        c.reply().await;
        c.expect("EHLO x", 250).await;
        c.expect("MAIL FROM:<vanthu@hanoi.gov.vn>", 250).await;
        for t in tricks {
            let (code, text) = c.cmd(t).await;
            assert_eq!(code, 550, "{role:?} {t}: {text}");
            assert!(text.contains("5.7.1"), "{text}");
        }
        let (code, _) = c.cmd("RCPT TO:<victim@evil.example>").await;
        assert_eq!(code, 550);
        c.expect("DATA", 554).await;
    }
    let mut c = Client::clerk(addr(&gw, Role::Submission), &env).await;
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    for t in tricks {
        assert_eq!(c.cmd(t).await.0, 550, "{t}");
    }
    gw.stop().await;
}
