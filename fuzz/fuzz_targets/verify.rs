//! The verifier's entry point on a whole incoming message (`verify_message` in
//! src/smime/verify/) with a fixed small trust store (the seed CA and the seal target's
//! root) at a fixed reception time, then the Authentication-Results field written from the
//! verdict. Checks: a `pass` names its signer; the field is ASCII, ends in CRLF, and every
//! other line break is a fold.
#![no_main]

use congvan::smime::verify::{
    authentication_results_header, strip_own_results, verify_message, SenderDelegation, SmimeResult,
    VerifyOptions,
};
use congvan_fuzz::{reception_time, trust_store};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let raw = strip_own_results(data, "gw.example.gov.vn");
    let opts = VerifyOptions {
        require_revocation_data: data.len() % 7 == 3,
        sender_delegation: if data.len() % 5 == 2 {
            SenderDelegation::Fail
        } else {
            SenderDelegation::Allow
        },
    };
    let v = verify_message(&raw, trust_store(), &[], reception_time(), opts);
    if v.result == SmimeResult::Pass {
        assert!(v.signer.is_some(), "pass without a signer: {v:?}");
        assert!(v.failure.is_none());
    } else {
        assert!(v.failure.is_some(), "{:?} without a reason", v.result);
    }
    let field = authentication_results_header("gw.example.gov.vn", &v);
    assert!(
        field.is_ascii(),
        "non-ASCII Authentication-Results: {field:?}"
    );
    assert!(field.ends_with("\r\n"));
    let body = &field[..field.len() - 2];
    for (i, b) in body.bytes().enumerate() {
        match b {
            b'\r' => assert!(body[i + 1..].starts_with("\n "), "bad fold: {field:?}"),
            b'\n' => assert!(
                i > 0 && body.as_bytes()[i - 1] == b'\r',
                "bare LF: {field:?}"
            ),
            _ => {}
        }
    }
    for line in field.split("\r\n") {
        assert!(line.len() <= 998, "line over 998 octets");
    }
    let _ = (v.reason_en(), v.reason_vi());
});
