//! Who holds a message that is being delivered, and for how long.
//!
//! The scheduler's claim writes `claimed_by` (`node/pid.random`: the node's name, then this
//! run of the daemon) and `lease_until` (now + `[queue] lease_secs`) on the message and counts
//! the attempt in `unfinished_attempts`; the daemon renews the lease every third of its
//! length while the attempt runs, and the attempt's result clears all three in the same
//! statement that records it. So a `delivering` message whose lease has passed, or that was
//! claimed by this node while no daemon of this node runs, was left by a daemon that stopped
//! under it: the daemon takes it back (poison after two, see `scheduler`), and
//! `queue hold`/`delete` may act on it. A live lease is respected: the CLI says who holds the
//! message and until when.
//!
//! "No daemon of this node runs" is the daemon lock: `data_dir/congvan.lock`, an exclusive
//! `flock` the daemon holds for its whole life and the kernel releases when it ends, even by
//! SIGKILL. Daemons sharing one database need different `[queue] node_id`s.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};

use super::MessageState;
use crate::config::Config;
use crate::store::entity::message;
use crate::util::now_ms;

/// `unfinished_attempts + delta`, for the claim (+1) and the end of an attempt (-1).
pub fn unfinished_plus(delta: i32) -> sea_orm::sea_query::SimpleExpr {
    use sea_orm::sea_query::ExprTrait;
    Expr::col(message::Column::UnfinishedAttempts).add(delta)
}

/// An update that gives up a message's claim: no holder, no lease.
pub trait Released {
    fn released(self) -> Self;
}

impl Released for sea_orm::UpdateMany<message::Entity> {
    fn released(self) -> Self {
        self.col_expr(
            message::Column::ClaimedBy,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            message::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        )
    }
}

/// This node's name in `claimed_by`: `[queue] node_id`, else the `hostname` key.
pub fn node_name(config: &Config) -> String {
    config
        .queue
        .node_id
        .clone()
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| config.hostname.clone())
}

/// The node part of a `claimed_by` value.
pub fn node_of(claimed_by: &str) -> &str {
    claimed_by
        .rsplit_once('/')
        .map(|(n, _)| n)
        .unwrap_or(claimed_by)
}

pub fn lock_path(config: &Config) -> PathBuf {
    config.data_dir.join("congvan.lock")
}

/// The daemon lock, held while the file stays open.
#[derive(Debug)]
pub struct DaemonLock {
    _file: std::fs::File,
}

/// An exclusive, non-blocking flock; `create` only for the daemon (the CLI may run as a user
/// who can read the file but not write it: flock needs no write access).
fn try_flock(path: &Path, create: bool) -> std::io::Result<Option<std::fs::File>> {
    use std::os::fd::AsRawFd;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(create)
        .create(create)
        .truncate(false)
        .open(path)?;
    // SAFETY: flock on a descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(Some(file));
    }
    let e = std::io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(None)
    } else {
        Err(e)
    }
}

/// Takes the daemon lock; None when another process holds it.
pub fn take_daemon_lock(path: &Path) -> std::io::Result<Option<DaemonLock>> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(try_flock(path, true)?.map(|f| DaemonLock { _file: f }))
}

/// Whether a daemon with this configuration's data directory runs on this machine. When
/// the lock cannot be checked, it is assumed to run (the CLI then only trusts leases).
pub fn daemon_running(config: &Config) -> bool {
    let path = lock_path(config);
    if !path.exists() {
        return false;
    }
    // Taking the lock and dropping it at once: the daemon's own lock is never disturbed.
    !matches!(try_flock(&path, false), Ok(Some(_)))
}

/// Whether the daemon that claimed a `delivering` message has stopped. `node_live`: a
/// daemon of `node` (other than the caller) is running.
pub fn holder_gone(m: &message::Model, now: i64, node: &str, node_live: bool) -> bool {
    match (&m.claimed_by, m.lease_until) {
        (Some(by), Some(until)) => until < now || (node_of(by) == node && !node_live),
        // Claimed before leases existed: only this node's daemon can have done it.
        _ => !node_live,
    }
}

/// The leases of this run of the daemon: its claim name, and the messages it is delivering
/// (renewed until their attempt ends, also when it ends by a panic).
#[derive(Debug)]
pub struct Leases {
    node: String,
    claim: String,
    lease_ms: i64,
    in_flight: Mutex<HashSet<String>>,
    lock: Option<DaemonLock>,
}

