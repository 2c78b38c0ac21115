//! Helpers shared by the benchmarks (included with `#[path]`; not a crate module).

use std::time::{Duration, Instant};

/// Calls `f` for `secs` seconds; returns calls per second.
pub fn rate<F: FnMut()>(secs: f64, mut f: F) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < Duration::from_secs_f64(secs) {
        f();
        n += 1;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// A message of about `size` bytes: headers and a base64-looking PDF body.
pub fn message(size: usize) -> Vec<u8> {
    let mut m = b"From: vanthu@bench.gov.vn\r\nTo: a@hanoi.gov.vn\r\nSubject: bench\r\nDate: Mon, 23 Nov 2026 08:00:00 +0700\r\nMessage-ID: <b@bench>\r\nMIME-Version: 1.0\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
    while m.len() < size {
        m.extend_from_slice(&[b'A'; 76]);
        m.extend_from_slice(b"\r\n");
    }
    m
}
