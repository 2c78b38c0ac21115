//! The SMTP front end's limits over real sockets (SPEC "Robustness"): session slots per
//! listener, deadlines per command line and for DATA with a minimum rate, NUL bytes,
//! malformed envelope domains and sender paths, and the AUTH PLAIN authorization identity.
//! Every refusal keeps the session in sync or closes it with a 421.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::*;
use congvan::config::Role;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

/// A plain client whose writing half can be handed to a task that trickles bytes while
/// the test waits for the server's answer (a write after the server closed is ignored).
struct Raw {
    rd: OwnedReadHalf,
    wr: Option<OwnedWriteHalf>,
    buf: Vec<u8>,
}

impl Raw {
    async fn connect(addr: SocketAddr) -> Raw {
        let (rd, wr) = TcpStream::connect(addr).await.unwrap().into_split();
        let mut c = Raw {
            rd,
            wr: Some(wr),
            buf: Vec::new(),
        };
        let (code, t) = c.reply().await;
        assert_eq!(code, 220, "{t}");
        c
    }

    /// One reply (code, text); code 0 when the server closed.
    async fn reply(&mut self) -> (u16, String) {
        let mut text = String::new();
        loop {
            while let Some(p) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..p + 2).collect();
                let l = String::from_utf8_lossy(&line).to_string();
                text.push_str(&l);
                if l.len() >= 4 && l.as_bytes()[3] == b' ' {
                    return (l[..3].parse().unwrap_or(0), text);
                }
            }
            let mut b = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(30), self.rd.read(&mut b))
                .await
                .expect("reply timed out")
                .unwrap_or(0);
            if n == 0 {
                return (0, text);
            }
            self.buf.extend_from_slice(&b[..n]);
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        let wr = self.wr.as_mut().expect("writer given away");
        wr.write_all(bytes).await.unwrap();
    }

    async fn expect(&mut self, line: &str, code: u16) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        let (c, t) = self.reply().await;
        assert_eq!(c, code, "{line:?} got {t:?}");
        t
    }

    /// Writes `chunks` one by one, `gap` apart, from a task; stops at the first failed write.
    fn trickle(&mut self, chunks: Vec<Vec<u8>>, gap: Duration) -> tokio::task::JoinHandle<()> {
        let mut wr = self.wr.take().expect("writer");
        tokio::spawn(async move {
            for c in chunks {
                if wr.write_all(&c).await.is_err() {
                    return;
                }
                tokio::time::sleep(gap).await;
            }
            // Keep the connection open: the server, not the client, must end it.
            tokio::time::sleep(Duration::from_secs(60)).await;
        })
    }
}

/// A refusal as SPEC.md wants it: code, enhanced status code, English, " / ", Vietnamese.
fn assert_refusal(text: &str, code: u16, status: &str) {
    let first = text.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{code} {status} ")),
        "want {code} {status}: {text:?}"
    );
    let (_, vi) = first.split_once(" / ").unwrap_or_default();
    assert!(!vi.trim().is_empty(), "no Vietnamese text: {text:?}");
}

