//! The PDF check and the sealer (src/pdf/): loading with lopdf under our limits, finding
//! signatures through the form fields, the ByteRange and /Contents checks, the comparison of
//! revisions and the detached CMS check, then the organisation's signature added with a
//! throwaway seal, on arbitrary bytes. Invariants: no panic, no hang; a file the check
//! accepts has at least one signature that counts; a counted signature's ByteRange lies
//! within the file; a sealed file begins with the input and its last signature, the seal,
//! is intact.
#![no_main]

use congvan::pdf::{check_pdf, seal_pdf, CheckContext, Placement, SealOptions};
use congvan_fuzz::{reception_time, seal, seal_image};
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
    let opts = SealOptions {
        identity: &seal().identity,
        at: reception_time(),
        organisation: "UBND",
        seal_image: Some(seal_image()),
        tsa: None,
    };
    // Visible over the first signature widget found, whether or not it counts: the
    // placement code sees whatever /P and /Rect the input has.
    let over = finding
        .outcome
        .as_ref()
        .ok()
        .and_then(|c| c.iter().find_map(|c| c.found.widget))
        .map(|(page, rect)| Placement { page, rect });
    if let Ok(sealed) = seal_pdf(data, &opts, over) {
        assert!(sealed.starts_with(data));
        let again = check_pdf("sealed.pdf", &sealed, &ctx);
        let checks = again.outcome.expect("a sealed file loads");
        let last = checks.last().expect("the seal is found");
        assert!(
            !last.problem.as_ref().is_some_and(|p| p.is_integrity()),
            "the seal is not intact: {:?}",
            last.problem
        );
    }
});
