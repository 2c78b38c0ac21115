//! The PKCS#11 URI parser (src/pki/token/uri.rs) on arbitrary text: the URI an admin gives
//! `cert import --pkcs11`, stored and read again by the daemon. Invariants: no panic; an
//! accepted URI names an object (a label or an id) and carries no PIN.
#![no_main]

use congvan::pki::token::Pkcs11Uri;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(uri) = Pkcs11Uri::parse(text) {
        assert!(uri.object.is_some() || uri.id.is_some());
        let rest = &text[7..];
        let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
        let names = path
            .split(';')
            .chain(query.split('&'))
            .filter_map(|a| a.split_once('=').map(|(n, _)| n.to_ascii_lowercase()));
        for name in names {
            assert_ne!(name, "pin-value", "{text}");
        }
    }
});
