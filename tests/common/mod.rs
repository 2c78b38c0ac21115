//! Shared test harness: a fresh gateway per test (its own temp dir, TLS PKI, database, and
//! outbox/inbox), a raw SMTP client over real sockets, and helpers to run Python's smtplib.
#![allow(dead_code)]

pub mod chromium;
pub mod softhsm;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use congvan::config::{Config, Role};
use congvan::server::Running;
use congvan::testkit::TestTls;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub const PASSWORD: &str = "mat-khau-thu-2026";
pub const CLERK: &str = "vanthu";
pub const CLERK_ADDR: &str = "vanthu@dev.gov.vn";

/// How to build a test gateway.
pub struct Setup {
    /// Value of `outbound.upstream`; default an outbox in the temp dir.
    pub upstream: Option<String>,
    /// Value of `inbound.deliver_to`; default the outbox [`Env::inbox`].
    pub inbound_deliver_to: Option<String>,
    pub outbound_tls: &'static str,
    pub outbound_ca: bool,
    pub relay_networks: Vec<&'static str>,
    /// Fixed ports (for tests that restart a binary); None = ephemeral.
    pub ports: Option<[u16; 4]>,
    /// `inbound.local_domains`.
    pub local_domains: Vec<&'static str>,
    pub extra: String,
    /// Which database the gateway uses; default as CONGVAN_TEST_DATABASE_URL says.
    pub database: TestDb,
}

/// The database of a test gateway.
#[derive(Debug, Clone, Default)]
pub enum TestDb {
    /// PostgreSQL when CONGVAN_TEST_DATABASE_URL names a server, SQLite otherwise.
    #[default]
    FromEnv,
    /// A SQLite file in the test's directory, whatever the environment says.
    Sqlite,
    /// A fresh database on the PostgreSQL server of this admin URL.
    Postgres(String),
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            upstream: None,
            inbound_deliver_to: None,
            outbound_tls: "none",
            outbound_ca: false,
            relay_networks: vec!["127.0.0.0/8"],
            ports: None,
            local_domains: vec!["dev.gov.vn"],
            extra: String::new(),
            database: TestDb::FromEnv,
        }
    }
}

pub struct Env {
    pub dir: tempfile::TempDir,
    pub tls: TestTls,
    pub config: Config,
    pub config_path: PathBuf,
    pub db_url: String,
}

/// A database URL for this test: a SQLite file, or a fresh PostgreSQL database when
/// CONGVAN_TEST_DATABASE_URL names a server (CI runs the suite both ways).
async fn test_database(dir: &Path, choice: &TestDb) -> String {
    let admin = match choice {
        TestDb::FromEnv => std::env::var("CONGVAN_TEST_DATABASE_URL").ok(),
        TestDb::Sqlite => None,
        TestDb::Postgres(url) => Some(url.clone()),
    };
    match admin {
        Some(admin) if !admin.is_empty() => {
            use sea_orm::ConnectionTrait;
            let name = format!("congvan_t_{}", congvan::util::new_queue_id());
            let db = sea_orm::Database::connect(&admin)
                .await
                .expect("connect to PostgreSQL admin URL");
            db.execute_unprepared(&format!("CREATE DATABASE {name}"))
                .await
                .expect("create test database");
            db.close().await.ok();
            let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
            format!("{base}/{name}")
        }
        _ => format!("sqlite://{}/congvan.db", dir.display()),
    }
}

