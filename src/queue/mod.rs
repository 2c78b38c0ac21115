//! The queue: the only writer of accepted mail (like Postfix's cleanup), the scheduler that
//! takes it out again (urgency lanes, then earliest deadline), delivery, and DSNs.
//!
//! Durability: a message's content goes to `spool/<id>.eml` and is fsynced by the session's
//! task; the writer task then fsyncs the spool directory and inserts the message and its
//! recipients in one database transaction. Concurrent sessions are committed together in
//! one transaction (group commit). Only after that commit does the session answer 250.
//! A spool file without a row (a crash between the two steps) is removed at start-up.

pub mod admin;
pub mod delivery;
pub mod dsn;
pub mod leader;
pub mod lease;
pub mod monitor;
pub mod outcome;
mod pdf_seal;
pub mod prepare;
pub mod scheduler;
pub mod staged;
pub mod token_watch;
pub mod transport;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::store::entity::{message, message_content, recipient};
use crate::util::{new_queue_id, now_ms};

/// The types the queue shares with the intake stage and the registers (`crate::model`),
/// under their old paths.
pub use crate::model::{
    Direction, HoldKind, MessageState, NewMessage, NewRecipient, RecipientState, Route, SmimeRecord,
};

#[derive(Debug, thiserror::Error, Clone)]
#[non_exhaustive]
pub enum QueueError {
    #[error("no space left for the spool: {0}")]
    DiskFull(String),
    #[error("spool write failed: {0}")]
    Io(String),
    #[error("database unavailable: {0}")]
    Database(String),
    #[error("the queue is shutting down")]
    ShuttingDown,
}

impl QueueError {
    /// A database failure: 452 when the disk is full, 451 otherwise.
    fn from_db(e: &DbErr) -> QueueError {
        if crate::store::is_disk_full(e) {
            QueueError::DiskFull(e.to_string())
        } else {
            QueueError::Database(e.to_string())
        }
    }

    fn from_io(e: &std::io::Error) -> QueueError {
        if e.raw_os_error() == Some(libc::ENOSPC) || e.raw_os_error() == Some(libc::EDQUOT) {
            QueueError::DiskFull(e.to_string())
        } else {
            QueueError::Io(e.to_string())
        }
    }
}

/// Why a queued message's bytes could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ContentError {
    /// Gone or unreadable (the message is held with this reason, which begins
    /// "spool file ").
    #[error("{0}")]
    Unreadable(String),
    /// The database failed (PostgreSQL): try again later.
    #[error("database: {0}")]
    Database(DbErr),
}

struct CommitRequest {
    id: String,
    meta: NewMessage,
    size: i64,
    /// The bytes, when they go into the database with the row (PostgreSQL).
    content: Option<Vec<u8>>,
    reply: oneshot::Sender<Result<(), QueueError>>,
}

/// The daemon's handle to the queue: enqueue durably and wake the scheduler.
#[derive(Clone)]
pub struct Queue {
    db: DatabaseConnection,
    spool: PathBuf,
    /// The messages' bytes are `message_content` rows (PostgreSQL, where several nodes share
    /// the queue), not spool files.
    content_in_db: bool,
    tx: mpsc::Sender<CommitRequest>,
    wake: Arc<Notify>,
    /// An urgent document was committed since the scheduler last looked.
    urgent: Arc<AtomicBool>,
}

/// The path of a queued message's content.
pub fn spool_path(spool: &Path, id: &str) -> PathBuf {
    spool.join(format!("{id}.eml"))
}

impl Queue {
    /// Creates the spool, removes files left without a row by a crash, and starts the writer.
    pub async fn start(db: DatabaseConnection, spool: PathBuf) -> std::io::Result<Queue> {
        std::fs::create_dir_all(&spool)?;
        admin::remove_orphan_spool_files(&db, &spool)
            .await
            .map_err(std::io::Error::other)?;
        let (tx, rx) = mpsc::channel(1024);
        let wake = Arc::new(Notify::new());
        let urgent = Arc::new(AtomicBool::new(false));
        let content_in_db = db.get_database_backend() == sea_orm::DbBackend::Postgres;
        tokio::spawn(writer_loop(
            db.clone(),
            spool.clone(),
            content_in_db,
            rx,
            wake.clone(),
            urgent.clone(),
        ));
        Ok(Queue {
            db,
            spool,
            content_in_db,
            tx,
            wake,
            urgent,
        })
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
    pub fn spool(&self) -> &Path {
        &self.spool
    }
    pub fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }
    /// Whether an urgent document was committed since the last call (while every ordinary
    /// slot is busy, the scheduler then claims it for a slot kept for urgent documents).
    pub fn take_urgent_arrival(&self) -> bool {
        self.urgent.swap(false, Ordering::AcqRel)
    }
    /// Whether messages' bytes live in the database (PostgreSQL) rather than in the spool.
    pub fn content_in_db(&self) -> bool {
        self.content_in_db
    }

