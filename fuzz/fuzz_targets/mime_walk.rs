//! The strict MIME reader used for verification (src/smime/mime_walk.rs): header fields,
//! Content-Type and Content-Transfer-Encoding, decoded bodies, multipart splitting and
//! `message/rfc822` bodies, walked to the reader's own depth and part limits. Checks that
//! parts are slices of their body and that `to_crlf` leaves no bare LF and only adds CRs.
#![no_main]

use congvan::smime::mime_walk::{self, Entity};
use libfuzzer_sys::fuzz_target;

fn walk(raw: &[u8], depth: usize, parts: &mut usize) {
    *parts += 1;
    if depth > mime_walk::MAX_DEPTH || *parts > mime_walk::MAX_PARTS {
        return;
    }
    let Ok(e) = Entity::parse(raw) else {
        return;
    };
    for f in &e.fields {
        let _ = f.normalized();
    }
    let _ = e.all("From");
    let _ = e.single("Sender");
    let _ = e.transfer_encoding();
    let _ = e.decoded_body();
    let Ok(ct) = e.content_type() else {
        return;
    };
    if ct.mime_type == "multipart" {
        let Some(boundary) = ct.param("boundary") else {
            return;
        };
        if let Ok(children) = mime_walk::split_multipart(e.body, boundary) {
            let range = e.body.as_ptr_range();
            for c in children {
                let r = c.as_ptr_range();
                assert!(c.is_empty() || (range.start <= r.start && r.end <= range.end));
                walk(c, depth + 1, parts);
            }
        }
    } else if ct.is("message", "rfc822") || ct.is("message", "global") {
        walk(e.body, depth + 1, parts);
    }
}

fuzz_target!(|data: &[u8]| {
    walk(data, 0, &mut 0);
    let crlf = mime_walk::to_crlf(data);
    for (i, &b) in crlf.iter().enumerate() {
        if b == b'\n' {
            assert!(i > 0 && crlf[i - 1] == b'\r', "bare LF left by to_crlf");
        }
    }
    let without_added: Vec<u8> = {
        // Removing a CR before each LF that had none gives the input back.
        let mut out = Vec::with_capacity(crlf.len());
        let mut i = 0;
        let mut src = 0;
        while i < crlf.len() {
            if crlf[i] == b'\r' && crlf.get(i + 1) == Some(&b'\n') && data.get(src) == Some(&b'\n')
            {
                i += 1;
                continue;
            }
            out.push(crlf[i]);
            i += 1;
            src += 1;
        }
        out
    };
    assert_eq!(without_added, data);
    if let Ok(ct) = std::str::from_utf8(data) {
        let _ = mime_walk::parse_content_type(ct);
    }
});
