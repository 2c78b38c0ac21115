//! Handing a message to its next hop: an SMTP server through lettre's low-level connection
//! (per-recipient replies and DSN parameters, which `send_raw` cannot give), or an `outbox:`
//! directory for sites that pick files up.

use std::path::Path;
use std::time::Duration;

use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{
    AsyncSmtpConnection, Certificate, CertificateStore, TlsParameters,
};
use lettre::transport::smtp::commands::{Data, Ehlo, Mail, Rcpt, Rset};
use lettre::transport::smtp::extension::{
    ClientId, Extension, MailBodyParameter, MailParameter, RcptParameter,
};
use lettre::transport::smtp::response::Response;
use lettre::Address;
use serde::Serialize;

use crate::config::{DeliveryConfig, Target, TlsMode};

/// What the next hop said about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Delivered(Diagnostic),
    TempFail(Diagnostic),
    PermFail(Diagnostic),
}

impl Outcome {
    /// `delivered`, `deferred` or `failed`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Delivered(_) => "delivered",
            Outcome::TempFail(_) => "deferred",
            Outcome::PermFail(_) => "failed",
        }
    }
}

impl std::fmt::Display for Outcome {
    /// As the log writes it: `delivered: 250 2.0.0 ok`, `deferred: ...`, `failed: ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let d = match self {
            Outcome::Delivered(d) | Outcome::TempFail(d) | Outcome::PermFail(d) => d,
        };
        write!(f, "{}: {}", self.kind(), d.text)
    }
}

/// The next hop's reply to a command, as the SMTP client got it: its code, the enhanced
/// status code (RFC 3463) its text begins with, if any, and its text (lines joined by
/// spaces, the enhanced code included).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamReply {
    pub code: u16,
    pub status: Option<String>,
    pub text: String,
}

impl UpstreamReply {
    pub fn new(code: u16, text: String) -> UpstreamReply {
        let status = text
            .split_whitespace()
            .next()
            .and_then(super::dsn::enhanced_code)
            .map(str::to_string);
        UpstreamReply { code, status, text }
    }

    fn of_response(r: &Response) -> UpstreamReply {
        let lines: Vec<&str> = r.message().collect();
        UpstreamReply::new(r.code().into(), lines.join(" "))
    }

    /// The negative reply a lettre error carries; None for a transport error (connection,
    /// TLS, timeout) that has none.
    fn of_error(e: &lettre::transport::smtp::Error) -> Option<UpstreamReply> {
        use std::error::Error as _;
        let code = e.status()?;
        let text = e.source().map(|s| s.to_string()).unwrap_or_default();
        Some(UpstreamReply::new(code.into(), text))
    }
}

/// What an outcome is recorded with: the reply behind it when there was one, and the text
/// written to `recipient.last_reply`, the register and a DSN's Diagnostic-Code.
#[derive(Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// The next hop's reply, or the gateway's own in SMTP form; None for a transport error.
    pub reply: Option<UpstreamReply>,
    pub text: String,
}

impl Diagnostic {
    /// A reply the gateway gives on the next hop's behalf, worded "553 5.1.3 text".
    fn gateway(code: u16, status: &str, text: &str) -> Diagnostic {
        let reply = UpstreamReply::new(code, format!("{status} {text}"));
        Diagnostic {
            text: format!("{code} {}", reply.text),
            reply: Some(reply),
        }
    }

    /// A failure with no reply to quote.
    fn no_reply(text: String) -> Diagnostic {
        Diagnostic { reply: None, text }
    }

    /// The enhanced status code for a DSN: the reply's, or `fallback` when it gave none.
    /// Without a reply, one quoted in a transport error's text ("STARTTLS with h:25:
    /// transient error (454): 4.7.0 ...") still counts.
    pub fn status(&self, fallback: &str) -> String {
        match &self.reply {
            Some(r) => r.status.clone().unwrap_or_else(|| fallback.to_string()),
            None => super::dsn::status_of(&self.text, fallback),
        }
    }
}

