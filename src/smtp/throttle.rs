//! Failed AUTH attempts per client address: each failure slows the next reply, and after
//! `max_auth_failures` the address is refused AUTH for `auth_block_secs`.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct AuthThrottle {
    max: u32,
    block: Duration,
    inner: Mutex<HashMap<IpAddr, Failures>>,
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
        }
    }

    /// Err(remaining) while the address is blocked.
    pub fn check(&self, ip: IpAddr) -> Result<(), Duration> {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = map.get(&ip) {
            let since = f.last.elapsed();
            if since >= self.block {
                map.remove(&ip);
            } else if f.count >= self.max {
                return Err(self.block - since);
            }
        }
        Ok(())
    }

    /// Records a failure; returns how long to wait before replying.
    pub fn failed(&self, ip: IpAddr) -> Duration {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() > 100_000 {
            let block = self.block;
            map.retain(|_, f| f.last.elapsed() < block);
        }
        let f = map.entry(ip).or_insert(Failures {
            count: 0,
            last: Instant::now(),
        });
        f.count += 1;
        f.last = Instant::now();
        Duration::from_millis(250 * u64::from(f.count.min(8)))
    }

    pub fn succeeded(&self, ip: IpAddr) {
        let mut map = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn blocks_after_max() {
        let t = AuthThrottle::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        assert!(t.check(ip).is_ok());
        t.failed(ip);
        t.failed(ip);
        assert!(t.check(ip).is_ok());
        t.failed(ip);
        assert!(t.check(ip).is_err());
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(t.check(other).is_ok());
    }
}
