//! SMTP replies: a code, an enhanced status code (RFC 3463), the English reason and, for
//! refusals, the Vietnamese text after it (SPEC.md). The catalogue of the replies given in
//! more than one place is [`std_replies`]; a policy refusal becomes a reply here too.

use std::borrow::Cow;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub status: Cow<'static, str>,
    pub text: String,
    /// Vietnamese text, appended after " / " on refusals.
    pub vi: Option<Cow<'static, str>>,
}

impl Reply {
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Cow::Borrowed(status),
            text: text.into(),
            vi: None,
        }
    }
    /// A reply whose status code comes from data (a policy file's refusal).
    pub fn with_status(code: u16, status: String, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Cow::Owned(status),
            text: text.into(),
            vi: None,
        }
    }
    pub fn vi(mut self, vi: impl Into<Cow<'static, str>>) -> Reply {
        self.vi = Some(vi.into());
        self
    }
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }
    /// Closes the connection after being sent (421 and similar).
    pub fn closes(&self) -> bool {
        self.code == 421 || self.code == 221
    }
    pub fn to_wire(&self) -> String {
        let mut line = format!("{} {} {}", self.code, self.status, self.text);
        if let Some(vi) = &self.vi {
            line.push_str(" / ");
            line.push_str(vi);
        }
        line.retain(|c| c != '\r' && c != '\n');
        line.push_str("\r\n");
        line
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.to_wire().trim_end())
    }
}

/// A refusal by a policy rule: its code and status from the policy file, the English text
/// with the rule (`… (rule secrecy.mat)`), then the Vietnamese.
impl From<&crate::policy::Refusal> for Reply {
    fn from(r: &crate::policy::Refusal) -> Reply {
        Reply::with_status(r.code, r.status.clone(), r.text_with_rule()).vi(r.text_vi.clone())
    }
}

/// Multi-line reply (EHLO): every line but the last uses `code-`.
pub fn multiline(code: u16, lines: &[String]) -> String {
    let mut out = String::new();
    for (i, l) in lines.iter().enumerate() {
        let sep = if i + 1 == lines.len() { ' ' } else { '-' };
        out.push_str(&format!("{code}{sep}{l}\r\n"));
    }
    out
}

/// The refusals used in more than one place.
pub mod std_replies {
    use super::Reply;

    pub fn bad_sequence(what: &str) -> Reply {
        Reply::new(503, "5.5.1", format!("Bad sequence of commands: {what}"))
            .vi("Sai trình tự lệnh")
    }
    pub fn too_many_errors() -> Reply {
        Reply::new(421, "4.7.0", "Too many errors, closing connection")
            .vi("Quá nhiều lỗi, đóng kết nối")
    }
    /// A whole command line (or AUTH response) did not arrive within `secs`.
    pub fn command_timeout(secs: u64) -> Reply {
        Reply::new(
            421,
            "4.4.2",
            format!("Timeout: no complete command line within {secs} s, closing connection"),
        )
        .vi("Hết thời gian chờ lệnh, đóng kết nối")
    }
    /// The DATA phase did not end within `secs`.
    pub fn data_timeout(secs: u64) -> Reply {
        Reply::new(
            421,
            "4.4.2",
            format!("Timeout: message data not complete within {secs} s, closing connection"),
        )
        .vi("Hết thời gian nhận dữ liệu thư, đóng kết nối")
    }
    /// Message data arrived slower than `rate` bytes per second.
    pub fn data_too_slow(rate: u64) -> Reply {
        Reply::new(
            421,
            "4.4.2",
            format!(
                "Timeout: message data arriving slower than {rate} bytes/s, closing connection"
            ),
        )
        .vi("Dữ liệu thư đến quá chậm, đóng kết nối")
    }
    /// Every session slot of this listener is taken (sent before the greeting).
    pub fn listener_full() -> Reply {
        Reply::new(
            421,
            "4.3.2",
            "Too many connections to this service, try again later",
        )
        .vi("Quá nhiều kết nối tới dịch vụ này, vui lòng thử lại sau")
    }
    /// The client's address holds every session slot it may (sent before the greeting).
    pub fn too_many_from_address() -> Reply {
        Reply::new(
            421,
            "4.7.0",
            "Too many connections from your address, try again later",
        )
        .vi("Quá nhiều kết nối từ địa chỉ của bạn, vui lòng thử lại sau")
    }
    pub fn shutting_down() -> Reply {
        Reply::new(421, "4.3.2", "Service shutting down, try again later")
            .vi("Dịch vụ đang dừng, vui lòng thử lại sau")
    }
    pub fn bare_lf_command() -> Reply {
        Reply::new(
            500,
            "5.5.2",
            "Bare CR or LF in command; SMTP lines must end with CRLF, closing connection",
        )
        .vi("Dòng lệnh phải kết thúc bằng CRLF")
    }
    /// A command line holding a NUL byte; the line is consumed and the session goes on.
    pub fn nul_command() -> Reply {
        Reply::new(500, "5.5.2", "NUL byte in command line refused").vi("Dòng lệnh chứa ký tự NUL")
    }
    pub fn line_too_long() -> Reply {
        Reply::new(500, "5.5.2", "Command line too long, closing connection")
            .vi("Dòng lệnh quá dài")
    }
    pub fn bare_lf_data() -> Reply {
        Reply::new(
            554,
            "5.6.0",
            "Message refused: bare CR or LF in message data (SMTP smuggling protection); lines must end with CRLF",
        )
        .vi("Thư bị từ chối: dữ liệu có ký tự CR hoặc LF đơn lẻ")
    }
    pub fn nul_data() -> Reply {
        Reply::new(554, "5.6.0", "Message refused: NUL byte in message data")
            .vi("Thư bị từ chối: dữ liệu có ký tự NUL")
    }
    pub fn disk_full() -> Reply {
        Reply::new(452, "4.3.1", "Insufficient system storage, try again later")
            .vi("Hệ thống hết dung lượng lưu trữ, vui lòng thử lại sau")
    }
    /// A message nested deeper than `[limits] max_mime_depth` (SPEC "Robustness"): no
    /// walker may follow it, and it cannot be shown to a clerk safely.
    pub fn too_deep(limit: usize) -> Reply {
        Reply::new(
            554,
            "5.6.0",
            format!("Message refused: MIME parts are nested more than {limit} levels deep"),
        )
        .vi(format!(
            "Thư bị từ chối: cấu trúc MIME lồng nhau quá {limit} cấp"
        ))
    }
    /// Processing this message failed inside the gateway (a panic, a failed task): the
    /// message is not accepted, the client may try again.
    pub fn local_error() -> Reply {
        Reply::new(451, "4.3.0", "Local error in processing, try again later")
            .vi("Lỗi xử lý tạm thời, vui lòng thử lại sau")
    }
    pub fn db_unavailable() -> Reply {
        Reply::new(451, "4.3.0", "Queue database unavailable, try again later")
            .vi("Cơ sở dữ liệu tạm thời không sẵn sàng, vui lòng thử lại sau")
    }
}
