//! Canonicalisation for signing and the seal (src/smime/canon/, src/queue/prepare.rs,
//! src/smime/sign/): a submitted message gets its urgency marks, is canonicalised and
//! sealed with a throwaway P-256 seal, and the sealed message is verified again. Checks: the
//! canonical form is canonical (7-bit, CRLF, lines of at most 998 octets); what congvan
//! seals, congvan's verifier reads as signed and its signature as intact.
#![no_main]

use congvan::mime::read_headers;
use congvan::policy::Urgency;
use congvan::queue::prepare::prepare;
use congvan::smime::canon::{canonicalize, is_canonical};
use congvan::smime::sign::sign_message;
use congvan::smime::verify::{verify_message, Failure, VerifyOptions};
use congvan_fuzz::{past_mail_parser_debug_assert, reception_time, seal, trust_store};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = past_mail_parser_debug_assert(|| seal_and_verify(data));
});

fn seal_and_verify(data: &[u8]) {
    if let Ok(c) = canonicalize(data) {
        assert!(is_canonical(&c), "canonicalize gave a non-canonical entity");
    }
    let urgency = Urgency::from_rank((data.len() % 5) as i32);
    let info = read_headers(data);
    let prepared = prepare(data, urgency, &info.subject, "gw.example.gov.vn", "q0fuzz");
    let Ok(sealed) = sign_message(&prepared, &seal().identity, reception_time()) else {
        return;
    };
    let v = verify_message(
        &sealed.bytes,
        trust_store(),
        &[],
        reception_time(),
        VerifyOptions::default(),
    );
    // Address problems come from the input (several From mailboxes and the like); a sealed
    // message that does not even read as intact S/MIME is congvan's fault.
    if let Some(f) = &v.failure {
        assert!(
            !matches!(
                f,
                Failure::NotSigned
                    | Failure::OnlyAttachedMessageSigned
                    | Failure::Cms(_)
                    | Failure::Unsupported(_)
                    | Failure::SignerCertificateMissing
                    | Failure::PartlySigned { .. }
                    | Failure::ContentTwice
                    | Failure::NoSigner
                    | Failure::SeveralSigners { .. }
                    | Failure::DigestMismatch
                    | Failure::BadSignedAttributes(_)
                    | Failure::BadSignature
                    | Failure::Untrusted { .. }
            ),
            "own seal does not verify: {f}"
        );
    }
}