impl Leases {
    /// Takes the daemon lock when it can: without it (another daemon uses this data
    /// directory), messages this node left `delivering` are only taken back when their
    /// lease has passed.
    pub fn new(config: &Config) -> Leases {
        let lock = match take_daemon_lock(&lock_path(config)) {
            Ok(Some(l)) => Some(l),
            Ok(None) => {
                tracing::error!(path = %lock_path(config).display(), "another congvan daemon holds the lock of this data directory");
                None
            }
            Err(e) => {
                tracing::warn!(path = %lock_path(config).display(), error = %e, "cannot take the daemon lock");
                None
            }
        };
        let node = node_name(config);
        let claim = format!(
            "{node}/{}.{}",
            std::process::id(),
            &crate::util::new_queue_id()[24..]
        );
        Leases {
            node,
            claim,
            lease_ms: (config.queue.lease_secs.max(1) as i64).saturating_mul(1000),
            in_flight: Mutex::new(HashSet::new()),
            lock,
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }
    /// This run's `claimed_by` value.
    pub fn claim(&self) -> &str {
        &self.claim
    }
    pub fn lease_ms(&self) -> i64 {
        self.lease_ms
    }
    /// Whether this daemon holds the daemon lock (so no other run of this node is alive).
    pub fn sole_daemon_of_node(&self) -> bool {
        self.lock.is_some()
    }

    /// Marks a claimed message as in flight until the guard is dropped.
    pub fn track(self: &std::sync::Arc<Self>, id: &str) -> InFlight {
        if let Ok(mut s) = self.in_flight.lock() {
            s.insert(id.to_string());
        }
        InFlight {
            leases: self.clone(),
            id: id.to_string(),
        }
    }

    pub fn in_flight(&self) -> Vec<String> {
        self.in_flight
            .lock()
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Extends the lease of every message whose attempt is still running.
    pub async fn renew<C: ConnectionTrait>(&self, db: &C) -> Result<u64, DbErr> {
        let ids = self.in_flight();
        if ids.is_empty() {
            return Ok(0);
        }
        let mut renewed = 0;
        for chunk in ids.chunks(500) {
            renewed += message::Entity::update_many()
                .col_expr(
                    message::Column::LeaseUntil,
                    Expr::value(now_ms() + self.lease_ms),
                )
                .filter(message::Column::Id.is_in(chunk.to_vec()))
                .filter(message::Column::State.eq(MessageState::Delivering))
                .filter(message::Column::ClaimedBy.eq(self.claim.as_str()))
                .exec(db)
                .await?
                .rows_affected;
        }
        Ok(renewed)
    }
}

/// A message this daemon is delivering; dropping it stops the lease's renewal.
#[derive(Debug)]
pub struct InFlight {
    leases: std::sync::Arc<Leases>,
    id: String,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Ok(mut s) = self.leases.in_flight.lock() {
            s.remove(&self.id);
        }
    }
}

#[cfg(test)]
impl Leases {
    /// This run's leases under a minimal configuration, for tests of the queue's statements.
    pub(crate) fn for_test(dir: &std::path::Path) -> Leases {
        let config = crate::config::Config::from_toml(
            &format!(
                "hostname = \"gw.test\"\ndata_dir = \"{d}\"\ndatabase_url = \"sqlite::memory:\"\n\
                 policy_dir = \"{d}\"\n[outbound]\nupstream = \"outbox:{d}/out\"\n\
                 [inbound]\nlocal_domains = [\"test\"]\ndeliver_to = \"outbox:{d}/in\"\n",
                d = dir.display()
            ),
            std::path::Path::new("test.toml"),
        )
        .unwrap();
        Leases::new(&config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(by: Option<&str>, until: Option<i64>) -> message::Model {
        let mut m = crate::queue::monitor::tests::msg(None, 0, 0);
        m.state = MessageState::Delivering;
        m.claimed_by = by.map(str::to_string);
        m.lease_until = until;
        m
    }

    #[test]
    fn a_holder_is_gone_when_its_lease_passed_or_its_node_runs_no_daemon() {
        let now = 1_000_000;
        let live = msg(Some("gw1/42.ab"), Some(now + 1000));
        assert!(!holder_gone(&live, now, "gw1", true));
        assert!(
            holder_gone(&live, now, "gw1", false),
            "this node's daemon stopped"
        );
        assert!(
            !holder_gone(&live, now, "gw2", false),
            "another node's live lease"
        );
        let expired = msg(Some("gw1/42.ab"), Some(now - 1));
        assert!(holder_gone(&expired, now, "gw2", true));
        let legacy = msg(None, None);
        assert!(!holder_gone(&legacy, now, "gw1", true));
        assert!(holder_gone(&legacy, now, "gw1", false));
        assert_eq!(node_of("a/b/1.x"), "a/b");
    }

    #[test]
    fn the_daemon_lock_is_exclusive_and_released_with_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("congvan.lock");
        let first = take_daemon_lock(&p).unwrap();
        assert!(first.is_some());
        assert!(take_daemon_lock(&p).unwrap().is_none(), "held");
        drop(first);
        assert!(take_daemon_lock(&p).unwrap().is_some(), "released");
    }
}