/// As its text, so the "delivery attempt" log line reads as before.
impl std::fmt::Debug for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.text, f)
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// The envelope of one delivery attempt.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub queue_id: &'a str,
    pub sender: &'a str,
    pub recipients: Vec<EnvRcpt>,
    pub dsn_ret: Option<&'a str>,
    pub dsn_envid: Option<&'a str>,
    pub body_8bit: bool,
    pub smtputf8: bool,
}

#[derive(Debug, Clone)]
pub struct EnvRcpt {
    pub address: String,
    pub notify: i32,
    pub orcpt: Option<String>,
}

/// Per recipient outcomes, and whether the next hop took over DSN duty (it announced DSN and
/// got our NOTIFY parameters), in which case we send no "relayed" DSN ourselves.
#[derive(Debug, Clone)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub dsn_passed_on: bool,
}

const TIMEOUT: Duration = Duration::from_secs(60);

pub async fn deliver(
    cfg: &DeliveryConfig,
    cache: &ConnectionCache,
    hostname: &str,
    env: &Envelope<'_>,
    content: &[u8],
) -> Report {
    match &cfg.upstream {
        Target::Outbox(dir) => {
            let outcome = match write_outbox(dir, env, content).await {
                Ok(name) => Outcome::Delivered(Diagnostic::gateway(
                    250,
                    "2.0.0",
                    &format!("written to {name}"),
                )),
                Err(e) => Outcome::TempFail(Diagnostic::gateway(
                    451,
                    "4.3.0",
                    &format!("outbox {}: {e}", dir.display()),
                )),
            };
            Report {
                outcomes: vec![outcome; env.recipients.len()],
                dsn_passed_on: false,
            }
        }
        Target::Smtp {
            host,
            port,
            implicit_tls,
        } => match smtp_deliver(
            cfg,
            cache,
            host,
            *port,
            *implicit_tls,
            hostname,
            env,
            content,
        )
        .await
        {
            Ok(r) => r,
            Err(e) => {
                let o = classify_error(&e, "");
                Report {
                    outcomes: vec![o; env.recipients.len()],
                    dsn_passed_on: false,
                }
            }
        },
    }
}

#[derive(Serialize)]
struct EnvelopeFile<'a> {
    queue_id: &'a str,
    sender: &'a str,
    recipients: Vec<&'a str>,
}

/// Writes NAME.envelope.json then NAME.eml, each under a temporary name, fsynced, renamed.
async fn write_outbox(dir: &Path, env: &Envelope<'_>, content: &[u8]) -> std::io::Result<String> {
    let name = format!("{}-{}", env.queue_id, short_hash(&env.recipients));
    let envelope = serde_json::to_vec_pretty(&EnvelopeFile {
        queue_id: env.queue_id,
        sender: env.sender,
        recipients: env.recipients.iter().map(|r| r.address.as_str()).collect(),
    })
    .map_err(std::io::Error::other)?;
    let dir = dir.to_path_buf();
    let content = content.to_vec();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir)?;
        write_atomic(&dir, &format!("{name}.envelope.json"), &envelope)?;
        write_atomic(&dir, &format!("{name}.eml"), &content)?;
        std::fs::File::open(&dir)?.sync_all()?;
        Ok(dir.join(format!("{name}.eml")).display().to_string())
    })
    .await
    .map_err(std::io::Error::other)?
}

fn write_atomic(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = dir.join(format!(".{name}.tmp"));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, dir.join(name))
}

/// Distinguishes the per-route files of one message (local and remote recipients).
fn short_hash(rcpts: &[EnvRcpt]) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for r in rcpts {
        ctx.update(r.address.as_bytes());
        ctx.update(b"\0");
    }
    hex::encode(&ctx.finish().as_ref()[..4])
}

fn tls_parameters(cfg: &DeliveryConfig, host: &str) -> Result<TlsParameters, String> {
    let mut b = TlsParameters::builder(host.to_string());
    if cfg.tls == TlsMode::Opportunistic {
        b = b
            .dangerous_accept_invalid_certs(true)
            .dangerous_accept_invalid_hostnames(true);
    }
    if let Some(ca) = &cfg.ca_file {
        let pem = std::fs::read(ca).map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
        b = b.certificate_store(CertificateStore::None);
        let mut n = 0;
        for der in rustls_pemfile::certs(&mut pem.as_slice()) {
            let der = der.map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            let cert = Certificate::from_der(der.to_vec())
                .map_err(|e| format!("ca_file {}: {e}", ca.display()))?;
            b = b.add_root_certificate(cert);
            n += 1;
        }
        if n == 0 {
            return Err(format!("ca_file {} holds no certificate", ca.display()));
        }
    }
    b.build_rustls().map_err(|e| e.to_string())
}