/// The repo's shipped `policies/`: every test gateway runs on the shipped default profile.
pub fn shipped_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// Copies a directory tree (the shipped policies into a test env).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// Unix milliseconds of an RFC 3339 time (test data written as readable times).
pub fn unix_ms(rfc3339: &str) -> i64 {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Env {
    /// An upstream sink that refuses `address` with `reply` (and takes everyone else), and a
    /// gateway relaying to it.
    #[allow(dead_code)]
    pub async fn before_a_sink_refusing(
        address: &str,
        reply: &str,
    ) -> (congvan::testkit::sink::Sink, Env) {
        let sink = congvan::testkit::sink::Sink::start(
            "127.0.0.1:0".parse().unwrap(),
            congvan::testkit::sink::SinkConfig {
                reject: vec![(address.into(), reply.into())],
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
        (sink, env)
    }

    pub async fn new(setup: Setup) -> Env {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let tls = TestTls::generate();
        tls.write(d).unwrap();
        copy_dir(&shipped_policies(), &d.join("policies"));
        let db_url = test_database(d, &setup.database).await;
        let ports = setup
            .ports
            .map(|p| p.map(|x| x.to_string()))
            .unwrap_or_else(|| ["0".into(), "0".into(), "0".into(), "0".into()]);
        let upstream = setup
            .upstream
            .clone()
            .unwrap_or_else(|| format!("outbox:{}/outbox", d.display()));
        let deliver_to = setup
            .inbound_deliver_to
            .clone()
            .unwrap_or_else(|| format!("outbox:{}/inbox", d.display()));
        let nets: Vec<String> = setup
            .relay_networks
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect();
        let ca = if setup.outbound_ca {
            format!("ca_file = \"{}/upstream-ca.pem\"\n", d.display())
        } else {
            String::new()
        };
        let text = format!(
            r#"hostname = "gw.test.gov.vn"
data_dir = "{d}"
database_url = "{db_url}"
policy_dir = "{d}/policies"
max_message_size = 1048576
[tls]
cert = "{d}/cert.pem"
key = "{d}/key.pem"
[[listener]]
role = "submission"
bind = "127.0.0.1:{p0}"
[[listener]]
role = "submissions"
bind = "127.0.0.1:{p1}"
[[listener]]
role = "relay"
bind = "127.0.0.1:{p2}"
trusted_networks = [{nets}]
[[listener]]
role = "inbound"
bind = "127.0.0.1:{p3}"
[outbound]
upstream = "{upstream}"
tls = "{otls}"
{ca}
[inbound]
local_domains = [{locals}]
deliver_to = "{deliver_to}"
[queue]
retry_base_secs = 1
retry_max_secs = 2
{extra}
"#,
            d = d.display(),
            p0 = ports[0],
            p1 = ports[1],
            p2 = ports[2],
            p3 = ports[3],
            nets = nets.join(", "),
            otls = setup.outbound_tls,
            locals = setup
                .local_domains
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect::<Vec<_>>()
                .join(", "),
            extra = setup.extra,
        );
        let config_path = d.join("congvan.toml");
        std::fs::write(&config_path, &text).unwrap();
        let config = Config::load(&config_path).unwrap();
        let db = congvan::store::open(&config.database_url()).await.unwrap();
        congvan::accounts::add(&db, "test", CLERK, &[CLERK_ADDR.to_string()], PASSWORD)
            .await
            .unwrap();
        // The office seal for dev.gov.vn (ECDSA P-256, from the development PKI).
        congvan::dev::make_pki(d).unwrap();
        congvan::pki::store::import_pem(
            &db,
            "test",
            d,
            &std::fs::read(d.join("pki/dev.gov.vn.chain.pem")).unwrap(),
            &std::fs::read(d.join("pki/dev.gov.vn.key.pem")).unwrap(),
            &["dev.gov.vn".to_string()],
        )
        .await
        .unwrap();
        db.close().await.ok();
        Env {
            dir,
            tls,
            config,
            config_path,
            db_url,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
    pub fn outbox(&self) -> PathBuf {
        self.path().join("outbox")
    }
    pub fn inbox(&self) -> PathBuf {
        self.path().join("inbox")
    }
    pub fn ca_file(&self) -> PathBuf {
        self.path().join("ca.pem")
    }
    /// The CA of the seal imported for dev.gov.vn.
    pub fn seal_ca(&self) -> PathBuf {
        self.path().join("pki/dev-ca.pem")
    }

    pub async fn start(&self) -> Running {
        congvan::server::start(self.config.clone())
            .await
            .expect("start gateway")
    }

    pub async fn db(&self) -> sea_orm::DatabaseConnection {
        congvan::store::open(&self.config.database_url())
            .await
            .unwrap()
    }

    /// Runs the real binary with this env's config.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        std::process::Command::new(env!("CARGO_BIN_EXE_congvan"))
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run congvan")
    }
}

/// `.eml` files in a directory, sorted by name.
pub fn eml_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Waits up to `secs` for `n` .eml files in `dir`.
pub async fn wait_files(dir: &Path, n: usize, secs: u64) -> Vec<PathBuf> {
    for _ in 0..(secs * 20) {
        let f = eml_files(dir);
        if f.len() >= n {
            return f;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eml_files(dir)
}

pub fn envelope_of(eml: &Path) -> serde_json::Value {
    let p = eml.with_extension("envelope.json");
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A raw SMTP client: writes exactly the bytes a test gives and parses replies.
pub struct Client {
    io: Option<Box<dyn Io>>,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        Client::over(tcp)
    }

    /// A client over any byte stream: a socket, or the other end of an in-process session.
    pub fn over(io: impl Io + 'static) -> Client {
        Client {
            io: Some(Box::new(io)),
            buf: Vec::new(),
        }
    }

    async fn raw_read(&mut self, b: &mut [u8]) -> std::io::Result<usize> {
        match &mut self.io {
            Some(io) => io.read(b).await,
            None => Ok(0),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        let io = self.io.as_mut().expect("closed");
        io.write_all(bytes).await.unwrap();
        io.flush().await.unwrap();
    }

    /// Reads one (possibly multi-line) reply: (code, full text). Code 0 on EOF.
    pub async fn reply(&mut self) -> (u16, String) {
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
            let n = tokio::time::timeout(Duration::from_secs(20), self.raw_read(&mut b))
                .await
                .expect("reply timed out")
                .unwrap_or(0);
            if n == 0 {
                return (0, text);
            }
            self.buf.extend_from_slice(&b[..n]);
        }
    }

    pub async fn cmd(&mut self, line: &str) -> (u16, String) {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.reply().await
    }

    pub async fn expect(&mut self, line: &str, code: u16) -> String {
        let (c, t) = self.cmd(line).await;
        assert_eq!(c, code, "{line:?} got {t:?}");
        t
    }

    /// STARTTLS and handshake, trusting `ca_pem`. Bytes buffered before it are dropped.
    pub async fn starttls(&mut self, ca_pem: &str) {
        self.expect("STARTTLS", 220).await;
        self.tls(ca_pem).await;
    }

    pub async fn tls(&mut self, ca_pem: &str) {
        let mut roots = rustls::RootCertStore::empty();
        for c in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
            roots.add(c.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let cfg = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let conn = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let plain = self.io.take().expect("plain connection");
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let s = conn.connect(name, plain).await.expect("TLS handshake");
        self.io = Some(Box::new(s));
        self.buf.clear();
    }

    /// Greeting, EHLO, STARTTLS, EHLO, AUTH PLAIN as the test clerk.
    pub async fn clerk(addr: SocketAddr, env: &Env) -> Client {
        let mut c = Client::connect(addr).await;
        assert_eq!(c.reply().await.0, 220);
        c.expect("EHLO client.test", 250).await;
        c.starttls(&env.tls.ca_pem).await;
        c.expect("EHLO client.test", 250).await;
        c.expect(&format!("AUTH PLAIN {}", plain(CLERK, PASSWORD)), 235)
            .await;
        c
    }
}

pub fn plain(user: &str, pass: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(format!("\0{user}\0{pass}"))
}

pub fn addr(r: &Running, role: Role) -> SocketAddr {
    r.addr(role).expect("listener")
}

/// Runs a Python script (smtplib is the client under test); returns (status, stdout+stderr).
pub fn python(script: &str) -> (bool, String) {
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .expect("python3");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

pub fn simple_message(from: &str, to: &str, subject: &str) -> String {
    format!("From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 08:00:00 +0700\r\nMessage-ID: <{}@client.test>\r\n\r\nNội dung văn bản.\r\n", congvan::util::new_queue_id())
}

/// The decoded first text body and Subject of a message (through multipart/signed).
pub fn text_and_subject(eml: &Path) -> (String, String) {
    let raw = std::fs::read(eml).unwrap();
    let m = mail_parser::MessageParser::default()
        .parse(&raw)
        .expect("parsable message");
    (
        m.body_text(0).map(|t| t.to_string()).unwrap_or_default(),
        m.subject().unwrap_or_default().to_string(),
    )
}

/// `openssl smime -verify` against a CA file; (ok, output).
pub fn openssl_verify(eml: &Path, ca: &Path) -> (bool, String) {
    let out = std::process::Command::new("openssl")
        .args(["smime", "-verify", "-purpose", "smimesign", "-CAfile"])
        .arg(ca)
        .arg("-in")
        .arg(eml)
        .args(["-out", "/dev/null"])
        .output()
        .expect("openssl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A `congvan serve` child process that is killed when dropped (also when a test panics),
/// with its output in `daemon.log`, never on the test's own stdout.
pub struct Daemon {
    pub child: std::process::Child,
}

impl Daemon {
    pub fn spawn(env: &Env, envs: &[(&str, &std::ffi::OsStr)]) -> Daemon {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(env.path().join("daemon.log"))
            .unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_congvan"));
        cmd.arg("--config")
            .arg(&env.config_path)
            .arg("serve")
            .env("CONGVAN_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(log));
        for (k, v) in envs {
            cmd.env(k, v);
        }
        Daemon {
            child: cmd.spawn().expect("spawn congvan serve"),
        }
    }

    pub fn signal(&mut self, sig: i32) {
        // SAFETY: signalling our own child process.
        unsafe {
            libc::kill(self.child.id() as i32, sig);
        }
    }

    /// SIGTERM and wait; returns the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        self.child.wait().unwrap()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// GnuPG's S/MIME verifier on a `multipart/signed` message: the signed part's exact bytes
/// and the detached CMS, with `ca` as the one trusted root (no CRL checks). True when gpgsm
/// says the signature is good; its output either way.
pub fn gpgsm_verify(eml: &Path, ca: &Path) -> (bool, String) {
    let bytes = std::fs::read(eml).unwrap();
    let text = String::from_utf8_lossy(&bytes);
    let boundary = text
        .split("boundary=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("a multipart/signed boundary")
        .to_string();
    let delim = format!("\r\n--{boundary}");
    let first = text.find(&format!("--{boundary}\r\n")).unwrap() + boundary.len() + 4;
    let end = first + text[first..].find(&delim).unwrap();
    let signed = &bytes[first..end];
    let sig_part = &text[end + delim.len()..];
    let sig_b64: String = sig_part
        .split("\r\n\r\n")
        .nth(1)
        .unwrap()
        .split(&format!("--{boundary}"))
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    use base64::Engine;
    let sig = base64::engine::general_purpose::STANDARD
        .decode(sig_b64)
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    std::fs::write(h.join("signed.txt"), signed).unwrap();
    std::fs::write(h.join("sig.p7s"), sig).unwrap();
    let gpgsm = |args: &[&str]| {
        std::process::Command::new("gpgsm")
            .arg("--homedir")
            .arg(h)
            .args(["--batch", "--disable-crl-checks", "--disable-dirmngr"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = gpgsm(&["--import", ca.to_str().unwrap()]);
    assert!(out.status.success(), "gpgsm --import: {out:?}");
    let fpr = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha1", "-in"])
        .arg(ca)
        .output()
        .unwrap();
    let fpr = String::from_utf8_lossy(&fpr.stdout)
        .split('=')
        .nth(1)
        .unwrap()
        .trim()
        .to_string();
    std::fs::write(h.join("trustlist.txt"), format!("{fpr} S relax\n")).unwrap();
    let out = gpgsm(&[
        "--verify",
        h.join("sig.p7s").to_str().unwrap(),
        h.join("signed.txt").to_str().unwrap(),
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (
        out.status.success() && said.contains("Good signature"),
        said,
    )
}
