//! The delivery results' writer: every attempt's end (the message's next state, each
//! recipient's outcome, the register's handover rows and the DSNs it causes) is committed by
//! this one task, and the results that arrive together share one transaction (group commit,
//! as acceptance does in `queue::writer_loop`). A message taken over meanwhile is left out
//! of the batch, and a result that fails is tried again alone, so neither costs the others
//! their commit. The spool files of the messages a batch ends are removed after its commit,
//! all in one blocking call, before the deliveries hear that their results are durable.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, QueryTrait, TransactionTrait,
};
use tokio::sync::{mpsc, oneshot, Notify};

use super::delivery::{end_attempt_values, ended, held_by, AttemptResult, Holder, Notices};
use super::lease::Leases;
use super::MessageState;
use crate::model::RecipientState;
use crate::register::book::Attempt;
use crate::store::batch::{update_rows, RowUpdate};
use crate::store::entity::{message, recipient};

/// The most results one transaction commits.
const MAX_BATCH: usize = 128;

/// How the commit of one result ended.
#[derive(Debug)]
pub(super) enum Recorded {
    /// Committed, with the mail it caused.
    Committed(Notices),
    /// This run no longer holds the message (an administrator or another daemon took it
    /// over): nothing of the result was recorded.
    TakenOver(Notices),
    /// Not committed; `transient` when the database said so (a lock, a full disk, a lost
    /// connection), so the caller waits and tries again.
    Failed {
        notices: Notices,
        transient: bool,
        error: String,
    },
}

struct Job {
    msg: message::Model,
    result: AttemptResult,
    notices: Notices,
    reply: oneshot::Sender<Recorded>,
}

/// The handle deliveries send their results to.
#[derive(Clone)]
pub struct ResultWriter {
    tx: mpsc::Sender<Job>,
}

impl ResultWriter {
    /// Starts the writer task; it ends when the last handle is dropped. `spool` is the spool
    /// directory when messages' bytes live in files (SQLite), None when in the database.
    pub fn start(
        db: DatabaseConnection,
        leases: Arc<Leases>,
        wake: Arc<Notify>,
        spool: Option<PathBuf>,
    ) -> ResultWriter {
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(writer(db, leases, rx, wake, spool));
        ResultWriter { tx }
    }

    /// Commits one attempt's result with the mail it causes; returns once it is durable (or
    /// certainly not recorded).
    pub(super) async fn record(
        &self,
        msg: &message::Model,
        result: AttemptResult,
        notices: Notices,
    ) -> Recorded {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            msg: msg.clone(),
            result,
            notices,
            reply,
        };
        if let Err(mpsc::error::SendError(job)) = self.tx.send(job).await {
            return Recorded::Failed {
                notices: job.notices,
                transient: false,
                error: "the result writer has stopped".into(),
            };
        }
        answer.await.unwrap_or_else(|_| Recorded::Failed {
            notices: Notices::default(),
            transient: false,
            error: "the result writer stopped during the commit".into(),
        })
    }
}

async fn writer(
    db: DatabaseConnection,
    leases: Arc<Leases>,
    mut rx: mpsc::Receiver<Job>,
    wake: Arc<Notify>,
    spool: Option<PathBuf>,
) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let batch = std::mem::take(&mut batch);
        let ends = commit_batch(&db, &leases, &batch).await;
        if let Some(spool) = &spool {
            remove_spool_files(spool, &batch, &ends).await;
        }
        let mut notify = false;
        for (job, end) in batch.into_iter().zip(ends) {
            let recorded = match end {
                End::Committed => {
                    notify |= !job.notices.is_empty();
                    Recorded::Committed(job.notices)
                }
                End::TakenOver => Recorded::TakenOver(job.notices),
                End::Failed { transient, error } => Recorded::Failed {
                    notices: job.notices,
                    transient,
                    error,
                },
            };
            // A delivery that stopped waiting (its task was cancelled) leaves its result
            // recorded all the same.
            let _ = job.reply.send(recorded);
        }
        if notify {
            wake.notify_one();
        }
    }
}