fn message_lines(from: &str, subject: &str, lines: usize) -> Vec<u8> {
    let mut m =
        format!("From: {from}\r\nTo: b@hanoi.gov.vn\r\nSubject: {subject}\r\n\r\n").into_bytes();
    for _ in 0..lines {
        m.extend_from_slice(&[b'x'; 98]);
        m.extend_from_slice(b"\r\n");
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_inbound_listener_does_not_shut_out_the_relay_or_the_clerks() {
    let mut env = Env::new(Setup::default()).await;
    // The inbound listener's own `max_connections`; the others keep their role defaults.
    let inbound = env
        .config
        .listeners
        .iter()
        .position(|l| l.role == Role::Inbound)
        .unwrap();
    env.config.listeners[inbound].max_connections = Some(5);
    let gw = env.start().await;
    let mut idle = Vec::new();
    for _ in 0..5 {
        let mut c = Client::connect(addr(&gw, Role::Inbound)).await;
        assert_eq!(c.reply().await.0, 220);
        idle.push(c);
    }
    // The next inbound connection is refused before the greeting.
    let mut extra = Client::connect(addr(&gw, Role::Inbound)).await;
    let (code, t) = extra.reply().await;
    assert_eq!(code, 421, "{t}");
    assert_refusal(&t, 421, "4.3.2");
    assert_eq!(extra.reply().await.0, 0, "closed after the 421");

    // The relay and a clerk still get their greeting and can send.
    let mut relay = Client::connect(addr(&gw, Role::Relay)).await;
    assert_eq!(relay.reply().await.0, 220);
    relay.expect("EHLO mail.dev.gov.vn", 250).await;
    relay.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    relay.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    relay.expect("DATA", 354).await;
    relay
        .send(simple_message("a@dev.gov.vn", "b@hanoi.gov.vn", "qua relay").as_bytes())
        .await;
    relay.send(b".\r\n").await;
    let (code, t) = relay.reply().await;
    assert_eq!(code, 250, "{t}");

    let mut clerk = Client::clerk(addr(&gw, Role::Submission), &env).await;
    clerk
        .expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250)
        .await;
    clerk.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    clerk.expect("DATA", 354).await;
    clerk
        .send(simple_message(CLERK_ADDR, "b@hanoi.gov.vn", "cua van thu").as_bytes())
        .await;
    clerk.send(b".\r\n").await;
    let (code, t) = clerk.reply().await;
    assert_eq!(code, 250, "{t}");
    wait_files(&env.outbox(), 2, 20).await;
    assert_eq!(eml_files(&env.outbox()).len(), 2);

    // An inbound slot is given back when its session ends.
    idle[0].expect("QUIT", 221).await;
    idle.remove(0);
    let mut later = None;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let mut c = Client::connect(addr(&gw, Role::Inbound)).await;
        if c.reply().await.0 == 220 {
            later = Some(c);
            break;
        }
    }
    let mut later = later.expect("an inbound slot again after a session ended");
    later.expect("EHLO mx.hanoi.gov.vn", 250).await;
    drop(idle);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_line_trickled_byte_by_byte_is_cut_off() {
    let env = Env::new(Setup {
        extra: "[limits]\ncommand_timeout_secs = 2\n".into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;

    // A normal client pausing under the deadline between commands, over more than the
    // deadline in all, is not cut off.
    let mut c = Raw::connect(addr(&gw, Role::Relay)).await;
    c.expect("EHLO mail.dev.gov.vn", 250).await;
    for line in [
        "NOOP",
        "MAIL FROM:<a@dev.gov.vn>",
        "RCPT TO:<b@hanoi.gov.vn>",
    ] {
        tokio::time::sleep(Duration::from_millis(1000)).await;
        c.expect(line, 250).await;
    }
    c.expect("DATA", 354).await;
    c.send(&message_lines("a@dev.gov.vn", "normal", 10)).await;
    c.send(b".\r\n").await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 250, "{t}");

    // Before a command, inside one and inside an RCPT line: a byte every 300 ms is never
    // an idle read, but the line is not complete within 2 s.
    for (prefix, trickled) in [
        ("", &b"NOOP and some more words to take its time\r\n"[..]),
        (
            "",
            b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00",
        ),
        ("MAIL FROM:<a@dev.gov.vn>", b"RCPT TO:<b@hanoi.gov.vn>\r\n"),
    ] {
        let mut c = Raw::connect(addr(&gw, Role::Inbound)).await;
        c.expect("EHLO mx.hanoi.gov.vn", 250).await;
        if !prefix.is_empty() {
            c.expect(prefix, 250).await;
        }
        let chunks = trickled.iter().map(|b| vec![*b]).collect();
        let writer = c.trickle(chunks, Duration::from_millis(300));
        let (code, t) = c.reply().await;
        assert_refusal(&t, 421, "4.4.2");
        assert_eq!(code, 421);
        assert_eq!(c.reply().await.0, 0, "closed after the 421");
        writer.abort();
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_auth_response_trickled_over_tls_is_cut_off() {
    let env = Env::new(Setup {
        extra: "[limits]\ncommand_timeout_secs = 2\n".into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let port = addr(&gw, Role::Submission).port();
    // Python's smtplib as the client: STARTTLS, then an AUTH PLAIN response a byte every
    // 300 ms.
    let script = format!(
        r#"
import select, smtplib, ssl, time
ctx = ssl.create_default_context(cafile="{ca}")
s = smtplib.SMTP("127.0.0.1", {port}, timeout=30)
s.ehlo("client.test"); s.starttls(context=ctx); s.ehlo("client.test")
s.putcmd("AUTH PLAIN")
code, _ = s.getreply()
assert code == 334, code
try:
    for b in b"AHZhbnRodQBtYXQta2hhdS10aHUtMjAyNg==\r\n":
        if select.select([s.sock], [], [], 0)[0]:
            break  # the server answered: stop sending
        s.sock.sendall(bytes([b])); time.sleep(0.3)
except OSError:
    pass
code, text = s.getreply()
print(code, text.decode())
"#,
        ca = env.ca_file().display(),
    );
    let (ok, out) = python(&script);
    assert!(ok, "{out}");
    assert!(out.starts_with("421 4.4.2 "), "{out}");
    assert!(out.contains(" / "), "{out}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_has_a_deadline_and_a_minimum_rate() {
    let env = Env::new(Setup {
        extra: "[limits]\ncommand_timeout_secs = 2\ndata_timeout_secs = 6\nmin_data_rate = 1000\n"
            .into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let relay_addr = addr(&gw, Role::Relay);
    let start_data = |subject: &'static str| async move {
        let mut c = Raw::connect(relay_addr).await;
        c.expect("EHLO mail.dev.gov.vn", 250).await;
        c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
        c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
        c.expect("DATA", 354).await;
        (c, message_lines("a@dev.gov.vn", subject, 100))
    };

    // 330 bytes every 100 ms (3.3 kB/s) for 3 s: longer than the command deadline, but
    // over the minimum rate and within the DATA deadline: accepted.
    let (mut c, msg) = start_data("steady").await;
    let mut chunks: Vec<Vec<u8>> = msg.chunks(330).map(|c| c.to_vec()).collect();
    chunks.push(b".\r\n".to_vec());
    let writer = c.trickle(chunks, Duration::from_millis(100));
    let (code, t) = c.reply().await;
    assert_eq!(code, 250, "{t}");
    writer.abort();

    // 100 bytes every 250 ms (400 bytes/s): under the rate, cut off.
    let (mut c, msg) = start_data("slow").await;
    let writer = c.trickle(
        msg.chunks(100).map(|c| c.to_vec()).collect(),
        Duration::from_millis(250),
    );
    let (code, t) = c.reply().await;
    assert_refusal(&t, 421, "4.4.2");
    assert!(t.contains("1000 bytes/s"), "{t}");
    assert_eq!(code, 421);
    assert_eq!(c.reply().await.0, 0, "closed after the 421");
    writer.abort();

    // A byte every 300 ms in the middle of the message: cut off.
    let (mut c, msg) = start_data("trickle").await;
    c.send(&msg[..500]).await;
    let writer = c.trickle(
        msg[500..].iter().map(|b| vec![*b]).collect(),
        Duration::from_millis(300),
    );
    let (code, t) = c.reply().await;
    assert_refusal(&t, 421, "4.4.2");
    assert_eq!(code, 421);
    writer.abort();

    // Fast enough all along, but the message never ends: the DATA deadline (6 s) ends it.
    let (mut c, _) = start_data("endless").await;
    let header = b"From: a@dev.gov.vn\r\nSubject: endless\r\n\r\n".to_vec();
    let mut chunks = vec![header];
    for _ in 0..200 {
        let mut line = vec![b'y'; 998];
        line.extend_from_slice(b"\r\n");
        chunks.push(line);
    }
    let writer = c.trickle(chunks, Duration::from_millis(100));
    let (code, t) = c.reply().await;
    assert_refusal(&t, 421, "4.4.2");
    assert!(t.contains("within 6 s"), "{t}");
    assert_eq!(code, 421);
    writer.abort();

    // Only the steady message was queued and delivered.
    let files = wait_files(&env.outbox(), 1, 20).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(eml_files(&env.outbox()).len(), 1, "{files:?}");
    let (_, subject) = text_and_subject(&files[0]);
    assert_eq!(subject, "steady");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_bytes_are_refused_in_commands_and_in_data() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = Raw::connect(addr(&gw, Role::Inbound)).await;
    // In a command: refused with the line; the session stays in sync.
    for line in [
        &b"EHLO mx\x00.hanoi.gov.vn\r\n"[..],
        b"\x00\r\n",
        b"NOOP \x00\r\n",
    ] {
        c.send(line).await;
        let (code, t) = c.reply().await;
        assert_eq!(code, 500, "{line:?}: {t}");
        assert_refusal(&t, 500, "5.5.2");
        c.expect("NOOP", 250).await;
    }
    c.expect("EHLO mx.hanoi.gov.vn", 250).await;
    for line in [
        &b"MAIL FROM:<a@hanoi.gov.vn\x00>\r\n"[..],
        b"MAIL FROM:<a@hanoi.gov.vn> \x00\r\n",
    ] {
        c.send(line).await;
        let (code, t) = c.reply().await;
        assert_eq!(code, 500, "{line:?}: {t}");
    }
    c.expect("MAIL FROM:<a@hanoi.gov.vn>", 250).await;
    c.send(b"RCPT TO:<vanthu@dev.gov.vn>\x00\r\n").await;
    assert_eq!(c.reply().await.0, 500);
    c.expect("RCPT TO:<vanthu@dev.gov.vn>", 250).await;
    c.expect("QUIT", 221).await;

    // In DATA, on the inbound route: read to the real end, refused, nothing delivered.
    let mut c = Raw::connect(addr(&gw, Role::Inbound)).await;
    c.expect("EHLO mx.hanoi.gov.vn", 250).await;
    c.expect("MAIL FROM:<a@hanoi.gov.vn>", 250).await;
    c.expect("RCPT TO:<vanthu@dev.gov.vn>", 250).await;
    let bodies: [&[u8]; 5] = [
        b"From: a@hanoi.gov.vn\r\nSubject: nul\r\n\r\nbody \x00 text\r\n",
        b"From: a@hanoi.gov.vn\r\nSubject: n\x00l\r\n\r\nbody\r\n",
        b"From: a@hanoi.gov.vn\r\nSubject: nul\r\n\r\n\x00\r\n",
        b"From: a@hanoi.gov.vn\r\nSubject: nul\r\n\r\n.\x00stuffed\r\n",
        b"From: a@hanoi.gov.vn\r\nSubject: nul\r\n\r\nend\x00",
    ];
    for body in bodies {
        c.expect("DATA", 354).await;
        let mut data = body.to_vec();
        if !data.ends_with(b"\r\n") {
            data.extend_from_slice(b"\r\n");
        }
        // A smuggled "end" after the NUL changes nothing: only CRLF.CRLF ends DATA.
        data.extend_from_slice(b"more\r\n.\r\n");
        c.send(&data).await;
        let (code, t) = c.reply().await;
        assert_eq!(code, 554, "{body:?}: {t}");
        assert_refusal(&t, 554, "5.6.0");
        c.expect("NOOP", 250).await;
        c.expect("MAIL FROM:<a@hanoi.gov.vn>", 250).await;
        c.expect("RCPT TO:<vanthu@dev.gov.vn>", 250).await;
    }
    // The same session then delivers a clean message.
    c.expect("DATA", 354).await;
    c.send(b"From: a@hanoi.gov.vn\r\nSubject: clean\r\n\r\nbody\r\n.\r\n")
        .await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 250, "{t}");
    let files = wait_files(&env.inbox(), 1, 20).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(eml_files(&env.inbox()).len(), 1);
    let raw = std::fs::read(&files[0]).unwrap();
    assert!(!raw.contains(&0), "no NUL reaches the office server");

    // And on the relay (outgoing) route.
    let mut r = Raw::connect(addr(&gw, Role::Relay)).await;
    r.expect("EHLO mail.dev.gov.vn", 250).await;
    r.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    r.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    r.expect("DATA", 354).await;
    r.send(b"From: a@dev.gov.vn\r\n\r\nx\x00y\r\n.\r\n").await;
    let (code, t) = r.reply().await;
    assert_eq!(code, 554, "{t}");
    r.expect("NOOP", 250).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(eml_files(&env.outbox()).is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_envelope_domains_and_sender_paths_are_refused_at_the_command() {
    // Many refusals on one session: the error limit is not what is tested here.
    let env = Env::new(Setup {
        extra: "[limits]\nmax_errors = 100\n".into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    // (role, MAIL path, code, enhanced code)
    let senders: &[(Role, &str, u16, &str)] = &[
        (Role::Inbound, "a@hanoi.gov.vn.", 501, "5.1.7"),
        (Role::Inbound, "a@hanoi.gov.vn..", 501, "5.1.7"),
        (Role::Inbound, "a@hanoi..gov.vn", 501, "5.1.7"),
        (Role::Inbound, "a@[192.0.2.1].", 501, "5.1.7"),
        (Role::Inbound, "a@-hanoi.gov.vn", 501, "5.1.7"),
        (Role::Inbound, "a%evil.com@hanoi.gov.vn", 553, "5.1.7"),
        (Role::Inbound, "evil.com!a@hanoi.gov.vn", 553, "5.1.7"),
        (Role::Inbound, "\"a%b\"@hanoi.gov.vn", 553, "5.1.7"),
        (Role::Inbound, "@x.vn,@y.vn:a@hanoi.gov.vn", 501, "5.1.7"),
        (Role::Inbound, "@x.vn:a@hanoi.gov.vn", 501, "5.1.7"),
        (Role::Relay, "a%evil.com@dev.gov.vn", 553, "5.1.7"),
        (Role::Relay, "a!b@dev.gov.vn", 553, "5.1.7"),
        (Role::Relay, "a@dev.gov.vn.", 501, "5.1.7"),
        (Role::Relay, "@hanoi.gov.vn:a@dev.gov.vn", 501, "5.1.7"),
    ];
    let mut inbound = Raw::connect(addr(&gw, Role::Inbound)).await;
    inbound.expect("EHLO mx.hanoi.gov.vn", 250).await;
    let mut relay = Raw::connect(addr(&gw, Role::Relay)).await;
    relay.expect("EHLO mail.dev.gov.vn", 250).await;
    for (role, path, code, status) in senders {
        let c = if *role == Role::Inbound {
            &mut inbound
        } else {
            &mut relay
        };
        let t = c.expect(&format!("MAIL FROM:<{path}>"), *code).await;
        assert_refusal(&t, *code, status);
        // In sync: the next command is answered for itself.
        c.expect("NOOP", 250).await;
    }
    // Recipients with a trailing dot or a broken domain: refused at RCPT, not bounced.
    inbound.expect("MAIL FROM:<a@hanoi.gov.vn>", 250).await;
    relay.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    for (role, rcpt) in [
        (Role::Inbound, "vanthu@dev.gov.vn."),
        (Role::Inbound, "postmaster@dev.gov.vn."),
        (Role::Inbound, "vanthu@dev.gov.vn.."),
        (Role::Inbound, "vanthu@dev..gov.vn"),
        (Role::Relay, "b@hanoi.gov.vn."),
        (Role::Relay, "b@hanoi_x.gov.vn"),
    ] {
        let c = if role == Role::Inbound {
            &mut inbound
        } else {
            &mut relay
        };
        let t = c.expect(&format!("RCPT TO:<{rcpt}>"), 501).await;
        assert_refusal(&t, 501, "5.1.3");
    }
    // The transactions go on and deliver.
    inbound.expect("RCPT TO:<vanthu@dev.gov.vn>", 250).await;
    inbound.expect("DATA", 354).await;
    inbound
        .send(b"From: a@hanoi.gov.vn\r\nSubject: ok\r\n\r\nbody\r\n.\r\n")
        .await;
    assert_eq!(inbound.reply().await.0, 250);
    relay.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    relay.expect("DATA", 354).await;
    relay
        .send(b"From: a@dev.gov.vn\r\nSubject: ok\r\n\r\nbody\r\n.\r\n")
        .await;
    assert_eq!(relay.reply().await.0, 250);

    // A clerk is refused the same way, before the account's address check.
    let mut clerk = Client::clerk(addr(&gw, Role::Submission), &env).await;
    for (path, code) in [
        ("vanthu@dev.gov.vn.", 501),
        ("vanthu%evil.com@dev.gov.vn", 553),
        ("@evil.com:vanthu@dev.gov.vn", 501),
    ] {
        let t = clerk.expect(&format!("MAIL FROM:<{path}>"), code).await;
        assert_refusal(&t, code, "5.1.7");
    }
    clerk
        .expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250)
        .await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auth_plain_authorization_identity_must_be_the_user() {
    // Five refusals in a row: the AUTH throttle is not what is tested here.
    let env = Env::new(Setup {
        extra: "[limits]\nmax_auth_failures = 20\n".into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let mut c = Client::connect(addr(&gw, Role::Submission)).await;
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO client.test", 250).await;
    c.starttls(&env.tls.ca_pem).await;
    c.expect("EHLO client.test", 250).await;
    let plain3 = |authz: &str, user: &str, pass: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(format!("{authz}\0{user}\0{pass}"))
    };
    // Another identity, the same name in other case: 535 5.7.8 even with the right password.
    for authz in ["chutich", "VANTHU", "VanThu", "vanthu "] {
        let t = c
            .expect(
                &format!("AUTH PLAIN {}", plain3(authz, CLERK, PASSWORD)),
                535,
            )
            .await;
        assert_refusal(&t, 535, "5.7.8");
    }
    // The same through the 334 challenge.
    c.expect("AUTH PLAIN", 334).await;
    let t = c.expect(&plain3("chutich", CLERK, PASSWORD), 535).await;
    assert_refusal(&t, 535, "5.7.8");
    // Still in sync and not authenticated.
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 530).await;
    // The authorization identity equal to the user name is fine.
    c.expect(
        &format!("AUTH PLAIN {}", plain3(CLERK, CLERK, PASSWORD)),
        235,
    )
    .await;
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_and_rset_in_turn_do_not_keep_a_session_open() {
    let env = Env::new(Setup {
        extra: "[limits]\nmax_commands_before_mail = 5\n".into(),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let mut c = Raw::connect(addr(&gw, Role::Inbound)).await;
    c.expect("EHLO mx.hanoi.gov.vn", 250).await;
    let mut closed = None;
    for i in 0..20 {
        c.send(b"MAIL FROM:<a@hanoi.gov.vn>\r\nRSET\r\n").await;
        let (m, _) = c.reply().await;
        let (r, t) = c.reply().await;
        if m != 250 || r != 250 {
            closed = Some((i, r, t));
            break;
        }
    }
    let (i, code, t) = closed.expect("closed after a few MAIL/RSET rounds");
    assert!(i <= 5, "after {i} rounds");
    assert_refusal(&t, 421, "4.7.0");
    assert_eq!(code, 421);
    assert_eq!(c.reply().await.0, 0);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_messages_cannot_take_the_memory_the_relay_needs() {
    // 2 MiB for all messages being received; inbound listeners together get half of it.
    let env = Env::new(Setup {
        extra: "[limits]\nmax_data_memory_mb = 2\n".into(),
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
    let open = |role: Role, from: &'static str, to: &'static str| {
        let a = addr(&gw, role);
        async move {
            let mut c = Raw::connect(a).await;
            c.expect("EHLO peer.test", 250).await;
            c.expect(&format!("MAIL FROM:<{from}>"), 250).await;
            c.expect(&format!("RCPT TO:<{to}>"), 250).await;
            c.expect("DATA", 354).await;
            c
        }
    };
    // Inbound session A is in the middle of a 700 KB message.
    let mut a = open(Role::Inbound, "a@hanoi.gov.vn", "vanthu@dev.gov.vn").await;
    a.send(b"From: a@hanoi.gov.vn\r\nSubject: first\r\n\r\n")
        .await;
    a.send(&body(700)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // A second inbound 700 KB message does not fit in the inbound half: 452, in sync.
    let mut b = open(Role::Inbound, "b@hanoi.gov.vn", "vanthu@dev.gov.vn").await;
    let mut msg = b"From: b@hanoi.gov.vn\r\nSubject: second\r\n\r\n".to_vec();
    msg.extend_from_slice(&body(700));
    msg.extend_from_slice(b".\r\n");
    b.send(&msg).await;
    let (code, t) = b.reply().await;
    assert_eq!(code, 452, "{t}");
    assert_refusal(&t, 452, "4.3.1");
    b.expect("NOOP", 250).await;
    // The relay's 700 KB message still fits beside A's.
    let mut r = open(Role::Relay, "a@dev.gov.vn", "x@hanoi.gov.vn").await;
    let mut msg = b"From: a@dev.gov.vn\r\nSubject: relay\r\n\r\n".to_vec();
    msg.extend_from_slice(&body(700));
    msg.extend_from_slice(b".\r\n");
    r.send(&msg).await;
    let (code, t) = r.reply().await;
    assert_eq!(code, 250, "{t}");
    a.send(b".\r\n").await;
    let (code, t) = a.reply().await;
    assert_eq!(code, 250, "{t}");
    gw.stop().await;
}
