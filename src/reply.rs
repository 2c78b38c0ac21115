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

/// A command smtp-proto could not parse.
impl From<&smtp_proto::Error> for Reply {
    fn from(e: &smtp_proto::Error) -> Reply {
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
}

/// A commit the queue could not make: 452 when the spool's disk is full, 451 otherwise.
impl From<&crate::queue::QueueError> for Reply {
    fn from(e: &crate::queue::QueueError) -> Reply {
        match e {
            crate::queue::QueueError::DiskFull(_) => std_replies::disk_full(),
            _ => std_replies::db_unavailable(),
        }
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

    pub fn ok() -> Reply {
        Reply::new(250, "2.0.0", "Ok")
    }
    /// SIZE announced in MAIL, or the data itself, over `max_message_size`.
    pub fn message_too_big(max: u64) -> Reply {
        Reply::new(
            552,
            "5.3.4",
            format!("Message size exceeds fixed maximum message size ({max} bytes)"),
        )
        .vi("Thư vượt quá kích thước cho phép")
    }
    /// A non-ASCII `sender` or `recipient` address without SMTPUTF8 in MAIL.
    pub fn needs_smtputf8(which: &str) -> Reply {
        Reply::new(
            553,
            "5.6.7",
            format!("Non-ASCII {which} address needs SMTPUTF8"),
        )
        .vi("Địa chỉ không phải ASCII cần SMTPUTF8")
    }
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
