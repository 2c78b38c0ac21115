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
    /// What exactly was wrong (English / Vietnamese), sent as a line of its own before the
    /// reply's text, so that the text stays what SPEC.md writes.
    pub detail: Option<String>,
}

impl Reply {
    pub fn new(code: u16, status: &'static str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Cow::Borrowed(status),
            text: text.into(),
            vi: None,
            detail: None,
        }
    }
    /// A reply whose status code comes from data (a policy file's refusal).
    pub fn with_status(code: u16, status: String, text: impl Into<String>) -> Reply {
        Reply {
            code,
            status: Cow::Owned(status),
            text: text.into(),
            vi: None,
            detail: None,
        }
    }
    pub fn vi(mut self, vi: impl Into<Cow<'static, str>>) -> Reply {
        self.vi = Some(vi.into());
        self
    }
    pub fn detail(mut self, detail: impl Into<String>) -> Reply {
        self.detail = Some(detail.into());
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
        let mut out = String::new();
        if let Some(detail) = &self.detail {
            let mut line = format!("{}-{} {}", self.code, self.status, detail);
            line.retain(|c| c != '\r' && c != '\n');
            out.push_str(&line);
            out.push_str("\r\n");
        }
        out.push_str(&self.last_line());
        out.push_str("\r\n");
        out
    }

    /// The reply's final line without CRLF: code, status, text and the Vietnamese.
    fn last_line(&self) -> String {
        let mut line = format!("{} {} {}", self.code, self.status, self.text);
        if let Some(vi) = &self.vi {
            line.push_str(" / ");
            line.push_str(vi);
        }
        line.retain(|c| c != '\r' && c != '\n');
        line
    }
}

impl fmt::Display for Reply {
    /// One line, for logs: the final line, then the detail line in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.last_line())?;
        match &self.detail {
            Some(d) => write!(f, " [{}]", d.replace(['\r', '\n'], "")),
            None => Ok(()),
        }
    }
}

