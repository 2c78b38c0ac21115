//! Mail the gateway writes itself (DSNs, delay notices, notices to the escalation addresses)
//! committed in the caller's transaction, together with the state change that causes it: a
//! delivery result and its bounce, a hold and its notice, a deadline warning and its mail
//! are durable together or not at all.
//!
//! The content is written to the spool and fsynced (file and directory) before the
//! transaction, like any queued message; [`Staged::insert`] adds the rows inside it (and,
//! with PostgreSQL, the content itself: no file then). A file
//! whose transaction does not commit is removed ([`Staged::discard`]), or at start-up with
//! the other spool files that have no row.

use std::io::Write;
use std::path::PathBuf;

use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, EntityTrait, Set};

use super::{spool_path, MessageState, NewMessage, Queue, QueueError, RecipientState};
use crate::store::entity::{message, recipient};
use crate::util::{new_queue_id, now_ms};

/// A message of the gateway's own, in the spool but not yet in the queue.
#[derive(Debug)]
pub struct Staged {
    id: String,
    meta: NewMessage,
    size: i64,
    /// Its spool file, or (PostgreSQL) its bytes, inserted with its row.
    body: Body,
}

#[derive(Debug)]
enum Body {
    File(PathBuf),
    Row(Vec<u8>),
}

impl Queue {
    /// Writes a message of the gateway's own to the spool, synced, without committing it:
    /// the caller inserts it with [`Staged::insert`] in the transaction of the change that
    /// causes it.
    pub async fn stage(&self, meta: NewMessage, bytes: Vec<u8>) -> Result<Staged, QueueError> {
        let id = new_queue_id();
        let path = spool_path(self.spool(), &id);
        let size = bytes.len() as i64;
        if self.content_in_db() {
            return Ok(Staged {
                id,
                meta,
                size,
                body: Body::Row(bytes),
            });
        }
        let (file, dir) = (path.clone(), self.spool().to_path_buf());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&file)?;
            let r = f
                .write_all(&bytes)
                .and_then(|()| f.sync_all())
                .and_then(|()| std::fs::File::open(&dir)?.sync_all());
            if r.is_err() {
                let _ = std::fs::remove_file(&file);
            }
            r
        })
        .await
        .map_err(|e| QueueError::Io(e.to_string()))?
        .map_err(|e| QueueError::from_io(&e))?;
        Ok(Staged {
            id,
            meta,
            size,
            body: Body::File(path),
        })
    }
}

impl Staged {
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Inserts the message and its recipients in the caller's transaction. The gateway's own
    /// mail has no register entry and no document number.
    pub async fn insert<C: ConnectionTrait>(&self, txn: &C) -> Result<(), DbErr> {
        let now = now_ms();
        let m = &self.meta;
        message::ActiveModel {
            id: Set(self.id.clone()),
            direction: Set(m.direction),
            state: Set(MessageState::Waiting),
            sender: Set(m.sender.clone()),
            header_from: Set(m.header_from.clone()),
            subject: Set(m.subject.clone()),
            urgency: Set(m.classification.urgency.rank()),
            secrecy: Set(m.classification.secrecy.rank()),
            deadline_at: Set(None),
            size: Set(self.size),
            listener: Set(m.listener.clone()),
            client_ip: Set(String::new()),
            helo: Set(String::new()),
            account: Set(None),
            received_at: Set(now),
            next_attempt_at: Set(now),
            attempts: Set(0),
            reason: Set(None),
            dsn_ret: Set(None),
            dsn_envid: Set(None),
            body_8bit: Set(m.body_8bit),
            smtputf8: Set(m.smtputf8),
            generated: Set(true),
            updated_at: Set(now),
            unfinished_attempts: Set(0),
            ..Default::default()
        }
        .insert(txn)
        .await?;
        let rows = m.recipients.iter().map(|rc| recipient::ActiveModel {
            message_id: Set(self.id.clone()),
            address: Set(rc.address.clone()),
            route: Set(rc.route.as_str().into()),
            state: Set(RecipientState::Pending),
            notify: Set(rc.notify),
            orcpt: Set(rc.orcpt.clone()),
            last_reply: Set(None),
            updated_at: Set(now),
            ..Default::default()
        });
        recipient::Entity::insert_many(rows).exec(txn).await?;
        if let Body::Row(bytes) = &self.body {
            super::insert_content(txn, &self.id, bytes.clone()).await?;
        }
        Ok(())
    }

    /// Removes the spool file of a message whose transaction did not commit.
    pub fn discard(self) {
        if let Body::File(path) = &self.body {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Removes the files of staged messages whose transaction did not commit.
pub fn discard_all(staged: Vec<Staged>) {
    for s in staged {
        s.discard();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{NewRecipient, Route};
    use sea_orm::{DatabaseConnection, PaginatorTrait, TransactionTrait};

    async fn setup() -> (tempfile::TempDir, DatabaseConnection, Queue) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db", dir.path().display());
        let db = crate::store::open(&url).await.unwrap();
        let q = Queue::start(db.clone(), dir.path().join("spool"))
            .await
            .unwrap();
        (dir, db, q)
    }

    fn notice() -> NewMessage {
        NewMessage::generated(
            "MAILER-DAEMON@gw.test".into(),
            "Delivery Status Notification",
            vec![NewRecipient {
                address: "a@dev.gov.vn".into(),
                route: Route::Inbound,
                notify: 0,
                orcpt: None,
            }],
        )
    }

    #[tokio::test]
    async fn a_staged_notice_exists_only_when_its_transaction_commits() {
        let (_dir, db, q) = setup().await;
        // Rolled back: no row, and the file is discarded.
        let s = q.stage(notice(), b"x\r\n".to_vec()).await.unwrap();
        let path = spool_path(q.spool(), s.id());
        assert!(
            path.exists(),
            "content is in the spool before the transaction"
        );
        let txn = db.begin().await.unwrap();
        s.insert(&txn).await.unwrap();
        txn.rollback().await.unwrap();
        s.discard();
        assert!(!path.exists());
        assert_eq!(message::Entity::find().count(&db).await.unwrap(), 0);
        // Committed: the row and its recipient exist, waiting for delivery.
        let s = q.stage(notice(), b"y\r\n".to_vec()).await.unwrap();
        let txn = db.begin().await.unwrap();
        s.insert(&txn).await.unwrap();
        txn.commit().await.unwrap();
        let m = message::Entity::find_by_id(s.id().to_string())
            .one(&db)
            .await
            .unwrap()
            .expect("row committed");
        assert_eq!(m.state, MessageState::Waiting);
        assert!(m.generated);
        assert_eq!(recipient::Entity::find().count(&db).await.unwrap(), 1);
        assert!(spool_path(q.spool(), s.id()).exists());
    }
}
