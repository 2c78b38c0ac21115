//! One SMTP session, split by verb. The session decides what a client may do in its role
//! (SPEC.md "Outgoing mail" 1, "Incoming mail" 1), reads the message strictly, classifies it
//! before any byte is written, and answers 250 only after the queue has committed it.

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine;
use smtp_proto::{Request, AUTH_LOGIN, AUTH_PLAIN};
use tokio::io::AsyncWriteExt;

use super::listener::ServerCtx;
use super::reader::{DataOutcome, DataPace, Expired, Line, SmtpReader};
use super::reply::{multiline, std_replies, Reply};
use super::stream::Stream;
use crate::accounts::{self, AuthOutcome};
use crate::address;
use crate::config::{ListenerConfig, Role};
use crate::mime;
use crate::policy;
use crate::policy::records::Reservation;
use crate::queue::{Direction, NewMessage, NewRecipient, QueueError, Route};

struct Authenticated {
    name: String,
    allowed_from: Vec<String>,
}

#[derive(Default)]
struct Transaction {
    sender: String,
    body_8bit: bool,
    smtputf8: bool,
    ret: Option<String>,
    envid: Option<String>,
    rcpts: Vec<NewRecipient>,
}

pub struct Session {
    ctx: Arc<ServerCtx>,
    listener: ListenerConfig,
    peer: SocketAddr,
    stream: Stream,
    reader: SmtpReader,
    out: Vec<u8>,
    helo: Option<String>,
    esmtp: bool,
    auth: Option<Authenticated>,
    tx: Option<Transaction>,
    errors: u32,
    idle_commands: u32,
    closing: bool,
}

/// What a handler wants the loop to do next.
enum Next {
    Continue,
    StartTls,
    Close,
}

impl Session {
    pub fn new(
        ctx: Arc<ServerCtx>,
        listener: ListenerConfig,
        peer: SocketAddr,
        stream: Stream,
    ) -> Self {
        Session {
            ctx,
            listener,
            peer,
            stream,
            reader: SmtpReader::new(),
            out: Vec::with_capacity(1024),
            helo: None,
            esmtp: false,
            auth: None,
            tx: None,
            errors: 0,
            idle_commands: 0,
            closing: false,
        }
    }

    fn role(&self) -> Role {
        self.listener.role
    }

    fn push(&mut self, r: &Reply) {
        if r.is_error() {
            self.errors += 1;
            tracing::debug!(peer = %self.peer, reply = %r, "refused");
        }
        self.out.extend_from_slice(r.to_wire().as_bytes());
        if r.closes() {
            self.closing = true;
        }
    }

