//! Delivery status notifications (RFC 3464): multipart/report with a human-readable part in
//! English and Vietnamese, the machine-readable message/delivery-status, and the original
//! headers (or the whole message when the client asked RET=FULL).

use crate::util::rfc5322_now;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Failed,
    Delayed,
    Delivered,
    Relayed,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Failed => "failed",
            Action::Delayed => "delayed",
            Action::Delivered => "delivered",
            Action::Relayed => "relayed",
        }
    }
}

#[derive(Debug, Clone)]
pub struct DsnRecipient {
    pub address: String,
    pub orcpt: Option<String>,
    pub action: Action,
    /// The enhanced status, e.g. "5.1.1".
    pub status: String,
    pub diagnostic: Option<String>,
}

pub struct DsnInput<'a> {
    pub hostname: &'a str,
    pub queue_id: &'a str,
    pub original_sender: &'a str,
    pub envid: Option<&'a str>,
    pub arrival_date: String,
    pub recipients: Vec<DsnRecipient>,
    /// RET=FULL: include the whole message, else only its header.
    pub return_full: bool,
    pub original: &'a [u8],
    /// The document it speaks of, as its register has it: number (số, ký hiệu) and
    /// subject (trích yếu). The notice leads with them, in Vietnamese, then in English.
    pub number: Option<&'a str>,
    pub subject: &'a str,
}

/// "văn bản số 26/CT-UBND «Về việc…»": the document as a clerk names it (the subject cut
/// to 80 characters), or None when the message has neither number nor subject.
pub(crate) fn document_vi(number: Option<&str>, subject: &str) -> Option<String> {
    let subject = crate::util::cut(subject.trim(), 80);
    match (number.filter(|n| !n.is_empty()), subject.is_empty()) {
        (Some(n), false) => Some(format!("Văn bản số {n} «{subject}»")),
        (Some(n), true) => Some(format!("Văn bản số {n}")),
        (None, false) => Some(format!("Văn bản «{subject}»")),
        (None, true) => None,
    }
}

/// The enhanced status code near the start of a text, if any ("550 5.1.1 ..." → 5.1.1).
/// A delivery outcome carries its reply's code already ([`super::transport::Diagnostic`]):
/// this is for text without a reply (a transport error that quotes one).
pub fn status_of(reply: &str, fallback: &str) -> String {
    reply
        .split_whitespace()
        .take(8)
        .find_map(enhanced_code)
        .unwrap_or(fallback)
        .to_string()
}

/// The word as an enhanced status code (RFC 3463: class 2, 4 or 5, then two numbers),
/// trailing punctuation left off ("5.1.1:" → 5.1.1).
pub fn enhanced_code(word: &str) -> Option<&str> {
    let w = word.trim_end_matches(|c: char| !c.is_ascii_digit());
    let parts: Vec<&str> = w.split('.').collect();
    (parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && parts[1..]
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit())))
    .then_some(w)
}

fn header_section(msg: &[u8]) -> &[u8] {
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &msg[..p + 2],
        None => msg,
    }
}