/// A refusal by a policy rule: its code and status from the policy file, the English text
/// with the rule (`… (rule secrecy.mat)`), then the Vietnamese.
impl From<&crate::policy::Refusal> for Reply {
    fn from(r: &crate::policy::Refusal) -> Reply {
        let reply =
            Reply::with_status(r.code, r.status.clone(), r.text_with_rule()).vi(r.text_vi.clone());
        match &r.detail {
            Some(d) => reply.detail(d.clone()),
            None => reply,
        }
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

    // What each verb of a session answers (src/smtp/session/), and the intake stage's own
    // refusals of a sender (src/intake/outgoing.rs).

    pub fn auth_not_offered() -> Reply {
        Reply::new(503, "5.5.1", "AUTH is not offered on this listener")
            .vi("Cổng này không dùng xác thực")
    }

    pub fn auth_needs_tls() -> Reply {
        Reply::new(
            538,
            "5.7.11",
            "Encryption required for requested authentication mechanism: use STARTTLS first",
        )
        .vi("Cần mã hóa TLS trước khi xác thực")
    }

    pub fn auth_throttled(ip: std::net::IpAddr, secs: u64) -> Reply {
        Reply::new(
            454,
            "4.7.0",
            format!(
                "Too many failed authentication attempts from {ip}; try again in {} s",
                secs
            ),
        )
        .vi("Quá nhiều lần xác thực sai, vui lòng thử lại sau")
    }

    pub fn auth_authzid_not_user() -> Reply {
        Reply::new(
            535,
            "5.7.8",
            "Authentication credentials invalid: the authorization identity must be the user name",
        )
        .vi("Thông tin xác thực không hợp lệ: danh tính ủy quyền phải trùng tên đăng nhập")
    }

    pub fn auth_mechanism_unknown() -> Reply {
        Reply::new(
            504,
            "5.5.4",
            "Unrecognized authentication type; use PLAIN or LOGIN",
        )
        .vi("Cơ chế xác thực không được hỗ trợ")
    }

    pub fn auth_undecodable() -> Reply {
        Reply::new(501, "5.5.2", "Cannot decode the AUTH response")
            .vi("Không giải mã được dữ liệu xác thực")
    }

    pub fn auth_ok() -> Reply {
        Reply::new(235, "2.7.0", "Authentication successful")
    }

    pub fn auth_invalid() -> Reply {
        Reply::new(535, "5.7.8", "Authentication credentials invalid")
            .vi("Tên đăng nhập hoặc mật khẩu không đúng")
    }

    pub fn auth_temporary_failure() -> Reply {
        Reply::new(454, "4.7.0", "Temporary authentication failure").vi("Lỗi xác thực tạm thời")
    }

    pub fn auth_cancelled() -> Reply {
        Reply::new(501, "5.7.0", "Authentication cancelled").vi("Đã hủy xác thực")
    }

    pub fn auth_nul() -> Reply {
        Reply::new(
            501,
            "5.5.2",
            "NUL byte in AUTH response; authentication cancelled",
        )
        .vi("Dữ liệu xác thực chứa ký tự NUL, đã hủy xác thực")
    }

    pub fn no_valid_recipients() -> Reply {
        Reply::new(554, "5.5.1", "No valid recipients").vi("Không có người nhận hợp lệ")
    }

    pub fn memory_budget_spent() -> Reply {
        Reply::new(
                    452,
                    "4.3.1",
                    "Insufficient system storage: too many messages are being received at once, try again later",
                )
                .vi("Hệ thống đang nhận quá nhiều thư, vui lòng gửi lại sau")
    }

    pub fn tls_not_available() -> Reply {
        Reply::new(454, "4.7.0", "TLS not available").vi("Không có TLS")
    }

    pub fn tls_ready() -> Reply {
        Reply::new(220, "2.0.0", "Ready to start TLS")
    }

    pub fn auth_required() -> Reply {
        Reply::new(530, "5.7.0", "Authentication required").vi("Cần đăng nhập trước khi gửi thư")
    }

    pub fn source_route_refused() -> Reply {
        Reply::new(501, "5.1.7", "Source routes are not accepted in MAIL FROM")
            .vi("Không chấp nhận định tuyến nguồn")
    }

    pub fn sender_path_refused(why: &str) -> Reply {
        Reply::new(
            553,
            "5.1.7",
            format!("Sender address not accepted: {}", why),
        )
        .vi("Địa chỉ người gửi không được chấp nhận")
    }

    pub fn parameter_not_supported(name: &str) -> Reply {
        Reply::new(555, "5.5.4", format!("{name} is not supported here"))
            .vi("Tham số không được hỗ trợ")
    }

    pub fn bad_sender_domain(why: &str) -> Reply {
        Reply::new(501, "5.1.7", format!("Bad sender address syntax: {}", why))
            .vi("Địa chỉ người gửi sai cú pháp: tên miền không hợp lệ")
    }

    pub fn sender_not_owned(sender: &str) -> Reply {
        Reply::new(
            553,
            "5.7.1",
            format!("Sender address <{sender}> is not owned by the authenticated account"),
        )
        .vi("Tài khoản không được phép gửi bằng địa chỉ này")
    }

    pub fn sender_domain_not_allowed(sender: &str) -> Reply {
        Reply::new(
            553,
            "5.7.1",
            format!("Sender domain of <{sender}> is not allowed by policy"),
        )
        .vi(crate::policy::rule_text::SENDER_DOMAIN)
    }

    pub fn sender_ok() -> Reply {
        Reply::new(250, "2.1.0", "Sender ok")
    }

    pub fn relay_not_trusted(ip: std::net::IpAddr) -> Reply {
        Reply::new(
            554,
            "5.7.1",
            format!("Relay access denied: {} is not in trusted_networks", ip),
        )
        .vi("Máy gửi không thuộc mạng được phép chuyển tiếp")
    }

    pub fn too_many_idle_commands() -> Reply {
        Reply::new(
            421,
            "4.7.0",
            "Too many commands without a transaction, closing connection",
        )
        .vi("Quá nhiều lệnh không gửi thư, đóng kết nối")
    }

    pub fn lhlo_refused() -> Reply {
        Reply::new(500, "5.5.1", "LHLO is for LMTP").vi("Lệnh không hợp lệ")
    }

    pub fn bdat_not_offered() -> Reply {
        Reply::new(502, "5.5.1", "BDAT (CHUNKING) is not offered; use DATA").vi("Không hỗ trợ BDAT")
    }

    pub fn bye() -> Reply {
        Reply::new(221, "2.0.0", "Bye")
    }

    pub fn vrfy() -> Reply {
        Reply::new(
            252,
            "2.5.2",
            "Cannot VRFY user, but will accept message for local domains",
        )
    }

    pub fn expn_not_offered() -> Reply {
        Reply::new(502, "5.5.1", "EXPN is not offered").vi("Không hỗ trợ EXPN")
    }

    pub fn help() -> Reply {
        Reply::new(
            214,
            "2.0.0",
            "congvan: EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, RSET, NOOP, QUIT",
        )
    }

    pub fn not_implemented() -> Reply {
        Reply::new(502, "5.5.1", "Command not implemented").vi("Lệnh không được hỗ trợ")
    }

    pub fn relay_trick_refused(why: &str) -> Reply {
        Reply::new(550, "5.7.1", format!("Relaying denied: {}", why))
            .vi("Không cho phép chuyển tiếp")
    }

    pub fn recipient_needs_domain() -> Reply {
        Reply::new(
            550,
            "5.1.3",
            "Recipient needs a domain (use postmaster@domain)",
        )
        .vi("Địa chỉ người nhận không hợp lệ")
    }

    pub fn bad_recipient_domain(why: &str) -> Reply {
        Reply::new(
            501,
            "5.1.3",
            format!("Bad recipient address syntax: {}", why),
        )
        .vi("Địa chỉ người nhận sai cú pháp: tên miền không hợp lệ")
    }

    pub fn too_many_recipients() -> Reply {
        Reply::new(452, "4.5.3", "Too many recipients").vi("Quá nhiều người nhận")
    }

    pub fn bad_recipient_syntax() -> Reply {
        Reply::new(501, "5.1.3", "Bad recipient address syntax")
            .vi("Địa chỉ người nhận sai cú pháp")
    }

    pub fn not_a_local_domain(domain: &str) -> Reply {
        Reply::new(
            550,
            "5.7.1",
            format!("Relaying denied: {domain} is not a local domain of this gateway"),
        )
        .vi("Không cho phép chuyển tiếp tới tên miền này")
    }

    pub fn recipient_domain_not_allowed(domain: &str) -> Reply {
        Reply::new(
            550,
            "5.7.1",
            format!("Recipient domain {domain} is not allowed by policy"),
        )
        .vi(crate::policy::rule_text::RECIPIENT_DOMAIN)
    }

    pub fn recipient_ok() -> Reply {
        Reply::new(250, "2.1.5", "Recipient ok")
    }

    pub fn queued(id: &str) -> Reply {
        Reply::new(250, "2.0.0", format!("Ok: queued as {id}"))
    }

    pub fn one_from_field(found: usize) -> Reply {
        Reply::new(
            550,
            "5.6.0",
            format!(
                "Message must have exactly one From header (found {})",
                found
            ),
        )
        .vi("Thư phải có đúng một trường From")
    }

    pub fn from_not_allowed_for_account(from: &str, account: &str) -> Reply {
        Reply::new(
            550,
            "5.7.1",
            format!(
                "Header From <{from}> is not an address account {} may use",
                account
            ),
        )
        .vi("Địa chỉ From không thuộc quyền của tài khoản")
    }

    pub fn from_domain_not_allowed(from: &str) -> Reply {
        Reply::new(
            550,
            "5.7.1",
            format!("Header From <{from}> is not in an allowed domain"),
        )
        .vi(crate::policy::rule_text::SENDER_DOMAIN)
    }

    pub fn no_seal_for_domain(domain: &str) -> Reply {
        Reply::new(
                550,
                "5.7.1",
                format!("No signing identity (digital seal) is configured for {domain}; the document cannot be sent unsigned"),
            )
            .vi("Chưa cấu hình chứng thư số cho tên miền này, không thể gửi văn bản không ký số")
    }
}

#[cfg(test)]
mod tests {
    use super::std_replies::*;

