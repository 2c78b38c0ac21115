//! `audit verify`: walks the chain in order, a batch at a time, and names the first entry
//! that was changed, removed or moved; a head noted elsewhere proves everything up to it.

use std::collections::VecDeque;

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::Serialize;

use super::chain::{entry_hash, Fields, GENESIS};
use crate::store::entity::audit_log;

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

pub(super) const VERIFY_BATCH: u64 = 1000;

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