/// Removes the spool files of the messages whose committed results ended them (delivered or
/// failed), in one blocking call. A file left by a crash before this is removed at the next
/// start (`remove_orphan_spool_files`).
async fn remove_spool_files(spool: &Path, batch: &[Job], ends: &[End]) {
    let gone: Vec<PathBuf> = batch
        .iter()
        .zip(ends)
        .filter(|(job, end)| {
            matches!(end, End::Committed)
                && matches!(
                    job.result.next_state,
                    MessageState::Delivered | MessageState::Failed
                )
        })
        .map(|(job, _)| super::spool_path(spool, &job.msg.id))
        .collect();
    if gone.is_empty() {
        return;
    }
    let _ = tokio::task::spawn_blocking(move || {
        for path in gone {
            let _ = std::fs::remove_file(path);
        }
    })
    .await;
}

enum End {
    Committed,
    TakenOver,
    Failed { transient: bool, error: String },
}

impl End {
    fn failed(e: &DbErr) -> End {
        End::Failed {
            transient: crate::store::is_transient(e),
            error: e.to_string(),
        }
    }
}

/// One transaction for the batch. A result whose message this run no longer holds writes
/// nothing (its first statement is the conditional update that finds that out), so no
/// savepoints are needed on the way that almost every batch takes; when a result fails, the
/// batch is rolled back and each result is committed again in a transaction of its own, so
/// one bad result costs the others one more try, not their commit.
async fn commit_batch(db: &DatabaseConnection, leases: &Leases, batch: &[Job]) -> Vec<End> {
    let _turn = crate::store::write_turn(db).await;
    match commit_together(db, leases, batch).await {
        Ok(ends) => ends,
        Err(e) if batch.len() == 1 => vec![End::failed(&e)],
        Err(_) => {
            let mut ends = Vec::with_capacity(batch.len());
            for job in batch {
                let end = match commit_together(db, leases, std::slice::from_ref(job)).await {
                    Ok(mut one) => one.pop().unwrap_or(End::Committed),
                    Err(e) => End::failed(&e),
                };
                ends.push(end);
            }
            ends
        }
    }
}

/// The results of `batch` in one transaction: all committed (or left out as taken over), or
/// none when any statement or the commit fails.
async fn commit_together(
    db: &DatabaseConnection,
    leases: &Leases,
    batch: &[Job],
) -> Result<Vec<End>, DbErr> {
    let txn = db.begin().await?;
    match record(&txn, leases, batch).await {
        Ok(ends) => {
            txn.commit().await?;
            Ok(ends)
        }
        Err(e) => {
            let _ = txn.rollback().await;
            Err(e)
        }
    }
}

/// Records the batch's attempts and the mail they cause, one statement per table for the
/// whole batch (the messages, their recipients, the register's handover rows and entries),
/// plus the PDF parts and notices of the results that have some. The messages' UPDATE comes
/// first and returns the ones this run still holds: a result whose message was taken over
/// writes nothing.
async fn record<C: ConnectionTrait>(
    db: &C,
    leases: &Leases,
    batch: &[Job],
) -> Result<Vec<End>, DbErr> {
    let held = end_attempts(db, leases, batch).await?;
    let ends: Vec<End> = batch
        .iter()
        .map(|job| match held.contains(job.msg.id.as_str()) {
            true => End::Committed,
            false => End::TakenOver,
        })
        .collect();
    let kept: Vec<&Job> = batch
        .iter()
        .filter(|job| held.contains(job.msg.id.as_str()))
        .collect();

    let recipients = kept.iter().flat_map(|job| {
        job.result.updates.iter().map(|u| {
            RowUpdate::new(
                recipient::Column::Id.eq(u.id),
                vec![
                    (recipient::Column::State, Expr::value(u.state)),
                    (recipient::Column::LastReply, Expr::value(u.reply.clone())),
                    (recipient::Column::UpdatedAt, Expr::value(job.result.now)),
                ],
            )
        })
    });
    for update in update_rows::<recipient::Entity>(recipients.collect()) {
        update.exec(db).await?;
    }

    let documents: Vec<&Job> = kept.iter().copied().filter(|j| !j.msg.generated).collect();
    let attempts: Vec<Attempt> = documents.iter().map(|job| attempt(job)).collect();
    crate::register::book::record_attempts(db, &attempts).await?;
    for job in &documents {
        // The PDF parts as this attempt sealed them (an earlier attempt's are replaced).
        if let Some(s) = job.result.seal.as_ref().filter(|s| !s.pdfs.is_empty()) {
            let (msg, now) = (&job.msg, job.result.now);
            crate::register::pdf::replace_parts(db, &msg.id, msg.direction, &s.pdfs, now).await?;
        }
    }

    let ended: Vec<&str> = kept
        .iter()
        .filter(|job| {
            matches!(
                job.result.next_state,
                MessageState::Delivered | MessageState::Failed
            )
        })
        .map(|job| job.msg.id.as_str())
        .collect();
    super::remove_contents_in(db, &ended).await?;
    for job in &kept {
        job.notices.insert(db, &job.msg.id).await?;
    }
    Ok(ends)
}

