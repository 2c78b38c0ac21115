//! The audit log (nhật ký kiểm tra): every security-relevant event — identities, trust
//! anchors, CRLs, accounts, policy loads, refused confidential documents, queue holds and
//! releases — as one entry of the append-only, hash-chained table `audit_log`.
//!
//! Each entry is numbered (`seq` 1, 2, 3, … assigned here, not by the database) and carries
//! the hash of the entry before it (`prev_hash`; entry 1 carries [`GENESIS`]) and its own
//! `hash`: hex SHA-256 over a domain tag and the length-prefixed fields seq, at, actor,
//! action, subject, details and prev_hash (see [`entry_hash`]). [`verify`] walks the table
//! in order, a batch at a time, and names the first entry that was changed, removed or
//! moved.
//!
//! What the chain proves, and what it does not:
//! - It detects any change to an entry in place, a removed entry in the middle, and entries
//!   swapped or reordered, as long as whoever did it did not also recompute the hashes.
//! - It cannot detect, on its own, the removal of the newest entries (truncation), nor a
//!   rewrite of the log from some entry onwards with recomputed hashes: there is no secret in
//!   the hash, so anyone who can write the table can forge a consistent chain. Against that,
//!   note the head (`audit verify` prints `#seq hash`) somewhere the database's writers cannot
//!   reach — a ticket, the paper register, another machine — and check it later with
//!   `audit verify --head SEQ:HASH`: everything up to that entry is then proven unchanged.
//!
//! Appending: the daemon and CLI processes append concurrently. An append reads the last
//! entry and inserts `seq + 1` in one transaction that holds the log's write lock — `BEGIN
//! IMMEDIATE` on SQLite, `LOCK TABLE … SHARE ROW EXCLUSIVE` (reads stay allowed) on
//! PostgreSQL — so two appenders never pick the same number; a change the CLI makes to the
//! database is written in the same transaction as its entry ([`begin`] + [`append`]), so no
//! change happens without its entry. [`record`] appends alone and retries a few times on a
//! busy database or a duplicate number.

use std::collections::VecDeque;
use std::path::Path;
use std::time::Duration;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
    SqliteTransactionMode, TransactionOptions, TransactionTrait,
};
use serde::Serialize;

use crate::store::entity::audit_log;
use crate::util::now_ms;

/// `prev_hash` of entry 1.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Separates this hash from any other SHA-256 use; bump the version if the encoding changes.
const DOMAIN_TAG: &[u8] = b"congvan-audit-v1";

/// The actor of events the daemon does on its own (start-up, SIGHUP, refusals).
pub const DAEMON: &str = "daemon";

/// What happened, as written in the `action` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    IdentityImport,
    IdentityDisable,
    TrustAdd,
    TrustRemove,
    CrlAdd,
    AccountAdd,
    AccountDisable,
    AccountEnable,
    AccountPasswd,
    /// The policy in force when the daemon started.
    PolicyLoad,
    /// SIGHUP: a new policy is in force.
    PolicyReload,
    /// SIGHUP: the new policy did not check; the old one stays in force.
    PolicyReloadFailed,
    /// A document refused at end of DATA by a secrecy rule (văn bản mật).
    DocumentRefusedConfidential,
    /// A document refused at end of DATA by another policy rule.
    DocumentRefused,
    QueueHold,
    /// Details say `"quarantine": true` when it releases a quarantined incoming message.
    QueueRelease,
    QueueRetry,
    QueueDelete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::IdentityImport => "identity.import",
            Action::IdentityDisable => "identity.disable",
            Action::TrustAdd => "trust.add",
            Action::TrustRemove => "trust.remove",
            Action::CrlAdd => "crl.add",
            Action::AccountAdd => "account.add",
            Action::AccountDisable => "account.disable",
            Action::AccountEnable => "account.enable",
            Action::AccountPasswd => "account.passwd",
            Action::PolicyLoad => "policy.load",
            Action::PolicyReload => "policy.reload",
            Action::PolicyReloadFailed => "policy.reload_failed",
            Action::DocumentRefusedConfidential => "document.refused_confidential",
            Action::DocumentRefused => "document.refused",
            Action::QueueHold => "queue.hold",
            Action::QueueRelease => "queue.release",
            Action::QueueRetry => "queue.retry",
            Action::QueueDelete => "queue.delete",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event to append. `details` is metadata only: never a password, a key, a subject or a
