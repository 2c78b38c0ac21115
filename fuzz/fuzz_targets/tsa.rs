//! The RFC 3161 answer reader (src/pdf/tsa.rs `parse_response`): a time-stamping service's
//! reply is network input. The TimeStampResp and TSTInfo read with der, the status and its
//! texts, the token's CMS (the S/MIME verifier's parser and signature check), genTime read by
//! hand, the TSA certificate's key purpose. Checked against a fixed request (the imprint and
//! nonce of the seeds under corpus/tsa). Invariants: no panic, no hang; an accepted answer
//! has a token the verifier reads, and a refusal's text is bounded and free of controls.
#![no_main]

use congvan::pdf::tsa::{parse_response, TimeStampRequest, TsaError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let request = TimeStampRequest {
        imprint: [0x11; 32],
        nonce: 0x0123_4567_89ab_cdef,
    };
    match parse_response(data, &request) {
        Ok(stamp) => {
            assert!(congvan::smime::verify::verify_encapsulated(&stamp.token).is_ok());
        }
        Err(TsaError::Refused { text, .. }) => {
            assert!(text.chars().count() <= 300 && !text.chars().any(char::is_control));
        }
        Err(e) => {
            let _ = (e.to_string(), e.is_temporary());
        }
    }
});