fn read_credentials(path: &Path) -> Result<Credentials, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("credentials {}: {e}", path.display()))?;
    let mut lines = text.lines();
    let user = lines.next().unwrap_or("").to_string();
    let pass = lines.next().unwrap_or("").to_string();
    if user.is_empty() {
        return Err(format!(
            "credentials {}: first line must be the user name, second the password",
            path.display()
        ));
    }
    Ok(Credentials::new(user, pass))
}

#[derive(Debug, thiserror::Error)]
enum DeliverError {
    /// Could not reach or talk to the server: temporary.
    #[error("{0}")]
    Temp(String),
    /// A configuration problem on our side: temporary, so the admin can fix it.
    #[error("local configuration: {0}")]
    Local(String),
    #[error(transparent)]
    Lettre(lettre::transport::smtp::Error),
}

fn classify_error(e: &DeliverError, prefix: &str) -> Outcome {
    match e {
        DeliverError::Temp(s) => Outcome::TempFail(Diagnostic::no_reply(format!("{prefix}{s}"))),
        DeliverError::Local(s) => Outcome::TempFail(Diagnostic::no_reply(format!(
            "{prefix}local configuration: {s}"
        ))),
        DeliverError::Lettre(e) => lettre_outcome(e, prefix),
    }
}

/// The outcome of a lettre error, worded as lettre words it ("permanent error (550): ...").
fn lettre_outcome(e: &lettre::transport::smtp::Error, prefix: &str) -> Outcome {
    let d = Diagnostic {
        reply: UpstreamReply::of_error(e),
        text: format!("{prefix}{e}"),
    };
    if e.is_permanent() {
        Outcome::PermFail(d)
    } else {
        Outcome::TempFail(d)
    }
}

/// A positive reply, recorded as "host: 250 2.0.0 text".
fn delivered(host: &str, r: &Response) -> Outcome {
    let reply = UpstreamReply::of_response(r);
    Outcome::Delivered(Diagnostic {
        text: format!("{host}: {} {}", reply.code, reply.text),
        reply: Some(reply),
    })
}

/// What a connection to the next hop offers, read once from its EHLO.
#[derive(Debug, Clone, Copy)]
struct Caps {
    dsn: bool,
    pipelining: bool,
    eight_bit: bool,
    utf8: bool,
}

/// An open connection kept for the next delivery to the same hop (as Postfix's connection
/// cache does): no new TCP, TLS and EHLO round trips per message.
struct Cached {
    conn: AsyncSmtpConnection,
    caps: Caps,
    idle_since: std::time::Instant,
    uses: u32,
}

/// Kept this long unused at most: well inside the 5 minutes RFC 5321 lets a server wait.
const CACHE_IDLE: Duration = Duration::from_secs(20);
/// Messages per connection before it is closed and a new one opened.
const CACHE_MAX_USES: u32 = 100;
/// Idle connections kept per hop.
const CACHE_PER_HOP: usize = 16;
/// The longest wait for the reply to the QUIT that closes a connection (lettre sends QUIT and
/// reads its reply even to abort one): a server in a confused state never ties up a slot.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// The idle upstream connections of one daemon, by hop; owned by its `Deliverer`, so two
/// gateways in one process (tests) never share a connection.
#[derive(Default)]
pub struct ConnectionCache(std::sync::Mutex<std::collections::HashMap<String, Vec<Cached>>>);

/// Everything that makes two connections interchangeable.
fn hop_key(
    cfg: &DeliveryConfig,
    host: &str,
    port: u16,
    implicit_tls: bool,
    hostname: &str,
) -> String {
    format!(
        "{host}:{port} implicit={implicit_tls} tls={:?} ca={:?} auth={:?} as={hostname}",
        cfg.tls, cfg.ca_file, cfg.credentials_file
    )
}