    /// Sends the replies waiting; a client that does not take them within the command
    /// timeout is dropped (it cannot hold the session open by not reading).
    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.out.is_empty() {
            let limit = self.ctx.config.limits.command_timeout();
            let (stream, out) = (&mut self.stream, &self.out);
            let write = async {
                stream.write_all(out).await?;
                stream.flush().await
            };
            match tokio::time::timeout(limit, write).await {
                Ok(r) => r?,
                Err(_) => {
                    tracing::info!(peer = %self.peer, "client did not read its replies in time: closing");
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "reply not read by the client in time",
                    ));
                }
            }
            self.out.clear();
        }
        Ok(())
    }

    pub async fn run(mut self) {
        let role = self.role();
        let trusted = self.listener.is_trusted(self.peer.ip());
        tracing::info!(peer = %self.peer, role = role.as_str(), "connect");
        if role == Role::Relay && !trusted {
            let r = Reply::new(
                554,
                "5.7.1",
                format!(
                    "Relay access denied: {} is not in trusted_networks",
                    self.peer.ip()
                ),
            )
            .vi("Máy gửi không thuộc mạng được phép chuyển tiếp");
            self.push(&r);
            let _ = self.flush().await;
            tracing::warn!(peer = %self.peer, "relay connection from untrusted address refused");
            return;
        }
        self.out.extend_from_slice(
            format!("220 {} ESMTP congvan ready\r\n", self.ctx.config.hostname).as_bytes(),
        );
        if let Err(e) = self.serve().await {
            tracing::debug!(peer = %self.peer, error = %e, "connection ended");
        }
        // TLS sends close_notify: bounded, for a client that stopped reading.
        let _ =
            tokio::time::timeout(std::time::Duration::from_secs(5), self.stream.shutdown()).await;
        tracing::info!(peer = %self.peer, "disconnect");
    }

    async fn serve(&mut self) -> std::io::Result<()> {
        let limits = self.ctx.config.limits.clone();
        let command_timeout = limits.command_timeout();
        let mut shutdown = self.ctx.shutdown.clone();
        loop {
            if !self.reader.has_pending() || self.closing {
                self.flush().await?;
            }
            if self.closing {
                return Ok(());
            }
            if self.errors > limits.max_errors {
                self.push(&std_replies::too_many_errors());
                continue;
            }
            // At shutdown a session waiting for its next command is told to come back later;
            // nothing of an unfinished transaction was committed. DATA in progress finishes.
            if *shutdown.borrow() {
                self.push(&std_replies::shutting_down());
                continue;
            }
            // The whole line must be in by this deadline, however its bytes trickle in.
            let deadline = tokio::time::Instant::now() + command_timeout;
            let line = if !self.reader.has_pending() {
                tokio::select! {
                    l = self.reader.read_line(&mut self.stream, limits.max_line_length, deadline) => l,
                    _ = shutdown.changed() => continue,
                }
            } else {
                self.reader
                    .read_line(&mut self.stream, limits.max_line_length, deadline)
                    .await
            };
            let line = match line {
                Ok(l) => l,
                Err(e) if Expired::of(&e).is_some() => {
                    tracing::info!(peer = %self.peer, "no complete command line in time: closing");
                    self.push(&std_replies::command_timeout(command_timeout.as_secs()));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let next = match line {
                Line::Eof => return Ok(()),
                Line::BareLf => {
                    tracing::warn!(peer = %self.peer, "bare CR/LF in command: closing");
                    self.push(&std_replies::bare_lf_command());
                    Next::Close
                }
                Line::Nul => {
                    // The line ended with its CRLF: refused alone, the session stays in sync.
                    tracing::warn!(peer = %self.peer, "NUL byte in command refused");
                    self.push(&std_replies::nul_command());
                    Next::Continue
                }
                Line::TooLong => {
                    self.push(&std_replies::line_too_long());
                    Next::Close
                }
                Line::Ok(bytes) => self.command(&bytes).await?,
            };
            match next {
                Next::Continue => {}
                Next::Close => self.closing = true,
                Next::StartTls => self.start_tls().await?,
            }
        }
    }

    async fn command(&mut self, line: &[u8]) -> std::io::Result<Next> {
        // smtp-proto wants the line to end in LF; it does (CRLF). Command names and ESMTP
        // keywords are case-insensitive there.
        let req = Request::parse(&mut line.iter());
        let req = match req {
            Ok(r) => r,
            Err(e) => {
                let r = parse_error_reply(&e);
                self.push(&r);
                return Ok(Next::Continue);
            }
        };
        let is_transaction = matches!(
            req,
            Request::Mail { .. } | Request::Rcpt { .. } | Request::Data
        );
        if !is_transaction {
            self.idle_commands += 1;
            if self.idle_commands > self.ctx.config.limits.max_commands_before_mail {
                self.push(
                    &Reply::new(
                        421,
                        "4.7.0",
                        "Too many commands without a transaction, closing connection",
                    )
                    .vi("Quá nhiều lệnh không gửi thư, đóng kết nối"),
                );
                return Ok(Next::Continue);
            }
        }
        match req {
            Request::Ehlo { host } => self.ehlo(host.to_string(), true),
            Request::Helo { host } => self.ehlo(host.to_string(), false),
            Request::Lhlo { .. } => {
                self.push(&Reply::new(500, "5.5.1", "LHLO is for LMTP").vi("Lệnh không hợp lệ"))
            }
            Request::StartTls => return Ok(self.starttls_command()),
            Request::Auth {
                mechanism,
                initial_response,
            } => {
                self.auth_command(mechanism, initial_response.to_string())
                    .await?
            }
            Request::Mail { from } => self.mail(line, from.into_owned()),
            Request::Rcpt { to } => self.rcpt(line, to.into_owned()),
            Request::Data => return self.data().await,
            Request::Bdat { .. } => self.push(
                &Reply::new(502, "5.5.1", "BDAT (CHUNKING) is not offered; use DATA")
                    .vi("Không hỗ trợ BDAT"),
            ),
            Request::Rset => {
                self.tx = None;
                self.push(&Reply::new(250, "2.0.0", "Ok"));
            }
            Request::Noop { .. } => self.push(&Reply::new(250, "2.0.0", "Ok")),
            Request::Quit => {
                self.push(&Reply::new(221, "2.0.0", "Bye"));
                return Ok(Next::Close);
            }
            Request::Vrfy { .. } => self.push(&Reply::new(
                252,
                "2.5.2",
                "Cannot VRFY user, but will accept message for local domains",
            )),
            Request::Expn { .. } => {
                self.push(&Reply::new(502, "5.5.1", "EXPN is not offered").vi("Không hỗ trợ EXPN"))
            }
            Request::Help { .. } => self.push(&Reply::new(
                214,
                "2.0.0",
                "congvan: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT",
            )),
            Request::Etrn { .. } | Request::Atrn { .. } | Request::Burl { .. } => self.push(
                &Reply::new(502, "5.5.1", "Command not implemented").vi("Lệnh không được hỗ trợ"),
            ),
        }
        Ok(Next::Continue)
    }

    fn ehlo(&mut self, host: String, esmtp: bool) {
        self.helo = Some(host.clone());
        self.esmtp = esmtp;
        self.tx = None;
        let name = self.ctx.config.hostname.clone();
        if !esmtp {
            self.out
                .extend_from_slice(format!("250 {name}\r\n").as_bytes());
            return;
        }
        let mut lines = vec![
            format!("{name} greets {host}"),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.ctx.config.max_message_size),
            "8BITMIME".to_string(),
            "SMTPUTF8".to_string(),
            "ENHANCEDSTATUSCODES".to_string(),
            "DSN".to_string(),
        ];
        let tls_on = self.stream.is_tls();
        if !tls_on && self.ctx.tls.is_some() && self.role() != Role::Submissions {
            lines.push("STARTTLS".to_string());
        }
        if self.role().requires_auth() && tls_on && self.auth.is_none() {
            lines.push("AUTH PLAIN LOGIN".to_string());
        }
        self.out
            .extend_from_slice(multiline(250, &lines).as_bytes());
    }

    fn starttls_command(&mut self) -> Next {
        if self.stream.is_tls() {
            self.push(&std_replies::bad_sequence("TLS is already active"));
            return Next::Continue;
        }
        if self.ctx.tls.is_none() {
            self.push(&Reply::new(454, "4.7.0", "TLS not available").vi("Không có TLS"));
            return Next::Continue;
        }
        self.push(&Reply::new(220, "2.0.0", "Ready to start TLS"));
        Next::StartTls
    }

    async fn start_tls(&mut self) -> std::io::Result<()> {
        self.flush().await?;
        let dropped = self.reader.discard();
        if dropped > 0 {
            tracing::warn!(peer = %self.peer, bytes = dropped, "discarded plaintext pipelined after STARTTLS");
        }
        let Some(cfg) = self.ctx.tls.clone() else {
            return Ok(());
        };
        let plain = match std::mem::replace(&mut self.stream, Stream::Closed) {
            Stream::Plain(s) => s,
            other => {
                self.stream = other;
                return Ok(());
            }
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        let handshake = std::time::Duration::from_secs(self.ctx.config.limits.tls_handshake_secs);
        let tls = tokio::time::timeout(handshake, acceptor.accept(plain))
            .await
            .map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timeout")
            })??;
        self.stream = Stream::Tls(Box::new(tls));
        // RFC 3207: forget everything learnt before TLS.
        self.helo = None;
        self.esmtp = false;
        self.auth = None;
        self.tx = None;
        Ok(())
    }

    async fn auth_command(&mut self, mechanism: u64, initial: String) -> std::io::Result<()> {
        if !self.role().requires_auth() {
            self.push(
                &Reply::new(503, "5.5.1", "AUTH is not offered on this listener")
                    .vi("Cổng này không dùng xác thực"),
            );
            return Ok(());
        }
        if !self.stream.is_tls() {
            self.push(
                &Reply::new(538, "5.7.11", "Encryption required for requested authentication mechanism: use STARTTLS first")
                    .vi("Cần mã hóa TLS trước khi xác thực"),
            );
            return Ok(());
        }
        if self.helo.is_none() {
            self.push(&std_replies::bad_sequence("send EHLO first"));
            return Ok(());
        }
        if self.auth.is_some() {
            self.push(&std_replies::bad_sequence("already authenticated"));
            return Ok(());
        }
        if self.tx.is_some() {
            self.push(&std_replies::bad_sequence(
                "AUTH not allowed during a mail transaction",
            ));
            return Ok(());
        }
        let ip = self.peer.ip();
        if let Err(left) = self.ctx.throttle.begin(ip) {
            self.push(
                &Reply::new(
                    454,
                    "4.7.0",
                    format!(
                        "Too many failed authentication attempts from {ip}; try again in {} s",
                        left.as_secs() + 1
                    ),
                )
                .vi("Quá nhiều lần xác thực sai, vui lòng thử lại sau"),
            );
            return Ok(());
        }
        let creds = match mechanism {
            AUTH_PLAIN => {
                let resp = if initial.is_empty() {
                    match self.challenge("").await? {
                        Some(r) => r,
                        None => return Ok(()),
                    }
                } else {
                    initial
                };
                match decode_plain(&resp) {
                    Plain::Credentials(user, pass) => Some((user, pass)),
                    Plain::Malformed => None,
                    Plain::AuthzidNotUser { user } => {
                        // Acting for another identity is not offered: refused as bad
                        // credentials (the attempt counts), the password is not checked.
                        let delay = self.ctx.throttle.delay(ip);
                        tracing::warn!(peer = %self.peer, account = %user, "AUTH PLAIN authorization identity is not the user name: refused");
                        tokio::time::sleep(delay).await;
                        self.push(
                            &Reply::new(
                                535,
                                "5.7.8",
                                "Authentication credentials invalid: the authorization identity must be the user name",
                            )
                            .vi("Thông tin xác thực không hợp lệ: danh tính ủy quyền phải trùng tên đăng nhập"),
                        );
                        return Ok(());
                    }
                }
            }
            AUTH_LOGIN => {
                let user = if initial.is_empty() {
                    match self.challenge("VXNlcm5hbWU6").await? {
                        Some(r) => r,
                        None => return Ok(()),
                    }
                } else {
                    initial
                };
                let Some(pass) = self.challenge("UGFzc3dvcmQ6").await? else {
                    return Ok(());
                };
                match (b64(&user), b64(&pass)) {
                    (Some(u), Some(p)) => Some((u, p)),
                    _ => None,
                }
            }
            _ => {
                self.push(
                    &Reply::new(
                        504,
                        "5.5.4",
                        "Unrecognized authentication type; use PLAIN or LOGIN",
                    )
                    .vi("Cơ chế xác thực không được hỗ trợ"),
                );
                return Ok(());
            }
        };
        let Some((user, pass)) = creds else {
            self.push(
                &Reply::new(501, "5.5.2", "Cannot decode the AUTH response")
                    .vi("Không giải mã được dữ liệu xác thực"),
            );
            return Ok(());
        };
        let permit = self.ctx.throttle.checks.acquire().await.ok();
        let outcome = accounts::authenticate(&self.ctx.db, &user, &pass).await;
        drop(permit);
        match outcome {
            Ok(AuthOutcome::Ok { allowed_from }) => {
                self.ctx.throttle.succeeded(ip);
                tracing::info!(peer = %self.peer, account = %user, "authenticated");
                self.auth = Some(Authenticated {
                    name: user,
                    allowed_from,
                });
                self.push(&Reply::new(235, "2.7.0", "Authentication successful"));
            }
            Ok(AuthOutcome::Invalid) => {
                let delay = self.ctx.throttle.delay(ip);
                tracing::warn!(peer = %self.peer, account = %user, "authentication failed");
                tokio::time::sleep(delay).await;
                self.push(
                    &Reply::new(535, "5.7.8", "Authentication credentials invalid")
                        .vi("Tên đăng nhập hoặc mật khẩu không đúng"),
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "account lookup failed");
                self.push(
                    &Reply::new(454, "4.7.0", "Temporary authentication failure")
                        .vi("Lỗi xác thực tạm thời"),
                );
            }
        }
        Ok(())
    }

    /// Sends a 334 challenge and reads the client's line; None when cancelled (reply sent).
    async fn challenge(&mut self, prompt: &str) -> std::io::Result<Option<String>> {
        self.out
            .extend_from_slice(format!("334 {prompt}\r\n").as_bytes());
        self.flush().await?;
        let limits = &self.ctx.config.limits;
        let command_timeout = limits.command_timeout();
        let deadline = tokio::time::Instant::now() + command_timeout;
        let line = match self
            .reader
            .read_line(&mut self.stream, limits.max_line_length, deadline)
            .await
        {
            Ok(l) => l,
            Err(e) if Expired::of(&e).is_some() => {
                tracing::info!(peer = %self.peer, "no AUTH response in time: closing");
                self.push(&std_replies::command_timeout(command_timeout.as_secs()));
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        match line {
            Line::Ok(l) => {
                let s = String::from_utf8_lossy(&l).trim_end().to_string();
                if s == "*" {
                    self.push(
                        &Reply::new(501, "5.7.0", "Authentication cancelled").vi("Đã hủy xác thực"),
                    );
                    return Ok(None);
                }
                Ok(Some(s))
            }
            Line::Nul => {
                self.push(
                    &Reply::new(
                        501,
                        "5.5.2",
                        "NUL byte in AUTH response; authentication cancelled",
                    )
                    .vi("Dữ liệu xác thực chứa ký tự NUL, đã hủy xác thực"),
                );
                Ok(None)
            }
            Line::BareLf | Line::TooLong => {
                self.push(&std_replies::bare_lf_command());
                self.closing = true;
                Ok(None)
            }
            Line::Eof => {
                self.closing = true;
                Ok(None)
            }
        }
    }

    fn mail(&mut self, line: &[u8], from: smtp_proto::MailFrom<String>) {
        if self.helo.is_none() {
            self.push(&std_replies::bad_sequence("send EHLO or HELO first"));
            return;
        }
        if self.tx.is_some() {
            self.push(&std_replies::bad_sequence("nested MAIL command"));
            return;
        }
        let role = self.role();
        if role.requires_auth() && self.auth.is_none() {
            self.push(
                &Reply::new(530, "5.7.0", "Authentication required")
                    .vi("Cần đăng nhập trước khi gửi thư"),
            );
            return;
        }
        let sender = from.address.trim().to_string();
        let raw = String::from_utf8_lossy(line);
        // On every listener: no source route, no `%` or `!` relaying in the sender.
        if let Err(why) = address::check_reverse_path(address::raw_path_of(&raw), &sender) {
            tracing::warn!(peer = %self.peer, sender = %sender, why = why.describe(), "sender path refused");
            let reply = match why {
                address::PathRefusal::SourceRoute => {
                    Reply::new(501, "5.1.7", "Source routes are not accepted in MAIL FROM")
                        .vi("Không chấp nhận định tuyến nguồn")
                }
                other => Reply::new(
                    553,
                    "5.1.7",
                    format!("Sender address not accepted: {}", other.describe()),
                )
                .vi("Địa chỉ người gửi không được chấp nhận"),
            };
            self.push(&reply);
            return;
        }
        if from.size > 0 && from.size as u64 > self.ctx.config.max_message_size {
            self.push(
                &Reply::new(
                    552,
                    "5.3.4",
                    format!(
                        "Message size exceeds fixed maximum message size ({} bytes)",
                        self.ctx.config.max_message_size
                    ),
                )
                .vi("Thư vượt quá kích thước cho phép"),
            );
            return;
        }
        // Parameters of extensions we do not announce are refused, not silently ignored
        // (REQUIRETLS in particular would otherwise be a promise we do not keep).
        for (flag, name) in [
            (smtp_proto::MAIL_REQUIRETLS, "REQUIRETLS"),
            (smtp_proto::MAIL_BODY_BINARYMIME, "BODY=BINARYMIME"),
        ] {
            if from.flags & flag != 0 {
                self.push(
                    &Reply::new(555, "5.5.4", format!("{name} is not supported here"))
                        .vi("Tham số không được hỗ trợ"),
                );
                return;
            }
        }
        let smtputf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
        if !sender.is_ascii() && !smtputf8 {
            self.push(
                &Reply::new(553, "5.6.7", "Non-ASCII sender address needs SMTPUTF8")
                    .vi("Địa chỉ không phải ASCII cần SMTPUTF8"),
            );
            return;
        }
        if let Some((_, domain)) = sender.rsplit_once('@') {
            if let Err(why) = address::check_domain(domain) {
                self.push(
                    &Reply::new(
                        501,
                        "5.1.7",
                        format!("Bad sender address syntax: {}", why.describe()),
                    )
                    .vi("Địa chỉ người gửi sai cú pháp: tên miền không hợp lệ"),
                );
                return;
            }
        }
        match role {
            Role::Submission | Role::Submissions => {
                let allowed = self
                    .auth
                    .as_ref()
                    .map(|a| a.allowed_from.clone())
                    .unwrap_or_default();
                if sender.is_empty() || !address::allowed_by(&allowed, &sender) {
                    self.push(
                        &Reply::new(553, "5.7.1", format!("Sender address <{sender}> is not owned by the authenticated account"))
                            .vi("Tài khoản không được phép gửi bằng địa chỉ này"),
                    );
                    return;
                }
            }
            Role::Relay => {
                // The null sender (the office server's bounces) is allowed.
                if !sender.is_empty() && !self.relay_may_send_as(&sender) {
                    self.push(
                        &Reply::new(
                            553,
                            "5.7.1",
                            format!("Sender domain of <{sender}> is not allowed by policy"),
                        )
                        .vi("Tên miền người gửi không được phép"),
                    );
                    return;
                }
            }
            Role::Inbound => {}
        }
        let ret = if from.flags & smtp_proto::MAIL_RET_FULL != 0 {
            Some("FULL".to_string())
        } else if from.flags & smtp_proto::MAIL_RET_HDRS != 0 {
            Some("HDRS".to_string())
        } else {
            None
        };
        self.tx = Some(Transaction {
            sender: sender.to_ascii_lowercase_domain(),
            body_8bit: from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0,
            smtputf8,
            ret,
            envid: from.env_id.clone(),
            rcpts: Vec::new(),
        });
        // `idle_commands` is reset at the end of DATA, not here: MAIL and RSET in turn
        // must not keep a session open for ever.
        self.push(&Reply::new(250, "2.1.0", "Sender ok"));
    }

    fn rcpt(&mut self, line: &[u8], to: smtp_proto::RcptTo<String>) {
        let Some(tx) = self.tx.as_ref() else {
            self.push(&std_replies::bad_sequence("send MAIL first"));
            return;
        };
        let smtputf8 = tx.smtputf8;
        let count = tx.rcpts.len();
        let raw = String::from_utf8_lossy(line);
        if let Some(p) = address::raw_path_of(&raw) {
            if let Err(why) = address::check_forward_path(p) {
                tracing::warn!(peer = %self.peer, path = %p, "relay trick refused");
                self.push(
                    &Reply::new(550, "5.7.1", format!("Relaying denied: {}", why.describe()))
                        .vi("Không cho phép chuyển tiếp"),
                );
                return;
            }
        }
        let mut addr = to.address.trim().to_string();
        // RFC 5321 4.5.1: <postmaster> without a domain must be accepted.
        let raw_path = address::raw_path_of(&raw)
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if addr.is_empty() && raw_path == "postmaster" {
            if let Some(d) = self.ctx.config.inbound.local_domains.first() {
                addr = format!("postmaster@{d}");
            }
        }
        if addr.is_empty() {
            self.push(
                &Reply::new(
                    550,
                    "5.1.3",
                    "Recipient needs a domain (use postmaster@domain)",
                )
                .vi("Địa chỉ người nhận không hợp lệ"),
            );
            return;
        }
        if !addr.is_ascii() && !smtputf8 {
            self.push(
                &Reply::new(553, "5.6.7", "Non-ASCII recipient address needs SMTPUTF8")
                    .vi("Địa chỉ không phải ASCII cần SMTPUTF8"),
            );
            return;
        }
        // Refused here, not bounced later: `user@domain.` is not `user@domain`.
        let domain_part = addr.rsplit_once('@').map_or("", |(_, d)| d);
        if let Err(why) = address::check_domain(domain_part) {
            self.push(
                &Reply::new(
                    501,
                    "5.1.3",
                    format!("Bad recipient address syntax: {}", why.describe()),
                )
                .vi("Địa chỉ người nhận sai cú pháp: tên miền không hợp lệ"),
            );
            return;
        }
        if count >= self.ctx.config.limits.max_recipients {
            self.push(&Reply::new(452, "4.5.3", "Too many recipients").vi("Quá nhiều người nhận"));
            return;
        }
        let Some(domain) = address::domain_of(&addr) else {
            self.push(
                &Reply::new(501, "5.1.3", "Bad recipient address syntax")
                    .vi("Địa chỉ người nhận sai cú pháp"),
            );
            return;
        };
        let local = self.ctx.config.inbound.is_local_domain(&domain);
        let route = match (self.role(), local) {
            (_, true) => Route::Inbound,
            (Role::Inbound, false) => {
                self.push(
                    &Reply::new(
                        550,
                        "5.7.1",
                        format!("Relaying denied: {domain} is not a local domain of this gateway"),
                    )
                    .vi("Không cho phép chuyển tiếp tới tên miền này"),
                );
                return;
            }
            (_, false) => {
                if !self.ctx.policy.get().domains().recipient_allowed(&domain) {
                    self.push(
                        &Reply::new(
                            550,
                            "5.7.1",
                            format!("Recipient domain {domain} is not allowed by policy"),
                        )
                        .vi("Tên miền người nhận không được phép theo chính sách"),
                    );
                    return;
                }
                Route::Outbound
            }
        };
        let notify = (to.flags
            & (smtp_proto::RCPT_NOTIFY_SUCCESS
                | smtp_proto::RCPT_NOTIFY_FAILURE
                | smtp_proto::RCPT_NOTIFY_DELAY
                | smtp_proto::RCPT_NOTIFY_NEVER)) as i32;
        if let Some(tx) = self.tx.as_mut() {
            tx.rcpts.push(NewRecipient {
                address: addr.to_ascii_lowercase_domain(),
                route,
                notify,
                // smtp-proto accepts only the rfc822 type and gives the decoded address.
                orcpt: to.orcpt.as_ref().map(|a| format!("rfc822;{a}")),
            });
        }
        self.push(&Reply::new(250, "2.1.5", "Recipient ok"));
    }

    async fn data(&mut self) -> std::io::Result<Next> {
        match &self.tx {
            None => {
                self.push(&std_replies::bad_sequence("send MAIL first"));
                return Ok(Next::Continue);
            }
            Some(tx) if tx.rcpts.is_empty() => {
                self.push(
                    &Reply::new(554, "5.5.1", "No valid recipients")
                        .vi("Không có người nhận hợp lệ"),
                );
                return Ok(Next::Continue);
            }
            _ => {}
        }
        self.out
            .extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
        self.flush().await?;
        let max = self.ctx.config.max_message_size as usize;
        let limits = &self.ctx.config.limits;
        let (data_secs, min_rate) = (limits.data_timeout_secs, limits.min_data_rate);
        let pace = DataPace::new(limits.data_timeout(), limits.command_timeout(), min_rate);
        // Inbound messages draw on their own half of the budget as well as on the whole.
        let mut budgets = Vec::with_capacity(2);
        if self.role() == Role::Inbound {
            budgets.extend(self.ctx.inbound_data_budget.clone());
        }
        budgets.extend(self.ctx.data_budget.clone());
        // `_held` keeps the message's share of the memory budget until it has been handled.
        let (outcome, _held) = match self
            .reader
            .read_data(&mut self.stream, max, pace, &budgets)
            .await
        {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(Next::Close),
            Err(e) if Expired::of(&e).is_some() => {
                // Nothing of the message is kept; 421 closes the session.
                let sender = self.tx.take().map(|t| t.sender).unwrap_or_default();
                let reply = if Expired::of(&e) == Some(Expired::DataRate) {
                    std_replies::data_too_slow(min_rate)
                } else {
                    std_replies::data_timeout(data_secs)
                };
                tracing::warn!(peer = %self.peer, %sender, reply = %reply, "DATA deadline passed: closing");
                self.push(&reply);
                return Ok(Next::Continue);
            }
            Err(e) => return Err(e),
        };
        let Some(tx) = self.tx.take() else {
            return Ok(Next::Continue);
        };
        self.idle_commands = 0;
        let reply = match outcome {
            DataOutcome::BareLf => {
                tracing::warn!(peer = %self.peer, sender = %tx.sender, "message with bare CR/LF refused");
                std_replies::bare_lf_data()
            }
            DataOutcome::Nul => {
                tracing::warn!(peer = %self.peer, sender = %tx.sender, "message with a NUL byte refused");
                std_replies::nul_data()
            }
            DataOutcome::TooBig => Reply::new(
                552,
                "5.3.4",
                format!("Message size exceeds fixed maximum message size ({max} bytes)"),
            )
            .vi("Thư vượt quá kích thước cho phép"),
            DataOutcome::OverBudget => {
                tracing::warn!(peer = %self.peer, sender = %tx.sender, "message refused for now: the memory budget for messages being received is spent ([limits] max_data_memory_mb)");
                Reply::new(
                    452,
                    "4.3.1",
                    "Insufficient system storage: too many messages are being received at once, try again later",
                )
                .vi("Hệ thống đang nhận quá nhiều thư, vui lòng gửi lại sau")
            }
            DataOutcome::Ok(data) => self.accept(tx, data).await,
        };
        self.push(&reply);
        Ok(Next::Continue)
    }

    /// End of DATA: check and classify from the bytes in memory, then commit.
    async fn accept(&mut self, tx: Transaction, data: Vec<u8>) -> Reply {
        let outgoing = self.role() != Role::Inbound;
        // SPEC "Incoming mail" 1: our own Authentication-Results go before anything else.
        let data = if outgoing {
            data
        } else {
            crate::smime::verify::strip_own_results(&data, &self.ctx.config.hostname)
        };
        let headers = mime::read_headers(&data);
        if outgoing {
            if headers.from_fields != 1 || headers.from.is_empty() {
                return Reply::new(
                    550,
                    "5.6.0",
                    format!(
                        "Message must have exactly one From header (found {})",
                        headers.from_fields
                    ),
                )
                .vi("Thư phải có đúng một trường From");
            }
            if let Some(a) = &self.auth {
                if let Some(bad) = headers
                    .from
                    .iter()
                    .find(|f| !address::allowed_by(&a.allowed_from, f))
                {
                    return Reply::new(
                        550,
                        "5.7.1",
                        format!(
                            "Header From <{bad}> is not an address account {} may use",
                            a.name
                        ),
                    )
                    .vi("Địa chỉ From không thuộc quyền của tài khoản");
                }
            } else if self.role() == Role::Relay {
                if let Some(bad) = headers.from.iter().find(|f| !self.relay_may_send_as(f)) {
                    return Reply::new(
                        550,
                        "5.7.1",
                        format!("Header From <{bad}> is not in an allowed domain"),
                    )
                    .vi("Tên miền người gửi không được phép");
                }
            }
        }
        // Classify and decide before anything is written (SPEC: a refused confidential
        // message leaves no content anywhere). Parsing a large message runs off the reactor.
        let rules = self.ctx.policy.get();
        let classified = {
            let rules = rules.clone();
            tokio::task::spawn_blocking(move || {
                let c = policy::classify_message(&rules.rules.classification, &data);
                (c, data)
            })
            .await
        };
        let Ok((classification, data)) = classified else {
            tracing::error!(peer = %self.peer, "classification task failed");
            return Reply::new(451, "4.3.0", "Local error in processing, try again later")
                .vi("Lỗi xử lý tạm thời, vui lòng thử lại sau");
        };
        let accepted_at = time::OffsetDateTime::now_utc();
        let flow = if outgoing {
            policy::Flow::Outgoing
        } else {
            policy::Flow::Incoming
        };
        let decision = policy::decide(&rules, &classification, accepted_at, flow);
        let id = crate::util::new_queue_id();
        for conflict in &classification.conflicts {
            tracing::warn!(queue_id = %id, peer = %self.peer, %conflict, "classification sources disagree");
        }
        if let Some(refusal) = decision.refusal() {
            drop(data);
            return self
                .refuse_by_policy(&tx, &classification, &headers, refusal)
                .await;
        }
        // Never unsigned: mail that leaves the office needs a seal for its From domain.
        if outgoing && tx.rcpts.iter().any(|r| r.route == Route::Outbound) {
            let domain = headers
                .from
                .first()
                .and_then(|f| address::domain_of(f))
                .unwrap_or_default();
            match crate::pki::store::SealCache::has_identity(&self.ctx.db, &domain).await {
                Ok(true) => {}
                Ok(false) => {
                    tracing::warn!(peer = %self.peer, %domain, "refused: no signing identity for the From domain");
                    return Reply::new(
                        550,
                        "5.7.1",
                        format!("No signing identity (digital seal) is configured for {domain}; the document cannot be sent unsigned"),
                    )
                    .vi("Chưa cấu hình chứng thư số cho tên miền này, không thể gửi văn bản không ký số");
                }
                Err(e) => {
                    tracing::error!(error = %e, "identity lookup failed: 451");
                    return std_replies::db_unavailable();
                }
            }
        }
        let office = headers.from.first().and_then(|f| address::domain_of(f));
        let mut reserved = None;
        if let (true, true, Some(number), Some(office)) = (
            outgoing,
            rules.rules.number.unique_per_year,
            classification.number.as_deref(),
            office.as_deref(),
        ) {
            let year = classification
                .signed_date
                .unwrap_or_else(|| policy::calendar::vietnam_date(accepted_at))
                .year();
            match policy::records::reserve_number(
                &self.ctx.db,
                office,
                year,
                number,
                &id,
                classification.resend,
            )
            .await
            {
                Ok(Reservation::Reserved { id }) => reserved = Some(id),
                Ok(Reservation::Resend { first_queue_id }) => {
                    tracing::info!(queue_id = %id, number, first = %first_queue_id, "resend of an issued document number")
                }
                Ok(Reservation::Duplicate { first_queue_id }) => {
                    drop(data);
                    tracing::info!(queue_id = %id, number, first = %first_queue_id, "document number already issued");
                    let refusal = policy::deadline::duplicate_refusal(number, office, year);
                    return self
                        .refuse_by_policy(&tx, &classification, &headers, &refusal)
                        .await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "issued-number check failed: 451");
                    return std_replies::db_unavailable();
                }
            }
        }
        let deadline_at = decision
            .deadline
            .as_ref()
            .map(|d| (d.at.unix_timestamp_nanos() / 1_000_000) as i64);
        if decision.late {
            tracing::warn!(queue_id = %id, rule = %decision.rule, deadline = ?decision.deadline.as_ref().map(|d| d.date), "document accepted past its dispatch deadline (late)");
        }
        // The queue's urgency column is the delivery lane; the policy may put a level in
        // another level's lane (the shipped profiles do not).
        let classification = policy::Classification {
            urgency: decision.lane,
            ..classification
        };
        // Incoming: verify the signature and apply the profile's [incoming] action.
        let (data, verified) = if outgoing {
            (data, None)
        } else {
            let domain = headers
                .from
                .first()
                .or(Some(&tx.sender))
                .and_then(|f| address::domain_of(f))
                .unwrap_or_default();
            match super::incoming::verify(&self.ctx, data, accepted_at, &rules, &domain).await {
                Ok((data, v)) => (data, Some(v)),
                Err(rejected) => {
                    // A temporary refusal (451) is not a refusal of the document yet.
                    if let (Some(smime), 500..) = (rejected.refused, rejected.reply.code) {
                        let rule = format!("incoming.{}", smime.result);
                        let mut record = self.refused_record(&tx, &classification, &headers, rule);
                        record.reason = rejected.reply.text.clone();
                        record.smime = Some(smime);
                        self.register_refusal(&record).await;
                    }
                    return rejected.reply;
                }
            }
        };
        let mut trace = self.received_header(&id, &tx);
        if let Some(v) = &verified {
            trace.insert_str(0, &v.header);
        }
        let quarantined = verified.as_ref().and_then(|v| v.hold_reason.clone());
        let tx_sender = tx.sender.clone();
        let meta = NewMessage {
            direction: if self.role() == Role::Inbound {
                Direction::In
            } else {
                Direction::Out
            },
            sender: tx.sender.clone(),
            recipients: tx.rcpts,
            header_from: headers.from.first().cloned().unwrap_or_default(),
            subject: headers.subject.clone(),
            classification,
            deadline_at,
            listener: self.role().as_str().to_string(),
            client_ip: self.peer.ip().to_string(),
            helo: self.helo.clone().unwrap_or_default(),
            account: self.auth.as_ref().map(|a| a.name.clone()),
            dsn_ret: tx.ret,
            dsn_envid: tx.envid,
            body_8bit: tx.body_8bit || mime::has_8bit(&data),
            smtputf8: tx.smtputf8,
            generated: false,
            hold_reason: quarantined.clone(),
            smime: verified.map(|v| v.record),
            rule: Some(decision.rule.clone()),
            number_reservation: reserved,
            // The register's day is the day the deadline was counted from.
            accepted_at: Some((accepted_at.unix_timestamp_nanos() / 1_000_000) as i64),
        };
        let result = self
            .ctx
            .queue
            .enqueue_with_id(id, meta, trace.into_bytes(), data)
            .await;
        // A committed message confirmed its number in the same transaction; one the queue
        // refused frees it again.
        if let (Some(reservation), Err(_)) = (reserved, &result) {
            if let Err(e) = policy::records::release_number(&self.ctx.db, reservation).await {
                // Settled at the next start-up from the queue's own rows.
                tracing::warn!(error = %e, "issued-number reservation left unsettled");
            }
        }
        if let (Ok(id), Some(reason)) = (&result, &quarantined) {
            use crate::register::audit::{self, Action, Event};
            let details = serde_json::json!({
                "automatic": true,
                "quarantine": true,
                "direction": "in",
                "reason": reason,
                "sender": tx_sender,
                "client_ip": self.peer.ip().to_string(),
            });
            audit::record_or_log(
                &self.ctx.db,
                &Event::new("daemon", Action::QueueHold, id.as_str(), details),
            )
            .await;
        }
        match result {
            Ok(id) => Reply::new(250, "2.0.0", format!("Ok: queued as {id}")),
            Err(QueueError::DiskFull(e)) => {
                tracing::error!(error = %e, "spool disk full: 452");
                std_replies::disk_full()
            }
            Err(e) => {
                tracing::error!(error = %e, "queue unavailable: 451");
                std_replies::db_unavailable()
            }
        }
    }

    /// A policy refusal at end of DATA: the message's bytes are already dropped; only its
    /// metadata is logged (never the subject or body) and written in the register.
    async fn refuse_by_policy(
        &self,
        tx: &Transaction,
        c: &policy::Classification,
        headers: &mime::HeaderInfo,
        refusal: &policy::Refusal,
    ) -> Reply {
        self.audit_refusal(tx, c, refusal).await;
        tracing::warn!(
            peer = %self.peer,
            listener = self.role().as_str(),
            account = self.auth.as_ref().map(|a| a.name.as_str()).unwrap_or("-"),
            sender = %tx.sender,
            rcpts = tx.rcpts.len(),
            urgency = c.urgency.ascii(),
            secrecy = c.secrecy.ascii(),
            number = c.number.as_deref().unwrap_or("-"),
            rule = %refusal.rule,
            "document refused by policy; its content was discarded"
        );
        let mut record = self.refused_record(tx, c, headers, refusal.rule.clone());
        record.reason = refusal.text_with_rule();
        self.register_refusal(&record).await;
        Reply::with_status(
            refusal.code,
            refusal.status.clone(),
            refusal.text_with_rule(),
        )
        .vi(refusal.text_vi.clone())
    }

    /// What the register keeps of a document refused in this session: envelope, header From
    /// and classification, never the subject or the content.
    fn refused_record(
        &self,
        tx: &Transaction,
        c: &policy::Classification,
        headers: &mime::HeaderInfo,
        rule: String,
    ) -> crate::register::Refused {
        crate::register::Refused {
            direction: if self.role() == Role::Inbound {
                Direction::In
            } else {
                Direction::Out
            },
            listener: self.role().as_str().to_string(),
            client_ip: self.peer.ip().to_string(),
            account: self.auth.as_ref().map(|a| a.name.clone()),
            sender: tx.sender.clone(),
            header_from: headers.from.first().cloned().unwrap_or_default(),
            recipients: tx.rcpts.iter().map(|r| r.address.clone()).collect(),
            urgency: c.urgency,
            secrecy: c.secrecy,
            number: c.number.clone(),
            rule,
            reason: String::new(),
            smime: None,
        }
    }

    async fn register_refusal(&self, record: &crate::register::Refused) {
        match crate::register::book::record_refused(&self.ctx.db, record).await {
            Ok(id) => tracing::info!(register_id = %id, rule = %record.rule, "refusal registered"),
            // Still refused: the document must not go out whether or not it was recorded.
            Err(e) => tracing::error!(error = %e, rule = %record.rule, "refusal not registered"),
        }
    }

    /// The audit entry of a policy refusal: metadata only (rule, sender, recipient count,
    /// listener, account, client address), never the subject or body. A failure to write it
    /// is logged; the document is refused all the same.
    async fn audit_refusal(
        &self,
        tx: &Transaction,
        c: &policy::Classification,
        refusal: &policy::Refusal,
    ) {
        use crate::register::audit::{self, Action, Event};
        let action = if refusal.rule.starts_with("secrecy.") {
            Action::DocumentRefusedConfidential
        } else {
            Action::DocumentRefused
        };
        let account = self.auth.as_ref().map(|a| a.name.clone());
        let client_ip = self.peer.ip().to_string();
        let actor = account.clone().unwrap_or_else(|| client_ip.clone());
        let details = serde_json::json!({
            "rule": refusal.rule,
            "secrecy": c.secrecy.ascii(),
            "sender": tx.sender,
            "recipients": tx.rcpts.len(),
            "listener": self.role().as_str(),
            "account": account,
            "client_ip": client_ip,
        });
        audit::record_or_log(
            &self.ctx.db,
            &Event::new(&actor, action, refusal.rule.clone(), details),
        )
        .await;
    }

    /// The relay role accepts any sender in a policy-allowed or local domain (envelope and
    /// header From alike).
    fn relay_may_send_as(&self, addr: &str) -> bool {
        address::domain_of(addr).is_some_and(|d| {
            self.ctx.policy.get().domains().sender_allowed(&d)
                || self.ctx.config.inbound.is_local_domain(&d)
        })
    }

    fn received_header(&self, id: &str, tx: &Transaction) -> String {
        let tls = self.stream.is_tls();
        let proto = match (self.esmtp, tls, self.auth.is_some()) {
            (false, _, _) => "SMTP",
            (true, true, true) => "ESMTPSA",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, false, false) => "ESMTP",
        };
        let helo: String = self
            .helo
            .clone()
            .unwrap_or_default()
            .chars()
            .filter(|c| c.is_ascii_graphic())
            .take(255)
            .collect();
        let auth = self
            .auth
            .as_ref()
            .map(|a| format!(" (authenticated as {})", a.name))
            .unwrap_or_default();
        let first_rcpt = if tx.rcpts.len() == 1 {
            format!("\r\n\tfor <{}>", tx.rcpts[0].address)
        } else {
            String::new()
        };
        format!(
            "Received: from {helo} ([{ip}]){auth}\r\n\tby {host} (congvan) with {proto} id {id}{first_rcpt};\r\n\t{date}\r\n",
            ip = self.peer.ip(),
            host = self.ctx.config.hostname,
            date = crate::util::rfc5322_now(),
        )
    }
}

