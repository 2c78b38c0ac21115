//! One SMTP session: the protocol only. The command loop and its limits live here; each
//! verb has its own file (Stalwart's `inbound/` layout): [`ehlo`] (and STARTTLS), [`auth`],
//! [`mail`], [`rcpt`], [`data`]. At end of DATA the message goes to the intake stage
//! (`crate::intake`), which decides and commits; the session sends its reply.
//!
//! A session runs over any [`SessionStream`]: a TCP socket in the daemon, an in-memory pipe
//! when a test drives it with raw bytes.

mod auth;
mod data;
mod ehlo;
mod mail;
mod rcpt;

use std::net::SocketAddr;
use std::sync::Arc;

use smtp_proto::Request;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::context::ServerCtx;
use super::reader::{Expired, Line, SmtpReader};
use super::stream::Stream;
use crate::config::{ListenerConfig, Role};
use crate::intake::{Account, Envelope};
use crate::reply::{std_replies, Reply};

/// The transport under a session (plain, before any TLS).
pub trait SessionStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> SessionStream for T {}

pub struct Session<T = TcpStream> {
    ctx: Arc<ServerCtx>,
    listener: ListenerConfig,
    peer: SocketAddr,
    stream: Stream<T>,
    reader: SmtpReader,
    out: Vec<u8>,
    helo: Option<String>,
    esmtp: bool,
    auth: Option<Account>,
    /// The mail transaction under way (after MAIL).
    tx: Option<Envelope>,
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

impl<T: SessionStream> Session<T> {
    pub fn new(
        ctx: Arc<ServerCtx>,
        listener: ListenerConfig,
        peer: SocketAddr,
        stream: Stream<T>,
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
            let limit = self.ctx.config().limits.command_timeout();
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
            let r = std_replies::relay_not_trusted(self.peer.ip());
            self.push(&r);
            let _ = self.flush().await;
            tracing::warn!(peer = %self.peer, "relay connection from untrusted address refused");
            return;
        }
        self.out.extend_from_slice(
            format!("220 {} ESMTP congvan ready\r\n", self.ctx.config().hostname).as_bytes(),
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
        let limits = self.ctx.config().limits.clone();
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
                let r = Reply::from(&e);
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
            if self.idle_commands > self.ctx.config().limits.max_commands_before_mail {
                self.push(&std_replies::too_many_idle_commands());
                return Ok(Next::Continue);
            }
        }
        match req {
            Request::Ehlo { host } => self.ehlo(host.to_string(), true),
            Request::Helo { host } => self.ehlo(host.to_string(), false),
            Request::Lhlo { .. } => self.push(&std_replies::lhlo_refused()),
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
            Request::Bdat { .. } => self.push(&std_replies::bdat_not_offered()),
            Request::Rset => {
                self.tx = None;
                self.push(&std_replies::ok());
            }
            Request::Noop { .. } => self.push(&std_replies::ok()),
            Request::Quit => {
                self.push(&std_replies::bye());
                return Ok(Next::Close);
            }
            Request::Vrfy { .. } => self.push(&std_replies::vrfy()),
            Request::Expn { .. } => self.push(&std_replies::expn_not_offered()),
            Request::Help { .. } => self.push(&std_replies::help()),
            Request::Etrn { .. } | Request::Atrn { .. } | Request::Burl { .. } => {
                self.push(&std_replies::not_implemented())
            }
        }
        Ok(Next::Continue)
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