fn take_cached(cache: &ConnectionCache, key: &str) -> Option<Cached> {
    let mut map = cache.0.lock().unwrap_or_else(|e| e.into_inner());
    let list = map.get_mut(key)?;
    // Newest first; older ones past the idle limit are dropped (closing their sockets).
    while let Some(c) = list.pop() {
        if c.idle_since.elapsed() < CACHE_IDLE {
            return Some(c);
        }
    }
    None
}

/// After a transaction: back into the cache when the connection is healthy, else QUIT.
async fn release(cache: &ConnectionCache, key: String, mut c: Cached, reusable: bool) {
    c.uses += 1;
    if reusable && c.uses < CACHE_MAX_USES {
        c.idle_since = std::time::Instant::now();
        let mut map = cache.0.lock().unwrap_or_else(|e| e.into_inner());
        let list = map.entry(key).or_default();
        if list.len() < CACHE_PER_HOP {
            list.push(c);
            return;
        }
    }
    let _ = tokio::time::timeout(CLOSE_WAIT, c.conn.quit()).await;
}

/// Where a transaction failed: before MAIL was answered (a cached connection that went
/// stale: nothing was handed over, so a fresh connection may try again) or later.
enum TxError {
    BeforeMail(DeliverError),
    After(DeliverError),
}

#[allow(clippy::too_many_arguments)]
async fn smtp_deliver(
    cfg: &DeliveryConfig,
    cache: &ConnectionCache,
    host: &str,
    port: u16,
    implicit_tls: bool,
    hostname: &str,
    env: &Envelope<'_>,
    content: &[u8],
) -> Result<Report, DeliverError> {
    let key = hop_key(cfg, host, port, implicit_tls, hostname);
    if let Some(mut c) = take_cached(cache, &key) {
        match transaction(&mut c.conn, c.caps, host, env, content).await {
            Ok((report, reusable)) => {
                release(cache, key, c, reusable).await;
                return Ok(report);
            }
            Err(TxError::BeforeMail(e)) => {
                tracing::debug!(queue_id = %env.queue_id, %host, error = %e, "cached upstream connection gone stale; opening a new one");
                let _ = tokio::time::timeout(CLOSE_WAIT, c.conn.abort()).await;
            }
            Err(TxError::After(e)) => {
                let _ = tokio::time::timeout(CLOSE_WAIT, c.conn.abort()).await;
                return Err(e);
            }
        }
    }
    let (conn, caps) = open(cfg, host, port, implicit_tls, hostname).await?;
    let mut c = Cached {
        conn,
        caps,
        idle_since: std::time::Instant::now(),
        uses: 0,
    };
    match transaction(&mut c.conn, caps, host, env, content).await {
        Ok((report, reusable)) => {
            release(cache, key, c, reusable).await;
            Ok(report)
        }
        Err(TxError::BeforeMail(e) | TxError::After(e)) => {
            let _ = tokio::time::timeout(CLOSE_WAIT, c.conn.abort()).await;
            Err(e)
        }
    }
}

/// A TCP connection to the next hop, with Nagle's algorithm off, within the connect timeout.
async fn connect_nodelay(host: &str, port: u16) -> Result<tokio::net::TcpStream, DeliverError> {
    let stream = tokio::time::timeout(TIMEOUT, tokio::net::TcpStream::connect((host, port)))
        .await
        .map_err(|_| DeliverError::Temp(format!("connect to {host}:{port}: timed out")))?
        .map_err(|e| DeliverError::Temp(format!("connect to {host}:{port}: {e}")))?;
    stream
        .set_nodelay(true)
        .map_err(|e| DeliverError::Temp(format!("connect to {host}:{port}: {e}")))?;
    Ok(stream)
}