    /// The bytes of queued message `id`, wherever they live.
    pub async fn content(&self, id: &str) -> Result<Vec<u8>, ContentError> {
        if self.content_in_db {
            match message_content::Entity::find_by_id(id.to_string())
                .one(&self.db)
                .await
            {
                Ok(Some(row)) => Ok(row.content),
                Ok(None) => Err(ContentError::Unreadable(format!(
                    "spool file of {id} missing from the database (message_content)"
                ))),
                Err(e) => Err(ContentError::Database(e)),
            }
        } else {
            let path = spool_path(&self.spool, id);
            tokio::fs::read(&path).await.map_err(|e| {
                ContentError::Unreadable(format!("spool file {} unreadable: {e}", path.display()))
            })
        }
    }

    /// Writes `trace` then `data` to the spool, syncs, and commits the row. Returns the
    /// queue id once the message is durable: only then may the caller answer 250.
    pub async fn enqueue(
        &self,
        meta: NewMessage,
        trace: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<String, QueueError> {
        self.enqueue_with_id(new_queue_id(), meta, trace, data)
            .await
    }

    /// As [`Queue::enqueue`], with an id the caller chose (to name it in a Received header).
    pub async fn enqueue_with_id(
        &self,
        id: String,
        meta: NewMessage,
        trace: Vec<u8>,
        data: Vec<u8>,
    ) -> Result<String, QueueError> {
        let path = spool_path(&self.spool, &id);
        let size = (trace.len() + data.len()) as i64;
        if self.content_in_db {
            let mut content = trace;
            content.extend_from_slice(&data);
            return self.commit(id, meta, size, Some(content)).await;
        }
        let write_path = path.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&write_path)?;
            let r = (|| {
                f.write_all(&trace)?;
                f.write_all(&data)?;
                f.sync_all()
            })();
            if r.is_err() {
                let _ = std::fs::remove_file(&write_path);
            }
            r
        })
        .await
        .map_err(|e| QueueError::Io(e.to_string()))?;
        written.map_err(|e| QueueError::from_io(&e))?;
        self.commit(id, meta, size, None).await
    }

    /// Hands the row (and, with PostgreSQL, the bytes) to the writer and waits for its commit.
    async fn commit(
        &self,
        id: String,
        meta: NewMessage,
        size: i64,
        content: Option<Vec<u8>>,
    ) -> Result<String, QueueError> {
        let (reply, rx) = oneshot::channel();
        let req = CommitRequest {
            id: id.clone(),
            meta,
            size,
            content,
            reply,
        };
        if self.tx.send(req).await.is_err() {
            let _ = std::fs::remove_file(spool_path(&self.spool, &id));
            return Err(QueueError::ShuttingDown);
        }
        match rx.await {
            Ok(Ok(())) => Ok(id),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(QueueError::ShuttingDown),
        }
    }
}

fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

async fn writer_loop(
    db: DatabaseConnection,
    spool: PathBuf,
    content_in_db: bool,
    mut rx: mpsc::Receiver<CommitRequest>,
    wake: Arc<Notify>,
    urgent: Arc<AtomicBool>,
) {
    const MAX_BATCH: usize = 256;
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let batch = std::mem::take(&mut batch);
        let batch_urgent = batch
            .iter()
            .any(|r| r.meta.hold_reason.is_none() && r.meta.classification.urgency.is_urgent());
        let dir = spool.clone();
        let dir_synced = if content_in_db {
            Ok(())
        } else {
            tokio::task::spawn_blocking(move || fsync_dir(&dir))
                .await
                .map_err(|e| QueueError::Io(e.to_string()))
                .and_then(|r| r.map_err(|e| QueueError::from_io(&e)))
        };
        let outcome = match dir_synced {
            Ok(()) => match commit_batch(&db, &batch).await {
                Ok(()) => BatchOutcome::Committed,
                Err(CommitFailure::Before(e)) => {
                    BatchOutcome::NotCommitted(QueueError::from_db(&e))
                }
                Err(CommitFailure::AtCommit(e)) => resolve_in_doubt(&db, &batch, e).await,
            },
            Err(e) => BatchOutcome::NotCommitted(e),
        };
        let result = match &outcome {
            BatchOutcome::Committed => Ok(()),
            BatchOutcome::NotCommitted(e) | BatchOutcome::InDoubt(e) => Err(e.clone()),
        };
        if let Err(e) = &result {
            tracing::error!(error = %e, count = batch.len(), "queue commit failed; messages refused with 4xx");
        }
        for r in batch {
            match &outcome {
                BatchOutcome::Committed => tracing::info!(
                    queue_id = %r.id,
                    direction = r.meta.direction.as_str(),
                    sender = %r.meta.sender,
                    rcpts = r.meta.recipients.len(),
                    size = r.size,
                    urgency = r.meta.classification.urgency.ascii(),
                    state = if r.meta.hold_reason.is_some() { MessageState::Held } else { MessageState::Waiting }.as_str(),
                    "queued"
                ),
                BatchOutcome::NotCommitted(_) => {
                    let _ = std::fs::remove_file(spool_path(&spool, &r.id));
                }
                // Its row may exist: the file stays, and the next start-up keeps it if so.
                BatchOutcome::InDoubt(_) => {
                    tracing::error!(queue_id = %r.id, "commit in doubt: spool file kept for the start-up check")
                }
            }
            let _ = r.reply.send(result.clone());
        }
        if result.is_ok() {
            if batch_urgent {
                urgent.store(true, Ordering::Release);
            }
            wake.notify_one();
        }
    }
}

