//! SMTP sessions driven in-process: the session runs over an in-memory pipe (no socket), on
//! the real database, queue and policy, and each test asserts the exact replies and what the
//! queue holds afterwards. The regression corpus (`tests/corpus/*.eml`, one file per fixed
//! bug or attack class) runs through it: every file there must have its expected reply in
//! [`CORPUS`]. The socket tests (strict_smtp.rs, roles.rs...) stay: they cover the listener.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use common::*;
use congvan::config::Role;
use congvan::intake::{Client as Sender, Decision, Envelope};
use congvan::queue::admin::{self, QueueEntry};
use congvan::queue::{NewRecipient, Route};
use congvan::smtp::session::Session;
use congvan::smtp::stream::Stream;
use congvan::smtp::ServerCtx;
use tokio::sync::watch;

/// The expected end-of-DATA reply of each corpus file sent through the relay listener by
/// `vanthu@dev.gov.vn` to `vanthu@hanoi.gov.vn`: (file, code, enhanced status, a piece of
/// the text).
const CORPUS: &[(&str, u16, &str, &str)] = &[
    ("ordinary-document.eml", 250, "2.0.0", "queued as"),
    (
        "nested-rfc822-4000.eml",
        554,
        "5.6.0",
        "nested more than 50",
    ),
    (
        "nested-global-4000.eml",
        554,
        "5.6.0",
        "nested more than 50",
    ),
    (
        "nested-multipart-2000.eml",
        554,
        "5.6.0",
        "nested more than 50",
    ),
    ("nested-mixed-500.eml", 554, "5.6.0", "nested more than 50"),
    (
        "nested-base64-rfc822-3000.eml",
        554,
        "5.6.0",
        "nested more than 50",
    ),
    (
        "smuggling-bare-lf-end-of-data.eml",
        554,
        "5.6.0",
        "bare CR or LF",
    ),
    ("smuggling-cr-dot-cr.eml", 554, "5.6.0", "bare CR or LF"),
    ("nul-byte-in-body.eml", 554, "5.6.0", "NUL byte"),
    ("two-from-fields.eml", 550, "5.6.0", "exactly one From"),
    (
        "confidential-secrecy-header.eml",
        550,
        "5.7.1",
        "(rule secrecy.mat)",
    ),
    (
        "confidential-subject-tag-toi-mat.eml",
        550,
        "5.7.1",
        "(rule secrecy.toi-mat)",
    ),
    (
        "from-outside-allowed-domains.eml",
        550,
        "5.7.1",
        "not in an allowed domain",
    ),
];

/// A gateway's session side, without listeners or delivery.
struct InProcess {
    env: Env,
    ctx: Arc<ServerCtx>,
    _stop: watch::Sender<bool>,
}

impl InProcess {
    async fn new() -> InProcess {
        let env = Env::new(Setup::default()).await;
        let (stop, rx) = watch::channel(false);
        let ctx = congvan::server::open(Arc::new(env.config.clone()), rx)
            .await
            .expect("open the gateway's session side");
        InProcess {
            env,
            ctx,
            _stop: stop,
        }
    }

    /// A session of the `role` listener from `ip`, over an in-memory pipe; the client end.
    fn session(&self, role: Role, ip: &str) -> Client {
        let listener = self
            .env
            .config
            .listeners
            .iter()
            .find(|l| l.role == role)
            .expect("listener configured")
            .clone();
        let (client, server) = tokio::io::duplex(64 * 1024);
        let peer = SocketAddr::new(ip.parse().unwrap(), 40_000);
        let session = Session::new(self.ctx.clone(), listener, peer, Stream::Plain(server));
        tokio::spawn(session.run());
        Client::over(client)
    }

    async fn queue(&self) -> Vec<QueueEntry> {
        admin::list(&self.ctx.intake.db).await.unwrap()
    }

    /// The messages' contents stored: spool files, and with PostgreSQL `message_content`
    /// rows (by id).
    async fn stored_contents(&self) -> Vec<String> {
        use sea_orm::EntityTrait;
        let dir = self.env.config.spool_dir();
        let mut out: Vec<String> = std::fs::read_dir(&dir)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path().display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        let rows = congvan::store::entity::message_content::Entity::find()
            .all(&self.ctx.intake.db)
            .await
            .unwrap();
        out.extend(rows.into_iter().map(|r| r.id));
        out.sort();
        out
    }
}