/// Connects, STARTTLS as configured, AUTH when configured, and reads what the hop offers.
async fn open(
    cfg: &DeliveryConfig,
    host: &str,
    port: u16,
    implicit_tls: bool,
    hostname: &str,
) -> Result<(AsyncSmtpConnection, Caps), DeliverError> {
    let client_id = ClientId::Domain(hostname.to_string());
    let tls = if implicit_tls || cfg.tls != TlsMode::None {
        Some(tls_parameters(cfg, host).map_err(DeliverError::Local)?)
    } else {
        None
    };
    let mut conn = if implicit_tls {
        // lettre does the implicit TLS handshake on a socket it opens itself (Nagle's
        // algorithm stays on there: see below).
        AsyncSmtpConnection::connect_tokio1(
            (host, port),
            Some(TIMEOUT),
            &client_id,
            tls.clone(),
            None,
        )
        .await
    } else {
        // lettre writes a message's body and its final "CRLF . CRLF" in two writes; with
        // Nagle's algorithm the second waits for the ACK of the first, which the next hop
        // delays by up to 40 ms: 45 ms per message on a reused connection. TCP_NODELAY
        // sends it at once (as Postfix's smtp client does).
        let stream = connect_nodelay(host, port).await?;
        AsyncSmtpConnection::connect_with_transport(Box::new(stream), &client_id).await
    }
    .map_err(|e| DeliverError::Temp(format!("connect to {host}:{port}: {e}")))?;

    if !implicit_tls {
        let offered = conn.server_info().supports_feature(Extension::StartTls);
        match (cfg.tls, offered, tls) {
            (TlsMode::None, _, _) => {}
            (TlsMode::Required, false, _) => {
                conn.abort().await;
                return Err(DeliverError::Temp(format!(
                    "{host}:{port} does not offer STARTTLS and tls = \"required\""
                )));
            }
            (_, true, Some(params)) => conn
                .starttls(params, &client_id)
                .await
                .map_err(|e| DeliverError::Temp(format!("STARTTLS with {host}:{port}: {e}")))?,
            _ => {}
        }
    }
    if let Some(path) = &cfg.credentials_file {
        let creds = read_credentials(path).map_err(DeliverError::Local)?;
        conn.auth(&[Mechanism::Plain, Mechanism::Login], &creds)
            .await
            .map_err(DeliverError::Lettre)?;
    }

    // lettre's ServerInfo knows no DSN or SIZE keyword: read them from a fresh EHLO.
    let ehlo = conn
        .command(Ehlo::new(client_id.clone()))
        .await
        .map_err(DeliverError::Lettre)?;
    let keywords: Vec<String> = ehlo
        .message()
        .skip(1)
        .map(|l| l.to_ascii_uppercase())
        .collect();
    let has = |k: &str| {
        keywords
            .iter()
            .any(|l| l == k || l.starts_with(&format!("{k} ")))
    };
    let caps = Caps {
        dsn: has("DSN"),
        pipelining: has("PIPELINING"),
        eight_bit: conn.server_info().supports_feature(Extension::EightBitMime),
        utf8: conn.server_info().supports_feature(Extension::SmtpUtfEight),
    };
    Ok((conn, caps))
}

