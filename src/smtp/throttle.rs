//! Failed AUTH attempts per client address. An attempt is counted when it starts (so
//! parallel connections cannot all pass the check before any failure is recorded) and
//! forgiven only when it succeeds; a success does not wipe earlier failures, so a clerk with
//! a valid account cannot interleave logins to keep guessing others' passwords. After
//! `max_auth_failures` the address is refused AUTH until `auth_block_secs` have passed
//! without a new attempt. Argon2 checks run a few at a time, so a flood cannot exhaust memory.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

pub struct AuthThrottle {
    max: u32,
    block: Duration,
    inner: Mutex<HashMap<IpAddr, Failures>>,
    /// Password checks in flight at once (each Argon2id check takes ~19 MiB).
    pub checks: Semaphore,
}

struct Failures {
    count: u32,
    last: Instant,
}

impl AuthThrottle {
    pub fn new(max: u32, block: Duration) -> Self {
        AuthThrottle {
            max: max.max(1),
            block,
            inner: Mutex::new(HashMap::new()),
            checks: Semaphore::new(4),
        }
    }

    /// Starts an attempt: Err(remaining) while the address is blocked, otherwise the attempt
    /// is counted as failed until [`AuthThrottle::succeeded`] says otherwise.
    pub fn begin(&self, ip: IpAddr) -> Result<(), Duration> {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            let block = self.block;
            map.retain(|_, f| f.last.elapsed() < block);
        }
        let f = map.entry(ip).or_insert(Failures {
            count: 0,
            last: Instant::now(),
        });
        if f.last.elapsed() >= self.block {
            f.count = 0;
        }
        if f.count >= self.max {
            return Err(self.block.saturating_sub(f.last.elapsed()));
        }
        f.count += 1;
        f.last = Instant::now();
        Ok(())
    }

    /// How long to wait before answering a failed attempt (grows with the failures).
    pub fn delay(&self, ip: IpAddr) -> Duration {
        let map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.get(&ip).map(|f| f.count).unwrap_or(1);
        Duration::from_millis(250 * u64::from(n.min(8)))
    }

    /// The attempt succeeded: it does not count, earlier failures still do.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = map.get_mut(&ip) {
            f.count = f.count.saturating_sub(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_max_and_success_does_not_reset() {
        let t = AuthThrottle::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(t.begin(ip).is_ok()); // fails
        assert!(t.begin(ip).is_ok()); // fails
        assert!(t.begin(ip).is_ok()); // succeeds
        t.succeeded(ip);
        assert!(t.begin(ip).is_ok()); // fails: the third failure
        assert!(
            t.begin(ip).is_err(),
            "blocked: the success did not wipe the failures"
        );
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(t.begin(other).is_ok());
    }

    #[test]
    fn parallel_attempts_are_each_counted() {
        let t = AuthThrottle::new(2, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        // Three connections start before any of them has failed.
        assert!(t.begin(ip).is_ok());
        assert!(t.begin(ip).is_ok());
        assert!(t.begin(ip).is_err());
    }
}