/// body.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub actor: &'a str,
    pub action: Action,
    pub subject: String,
    pub details: serde_json::Value,
}

impl<'a> Event<'a> {
    pub fn new(
        actor: &'a str,
        action: Action,
        subject: impl Into<String>,
        details: serde_json::Value,
    ) -> Event<'a> {
        Event {
            actor,
            action,
            subject: subject.into(),
            details,
        }
    }
}

/// `cli:<unix user>` for commands run from a shell; `cli:root(sudo:alice)` under sudo.
pub fn cli_actor() -> String {
    let user = unix_user_name();
    match std::env::var("SUDO_USER") {
        Ok(s) if !s.is_empty() && user == "root" => format!("cli:root(sudo:{s})"),
        _ => format!("cli:{user}"),
    }
}

fn unix_user_name() -> String {
    // SAFETY: getuid cannot fail; getpwuid_r writes into our zeroed struct and buffer and
    // sets `result` to null when there is no entry; pw_name points into `buf`.
    unsafe {
        let uid = libc::getuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            let name = std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy();
            if !name.is_empty() {
                return name.into_owned();
            }
        }
        format!("uid{uid}")
    }
}

/// JSON with object keys sorted at every level and no whitespace, so the same details give
/// the same text whatever built them. (The hash covers the stored text, so verification never
/// depends on re-serialising.)
pub fn canonical_json(v: &serde_json::Value) -> String {
    fn sorted(v: &serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(k.clone(), sorted(&m[k]));
                }
                serde_json::Value::Object(out)
            }
            serde_json::Value::Array(a) => serde_json::Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_string(&sorted(v)).unwrap_or_else(|_| "{}".into())
}

/// The fields an entry's hash covers.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    pub seq: i64,
    pub at: i64,
    pub actor: &'a str,
    pub action: &'a str,
    pub subject: &'a str,
    pub details: &'a str,
    pub prev_hash: &'a str,
}

impl<'a> Fields<'a> {
    fn of(m: &'a audit_log::Model) -> Fields<'a> {
        Fields {
            seq: m.seq,
            at: m.at,
            actor: &m.actor,
            action: &m.action,
            subject: &m.subject,
            details: &m.details,
            prev_hash: &m.prev_hash,
        }
    }
}

/// Hex SHA-256 of `DOMAIN_TAG`, then each field as an 8-byte big-endian length and its bytes
/// (integers as 8-byte big-endian two's complement): seq, at, actor, action, subject, details,
/// prev_hash. The length prefixes make the encoding unambiguous (`"ab" + "c"` ≠ `"a" + "bc"`).
pub fn entry_hash(f: &Fields<'_>) -> String {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(DOMAIN_TAG);
    let mut field = |b: &[u8]| {
        ctx.update(&(b.len() as u64).to_be_bytes());
        ctx.update(b);
    };
    field(&f.seq.to_be_bytes());
    field(&f.at.to_be_bytes());
    field(f.actor.as_bytes());
    field(f.action.as_bytes());
    field(f.subject.as_bytes());
    field(f.details.as_bytes());
    field(f.prev_hash.as_bytes());
    hex::encode(ctx.finish().as_ref())
}

/// Starts a transaction that holds the audit log's write lock, for a change and its entry:
/// make the change, [`append`], commit. On SQLite this is `BEGIN IMMEDIATE` (it waits for the
/// busy timeout while another process writes); appending in a plain deferred transaction that
/// has read first could fail with a stale snapshot instead.
pub async fn begin(db: &DatabaseConnection) -> Result<DatabaseTransaction, DbErr> {
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    lock(&txn).await?;
    Ok(txn)
}

/// Serialises appenders on PostgreSQL (SQLite's `BEGIN IMMEDIATE` already has). SHARE ROW
/// EXCLUSIVE conflicts with itself and with writers, not with readers; taking it twice in one
/// transaction is harmless.
async fn lock(txn: &DatabaseTransaction) -> Result<(), DbErr> {
    if txn.get_database_backend() == DbBackend::Postgres {
        txn.execute_unprepared("LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE")
            .await?;
    }
    Ok(())
}

/// Appends an entry in the caller's transaction (from [`begin`]); it is written when the
/// caller commits, together with the change it records.
pub async fn append(
    txn: &DatabaseTransaction,
    event: &Event<'_>,
) -> Result<audit_log::Model, DbErr> {
    lock(txn).await?;
    let last = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Seq)
        .one(txn)
        .await?;
    let (seq, prev_hash) = match last {
        Some(m) => (m.seq + 1, m.hash),
        None => (1, GENESIS.to_string()),
    };
    let at = now_ms();
    let details = canonical_json(&event.details);
    let action = event.action.as_str();
    let hash = entry_hash(&Fields {
        seq,
        at,
        actor: event.actor,
        action,
        subject: &event.subject,
        details: &details,
        prev_hash: &prev_hash,
    });
    let model = audit_log::Model {
        seq,
        at,
        actor: event.actor.to_string(),
        action: action.to_string(),
        subject: event.subject.clone(),
        details,
        prev_hash,
        hash,
    };
    audit_log::Entity::insert(audit_log::ActiveModel {
        seq: Set(model.seq),
        at: Set(model.at),
        actor: Set(model.actor.clone()),
        action: Set(model.action.clone()),
        subject: Set(model.subject.clone()),
        details: Set(model.details.clone()),
        prev_hash: Set(model.prev_hash.clone()),
        hash: Set(model.hash.clone()),
    })
    .exec_without_returning(txn)
    .await?;
    Ok(model)
}