/// One message over an open connection: MAIL, RCPT per recipient, DATA (pipelined when the
/// hop offers it). Returns the per-recipient outcomes and whether the connection can carry
/// another message.
async fn transaction(
    conn: &mut AsyncSmtpConnection,
    caps: Caps,
    host: &str,
    env: &Envelope<'_>,
    content: &[u8],
) -> Result<(Report, bool), TxError> {
    if env.smtputf8 && !caps.utf8 {
        return Ok((
            Report {
                outcomes: vec![
                    Outcome::PermFail(Diagnostic::gateway(
                        553,
                        "5.6.7",
                        &format!("{host} does not support SMTPUTF8, needed by this message"),
                    ));
                    env.recipients.len()
                ],
                dsn_passed_on: false,
            },
            true,
        ));
    }

    let mut mail_params = vec![MailParameter::Size(content.len())];
    if env.body_8bit && caps.eight_bit {
        mail_params.push(MailParameter::Body(MailBodyParameter::EightBitMime));
    }
    if env.smtputf8 {
        mail_params.push(MailParameter::SmtpUtfEight);
    }
    if caps.dsn {
        if let Some(ret) = env.dsn_ret {
            mail_params.push(MailParameter::Other {
                keyword: "RET".into(),
                value: Some(ret.to_string()),
            });
        }
        if let Some(envid) = env.dsn_envid {
            mail_params.push(MailParameter::Other {
                keyword: "ENVID".into(),
                value: Some(envid.to_string()),
            });
        }
    }
    let sender = if env.sender.is_empty() {
        None
    } else {
        match env.sender.parse::<Address>() {
            Ok(a) => Some(a),
            Err(e) => {
                let report = Report {
                    outcomes: vec![
                        Outcome::PermFail(Diagnostic::gateway(
                            553,
                            "5.1.7",
                            &format!("sender <{}> cannot be sent on: {e}", env.sender),
                        ));
                        env.recipients.len()
                    ],
                    dsn_passed_on: false,
                };
                return Ok((report, true));
            }
        }
    };
    let mail = Mail::new(sender, mail_params);
    let mut outcomes: Vec<Option<Outcome>> = vec![None; env.recipients.len()];
    // The recipients the next hop is asked for; an address it could not be given fails here.
    let mut asked: Vec<(usize, Rcpt)> = Vec::with_capacity(env.recipients.len());
    for (i, r) in env.recipients.iter().enumerate() {
        let addr = match r.address.parse::<Address>() {
            Ok(a) => a,
            Err(e) => {
                outcomes[i] = Some(Outcome::PermFail(Diagnostic::gateway(
                    553,
                    "5.1.3",
                    &format!("recipient <{}> cannot be sent on: {e}", r.address),
                )));
                continue;
            }
        };
        let mut params = Vec::new();
        if caps.dsn {
            if let Some(n) = notify_param(r.notify) {
                params.push(RcptParameter::Other {
                    keyword: "NOTIFY".into(),
                    value: Some(n),
                });
            }
            if let Some(o) = &r.orcpt {
                params.push(RcptParameter::Other {
                    keyword: "ORCPT".into(),
                    value: Some(o.clone()),
                });
            }
        }
        asked.push((i, Rcpt::new(addr, params)));
    }
    // PIPELINING (RFC 2920), as Postfix's client does: MAIL, every RCPT and DATA go out in
    // one write and their replies are read in order, one round trip where there were one per
    // command. `command` sends the group and reads MAIL's reply.
    let pipelined = caps.pipelining && !asked.is_empty();
    let mail_reply = if pipelined {
        let mut group = mail.to_string();
        for (_, rcpt) in &asked {
            group.push_str(&rcpt.to_string());
        }
        group.push_str(&Data.to_string());
        conn.command(group).await
    } else {
        conn.command(mail).await
    };
    mail_reply.map_err(|e| TxError::BeforeMail(DeliverError::Lettre(e)))?;

    let answered = |e: &lettre::transport::smtp::Error| e.is_permanent() || e.is_transient();
    let mut accepted = Vec::new();
    for (i, rcpt) in asked {
        let reply = if pipelined {
            conn.read_response().await
        } else {
            conn.command(rcpt).await
        };
        match reply {
            Ok(_) => accepted.push(i),
            Err(e) if answered(&e) => outcomes[i] = Some(lettre_outcome(&e, "")),
            Err(e) => return Err(TxError::After(DeliverError::Lettre(e))),
        }
    }
    let data_reply = if pipelined {
        Some(conn.read_response().await)
    } else if accepted.is_empty() {
        None
    } else {
        Some(conn.command(Data).await)
    };
    // The connection can carry another message when the server answered every command.
    let reusable = match data_reply {
        Some(Ok(_)) if !accepted.is_empty() => {
            let body = content.strip_suffix(b"\r\n").unwrap_or(content);
            let (final_outcome, reusable) = match conn.message(body).await {
                Ok(resp) => (delivered(host, &resp), true),
                Err(e) => (lettre_outcome(&e, &format!("{host}: ")), answered(&e)),
            };
            for i in accepted {
                outcomes[i] = Some(final_outcome.clone());
            }
            reusable
        }
        Some(Err(e)) if !accepted.is_empty() => {
            let final_outcome = lettre_outcome(&e, &format!("{host}: "));
            for i in accepted {
                outcomes[i] = Some(final_outcome.clone());
            }
            false
        }
        // No recipient was accepted. A server that still answered a pipelined DATA with 354
        // (it should refuse it, RFC 2920) gets an empty body, which ends the data phase so
        // the QUIT that closes the connection is read as a command. Otherwise (DATA refused
        // for want of recipients, or never sent) the transaction is reset for the next message.
        Some(Ok(_)) => {
            let _ = conn.message(b"").await;
            false
        }
        Some(Err(e)) if !answered(&e) => false,
        _ => conn.command(Rset).await.is_ok(),
    };
    Ok((
        Report {
            outcomes: outcomes
                .into_iter()
                .map(|o| {
                    o.unwrap_or_else(|| Outcome::TempFail(Diagnostic::no_reply("no reply".into())))
                })
                .collect(),
            dsn_passed_on: caps.dsn,
        },
        reusable,
    ))
}

