//! AUTH PLAIN and LOGIN for the submission roles, after TLS, throttled per client address
//! (SPEC "SMTP"); an AUTH PLAIN authorization identity must be the user name.

use base64::Engine;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN};

use super::{Session, SessionStream};
use crate::accounts::{self, AuthOutcome};
use crate::intake::Account;
use crate::reply::std_replies;
use crate::smtp::reader::{Expired, Line};

impl<T: SessionStream> Session<T> {
    pub(super) async fn auth_command(
        &mut self,
        mechanism: u64,
        initial: String,
    ) -> std::io::Result<()> {
        if !self.role().requires_auth() {
            self.push(&std_replies::auth_not_offered());
            return Ok(());
        }
        if !self.stream.is_tls() {
            self.push(&std_replies::auth_needs_tls());
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
            self.push(&std_replies::auth_throttled(ip, left.as_secs() + 1));
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
                        crate::metrics::get().auth_failures.inc();
                        tracing::warn!(peer = %self.peer, account = %user, "AUTH PLAIN authorization identity is not the user name: refused");
                        tokio::time::sleep(delay).await;
                        self.push(&std_replies::auth_authzid_not_user());
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
                self.push(&std_replies::auth_mechanism_unknown());
                return Ok(());
            }
        };
        let Some((user, pass)) = creds else {
            self.push(&std_replies::auth_undecodable());
            return Ok(());
        };
        let permit = self.ctx.throttle.checks.acquire().await.ok();
        let outcome = accounts::authenticate(&self.ctx.intake.db, &user, &pass).await;
        drop(permit);
        match outcome {
            Ok(AuthOutcome::Ok { allowed_from }) => {
                self.ctx.throttle.succeeded(ip);
                tracing::info!(peer = %self.peer, account = %user, "authenticated");
                self.auth = Some(Account {
                    name: user,
                    allowed_from,
                });
                self.push(&std_replies::auth_ok());
            }
            Ok(AuthOutcome::Invalid) => {
                let delay = self.ctx.throttle.delay(ip);
                crate::metrics::get().auth_failures.inc();
                tracing::warn!(peer = %self.peer, account = %user, "authentication failed");
                tokio::time::sleep(delay).await;
                self.push(&std_replies::auth_invalid());
            }
            Err(e) => {
                tracing::error!(error = %e, "account lookup failed");
                self.push(&std_replies::auth_temporary_failure());
            }
        }
        Ok(())
    }

    /// Sends a 334 challenge and reads the client's line; None when cancelled (reply sent).
    async fn challenge(&mut self, prompt: &str) -> std::io::Result<Option<String>> {
        self.out
            .extend_from_slice(format!("334 {prompt}\r\n").as_bytes());
        self.flush().await?;
        let limits = &self.ctx.config().limits;
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
                    self.push(&std_replies::auth_cancelled());
                    return Ok(None);
                }
                Ok(Some(s))
            }
            Line::Nul => {
                self.push(&std_replies::auth_nul());
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
