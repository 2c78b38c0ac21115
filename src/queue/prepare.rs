//! Prepares an outgoing message before it is sealed: the urgency marks of SPEC.md (the
//! level's tag at the start of the Subject, Priority, Importance, X-Priority) and a Date and
//! Message-ID when the client left them out, since both are protected by the signature.
//! DKIM-Signature fields are removed: the seal rewrites the body (multipart/signed, 7-bit
//! canonical form) and the protected header fields, so no DKIM signature made before it could
//! verify; DKIM signing belongs to a signer placed after congvan.

use crate::policy::levels::fold;
use crate::policy::Urgency;

/// The Subject tag for an urgent level, as clerks write it on the envelope.
pub fn subject_tag(u: Urgency) -> Option<&'static str> {
    match u {
        Urgency::Thuong => None,
        Urgency::Khan => Some("[KHẨN]"),
        Urgency::ThuongKhan => Some("[THƯỢNG KHẨN]"),
        Urgency::HoaToc => Some("[HỎA TỐC]"),
        Urgency::HoaTocHenGio => Some("[HỎA TỐC HẸN GIỜ]"),
    }
}

struct Field {
    /// Byte range of the whole field, continuation lines included.
    start: usize,
    end: usize,
    name: String,
}

fn fields(head: &[u8]) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let mut pos = 0;
    while pos < head.len() {
        let line_end = head[pos..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|p| pos + p + 2)
            .unwrap_or(head.len());
        let continuation = matches!(head[pos], b' ' | b'\t');
        match (continuation, out.last_mut()) {
            (true, Some(last)) => last.end = line_end,
            _ => {
                let line = &head[pos..line_end];
                let name = line
                    .iter()
                    .position(|b| *b == b':')
                    .map(|c| {
                        String::from_utf8_lossy(&line[..c])
                            .trim()
                            .to_ascii_lowercase()
                    })
                    .unwrap_or_default();
                out.push(Field {
                    start: pos,
                    end: line_end,
                    name,
                });
            }
        }
        pos = line_end;
    }
    out
}

/// Returns the message with marks and missing fields added. `subject` is the decoded Subject.
pub fn prepare(
    raw: &[u8],
    urgency: Urgency,
    subject: &str,
    hostname: &str,
    queue_id: &str,
) -> Vec<u8> {
    let head_len = crate::mime::header_section(raw).len();
    let (head, body) = raw.split_at(head_len);
    let fs = fields(head);
    let has = |n: &str| fs.iter().any(|f| f.name == n);
    let mut out = Vec::with_capacity(raw.len() + 256);
    let tag = subject_tag(urgency);
    let needs_tag = tag.is_some_and(|t| !fold(subject).contains(&fold(t)));
    let mut replaced_subject = false;
    let mut dkim_removed = 0usize;
    for f in &fs {
        if f.name == "dkim-signature" {
            dkim_removed += 1;
            continue;
        }
        if f.name == "subject" && needs_tag && !replaced_subject {
            let new = format!("{} {}", tag.unwrap_or_default(), subject.trim());
            out.extend_from_slice(b"Subject: ");
            out.extend_from_slice(crate::mime::encode_header_value(&new).as_bytes());
            out.extend_from_slice(b"\r\n");
            replaced_subject = true;
        } else {
            out.extend_from_slice(&head[f.start..f.end]);
        }
    }
    if dkim_removed > 0 {
        tracing::info!(
            queue_id,
            fields = dkim_removed,
            "DKIM-Signature removed before sealing (it could not survive the seal)"
        );
    }
    if needs_tag && !replaced_subject {
        let new = tag.unwrap_or_default().to_string();
        out.extend_from_slice(
            format!("Subject: {}\r\n", crate::mime::encode_header_value(&new)).as_bytes(),
        );
    }
    if urgency.is_urgent() {
        if !has("priority") {
            out.extend_from_slice(b"Priority: urgent\r\n");
        }
        if !has("importance") {
            out.extend_from_slice(b"Importance: high\r\n");
        }
        if !has("x-priority") {
            out.extend_from_slice(b"X-Priority: 1 (Highest)\r\n");
        }
    }
    if !has("date") {
        out.extend_from_slice(format!("Date: {}\r\n", crate::util::rfc5322_now()).as_bytes());
    }
    if !has("message-id") {
        out.extend_from_slice(format!("Message-ID: <{queue_id}@{hostname}>\r\n").as_bytes());
    }
    out.extend_from_slice(body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_tag_and_priority_headers_once() {
        let raw = b"From: a@dev.gov.vn\r\nSubject: Cong van\r\n so 5\r\nDate: x\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n";
        let out = prepare(raw, Urgency::HoaToc, "Cong van so 5", "gw", "q");
        let s = String::from_utf8(out.clone()).unwrap();
        assert!(s.contains("Subject: =?UTF-8?B?"), "{s}");
        let parsed = crate::mime::read_headers(&out);
        assert_eq!(parsed.subject, "[HỎA TỐC] Cong van so 5");
        assert!(s.contains("Priority: urgent\r\nImportance: high\r\nX-Priority: 1 (Highest)\r\n"));
        assert!(s.ends_with("\r\n\r\nbody\r\n"));
        assert_eq!(s.matches("Date:").count(), 1);
    }

    #[test]
    fn dkim_signatures_are_removed_with_their_continuation_lines() {
        let raw = b"DKIM-Signature: v=1; a=rsa-sha256; d=dev.gov.vn; s=s1;\r\n\tbh=abc=;\r\n b=xyz\r\nFrom: a@dev.gov.vn\r\ndkim-signature : v=1; d=x.vn\r\nSubject: x\r\nDate: d\r\nMessage-ID: <m@x>\r\n\r\nDKIM-Signature: in the body\r\n";
        let s = String::from_utf8(prepare(raw, Urgency::Thuong, "x", "gw", "q")).unwrap();
        assert_eq!(
            s,
            "From: a@dev.gov.vn\r\nSubject: x\r\nDate: d\r\nMessage-ID: <m@x>\r\n\r\nDKIM-Signature: in the body\r\n"
        );
    }

    #[test]
    fn tag_already_there_in_any_spelling() {
        let raw = b"Subject: [hoa toc] x\r\n\r\nb\r\n";
        let out = prepare(raw, Urgency::HoaToc, "[hoa toc] x", "gw", "q");
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("Subject: [hoa toc] x\r\n"));
    }

    #[test]
    fn normal_documents_get_no_marks_but_missing_date_and_id() {
        let raw = b"Subject: x\r\n\r\nb\r\n";
        let s = String::from_utf8(prepare(raw, Urgency::Thuong, "x", "gw.test", "abc")).unwrap();
        assert!(!s.contains("Priority"));
        assert!(s.contains("Message-ID: <abc@gw.test>\r\n"));
        assert!(s.contains("Date: "));
    }
}