/// The NOTIFY value for the stored bits, None when the client gave none.
fn notify_param(bits: i32) -> Option<String> {
    let bits = bits as u64;
    if bits & smtp_proto::RCPT_NOTIFY_NEVER != 0 {
        return Some("NEVER".into());
    }
    let mut v = Vec::new();
    if bits & smtp_proto::RCPT_NOTIFY_SUCCESS != 0 {
        v.push("SUCCESS");
    }
    if bits & smtp_proto::RCPT_NOTIFY_FAILURE != 0 {
        v.push("FAILURE");
    }
    if bits & smtp_proto::RCPT_NOTIFY_DELAY != 0 {
        v.push("DELAY");
    }
    (!v.is_empty()).then(|| v.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Nagle's algorithm off on connections to the next hop: lettre's two writes per message
    /// would otherwise wait for a delayed ACK each time (a benchmark measured 45 ms).
    #[tokio::test]
    async fn connections_to_the_next_hop_send_without_delay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let stream = connect_nodelay("127.0.0.1", port).await.unwrap();
        assert!(stream.nodelay().unwrap());
    }

    #[test]
    fn outcomes_keep_their_wording_and_carry_the_reply() {
        let resp: Response = "250-2.0.0 Ok: queued as 4F2\r\n250 2.0.0 see you\r\n"
            .parse()
            .unwrap();
        let Outcome::Delivered(d) = delivered("mx.gov.vn", &resp) else {
            panic!("not delivered")
        };
        assert_eq!(
            d.text,
            "mx.gov.vn: 250 2.0.0 Ok: queued as 4F2 2.0.0 see you"
        );
        let reply = d.reply.as_ref().unwrap();
        assert_eq!((reply.code, reply.status.as_deref()), (250, Some("2.0.0")));

        let d = Diagnostic::gateway(553, "5.1.3", "recipient <x> cannot be sent on: bad");
        assert_eq!(d.text, "553 5.1.3 recipient <x> cannot be sent on: bad");
        assert_eq!(d.status("5.0.0"), "5.1.3");

        // A reply without an enhanced code: the fallback, whatever its text says later.
        let d = Diagnostic {
            reply: Some(UpstreamReply::new(550, "no such user".into())),
            text: "h: permanent error (550): no such user".into(),
        };
        assert_eq!(d.status("5.0.0"), "5.0.0");
        // No reply: a code quoted in the transport error's text still counts.
        let d = Diagnostic::no_reply(
            "STARTTLS with h:25: transient error (454): 4.7.0 TLS not available".into(),
        );
        assert_eq!(d.status("4.0.0"), "4.7.0");
        assert_eq!(
            Diagnostic::no_reply("connect to h:25: refused".into()).status("4.0.0"),
            "4.0.0"
        );
        assert_eq!(
            format!(
                "{:?}",
                Outcome::TempFail(Diagnostic::no_reply("no reply".into()))
            ),
            "TempFail(\"no reply\")"
        );
    }
    #[test]
    fn notify_values() {
        assert_eq!(notify_param(0), None);
        assert_eq!(
            notify_param(
                (smtp_proto::RCPT_NOTIFY_SUCCESS | smtp_proto::RCPT_NOTIFY_FAILURE) as i32
            ),
            Some("SUCCESS,FAILURE".into())
        );
        assert_eq!(
            notify_param(smtp_proto::RCPT_NOTIFY_NEVER as i32),
            Some("NEVER".into())
        );
    }
}