/// Ends this run's attempts on the batch's messages in one UPDATE (each its next state,
/// reason, next attempt and count; the claims and leases released); returns the ids of the
/// messages it updated, the ones this run still held.
async fn end_attempts<C: ConnectionTrait>(
    db: &C,
    leases: &Leases,
    batch: &[Job],
) -> Result<HashSet<String>, DbErr> {
    let rows = batch
        .iter()
        .map(|job| {
            let r = &job.result;
            let mut values =
                end_attempt_values(r.next_state, r.reason.clone(), r.next_at, r.attempts, r.now);
            if r.delay_notified {
                values.push((message::Column::DelayNotifiedAt, Expr::value(r.now)));
            }
            RowUpdate::new(message::Column::Id.eq(&job.msg.id), values)
        })
        .collect();
    let mut held = HashSet::with_capacity(batch.len());
    for update in update_rows(rows) {
        let mut statement = held_by(ended(update), leases, Holder::ThisRun).into_query();
        statement.returning_col(message::Column::Id);
        for row in db.query_all(&statement).await? {
            held.insert(row.try_get::<String>("", "id")?);
        }
    }
    Ok(held)
}

/// The register's record of one result's attempt.
fn attempt(job: &Job) -> Attempt<'_> {
    let (msg, r) = (&job.msg, &job.result);
    Attempt {
        entry_id: &msg.id,
        accepted_at: msg.received_at,
        deadline_at: msg.deadline_at,
        at: r.now,
        recipients: r
            .updates
            .iter()
            .map(|u| (u.address.as_str(), u.state, u.reply.as_str()))
            .collect(),
        outcomes: r.outcomes.as_deref(),
        // Only an attempt that delivered something names the seal recipients got.
        seal: r
            .seal
            .as_ref()
            .filter(|_| {
                r.updates
                    .iter()
                    .any(|u| u.state == RecipientState::Delivered)
            })
            .map(|s| (s.serial.as_str(), s.digest.as_str())),
        deferred: r.reason.as_deref(),
        archive: r.archive.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, QueryFilter};

    fn delivered(attempts: i32) -> AttemptResult {
        AttemptResult {
            updates: Vec::new(),
            outcomes: None,
            next_state: MessageState::Delivered,
            reason: None,
            next_at: 1,
            attempts,
            seal: None,
            archive: None,
            delay_notified: false,
            now: 1,
        }
    }

    /// Three results in one transaction: the one whose message another daemon holds now is
    /// left out, the other two commit.
    #[tokio::test]
    async fn a_batch_commits_each_result_that_still_holds_its_message() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/q.db", dir.path().display());
        let db = crate::store::open(&url).await.unwrap();
        let leases = Leases::for_test(dir.path());
        let mut jobs = Vec::new();
        for (id, by) in [
            ("a", leases.claim()),
            ("b", "gw2/1.x"),
            ("c", leases.claim()),
        ] {
            let mut m = crate::queue::monitor::tests::msg(None, 0, 0);
            m.id = id.into();
            m.generated = true;
            m.state = MessageState::Delivering;
            m.claimed_by = Some(by.to_string());
            m.unfinished_attempts = 1;
            m.clone().into_active_model().insert(&db).await.unwrap();
            let (reply, _) = oneshot::channel();
            jobs.push(Job {
                msg: m,
                result: delivered(1),
                notices: Notices::default(),
                reply,
            });
        }
        let ends = commit_batch(&db, &leases, &jobs).await;
        let kinds: Vec<&str> = ends
            .iter()
            .map(|e| match e {
                End::Committed => "committed",
                End::TakenOver => "taken over",
                End::Failed { .. } => "failed",
            })
            .collect();
        assert_eq!(kinds, ["committed", "taken over", "committed"]);
        for (id, state, by) in [
            ("a", MessageState::Delivered, None),
            ("b", MessageState::Delivering, Some("gw2/1.x")),
            ("c", MessageState::Delivered, None),
        ] {
            let m = message::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!((m.state, m.claimed_by.as_deref()), (state, by), "{id}");
        }
    }

    /// A result that fails half-way (its message row updated, its recipient's update refused)
    /// leaves nothing of itself behind, and the others in its batch still commit: the batch's
    /// shared statements fail, the batch is rolled back and each result is tried alone.
    #[tokio::test]
    async fn a_result_that_fails_half_way_leaves_nothing_and_the_others_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/q.db", dir.path().display());
        let db = crate::store::open(&url).await.unwrap();
        // The update of message b's recipient is refused.
        db.execute_unprepared(
            "CREATE TRIGGER refuse_b BEFORE UPDATE ON recipient \
             WHEN NEW.message_id = 'b' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END",
        )
        .await
        .unwrap();
        let leases = Leases::for_test(dir.path());
        let mut jobs = Vec::new();
        for id in ["a", "b", "c"] {
            let mut m = crate::queue::monitor::tests::msg(None, 0, 0);
            m.id = id.into();
            m.generated = true;
            m.state = MessageState::Delivering;
            m.claimed_by = Some(leases.claim().to_string());
            m.unfinished_attempts = 1;
            m.clone().into_active_model().insert(&db).await.unwrap();
            let r = recipient::ActiveModel {
                message_id: sea_orm::Set(id.into()),
                address: sea_orm::Set(format!("{id}@hanoi.gov.vn")),
                route: sea_orm::Set("outbound".into()),
                state: sea_orm::Set(RecipientState::Pending),
                notify: sea_orm::Set(0),
                orcpt: sea_orm::Set(None),
                last_reply: sea_orm::Set(None),
                updated_at: sea_orm::Set(0),
                ..Default::default()
            }
            .insert(&db)
            .await
            .unwrap();
            let (reply, _) = oneshot::channel();
            let mut result = delivered(1);
            result.delay_notified = true;
            result
                .updates
                .push(super::super::delivery::RecipientUpdate {
                    id: r.id,
                    address: r.address,
                    state: RecipientState::Delivered,
                    reply: "250 ok".into(),
                });
            jobs.push(Job {
                msg: m,
                result,
                notices: Notices::default(),
                reply,
            });
        }
        let ends = commit_batch(&db, &leases, &jobs).await;
        let kinds: Vec<String> = ends
            .iter()
            .map(|e| match e {
                End::Committed => "committed".to_string(),
                End::TakenOver => "taken over".to_string(),
                End::Failed { error, .. } => format!("failed: {error}"),
            })
            .collect();
        assert_eq!(kinds[0], "committed");
        assert!(kinds[1].contains("refused by the test"), "{kinds:?}");
        assert_eq!(kinds[2], "committed");
        for (id, state, notified) in [
            ("a", MessageState::Delivered, true),
            ("b", MessageState::Delivering, false),
            ("c", MessageState::Delivered, true),
        ] {
            let m = message::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(m.state, state, "{id}");
            assert_eq!(m.delay_notified_at.is_some(), notified, "{id}");
            assert_eq!(m.claimed_by.is_some(), !notified, "{id}: still this run's");
            let r = recipient::Entity::find()
                .filter(recipient::Column::MessageId.eq(id))
                .one(&db)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(r.state == RecipientState::Delivered, notified, "{id}");
        }
    }
}