/// Whether an append failed only because another appender got there first or the database
/// was busy, so trying again can succeed.
fn retryable(e: &DbErr) -> bool {
    if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
        return true;
    }
    let s = e.to_string().to_ascii_lowercase();
    s.contains("database is locked") || s.contains("busy") || s.contains("deadlock")
}

/// Appends an entry in its own transaction, retrying a few times on a busy database or a
/// duplicate number. For events that change nothing else (the daemon's).
pub async fn record(db: &DatabaseConnection, event: &Event<'_>) -> Result<audit_log::Model, DbErr> {
    const ATTEMPTS: u32 = 6;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let res = async {
            let txn = begin(db).await?;
            let m = append(&txn, event).await?;
            txn.commit().await?;
            Ok::<_, DbErr>(m)
        }
        .await;
        match res {
            Ok(m) => return Ok(m),
            Err(e) if attempt < ATTEMPTS && retryable(&e) => {
                let jitter = u64::from(rand::random::<u8>() % 32);
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt) + jitter)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// As [`record`], for the daemon: a failure is logged, never passed on, so that an audit
/// problem can neither lose a message nor let one through.
pub async fn record_or_log(db: &DatabaseConnection, event: &Event<'_>) {
    if let Err(e) = record(db, event).await {
        tracing::error!(error = %e, action = %event.action, subject = %event.subject, "audit log entry not written");
    }
}

/// Hex SHA-256 over a directory tree: each regular file's path (relative, `/`-separated) and
/// contents, length-prefixed, in path order. Says which policy files were in force.
pub fn directory_digest(dir: &Path) -> std::io::Result<String> {
    fn walk(
        base: &Path,
        dir: &Path,
        out: &mut Vec<(String, std::path::PathBuf)>,
    ) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let path = e.path();
            let ft = e.file_type()?;
            if ft.is_dir() {
                walk(base, &path, out)?;
            } else if path.is_file() {
                let rel = path
                    .strip_prefix(base)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (rel, path) in files {
        let bytes = std::fs::read(&path)?;
        ctx.update(&(rel.len() as u64).to_be_bytes());
        ctx.update(rel.as_bytes());
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(&bytes);
    }
    Ok(hex::encode(ctx.finish().as_ref()))
}

/// An entry's number and hash: what an administrator notes to detect truncation later.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{} {}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = String;
    /// `SEQ:HASH`, `#SEQ:HASH` or `#SEQ HASH` (as `audit verify` prints it).
    fn from_str(s: &str) -> Result<Head, String> {
        let s = s.trim().trim_start_matches('#');
        let (seq, hash) = s
            .split_once([':', ' '])
            .ok_or_else(|| format!("'{s}': give the head as SEQ:HASH"))?;
        let seq: i64 = seq
            .trim()
            .parse()
            .map_err(|_| format!("'{seq}' is not an entry number"))?;
        let hash = hash.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("'{hash}' is not a hex SHA-256 hash"));
        }
        if seq < 1 {
            return Err("entry numbers start at 1".into());
        }
        Ok(Head { seq, hash })
    }
}

