//! The PDF check (src/pdf/): loading with lopdf under our limits, finding signatures through
//! the form fields, the ByteRange and /Contents checks, the comparison of revisions and the
//! detached CMS check, on arbitrary bytes. Invariants: no panic, no hang; a file the check
//! accepts has at least one signature that counts, and every signature found has a
//! ByteRange that lies within the file when it was judged intact.
#![no_main]

use congvan::pdf::{check_pdf, CheckContext};
use congvan::smime::verify::{TrustStore, VerifyOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let anchors = TrustStore::default();
    let ctx = CheckContext {
        anchors: &anchors,
        crls: &[],
        at: time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000),
        opts: VerifyOptions::default(),
        authorised: None,
        max_depth: 50,
    };
    let finding = check_pdf("fuzz.pdf", data, &ctx);
    if let Ok(checks) = &finding.outcome {
        if finding.refusal().is_none() {
            assert!(checks.iter().any(|c| c.counts()));
        }
        for c in checks {
            if c.problem.is_none() {
                let [_, a, b, len] = c.found.byte_range.expect("a counted signature has a range");
                assert!(a < b && b + len <= data.len());
            }
        }
    }
});