/// How a batch's transaction ended.
enum BatchOutcome {
    Committed,
    /// Certainly not committed: the spool files go.
    NotCommitted(QueueError),
    /// The COMMIT failed and whether it took effect could not be found out.
    InDoubt(QueueError),
}

/// Where [`commit_batch`] failed: before the COMMIT (nothing was committed), or at the COMMIT
/// itself (with PostgreSQL, a connection lost during COMMIT leaves the outcome unknown).
enum CommitFailure {
    Before(DbErr),
    AtCommit(DbErr),
}

impl From<DbErr> for CommitFailure {
    fn from(e: DbErr) -> Self {
        CommitFailure::Before(e)
    }
}

/// After a failed COMMIT, looks whether the batch's rows are there (all or none: one
/// transaction), for up to about 10 s while the database comes back. Committed rows mean the
/// messages are queued and get their 250, as after any commit.
async fn resolve_in_doubt(
    db: &DatabaseConnection,
    batch: &[CommitRequest],
    error: DbErr,
) -> BatchOutcome {
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};
    let ids: Vec<String> = batch.iter().map(|r| r.id.clone()).collect();
    let failure = QueueError::from_db(&error);
    tracing::warn!(error = %error, count = ids.len(), "COMMIT failed; checking whether it took effect");
    for attempt in 0..10u64 {
        if attempt > 0 {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        }
        let found = message::Entity::find()
            .filter(message::Column::Id.is_in(ids.clone()))
            .count(db)
            .await;
        match found {
            Ok(0) => return BatchOutcome::NotCommitted(failure),
            Ok(n) if n as usize == ids.len() => {
                tracing::warn!(
                    count = n,
                    "the failed COMMIT had taken effect: messages queued"
                );
                return BatchOutcome::Committed;
            }
            Ok(n) => {
                tracing::error!(
                    found = n,
                    expected = ids.len(),
                    "part of a batch found after a failed COMMIT"
                );
                return BatchOutcome::InDoubt(failure);
            }
            Err(e) => tracing::warn!(error = %e, attempt, "cannot check the failed COMMIT yet"),
        }
    }
    BatchOutcome::InDoubt(failure)
}

/// The batch in one transaction, each table's rows of all its messages in one statement (or
/// a few, see [`insert_rows`]): the writer's turn is then a handful of statements whatever
/// the batch holds, not four or five per message.
async fn commit_batch(
    db: &DatabaseConnection,
    batch: &[CommitRequest],
) -> Result<(), CommitFailure> {
    let now = now_ms();
    let mut messages = Vec::with_capacity(batch.len());
    let mut recipients = Vec::with_capacity(batch.len());
    let mut contents = Vec::new();
    let mut entries = Vec::with_capacity(batch.len());
    let mut handovers = Vec::with_capacity(batch.len());
    let mut pdfs = Vec::new();
    let mut numbers = Vec::new();
    for r in batch {
        let m = &r.meta;
        messages.push(message_row(r, now));
        recipients.extend(m.recipients.iter().map(|rc| recipient::ActiveModel {
            message_id: Set(r.id.clone()),
            address: Set(rc.address.clone()),
            route: Set(rc.route.as_str().into()),
            state: Set(RecipientState::Pending),
            notify: Set(rc.notify),
            orcpt: Set(rc.orcpt.clone()),
            last_reply: Set(None),
            updated_at: Set(now),
            ..Default::default()
        }));
        if let Some(content) = &r.content {
            contents.push(message_content::ActiveModel {
                id: Set(r.id.clone()),
                content: Set(content.clone()),
            });
        }
        // The register entry commits with the message: 250 means both are durable.
        let accepted_at = m.accepted_at.unwrap_or(now);
        if let Some((entry, rcpts)) = crate::register::book::accepted(&r.id, m, accepted_at) {
            entries.push(entry);
            handovers.extend(rcpts);
            pdfs.extend(crate::register::pdf::rows(&r.id, m.direction, &m.pdfs, now));
        }
        numbers.extend(m.number_reservation);
    }
    let _turn = crate::store::write_turn(db).await;
    let txn = db.begin().await?;
    // Parents before children (the foreign keys are checked per statement).
    insert_rows(&txn, messages).await?;
    insert_rows(&txn, recipients).await?;
    insert_rows(&txn, contents).await?;
    insert_rows(&txn, entries).await?;
    insert_rows(&txn, handovers).await?;
    insert_rows(&txn, pdfs).await?;
    crate::register::numbers::confirm_numbers(&txn, numbers).await?;
    txn.commit().await.map_err(CommitFailure::AtCommit)
}

