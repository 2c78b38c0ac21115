//! The header reader and the classifier (src/mime.rs `read_headers`, src/policy/classify.rs
//! `classify_message`) on a whole message, with the default rules and with those of the
//! shipped Decree 30 profile. Checks: the header section is a prefix of the message; the
//! RFC 2047 words made from the Subject are at most 75 octets each.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use congvan::mime::{encoded_words, has_8bit, header_section, read_headers};
use congvan::policy::classify::{subject_tags, tag_key};
use congvan::policy::classify_message;
use congvan::policy::file::{parse_profile, ClassificationRules};
use congvan_fuzz::past_mail_parser_debug_assert;
use libfuzzer_sys::fuzz_target;

fn nd30() -> &'static ClassificationRules {
    static RULES: OnceLock<ClassificationRules> = OnceLock::new();
    RULES.get_or_init(|| {
        let text = include_str!("../../policies/nd30-2020.toml");
        parse_profile(Path::new("nd30-2020.toml"), text)
            .expect("shipped profile")
            .classification
    })
}

fuzz_target!(|data: &[u8]| {
    let _ = past_mail_parser_debug_assert(|| read_and_classify(data));
});

fn read_and_classify(data: &[u8]) {
    let head = header_section(data);
    assert!(data.starts_with(head));
    let info = read_headers(data);
    for word in encoded_words(&info.subject) {
        assert!(word.len() <= 75, "encoded word of {} octets", word.len());
    }
    for tag in subject_tags(&info.subject) {
        let _ = tag_key(&tag);
    }
    let _ = has_8bit(data);
    let _ = classify_message(&ClassificationRules::default(), data);
    let _ = classify_message(nd30(), data);
}
