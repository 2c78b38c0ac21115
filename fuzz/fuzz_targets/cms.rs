//! The BER reader (src/smime/ber.rs) and the CMS SignedData decoding and signature check of the
//! verifier (`check_cms` in src/smime/verify/mod.rs), on raw DER/BER. Walks every element the
//! reader yields, joining constructed OCTET STRINGs, and checks that each element's encoding
//! is a slice of the input holding its content.
#![no_main]

use congvan::smime::ber::{self, Tlv};
use congvan::smime::verify::check_cms;
use libfuzzer_sys::fuzz_target;

fn walk(t: &Tlv<'_>, depth: usize, input: &[u8]) {
    let whole = input.as_ptr_range();
    let raw = t.raw.as_ptr_range();
    assert!(whole.start <= raw.start && raw.end <= whole.end);
    let content = t.content.as_ptr_range();
    assert!(t.content.is_empty() || (raw.start <= content.start && content.end <= raw.end));
    if t.tag & 0x1f == ber::OCTET_STRING {
        let _ = t.octets();
    }
    if !t.is_constructed() || depth > ber::MAX_DEPTH {
        return;
    }
    if let Ok(children) = t.children() {
        for c in &children {
            walk(c, depth + 1, input);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(t) = ber::parse_single(data) {
        walk(&t, 0, data);
    }
    let mut rest = data;
    while let Ok((t, after)) = ber::parse(rest) {
        assert!(after.len() < rest.len(), "parse consumed nothing");
        walk(&t, 0, data);
        rest = after;
    }
    let _ = check_cms(data, None);
    let _ = check_cms(data, Some(b"Content-Type: text/plain\r\n\r\nfuzz\r\n"));
});