/// Builds the DSN as CRLF message bytes.
pub fn build(input: &DsnInput<'_>) -> Vec<u8> {
    let boundary = format!("dsn-{}", crate::util::new_queue_id());
    let any_failed = input.recipients.iter().any(|r| r.action == Action::Failed);
    // (Vietnamese subject, English subject, English lead, Vietnamese lead)
    let (subject_vi, subject_en, en, vi) = if any_failed {
        (
            "không gửi được",
            "Undelivered Mail Returned to Sender",
            "Your message could not be delivered to one or more recipients.",
            "không gửi được tới một hoặc nhiều người nhận.",
        )
    } else if input.recipients.iter().any(|r| r.action == Action::Delayed) {
        (
            "đang bị chậm",
            "Delayed Mail (still being retried)",
            "Your message has not been delivered yet; delivery is still being attempted.",
            "chưa được gửi; hệ thống vẫn đang thử gửi lại.",
        )
    } else {
        (
            "đã gửi thành công",
            "Successful Mail Delivery Report",
            "Your message was delivered or relayed to the recipients below.",
            "đã được gửi tới những người nhận dưới đây.",
        )
    };
    let document = document_vi(input.number, input.subject);
    let subject = format!(
        "{} {subject_vi} / {subject_en}",
        document.as_deref().unwrap_or("Văn bản")
    );
    let lead_vi = format!("{} {vi}", document.as_deref().unwrap_or("Văn bản của bạn"));
    let about_en = match input.number.filter(|n| !n.is_empty()) {
        Some(n) => format!(
            "Document: {n}, \"{}\"\r\n",
            crate::util::cut(input.subject.trim(), 80)
        ),
        None if !input.subject.trim().is_empty() => {
            format!(
                "Document: \"{}\"\r\n",
                crate::util::cut(input.subject.trim(), 80)
            )
        }
        None => String::new(),
    };
    let mut out = String::new();
    out.push_str(&format!(
        "From: Mail Delivery System <MAILER-DAEMON@{}>\r\n",
        input.hostname
    ));
    out.push_str(&format!("To: <{}>\r\n", input.original_sender));
    out.push_str(&format!(
        "Subject: {}\r\n",
        crate::mime::encode_header_value(&subject)
    ));
    out.push_str(&format!("Date: {}\r\n", rfc5322_now()));
    out.push_str(&format!(
        "Message-ID: <dsn.{}@{}>\r\n",
        crate::util::new_queue_id(),
        input.hostname
    ));
    out.push_str("Auto-Submitted: auto-replied\r\n");
    out.push_str("MIME-Version: 1.0\r\n");
    out.push_str(&format!(
        "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"{boundary}\"\r\n\r\n"
    ));
    out.push_str("This is a MIME-encapsulated delivery status notification.\r\n\r\n");

    out.push_str(&format!("--{boundary}\r\n"));
    out.push_str(
        "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n",
    );
    out.push_str(&format!(
        "{lead_vi}\r\n\r\n{en}\r\n{about_en}\r\nQueue ID: {}\r\n\r\n",
        input.queue_id
    ));
    for r in &input.recipients {
        out.push_str(&format!(
            "<{}>: {} ({})\r\n",
            r.address,
            r.action.as_str(),
            r.diagnostic.as_deref().unwrap_or(&r.status)
        ));
    }
    out.push_str("\r\n");

    out.push_str(&format!("--{boundary}\r\n"));
    out.push_str("Content-Type: message/delivery-status\r\n\r\n");
    out.push_str(&format!("Reporting-MTA: dns; {}\r\n", input.hostname));
    if let Some(envid) = input.envid {
        out.push_str(&format!("Original-Envelope-Id: {}\r\n", xtext(envid)));
    }
    out.push_str(&format!("X-Congvan-Queue-ID: {}\r\n", input.queue_id));
    out.push_str(&format!("Arrival-Date: {}\r\n", input.arrival_date));
    for r in &input.recipients {
        out.push_str("\r\n");
        if let Some(o) = &r.orcpt {
            let (kind, addr) = o.split_once(';').unwrap_or(("rfc822", o));
            out.push_str(&format!("Original-Recipient: {kind};{}\r\n", xtext(addr)));
        }
        out.push_str(&format!("Final-Recipient: rfc822; {}\r\n", r.address));
        out.push_str(&format!("Action: {}\r\n", r.action.as_str()));
        out.push_str(&format!("Status: {}\r\n", r.status));
        if let Some(d) = &r.diagnostic {
            let clean: String = d
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect();
            out.push_str(&format!("Diagnostic-Code: smtp; {clean}\r\n"));
        }
    }
    out.push_str("\r\n");

    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
    // The original goes back whole only when the notice stays within every walker's depth
    // bound (it adds two levels); otherwise its header section does.
    let full = input.return_full
        && crate::nesting::check(input.original, crate::nesting::MAX_DEPTH_CEILING - 2).is_ok();
    if full {
        bytes.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\n");
        bytes.extend_from_slice(input.original);
        if !input.original.ends_with(b"\r\n") {
            bytes.extend_from_slice(b"\r\n");
        }
    } else {
        bytes.extend_from_slice(b"Content-Type: text/rfc822-headers\r\n\r\n");
        bytes.extend_from_slice(header_section(input.original));
    }
    bytes.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    bytes
}