/// DATA content as it goes on the wire: lines starting with a dot doubled, then the end.
fn dot_stuffed(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 8);
    let mut at_line_start = true;
    for &b in message {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

/// MAIL, RCPT, DATA and the message; the reply to the end of DATA.
async fn transaction(c: &mut Client, from: &str, to: &str, message: &[u8]) -> (u16, String) {
    c.expect(&format!("MAIL FROM:<{from}>"), 250).await;
    c.expect(&format!("RCPT TO:<{to}>"), 250).await;
    c.expect("DATA", 354).await;
    c.send(&dot_stuffed(message)).await;
    c.reply().await
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus")
}

#[tokio::test]
async fn clerk_document_is_queued_exactly_as_sent_and_only_then_acknowledged() {
    let gw = InProcess::new().await;
    let mut c = gw.session(Role::Submission, "192.0.2.10");
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO clerk.test", 250).await;
    // STARTTLS over the pipe, then AUTH: the session's TLS upgrade is the daemon's.
    c.starttls(&gw.env.tls.ca_pem).await;
    c.expect("EHLO clerk.test", 250).await;
    c.expect(&format!("AUTH PLAIN {}", plain(CLERK, PASSWORD)), 235)
        .await;
    let message = std::fs::read(corpus_dir().join("ordinary-document.eml")).unwrap();
    let (code, text) = transaction(&mut c, CLERK_ADDR, "vanthu@hanoi.gov.vn", &message).await;
    assert_eq!(code, 250, "{text}");
    let id = text
        .trim_end()
        .rsplit(' ')
        .next()
        .expect("queue id in the reply")
        .to_string();
    assert!(text.starts_with("250 2.0.0 Ok: queued as "), "{text}");
    let queue = gw.queue().await;
    assert_eq!(queue.len(), 1, "{queue:?}");
    let q = &queue[0];
    assert_eq!(
        (q.id.as_str(), q.direction.as_str(), q.sender.as_str()),
        (id.as_str(), "out", CLERK_ADDR)
    );
    assert_eq!(q.recipients, vec!["vanthu@hanoi.gov.vn".to_string()]);
    // The spool holds the trace field and the message, dot-unstuffed, byte for byte.
    let spooled = gw.ctx.intake.queue.content(&id).await.unwrap();
    let text = String::from_utf8_lossy(&spooled);
    assert!(text.starts_with("Received: from clerk.test ([192.0.2.10]) (authenticated as vanthu)\r\n\tby gw.test.gov.vn (congvan) with ESMTPSA id "), "{text}");
    assert!(
        spooled.ends_with(&message),
        "the message was not spooled as sent"
    );
    assert!(
        text.contains("\r\n.dòng bắt đầu"),
        "dot-stuffing not undone"
    );
    c.expect("QUIT", 221).await;
}

#[tokio::test]
async fn corpus_files_get_their_reply_through_an_in_process_relay_session() {
    let gw = InProcess::new().await;
    let mut names: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".eml"))
        .collect();
    names.sort();
    for name in &names {
        let Some(&(_, code, status, piece)) = CORPUS.iter().find(|(f, ..)| f == name) else {
            panic!("tests/corpus/{name} has no expected reply in CORPUS (tests/session.rs)");
        };
        let before = gw.queue().await.len();
        let message = std::fs::read(corpus_dir().join(name)).unwrap();
        let mut c = gw.session(Role::Relay, "127.0.0.1");
        assert_eq!(c.reply().await.0, 220);
        c.expect("EHLO office.test", 250).await;
        let (got, text) = transaction(&mut c, CLERK_ADDR, "vanthu@hanoi.gov.vn", &message).await;
        assert_eq!(got, code, "{name}: {text}");
        assert!(
            text.starts_with(&format!("{code} {status} ")) && text.contains(piece),
            "{name}: {text}"
        );
        // Nothing smuggled behind a refused message runs: the session is in sync.
        c.expect("NOOP", 250).await;
        let after = gw.queue().await;
        let grew = if code == 250 { 1 } else { 0 };
        assert_eq!(after.len(), before + grew, "{name}: {after:?}");
        assert!(
            after.iter().all(|q| q.sender == CLERK_ADDR),
            "{name}: a smuggled message was queued: {after:?}"
        );
        c.expect("QUIT", 221).await;
    }
    assert_eq!(names.len(), CORPUS.len(), "CORPUS names a missing file");
    // Only the accepted document left content on disk.
    let stored = gw.stored_contents().await;
    assert_eq!(stored.len(), 1, "{stored:?}");
}

#[tokio::test]
async fn commands_pipelined_behind_starttls_are_discarded() {
    let gw = InProcess::new().await;
    let mut c = gw.session(Role::Submission, "192.0.2.11");
    assert_eq!(c.reply().await.0, 220);
    c.expect("EHLO clerk.test", 250).await;
    c.send(b"STARTTLS\r\nMAIL FROM:<vanthu@dev.gov.vn>\r\n")
        .await;
    assert_eq!(c.reply().await.0, 220);
    c.tls(&gw.env.tls.ca_pem).await;
    // Were the injected MAIL run after the handshake, its reply would come first.
    let (code, text) = c.cmd("NOOP").await;
    assert_eq!(code, 250, "{text}");
    c.expect("MAIL FROM:<vanthu@dev.gov.vn>", 503).await;
}

#[tokio::test]
async fn intake_decides_without_a_session() {
    let gw = InProcess::new().await;
    let intake = &gw.ctx.intake;
    let client = Sender {
        role: Role::Relay,
        ip: "127.0.0.1".parse().unwrap(),
        helo: "office.test",
        protocol: "ESMTP",
        account: None,
    };
    let envelope = || Envelope {
        sender: CLERK_ADDR.into(),
        rcpts: vec![NewRecipient {
            address: "vanthu@hanoi.gov.vn".into(),
            route: Route::Outbound,
            notify: 0,
            orcpt: None,
        }],
        ..Default::default()
    };
    let read = |n: &str| std::fs::read(corpus_dir().join(n)).unwrap();
    match intake
        .examine(&client, envelope(), read("confidential-secrecy-header.eml"))
        .await
    {
        Decision::Refuse { reply, record, .. } => {
            assert_eq!((reply.code, reply.status.as_ref()), (550, "5.7.1"));
            let record = record.expect("a rule's refusal is registered");
            assert_eq!(record.rule, "secrecy.mat");
        }
        other => panic!("{other:?}"),
    }
    match intake
        .examine(&client, envelope(), read("ordinary-document.eml"))
        .await
    {
        Decision::Queue(a) => {
            assert_eq!(a.meta.classification.number.as_deref(), Some("26/CT-UBND"));
            assert!(a
                .trace
                .starts_with("Received: from office.test ([127.0.0.1])"));
        }
        other => panic!("{other:?}"),
    }
    // Examining wrote nothing: no message, no spool file.
    assert!(gw.queue().await.is_empty());
    assert!(gw.stored_contents().await.is_empty());
}