    /// Every reply of the catalogue keeps SPEC's form: an enhanced status code of the reply's
    /// class (RFC 3463), a Vietnamese text after the English on every refusal, and a line
    /// within RFC 5321's 512 octets.
    #[test]
    fn catalogue_replies_keep_their_form() {
        let all = [
            ok(),
            message_too_big(30),
            needs_smtputf8("a@example.gov.vn"),
            bad_sequence("a@example.gov.vn"),
            too_many_errors(),
            command_timeout(30),
            data_timeout(30),
            data_too_slow(30),
            listener_full(),
            too_many_from_address(),
            shutting_down(),
            bare_lf_command(),
            nul_command(),
            line_too_long(),
            bare_lf_data(),
            nul_data(),
            disk_full(),
            too_deep(2),
            local_error(),
            db_unavailable(),
            auth_not_offered(),
            auth_needs_tls(),
            auth_throttled(std::net::IpAddr::from([192, 0, 2, 1]), 30),
            auth_authzid_not_user(),
            auth_mechanism_unknown(),
            auth_undecodable(),
            auth_ok(),
            auth_invalid(),
            auth_temporary_failure(),
            auth_cancelled(),
            auth_nul(),
            no_valid_recipients(),
            memory_budget_spent(),
            tls_not_available(),
            tls_ready(),
            auth_required(),
            source_route_refused(),
            sender_path_refused("a@example.gov.vn"),
            parameter_not_supported("a@example.gov.vn"),
            bad_sender_domain("a@example.gov.vn"),
            sender_not_owned("a@example.gov.vn"),
            sender_domain_not_allowed("a@example.gov.vn"),
            sender_ok(),
            relay_not_trusted(std::net::IpAddr::from([192, 0, 2, 1])),
            too_many_idle_commands(),
            lhlo_refused(),
            bdat_not_offered(),
            bye(),
            vrfy(),
            expn_not_offered(),
            help(),
            not_implemented(),
            relay_trick_refused("a@example.gov.vn"),
            recipient_needs_domain(),
            bad_recipient_domain("a@example.gov.vn"),
            too_many_recipients(),
            bad_recipient_syntax(),
            not_a_local_domain("a@example.gov.vn"),
            recipient_domain_not_allowed("a@example.gov.vn"),
            recipient_ok(),
            queued("a@example.gov.vn"),
            one_from_field(2),
            from_not_allowed_for_account("a@example.gov.vn", "a@example.gov.vn"),
            from_domain_not_allowed("a@example.gov.vn"),
            no_seal_for_domain("a@example.gov.vn"),
        ];
        for r in all {
            let wire = r.to_wire();
            let class = (r.code / 100).to_string();
            assert!(r.status.starts_with(&class), "{wire}");
            assert_eq!(r.status.split('.').count(), 3, "{wire}");
            assert!(
                !r.is_error() || r.vi.is_some(),
                "refusal without Vietnamese: {wire}"
            );
            assert!(wire.len() <= 512, "{} octets: {wire}", wire.len());
            assert!(wire.ends_with("\r\n") && !wire[..wire.len() - 2].contains(['\r', '\n']));
        }
    }
}