/// RFC 3461 xtext: ENVID and ORCPT come from the client decoded, so they are encoded again
/// before they go into a DSN (a raw CR LF would inject header fields).
pub fn xtext(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(b as char);
        } else {
            out.push_str(&format!("+{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn status_extraction() {
        assert_eq!(status_of("550 5.1.1 no such user", "5.0.0"), "5.1.1");
        assert_eq!(
            status_of("h: permanent error (550): 5.7.1 denied", "5.0.0"),
            "5.7.1"
        );
        assert_eq!(status_of("connection refused", "4.4.1"), "4.4.1");
    }

    #[test]
    fn a_notice_leads_with_the_documents_number_and_subject_in_vietnamese() {
        let d = build(&DsnInput {
            hostname: "gw",
            queue_id: "q1",
            original_sender: "vanthu@dev.gov.vn",
            envid: None,
            arrival_date: String::new(),
            recipients: vec![DsnRecipient {
                address: "b@x.gov.vn".into(),
                orcpt: None,
                action: Action::Delayed,
                status: "4.4.1".into(),
                diagnostic: None,
            }],
            return_full: false,
            original: b"Subject: x\r\n\r\nb\r\n",
            number: Some("26/CT-UBND"),
            subject: "Về việc phòng, chống lụt bão",
        });
        let s = String::from_utf8(d).unwrap();
        // The Subject field, unfolded.
        let start = s.find("\r\nSubject: ").unwrap() + "\r\nSubject: ".len();
        let mut end = start;
        while let Some(i) = s[end..].find("\r\n") {
            end += i + 2;
            if !s[end..].starts_with(' ') {
                break;
            }
        }
        let decoded = crate::address::decode_encoded_words(&s[start..end - 2].replace("\r\n", ""));
        assert!(
            decoded.starts_with(
                "Văn bản số 26/CT-UBND «Về việc phòng, chống lụt bão» đang bị chậm / Delayed Mail"
            ),
            "{decoded}"
        );
        let text = s.split("8bit\r\n\r\n").nth(1).unwrap();
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some("Văn bản số 26/CT-UBND «Về việc phòng, chống lụt bão» chưa được gửi; hệ thống vẫn đang thử gửi lại.")
        );
        assert_eq!(lines.next(), Some(""));
        assert!(lines
            .next()
            .unwrap()
            .starts_with("Your message has not been delivered yet"));
        assert_eq!(
            lines.next(),
            Some("Document: 26/CT-UBND, \"Về việc phòng, chống lụt bão\"")
        );
    }

    #[test]
    fn envid_and_orcpt_cannot_inject_fields() {
        let d = build(&DsnInput {
            hostname: "gw",
            queue_id: "q",
            original_sender: "a@dev.gov.vn",
            envid: Some("x\r\nAction: delivered"),
            arrival_date: String::new(),
            recipients: vec![DsnRecipient {
                address: "b@x.gov.vn".into(),
                orcpt: Some("rfc822;b@x.gov.vn\r\nStatus: 2.0.0".into()),
                action: Action::Failed,
                status: "5.1.1".into(),
                diagnostic: None,
            }],
            return_full: false,
            original: b"Subject: x\r\n\r\nb\r\n",
            number: None,
            subject: "",
        });
        let s = String::from_utf8(d).unwrap();
        assert!(
            s.contains("Original-Envelope-Id: x+0D+0AAction:+20delivered\r\n"),
            "{s}"
        );
        assert!(s.contains("Original-Recipient: rfc822;b@x.gov.vn+0D+0AStatus:+202.0.0\r\n"));
        assert!(!s.contains("\r\nAction: delivered"));
    }

    #[test]
    fn dsn_shape() {
        let original = b"From: a@dev.gov.vn\r\nSubject: x\r\n\r\nbody\r\n";
        let d = build(&DsnInput {
            hostname: "gw.test",
            queue_id: "q1",
            original_sender: "a@dev.gov.vn",
            envid: Some("E1"),
            arrival_date: "Mon, 1 Jan 2026 00:00:00 +0700".into(),
            recipients: vec![DsnRecipient {
                address: "b@x.gov.vn".into(),
                orcpt: Some("rfc822;b@x.gov.vn".into()),
                action: Action::Failed,
                status: "5.1.1".into(),
                diagnostic: Some("550 5.1.1 unknown".into()),
            }],
            return_full: false,
            original,
            number: None,
            subject: "",
        });
        let s = String::from_utf8(d).unwrap();
        assert!(s.contains("report-type=delivery-status"));
        assert!(s.contains("Original-Envelope-Id: E1\r\n"));
        assert!(s.contains(
            "Final-Recipient: rfc822; b@x.gov.vn\r\nAction: failed\r\nStatus: 5.1.1\r\n"
        ));
        assert!(s.contains("text/rfc822-headers\r\n\r\nFrom: a@dev.gov.vn\r\nSubject: x\r\n\r\n--"));
        assert!(!s.contains("\nbody"));
        assert!(!s.replace("\r\n", "").contains('\n'));
    }

    /// RET=FULL of a message nested deeper than the walkers go returns its header section
    /// only, so the notice itself can be sealed; 10 and 1,000 times the default limit.
    #[test]
    fn deep_original_goes_back_as_headers() {
        use crate::nesting::attack::nested_message;
        for n in [500, 50_000, 3] {
            let original = nested_message("rfc822", n, "a@dev.gov.vn", "b@x.gov.vn");
            let d = build(&DsnInput {
                hostname: "gw.test",
                queue_id: "q1",
                original_sender: "a@dev.gov.vn",
                envid: None,
                arrival_date: "Mon, 1 Jan 2026 00:00:00 +0700".into(),
                recipients: vec![DsnRecipient {
                    address: "b@x.gov.vn".into(),
                    orcpt: None,
                    action: Action::Failed,
                    status: "5.1.1".into(),
                    diagnostic: None,
                }],
                return_full: true,
                original: &original,
                number: None,
                subject: "",
            });
            let depth = crate::nesting::check(&d, crate::nesting::MAX_DEPTH_CEILING);
            if n == 3 {
                assert_eq!(depth, Ok(5), "the original goes back whole");
            } else {
                assert_eq!(depth, Ok(1), "{n}");
                assert!(String::from_utf8_lossy(&d).contains("text/rfc822-headers"));
            }
        }
    }
}