/// The queue row of an accepted message.
fn message_row(r: &CommitRequest, now: i64) -> message::ActiveModel {
    let m = &r.meta;
    message::ActiveModel {
        id: Set(r.id.clone()),
        direction: Set(m.direction),
        state: Set(if m.hold_reason.is_some() {
            MessageState::Held
        } else {
            MessageState::Waiting
        }),
        sender: Set(m.sender.clone()),
        header_from: Set(m.header_from.clone()),
        subject: Set(m.subject.clone()),
        urgency: Set(m.classification.urgency.rank()),
        secrecy: Set(m.classification.secrecy.rank()),
        deadline_at: Set(m.deadline_at),
        size: Set(r.size),
        listener: Set(m.listener.clone()),
        client_ip: Set(m.client_ip.clone()),
        helo: Set(m.helo.clone()),
        account: Set(m.account.clone()),
        received_at: Set(m.accepted_at.unwrap_or(now)),
        next_attempt_at: Set(now),
        attempts: Set(0),
        reason: Set(m.hold_reason.clone()),
        dsn_ret: Set(m.dsn_ret.clone()),
        dsn_envid: Set(m.dsn_envid.clone()),
        body_8bit: Set(m.body_8bit),
        smtputf8: Set(m.smtputf8),
        generated: Set(m.generated),
        updated_at: Set(now),
        signed_serial: Set(None),
        signed_digest: Set(None),
        signed_at: Set(None),
        warned_at: Set(None),
        violated_at: Set(None),
        delay_notified_at: Set(None),
        smime_result: Set(m.smime.as_ref().map(|v| v.result.as_str().to_string())),
        smime_signer: Set(m.smime.as_ref().and_then(|v| v.signer.clone())),
        smime_reason: Set(m.smime.as_ref().and_then(|v| v.reason.clone())),
        header_message_id: Set(m.message_id.clone()),
        claimed_by: Set(None),
        lease_until: Set(None),
        unfinished_attempts: Set(0),
    }
}

/// Inserts `rows` (all with the same columns set) in as few statements as the databases'
/// limits on bound values allow (SQLite 32,766, PostgreSQL 65,535 per statement); nothing
/// for none.
async fn insert_rows<A>(txn: &impl sea_orm::ConnectionTrait, rows: Vec<A>) -> Result<(), DbErr>
where
    A: ActiveModelTrait + Send,
{
    use sea_orm::Iterable;
    const MAX_VALUES: usize = 16_000;
    let columns = <<A::Entity as EntityTrait>::Column as Iterable>::iter().count();
    let per_statement = (MAX_VALUES / columns.max(1)).max(1);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<A> = rows.by_ref().take(per_statement).collect();
        A::Entity::insert_many(chunk)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// Adds a message's bytes to the database (PostgreSQL), in the caller's transaction.
pub(crate) async fn insert_content<C: sea_orm::ConnectionTrait>(
    txn: &C,
    id: &str,
    content: Vec<u8>,
) -> Result<(), DbErr> {
    message_content::ActiveModel {
        id: Set(id.to_string()),
        content: Set(content),
    }
    .insert(txn)
    .await
    .map(|_| ())
}

/// Removes messages' bytes from the database, in the transaction that ends the messages
/// (delivered, failed or deleted); nothing with SQLite, whose bytes are spool files.
pub(crate) async fn remove_contents_in<C: sea_orm::ConnectionTrait>(
    txn: &C,
    ids: &[&str],
) -> Result<(), DbErr> {
    if txn.get_database_backend() == sea_orm::DbBackend::Postgres && !ids.is_empty() {
        message_content::Entity::delete_many()
            .filter(message_content::Column::Id.is_in(ids.iter().copied()))
            .exec(txn)
            .await?;
    }
    Ok(())
}
