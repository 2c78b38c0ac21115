//! The edXML reader (src/policy/edxml.rs): an XML document read as an edXML envelope, both as a
//! part named `*.edxml` (any root) and as an XML part (root `edXMLEnvelope`).
#![no_main]

use congvan::policy::edxml::read;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = read(data, false).map_err(|e| e.to_string());
    let _ = read(data, true).map_err(|e| e.to_string());
});
