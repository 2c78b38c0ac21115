//! EHLO/HELO (what the listener offers) and STARTTLS (RFC 3207: the switch, and everything
//! learnt before it forgotten, pipelined plaintext discarded).

use super::{Next, Session, SessionStream};
use crate::config::Role;
use crate::reply::{multiline, std_replies};
use crate::smtp::stream::Stream;

impl<T: SessionStream> Session<T> {
    pub(super) fn ehlo(&mut self, host: String, esmtp: bool) {
        self.helo = Some(host.clone());
        self.esmtp = esmtp;
        self.tx = None;
        let name = self.ctx.config().hostname.clone();
        if !esmtp {
            self.out
                .extend_from_slice(format!("250 {name}\r\n").as_bytes());
            return;
        }
        let mut lines = vec![
            format!("{name} greets {host}"),
            "PIPELINING".to_string(),
            format!("SIZE {}", self.ctx.config().max_message_size),
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

    pub(super) fn starttls_command(&mut self) -> Next {
        if self.stream.is_tls() {
            self.push(&std_replies::bad_sequence("TLS is already active"));
            return Next::Continue;
        }
        if self.ctx.tls.is_none() {
            self.push(&std_replies::tls_not_available());
            return Next::Continue;
        }
        self.push(&std_replies::tls_ready());
        Next::StartTls
    }

    pub(super) async fn start_tls(&mut self) -> std::io::Result<()> {
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
        let handshake = std::time::Duration::from_secs(self.ctx.config().limits.tls_handshake_secs);
        let tls = tokio::time::timeout(handshake, acceptor.accept(plain))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timeout"))
            .and_then(|r| r)
            .inspect_err(|_| {
                crate::metrics::get().tls_failures.inc();
            })?;
        self.stream = Stream::Tls(Box::new(tls));
        // RFC 3207: forget everything learnt before TLS.
        self.helo = None;
        self.esmtp = false;
        self.auth = None;
        self.tx = None;
        Ok(())
    }
}
