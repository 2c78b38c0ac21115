//! The real binary: crash recovery (SIGKILL right after 250), graceful SIGTERM, and the CLI
//! (exit codes, --json, account management while the daemon runs).

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use congvan::testkit::sink::{Sink, SinkConfig};

fn spawn_daemon(env: &Env) -> Daemon {
    Daemon::spawn(env, &[])
}

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_after_250_loses_nothing() {
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let upstream_port = free_port();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{upstream_port}")),
        ports: Some(ports),
        ..Setup::default()
    })
    .await;
    let mut daemon = spawn_daemon(&env);
    wait_port(ports[2]).await;
    let relay: std::net::SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();
    let mut c = Client::connect(relay).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
        c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
        c.expect("DATA", 354).await;
        c.send(format!("From: a@dev.gov.vn\r\nSubject: durable {i}\r\n\r\nx\r\n.\r\n").as_bytes())
            .await;
        let (code, t) = c.reply().await;
        assert_eq!(code, 250, "{t}");
        ids.push(t.split_whitespace().last().unwrap().to_string());
    }
    // Killed without warning right after the last 250, with the upstream down.
    daemon.signal(libc::SIGKILL);
    daemon.child.wait().unwrap();
    let sink = Sink::start(
        format!("127.0.0.1:{upstream_port}").parse().unwrap(),
        SinkConfig {
            keep_data: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let daemon = spawn_daemon(&env);
    let n = sink.wait_for(5, Duration::from_secs(30)).await;
    let log = std::fs::read_to_string(env.path().join("daemon.log")).unwrap_or_default();
    assert_eq!(
        n, 5,
        "every accepted message delivered after restart; log:\n{log}"
    );
    let got: Vec<String> = sink
        .messages()
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).to_string())
        .collect();
    for id in &ids {
        assert_eq!(
            got.iter().filter(|m| m.contains(id.as_str())).count(),
            1,
            "{id} delivered exactly once"
        );
    }
    let status = daemon.stop();
    assert!(status.success(), "graceful stop exits 0: {status:?}");
    let log = std::fs::read_to_string(env.path().join("daemon.log")).unwrap();
    assert!(log.contains("shutting down"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_message_in_progress_finish() {
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let env = Env::new(Setup {
        ports: Some(ports),
        ..Setup::default()
    })
    .await;
    let mut daemon = spawn_daemon(&env);
    wait_port(ports[2]).await;
    let relay: std::net::SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();
    let mut c = Client::connect(relay).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: a@dev.gov.vn\r\nSubject: in flight\r\n\r\nfirst half\r\n")
        .await;
    daemon.signal(libc::SIGTERM);
    tokio::time::sleep(Duration::from_millis(300)).await;
    // New connections are no longer accepted, but the message in progress completes.
    assert!(
        tokio::net::TcpStream::connect(relay).await.is_err(),
        "listener closed"
    );
    c.send(b"second half\r\n.\r\n").await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 250, "{t}");
    let (code, t) = c.reply().await;
    assert_eq!(code, 421, "then told the service is going down: {t}");
    let status = daemon.child.wait().unwrap();
    assert!(status.success());
    let delivered = eml_files(&env.outbox()).len();
    let out = env.cli(&["queue", "list", "--json"]);
    let queued = serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .len();
    assert_eq!(
        delivered + queued,
        1,
        "delivered before exit, or kept in the queue for the next start"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_accounts_exit_codes_and_json() {
    let env = Env::new(Setup::default()).await;
    let pw = env.path().join("pw.txt");
    std::fs::write(&pw, "s3cret-văn-thư\nignored second line\n").unwrap();
    let out = env.cli(&[
        "account",
        "add",
        "vanthu2",
        "--allow-from",
        "vanthu2@dev.gov.vn",
        "@so.gov.vn",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let out = env.cli(&[
        "account",
        "add",
        "vanthu2",
        "--allow-from",
        "x@dev.gov.vn",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1), "duplicate refused");
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = env.cli(&[
        "account",
        "add",
        "bad",
        "--allow-from",
        "not-an-address",
        "--password-file",
        pw.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    // A 5-character password is refused, with the rule.
    let short = env.path().join("short.txt");
    std::fs::write(&short, "12345\n").unwrap();
    let out = env.cli(&[
        "account",
        "add",
        "ngan",
        "--allow-from",
        "ngan@dev.gov.vn",
        "--password-file",
        short.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("needs at least 12"),
        "{out:?}"
    );
    let out = env.cli(&["account", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let a = list
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "vanthu2")
        .unwrap()
        .clone();
    assert_eq!(
        a["allowed_from"],
        serde_json::json!(["vanthu2@dev.gov.vn", "@so.gov.vn"])
    );
    assert_eq!(a["disabled"], false);
    // Password from a file: the first line only; login works with it.
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, congvan::config::Role::Submission)).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    c.starttls(&env.tls.ca_pem).await;
    c.expect("EHLO x", 250).await;
    c.expect(
        &format!("AUTH PLAIN {}", plain("vanthu2", "s3cret-văn-thư")),
        235,
    )
    .await;
    c.expect("MAIL FROM:<phongtc@so.gov.vn>", 250).await;
    // passwd from standard input (not a terminal: the first line).
    let mut child = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args([
            "--config",
            env.config_path.to_str().unwrap(),
            "account",
            "passwd",
            "vanthu2",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"new-password\n")
        .unwrap();
    assert!(child.wait().unwrap().success());
    let mut c = Client::connect(addr(&gw, congvan::config::Role::Submission)).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    c.starttls(&env.tls.ca_pem).await;
    c.expect("EHLO x", 250).await;
    c.expect(
        &format!("AUTH PLAIN {}", plain("vanthu2", "new-password")),
        235,
    )
    .await;
    gw.stop().await;

    // Usage errors exit 2; --help works on every command; --config after the subcommand.
    let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args(["queue", "frobnicate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["account", "add", "--help"],
        vec!["queue", "list", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Usage"),
            "{args:?}"
        );
    }
    let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args([
            "queue",
            "list",
            "--config",
            env.config_path.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 message(s) in the queue"));
    let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args(["--config", "/nonexistent/congvan.toml", "queue", "list"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/congvan.toml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_provisions_a_fresh_database_before_the_daemon_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = d.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "hostname = \"gw.test\"\ndata_dir = \"{0}/data\"\npolicy_dir = \"{0}/p\"\n[outbound]\nupstream = \"outbox:{0}/o\"\n[inbound]\ndeliver_to = \"outbox:{0}/i\"\n",
            d.display()
        ),
    )
    .unwrap();
    let pw = d.join("pw");
    std::fs::write(&pw, "mot mat khau du dai\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .args([
            "--config",
            cfg.to_str().unwrap(),
            "account",
            "add",
            "a",
            "--allow-from",
            "a@dev.gov.vn",
            "--password-file",
            pw.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        d.join("data/congvan.db").exists(),
        "the SQLite file is created"
    );
}

/// The log as the journal or a file gets it (SPEC "Operating it"): plain text without colour
/// codes when not on a terminal, or JSON lines; the lines about a message name its queue id
/// and its Message-ID. And `--version` names the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_are_plain_or_json_and_name_the_queue_id_and_message_id() {
    let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&out.stdout);
    assert!(
        version.starts_with("congvan 0.") && version.contains("(commit "),
        "{version}"
    );
    for json in [false, true] {
        let ports = [free_port(), free_port(), free_port(), free_port()];
        let env = Env::new(Setup {
            ports: Some(ports),
            extra: if json {
                "[log]\nformat = \"json\"\n".into()
            } else {
                String::new()
            },
            ..Setup::default()
        })
        .await;
        let daemon = spawn_daemon(&env);
        wait_port(ports[2]).await;
        let relay: std::net::SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();
        let mut c = Client::connect(relay).await;
        c.reply().await;
        c.expect("EHLO x", 250).await;
        c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
        c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
        c.expect("DATA", 354).await;
        c.send(b"From: a@dev.gov.vn\r\nMessage-ID: <nhat-ky-1@dev.gov.vn>\r\nSubject: log\r\n\r\nx\r\n.\r\n")
            .await;
        let (code, t) = c.reply().await;
        assert_eq!(code, 250, "{t}");
        let id = t.split_whitespace().last().unwrap().to_string();
        assert_eq!(wait_files(&env.outbox(), 1, 20).await.len(), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(daemon.stop().success());
        let log = std::fs::read_to_string(env.path().join("daemon.log")).unwrap();
        assert!(!log.contains('\u{1b}'), "colour codes in the log: {log}");
        assert!(!log.contains("Some("), "Rust debug text in the log: {log}");
        let about: Vec<&str> = log.lines().filter(|l| l.contains(&id)).collect();
        for what in ["accepted", "sealed", "delivery attempt"] {
            let line = about
                .iter()
                .find(|l| l.contains(what))
                .unwrap_or_else(|| panic!("no {what} line for {id}: {log}"));
            assert!(line.contains("<nhat-ky-1@dev.gov.vn>"), "{line}");
            if json {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                assert_eq!(v["queue_id"], id.as_str(), "{line}");
                let mid = v["message_id"]
                    .as_str()
                    .or(v["span"]["message_id"].as_str());
                assert_eq!(mid, Some("<nhat-ky-1@dev.gov.vn>"), "{line}");
            }
        }
        if json {
            for line in log.lines() {
                serde_json::from_str::<serde_json::Value>(line)
                    .unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
            }
        }
    }
}

/// SIGHUP reloads the TLS certificate (a renewal without a restart); files that do not load
/// leave the certificate in use, and the daemon running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_tls_certificate() {
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let env = Env::new(Setup {
        ports: Some(ports),
        ..Setup::default()
    })
    .await;
    let mut daemon = spawn_daemon(&env);
    wait_port(ports[1]).await;
    // The SHA-256 of the certificate the submissions listener (implicit TLS) presents.
    let served = || {
        let (ok, out) = python(&format!(
            "import ssl, socket, hashlib\n\
             ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE\n\
             s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', {})), server_hostname='localhost')\n\
             print(hashlib.sha256(s.getpeercert(True)).hexdigest())",
            ports[1]
        ));
        assert!(ok, "{out}");
        out.trim().to_string()
    };
    let before = served();
    // A broken key file: the certificate in use stays.
    let key = env.path().join("key.pem");
    let good_key = std::fs::read(&key).unwrap();
    std::fs::write(&key, "not a key\n").unwrap();
    daemon.signal(libc::SIGHUP);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(served(), before, "kept after a failed reload");
    std::fs::write(&key, good_key).unwrap();
    // A renewed certificate and key.
    let renewed = congvan::testkit::TestTls::generate();
    std::fs::write(env.path().join("cert.pem"), &renewed.cert_pem).unwrap();
    std::fs::write(&key, &renewed.key_pem).unwrap();
    daemon.signal(libc::SIGHUP);
    let mut after = before.clone();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        after = served();
        if after != before {
            break;
        }
    }
    assert_ne!(after, before, "the renewed certificate is served");
    assert!(daemon.stop().success());
    let log = std::fs::read_to_string(env.path().join("daemon.log")).unwrap();
    assert!(log.contains("TLS certificate not reloaded"), "{log}");
    assert!(log.contains("TLS certificate reloaded"), "{log}");
}

async fn http_get(port: u16, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    let code = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}

/// `[metrics] bind`: Prometheus text on /metrics with what happened to a message, and
/// /health that says 503 while a local domain has no usable seal (SPEC "Operating it").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened_and_health_names_an_unusable_seal() {
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let metrics = free_port();
    let env = Env::new(Setup {
        ports: Some(ports),
        extra: format!("[metrics]\nbind = \"127.0.0.1:{metrics}\"\n"),
        ..Setup::default()
    })
    .await;
    let daemon = spawn_daemon(&env);
    wait_port(ports[2]).await;
    wait_port(metrics).await;
    let (code, body) = http_get(metrics, "/health").await;
    assert_eq!(code, 200, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["seals"]["dev.gov.vn"], "ok", "{health}");

    let relay: std::net::SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();
    let mut c = Client::connect(relay).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: a@dev.gov.vn\r\nSubject: m\r\n\r\nx\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await.0, 250);
    // A confidential document, refused by its rule.
    c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: a@dev.gov.vn\r\nSubject: m\r\nX-Congvan-Secrecy: mat\r\n\r\nx\r\n.\r\n")
        .await;
    assert_eq!(c.reply().await.0, 550);
    assert_eq!(wait_files(&env.outbox(), 1, 20).await.len(), 1);
    tokio::time::sleep(Duration::from_millis(300)).await;

    let (code, text) = http_get(metrics, "/metrics").await;
    assert_eq!(code, 200, "{text}");
    for line in [
        "congvan_messages_accepted_total{direction=\"out\"} 1",
        "congvan_messages_refused_total{rule=\"secrecy.mat\"} 1",
        "congvan_delivery_attempts_total{route=\"outbound\",outcome=\"delivered\"} 1",
        "congvan_seal_duration_seconds_count 1",
    ] {
        assert!(text.contains(line), "{line} in:\n{text}");
    }
    assert!(
        text.contains("# TYPE congvan_queue_messages gauge"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("# EOF"), "{text}");
    assert_eq!(http_get(metrics, "/nothing").await.0, 404);

    // A local domain without a seal: unhealthy, and says which.
    assert!(daemon.stop().success());
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    std::fs::write(
        &env.config_path,
        text.replace(
            "local_domains = [\"dev.gov.vn\"]",
            "local_domains = [\"dev.gov.vn\", \"hadong.gov.vn\"]",
        ),
    )
    .unwrap();
    let daemon = spawn_daemon(&env);
    wait_port(metrics).await;
    let (code, body) = http_get(metrics, "/health").await;
    assert_eq!(code, 503, "{body}");
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        health["seals"]["hadong.gov.vn"], "no signing identity",
        "{health}"
    );
    assert!(daemon.stop().success());
}