trait LowerDomain {
    fn to_ascii_lowercase_domain(&self) -> String;
}

impl LowerDomain for String {
    /// The domain part is case-insensitive; the local part is kept as written.
    fn to_ascii_lowercase_domain(&self) -> String {
        match self.rsplit_once('@') {
            Some((l, d)) => format!("{l}@{}", d.to_ascii_lowercase()),
            None => self.clone(),
        }
    }
}

fn b64(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

/// What an AUTH PLAIN response (RFC 4616) says.
#[derive(Debug, PartialEq, Eq)]
enum Plain {
    /// User name and password; the authorization identity was empty or the user name.
    Credentials(String, String),
    /// An authorization identity other than the user name (byte for byte: account names
    /// are case-sensitive, so `VanThu` is not `vanthu`).
    AuthzidNotUser {
        user: String,
    },
    Malformed,
}

/// AUTH PLAIN: authzid NUL authcid NUL password.
fn decode_plain(s: &str) -> Plain {
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(s.trim()) else {
        return Plain::Malformed;
    };
    let mut parts = bytes.split(|b| *b == 0);
    let (Some(authz), Some(user), Some(pass), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Plain::Malformed;
    };
    let (Ok(user), Ok(pass)) = (std::str::from_utf8(user), std::str::from_utf8(pass)) else {
        return Plain::Malformed;
    };
    if !authz.is_empty() && authz != user.as_bytes() {
        return Plain::AuthzidNotUser {
            user: user.to_string(),
        };
    }
    Plain::Credentials(user.to_string(), pass.to_string())
}

fn parse_error_reply(e: &smtp_proto::Error) -> Reply {
    use smtp_proto::Error as E;
    match e {
        E::UnknownCommand => {
            Reply::new(500, "5.5.1", "Command unrecognized").vi("Lệnh không nhận ra")
        }
        E::InvalidSenderAddress => Reply::new(501, "5.1.7", "Bad sender address syntax")
            .vi("Địa chỉ người gửi sai cú pháp"),
        E::InvalidRecipientAddress => Reply::new(501, "5.1.3", "Bad recipient address syntax")
            .vi("Địa chỉ người nhận sai cú pháp"),
        E::SyntaxError { syntax } => {
            Reply::new(501, "5.5.4", format!("Syntax: {syntax}")).vi("Sai cú pháp lệnh")
        }
        E::InvalidParameter { param } => {
            Reply::new(501, "5.5.4", format!("Invalid parameter {param}"))
                .vi("Tham số không hợp lệ")
        }
        E::UnsupportedParameter { param } => {
            Reply::new(555, "5.5.4", format!("Unsupported parameter {param}"))
                .vi("Tham số không được hỗ trợ")
        }
        _ => Reply::new(500, "5.5.2", "Syntax error").vi("Sai cú pháp"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn plain_decoding() {
        let enc = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let ok = Plain::Credentials("vanthu".into(), "pw".into());
        assert_eq!(decode_plain(&enc(b"\0vanthu\0pw")), ok);
        assert_eq!(decode_plain(&enc(b"vanthu\0vanthu\0pw")), ok);
        for other in [&b"other"[..], b"VanThu", b"vanthu ", b"\xff"] {
            let e = enc(&[other, b"\0vanthu\0pw"].concat());
            assert_eq!(
                decode_plain(&e),
                Plain::AuthzidNotUser {
                    user: "vanthu".into()
                },
                "{other:?}"
            );
        }
        assert_eq!(decode_plain("!!"), Plain::Malformed);
        assert_eq!(decode_plain(&enc(b"\0vanthu")), Plain::Malformed);
        assert_eq!(decode_plain(&enc(b"\0vanthu\0pw\0x")), Plain::Malformed);
    }
}
