//! The address-field reader the verifier uses to find who a message is from
//! (`parse_address_field` in src/address.rs), and the helpers around it: the envelope path
//! checks, domain checks, encoded-word decoding and the NFKC view of shown text. Checks that
//! every mailbox it returns has an `@` and is lower case, and that what the NFKC view calls
//! an address is address-shaped.
#![no_main]

use congvan::address;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let field = address::parse_address_field(data);
    for m in &field.mailboxes {
        assert!(m.address.contains('@'), "mailbox without @: {:?}", m.address);
        assert_eq!(m.address, m.address.to_lowercase());
        let _ = address::domain_of(&m.address);
    }
    for (kind, text) in &field.shown {
        let _ = kind.describe();
        for a in address::addresses_shown(text) {
            assert!(address::looks_like_address(&a));
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = address::decode_encoded_words(text);
    if let Some(path) = address::raw_path_of(text) {
        let _ = address::check_forward_path(path);
        let _ = address::check_reverse_path(Some(path), path.trim_matches(['<', '>']));
    }
    if let Some(d) = address::domain_of(text) {
        let _ = address::check_domain(&d);
        let _ = address::domain_matches_suffix(&d, "gov.vn");
    }
    let _ = address::allowed_by(&["gov.vn".to_string(), "a@b.vn".to_string()], text);
});
