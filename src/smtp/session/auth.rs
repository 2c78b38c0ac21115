//! AUTH PLAIN and LOGIN for the submission roles, after TLS, throttled per client address
//! (SPEC "SMTP"); an AUTH PLAIN authorization identity must be the user name.

use base64::Engine;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN};

use super::{Session, SessionStream};
use crate::accounts::{self, AuthOutcome};
use crate::intake::Account;
use crate::reply::{std_replies, Reply};
use crate::smtp::reader::{Expired, Line};

impl<T: SessionStream> Session<T> {
    pub(super) async fn auth_command(
        &mut self,
        mechanism: u64,
        initial: String,
    ) -> std::io::Result<()> {
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
