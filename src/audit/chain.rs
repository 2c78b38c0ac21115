//! The hash chain: how an entry's hash is computed, and appending an entry under the log's
//! write lock (one number per entry, whichever process appends).

use std::time::Duration;

use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr,
    EntityTrait, QueryOrder, SqlErr, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use super::Event;
use crate::store::entity::audit_log;
use crate::util::now_ms;

/// `prev_hash` of entry 1.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Separates this hash from any other SHA-256 use; bump the version if the encoding changes.
const DOMAIN_TAG: &[u8] = b"congvan-audit-v1";

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
    pub(super) fn of(m: &'a audit_log::Model) -> Fields<'a> {
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