/// What is wrong with the first bad entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Problem {
    /// Entries `from..=to` are absent: removed (the next entry present is `to + 1`).
    Missing { from: i64, to: i64 },
    /// An entry numbered below 1, which congvan never writes.
    OutOfSequence,
    /// The entry at this position holds the (intact) contents of entry `holds`: entries were
    /// swapped or reordered.
    Moved { holds: i64 },
    /// at, actor, action, subject or details changed: the stored hash no longer matches them.
    FieldsChanged,
    /// Only the `hash` column changed: the fields still give the hash the next entry links to.
    HashChanged,
    /// Only `prev_hash` changed: with the previous entry's hash, the entry checks.
    PrevHashChanged,
    /// The entry checks on its own, but the next entry links to a hash that no entry has: this
    /// one was changed and its hash recomputed.
    Rewritten,
    /// The entry checks on its own but does not link to the one before it: it was rewritten
    /// with a recomputed hash, or inserted.
    Rehashed,
    /// It neither links to the previous entry nor matches its own hash.
    BrokenLink,
    /// The head noted earlier (`--head`) is beyond the last entry: newer entries were removed.
    Truncated { last: Option<i64> },
    /// The entry at the noted head's number has another hash than the one noted.
    HeadDiffers { noted: String, found: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Missing { from, to } if from == to => {
                write!(f, "missing: entry #{from} was removed")
            }
            Problem::Missing { from, to } => {
                write!(f, "missing: entries #{from}..#{to} were removed")
            }
            Problem::OutOfSequence => write!(f, "an entry numbered below 1 was inserted"),
            Problem::Moved { holds } => write!(
                f,
                "holds the contents of entry #{holds}: entries were swapped or reordered"
            ),
            Problem::FieldsChanged => write!(
                f,
                "changed: its fields (at, actor, action, subject or details) no longer match its hash"
            ),
            Problem::HashChanged => write!(f, "changed: its hash column was altered"),
            Problem::PrevHashChanged => write!(f, "changed: its prev_hash column was altered"),
            Problem::Rewritten => write!(
                f,
                "changed and its hash recomputed: the next entry still links to its original hash"
            ),
            Problem::Rehashed => write!(
                f,
                "does not link to the entry before it although its own hash checks: rewritten with a recomputed hash, or inserted"
            ),
            Problem::BrokenLink => write!(
                f,
                "does not link to the entry before it and does not match its own hash"
            ),
            Problem::Truncated { last: Some(last) } => write!(
                f,
                "the noted head is beyond the last entry #{last}: the newest entries were removed"
            ),
            Problem::Truncated { last: None } => write!(
                f,
                "the log is empty although a head was noted: every entry was removed"
            ),
            Problem::HeadDiffers { noted, found } => write!(
                f,
                "its hash {found} is not the noted {noted}: the log was rewritten up to here"
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub problem: Problem,
    /// `problem` in words.
    pub message: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub intact: bool,
    /// Entries checked and found good, from #1 (all of them when intact).
    pub entries: u64,
    /// The last good entry: the log's head when intact.
    pub head: Option<Head>,
    pub first_bad: Option<BadEntry>,
    /// Whether a noted head (`--head`) was checked and found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub noted_head: Option<Head>,
}

const VERIFY_BATCH: u64 = 1000;

/// Walks the log in `seq` order, a batch at a time (memory does not grow with the log), and
/// stops at the first bad entry. With `noted`, also checks that the entry noted earlier is
/// still there with the same hash (which the chain alone cannot tell).
pub async fn verify<C: ConnectionTrait>(db: &C, noted: Option<&Head>) -> Result<Report, DbErr> {
    let mut buf: VecDeque<audit_log::Model> = VecDeque::new();
    let mut after = i64::MIN;
    let mut exhausted = false;
    let mut expected = 1i64;
    let mut prev = GENESIS.to_string();
    let mut good = 0u64;
    let mut head: Option<Head> = None;
    let mut noted_found: Option<String> = None;
    let broken = |good, head, seq, problem: Problem| Report {
        intact: false,
        entries: good,
        head,
        first_bad: Some(BadEntry {
            seq,
            message: problem.to_string(),
            problem,
        }),
        noted_head: None,
    };
    loop {
        // Keep one entry of look-ahead: telling "hash column changed" from "fields changed"
        // needs the next entry's prev_hash.
        if buf.len() < 2 && !exhausted {
            let batch = audit_log::Entity::find()
                .filter(audit_log::Column::Seq.gt(after))
                .order_by_asc(audit_log::Column::Seq)
                .limit(VERIFY_BATCH)
                .all(db)
                .await?;
            exhausted = (batch.len() as u64) < VERIFY_BATCH;
            if let Some(last) = batch.last() {
                after = last.seq;
            }
            buf.extend(batch);
        }
        let Some(e) = buf.pop_front() else { break };
        if e.seq != expected {
            let problem = if e.seq > expected {
                Problem::Missing {
                    from: expected,
                    to: e.seq - 1,
                }
            } else {
                Problem::OutOfSequence
            };
            let seq = if e.seq > expected { expected } else { e.seq };
            return Ok(broken(good, head, seq, problem));
        }
        if let Some(problem) = diagnose(db, &e, &prev, buf.front()).await? {
            return Ok(broken(good, head, e.seq, problem));
        }
        if noted.is_some_and(|n| n.seq == e.seq) {
            noted_found = Some(e.hash.clone());
        }
        good += 1;
        expected += 1;
        prev = e.hash.clone();
        head = Some(Head {
            seq: e.seq,
            hash: e.hash,
        });
    }
    if let Some(n) = noted {
        match noted_found {
            None => {
                let last = head.as_ref().map(|h| h.seq);
                return Ok(broken(good, head, n.seq, Problem::Truncated { last }));
            }
            Some(found) if found != n.hash => {
                let problem = Problem::HeadDiffers {
                    noted: n.hash.clone(),
                    found,
                };
                return Ok(broken(good, head, n.seq, problem));
            }
            Some(_) => {}
        }
    }
    Ok(Report {
        intact: true,
        entries: good,
        head,
        first_bad: None,
        noted_head: noted.cloned(),
    })
}

/// None when the entry links to `prev` and matches its hash; otherwise the likeliest account
/// of what was done to it.
async fn diagnose<C: ConnectionTrait>(
    db: &C,
    e: &audit_log::Model,
    prev: &str,
    next: Option<&audit_log::Model>,
) -> Result<Option<Problem>, DbErr> {
    let fields = Fields::of(e);
    let computed = entry_hash(&fields);
    let linked = e.prev_hash == prev;
    if linked {
        if computed == e.hash {
            // Checks on its own; but if the next entry checks on its own too and links to a
            // hash no entry has, this entry was changed and re-hashed after the next was written.
            if let Some(n) = next.filter(|n| n.seq == e.seq + 1 && n.prev_hash != e.hash) {
                if entry_hash(&Fields::of(n)) == n.hash && !hash_exists(db, &n.prev_hash).await? {
                    return Ok(Some(Problem::Rewritten));
                }
            }
            return Ok(None);
        }
        if next.is_some_and(|n| n.prev_hash == computed) {
            return Ok(Some(Problem::HashChanged));
        }
        return Ok(Some(Problem::FieldsChanged));
    }
    // Not linked. Contents moved from another position still link to their own predecessor:
    // find it by the hash this entry links to, and check the entry as the one after it.
    if let Some(pred) = audit_log::Entity::find()
        .filter(audit_log::Column::Hash.eq(e.prev_hash.clone()))
        .one(db)
        .await?
    {
        let holds = pred.seq + 1;
        if holds != e.seq
            && entry_hash(&Fields {
                seq: holds,
                ..fields
            }) == e.hash
        {
            return Ok(Some(Problem::Moved { holds }));
        }
    }
    if entry_hash(&Fields {
        prev_hash: prev,
        ..fields
    }) == e.hash
    {
        return Ok(Some(Problem::PrevHashChanged));
    }
    if computed == e.hash {
        return Ok(Some(Problem::Rehashed));
    }
    Ok(Some(Problem::BrokenLink))
}

async fn hash_exists<C: ConnectionTrait>(db: &C, hash: &str) -> Result<bool, DbErr> {
    Ok(audit_log::Entity::find()
        .filter(audit_log::Column::Hash.eq(hash))
        .one(db)
        .await?
        .is_some())
}

/// The newest `limit` entries, oldest first (for `audit list`).
pub async fn last_entries<C: ConnectionTrait>(
    db: &C,
    limit: u64,
) -> Result<Vec<audit_log::Model>, DbErr> {
    let mut v = audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Seq)
        .limit(limit)
        .all(db)
        .await?;
    v.reverse();
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::Statement;

    /// A fresh database: SQLite in a temp dir, or a new PostgreSQL database when
    /// CONGVAN_TEST_DATABASE_URL names a server (as the integration tests do).
    async fn db() -> (DatabaseConnection, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = match std::env::var("CONGVAN_TEST_DATABASE_URL") {
            Ok(admin) if !admin.is_empty() => {
                let name = format!("congvan_a_{}", crate::util::new_queue_id());
                let a = sea_orm::Database::connect(&admin).await.unwrap();
                a.execute_unprepared(&format!("CREATE DATABASE {name}"))
                    .await
                    .unwrap();
                a.close().await.ok();
                let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
                format!("{base}/{name}")
            }
            _ => format!("sqlite://{}/audit.db", dir.path().display()),
        };
        (crate::store::open(&url).await.unwrap(), dir)
    }

    async fn fill(db: &DatabaseConnection, n: usize) {
        for i in 0..n {
            let ev = Event::new(
                "cli:test",
                Action::AccountAdd,
                format!("clerk{i}"),
                serde_json::json!({"allowed_from": [format!("clerk{i}@dev.gov.vn")]}),
            );
            record(db, &ev).await.unwrap();
        }
    }

    async fn sql(db: &DatabaseConnection, s: &str) {
        db.execute_raw(Statement::from_string(db.get_database_backend(), s))
            .await
            .unwrap();
    }

    async fn bad(db: &DatabaseConnection) -> BadEntry {
        let r = verify(db, None).await.unwrap();
        assert!(!r.intact, "{r:?}");
        r.first_bad.unwrap()
    }

    #[test]
    fn encoding_is_length_prefixed_and_covers_every_field() {
        let base = Fields {
            seq: 1,
            at: 1000,
            actor: "ab",
            action: "c",
            subject: "s",
            details: "{}",
            prev_hash: GENESIS,
        };
        let h = entry_hash(&base);
        assert_eq!(h.len(), 64);
        // Moving a byte across a field boundary changes the hash.
        assert_ne!(
            h,
            entry_hash(&Fields {
                actor: "a",
                action: "bc",
                ..base
            })
        );
        for other in [
            Fields { seq: 2, ..base },
            Fields { at: 1001, ..base },
            Fields {
                subject: "t",
                ..base
            },
            Fields {
                details: "{\"a\":1}",
                ..base
            },
            Fields {
                prev_hash: "1",
                ..base
            },
        ] {
            assert_ne!(h, entry_hash(&other));
        }
    }

    #[test]
    fn canonical_json_sorts_keys() {
        let v = serde_json::json!({"b": 1, "a": {"d": [2, {"z": 0, "y": 1}], "c": "x"}});
        assert_eq!(
            canonical_json(&v),
            r#"{"a":{"c":"x","d":[2,{"y":1,"z":0}]},"b":1}"#
        );
    }

    #[test]
    fn heads_parse_as_printed() {
        let h: Head = format!("#12 {}", "ab".repeat(32)).parse().unwrap();
        assert_eq!(h.seq, 12);
        let h2: Head = format!("12:{}", "AB".repeat(32)).parse().unwrap();
        assert_eq!(h, h2);
        assert!("12".parse::<Head>().is_err());
        assert!("0:00".parse::<Head>().is_err());
    }

    #[tokio::test]
    async fn appended_entries_chain_and_verify() {
        let (db, _dir) = db().await;
        let empty = verify(&db, None).await.unwrap();
        assert!(empty.intact && empty.entries == 0 && empty.head.is_none());
        fill(&db, 5).await;
        let r = verify(&db, None).await.unwrap();
        assert!(r.intact, "{r:?}");
        assert_eq!(r.entries, 5);
        let rows = last_entries(&db, 10).await.unwrap();
        assert_eq!(rows.len(), 5);
        assert_eq!(rows[0].prev_hash, GENESIS);
        for w in rows.windows(2) {
            assert_eq!(w[1].prev_hash, w[0].hash);
            assert_eq!(w[1].seq, w[0].seq + 1);
        }
        assert_eq!(r.head.as_ref().unwrap().hash, rows[4].hash);
        assert_eq!(rows[2].details, r#"{"allowed_from":["clerk2@dev.gov.vn"]}"#);
    }

    #[tokio::test]
    async fn a_changed_field_names_the_entry() {
        let (db, _dir) = db().await;
        fill(&db, 5).await;
        sql(
            &db,
            "UPDATE audit_log SET actor = 'cli:mallory' WHERE seq = 3",
        )
        .await;
        let b = bad(&db).await;
        assert_eq!((b.seq, &b.problem), (3, &Problem::FieldsChanged));
        let r = verify(&db, None).await.unwrap();
        assert_eq!(r.entries, 2);
        assert_eq!(r.head.unwrap().seq, 2);
    }

    #[tokio::test]
    async fn a_changed_hash_or_prev_hash_is_told_apart() {
        let (db, _dir) = db().await;
        fill(&db, 5).await;
        sql(
            &db,
            &format!(
                "UPDATE audit_log SET hash = '{}' WHERE seq = 2",
                "f".repeat(64)
            ),
        )
        .await;
        let b = bad(&db).await;
        assert_eq!((b.seq, &b.problem), (2, &Problem::HashChanged));

        let (db, _dir) = self::db().await;
        fill(&db, 5).await;
        sql(
            &db,
            &format!(
                "UPDATE audit_log SET prev_hash = '{}' WHERE seq = 4",
                "e".repeat(64)
            ),
        )
        .await;
        let b = bad(&db).await;
        assert_eq!((b.seq, &b.problem), (4, &Problem::PrevHashChanged));
    }

    #[tokio::test]
    async fn a_removed_entry_is_a_gap() {
        let (db, _dir) = db().await;
        fill(&db, 6).await;
        sql(&db, "DELETE FROM audit_log WHERE seq IN (3, 4)").await;
        let b = bad(&db).await;
        assert_eq!(
            (b.seq, &b.problem),
            (3, &Problem::Missing { from: 3, to: 4 })
        );
        assert!(b.message.contains("#3..#4"), "{}", b.message);

        // Renumbering to hide the gap breaks the link instead.
        sql(&db, "UPDATE audit_log SET seq = seq - 2 WHERE seq > 4").await;
        let b = bad(&db).await;
        assert_eq!(b.seq, 3);
        assert_eq!(b.problem, Problem::BrokenLink);

        // The first entry removed.
        let (db, _dir) = self::db().await;
        fill(&db, 2).await;
        sql(&db, "DELETE FROM audit_log WHERE seq = 1").await;
        let b = bad(&db).await;
        assert_eq!(
            (b.seq, &b.problem),
            (1, &Problem::Missing { from: 1, to: 1 })
        );
    }

    #[tokio::test]
    async fn swapped_entries_are_named() {
        let (db, _dir) = db().await;
        fill(&db, 6).await;
        // Swap the numbers of #2 and #5 (every other column travels with its row).
        sql(&db, "UPDATE audit_log SET seq = -5 WHERE seq = 5").await;
        sql(&db, "UPDATE audit_log SET seq = 5 WHERE seq = 2").await;
        sql(&db, "UPDATE audit_log SET seq = 2 WHERE seq = -5").await;
        let b = bad(&db).await;
        assert_eq!((b.seq, &b.problem), (2, &Problem::Moved { holds: 5 }));
    }

    #[tokio::test]
    async fn a_recomputed_entry_is_caught_by_its_successor_or_a_noted_head() {
        let (db, _dir) = db().await;
        fill(&db, 4).await;
        // Rewrite #2 with a consistent hash: #3 no longer links to it.
        let rows = last_entries(&db, 10).await.unwrap();
        let r2 = &rows[1];
        let forged = entry_hash(&Fields {
            actor: "cli:mallory",
            ..Fields::of(r2)
        });
        sql(
            &db,
            &format!("UPDATE audit_log SET actor = 'cli:mallory', hash = '{forged}' WHERE seq = 2"),
        )
        .await;
        let b = bad(&db).await;
        assert_eq!((b.seq, &b.problem), (2, &Problem::Rewritten));

        // Truncation: the chain alone cannot tell; the noted head can.
        let (db, _dir) = self::db().await;
        fill(&db, 4).await;
        let noted2 = verify(&db, None).await.unwrap().head.unwrap();
        sql(&db, "DELETE FROM audit_log WHERE seq >= 3").await;
        assert!(verify(&db, None).await.unwrap().intact);
        let r = verify(&db, Some(&noted2)).await.unwrap();
        let b = r.first_bad.unwrap();
        assert_eq!(
            (b.seq, b.problem),
            (4, Problem::Truncated { last: Some(2) })
        );
        // A noted head that matches.
        let (db, _dir) = self::db().await;
        fill(&db, 3).await;
        let noted = verify(&db, None).await.unwrap().head.unwrap();
        fill(&db, 2).await;
        let r = verify(&db, Some(&noted)).await.unwrap();
        assert!(r.intact && r.entries == 5, "{r:?}");
    }

    #[tokio::test]
    async fn concurrent_appenders_keep_one_chain() {
        let (db, _dir) = db().await;
        let mut tasks = Vec::new();
        for t in 0..8 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                for i in 0..10 {
                    let ev = Event::new(
                        "daemon",
                        Action::QueueHold,
                        format!("t{t}-{i}"),
                        serde_json::json!({}),
                    );
                    record(&db, &ev).await.unwrap();
                }
            }));
        }
        // A transactional appender (a change and its entry) at the same time.
        for i in 0..10 {
            let txn = begin(&db).await.unwrap();
            append(
                &txn,
                &Event::new(
                    "cli:test",
                    Action::TrustAdd,
                    i.to_string(),
                    serde_json::json!({}),
                ),
            )
            .await
            .unwrap();
            txn.commit().await.unwrap();
        }
        for t in tasks {
            t.await.unwrap();
        }
        let r = verify(&db, None).await.unwrap();
        assert!(r.intact, "{r:?}");
        assert_eq!(r.entries, 90);
    }

    #[tokio::test]
    async fn a_rolled_back_change_leaves_no_entry() {
        let (db, _dir) = db().await;
        let txn = begin(&db).await.unwrap();
        append(
            &txn,
            &Event::new("cli:test", Action::AccountAdd, "x", serde_json::json!({})),
        )
        .await
        .unwrap();
        txn.rollback().await.unwrap();
        fill(&db, 1).await;
        let r = verify(&db, None).await.unwrap();
        assert!(r.intact);
        assert_eq!(r.entries, 1);
    }

    #[tokio::test]
    async fn verify_streams_across_batches() {
        let (db, _dir) = db().await;
        // More than one batch, written directly (faster than one transaction each).
        let txn = begin(&db).await.unwrap();
        for i in 0..(VERIFY_BATCH + 5) {
            append(
                &txn,
                &Event::new(
                    "daemon",
                    Action::QueueRetry,
                    i.to_string(),
                    serde_json::json!({}),
                ),
            )
            .await
            .unwrap();
        }
        txn.commit().await.unwrap();
        let r = verify(&db, None).await.unwrap();
        assert!(r.intact, "{r:?}");
        assert_eq!(r.entries, VERIFY_BATCH + 5);
        // A change right after a batch boundary is still found.
        sql(
            &db,
            &format!(
                "UPDATE audit_log SET subject = 'x' WHERE seq = {}",
                VERIFY_BATCH + 1
            ),
        )
        .await;
        let b = bad(&db).await;
        assert_eq!(b.seq, VERIFY_BATCH as i64 + 1);
        assert_eq!(b.problem, Problem::FieldsChanged);
    }

    #[test]
    fn directory_digest_changes_with_any_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("calendar")).unwrap();
        std::fs::write(d.path().join("a.toml"), "x = 1").unwrap();
        std::fs::write(d.path().join("calendar/2026.toml"), "y = 1").unwrap();
        let one = directory_digest(d.path()).unwrap();
        assert_eq!(one, directory_digest(d.path()).unwrap());
        std::fs::write(d.path().join("calendar/2026.toml"), "y = 2").unwrap();
        assert_ne!(one, directory_digest(d.path()).unwrap());
    }
}
