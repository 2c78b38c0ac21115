//! The request line reader of the metrics endpoint (src/metrics.rs) on arbitrary bytes.
//! Invariants: no panic; an accepted request has a path that begins with '/' and carries
//! no query, and a method without spaces.
#![no_main]

use congvan::metrics::request_target;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((method, path)) = request_target(data) {
        assert!(path.starts_with('/'));
        assert!(!path.contains('?'));
        assert!(!method.contains(' '));
    }
});
