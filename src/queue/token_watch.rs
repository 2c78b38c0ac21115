//! The token watch: documents held because the key's token could not sign (pulled out,
//! locked, its PIN refused, the module gone) are released by themselves once a test
//! signature through that token works again, every `[queue] monitor_interval_secs`. An
//! outage is reported once (the log, the audit log, one notice to the administrator), not
//! at every document it holds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter};
use serde_json::json;
use tokio::sync::watch;

use super::delivery::Deliverer;
use super::{admin, Direction, MessageState};
use crate::audit::{self, Action, Event};
use crate::model::state::{token_of_hold, TOKEN_HOLD};
use crate::pki::store::SealProblem;
use crate::pki::token::TokenError;
use crate::store::entity::message;

/// The token identities that cannot sign now, with the last error seen.
#[derive(Default)]
pub struct Outages {
    failing: Mutex<HashMap<i64, TokenError>>,
}

impl Outages {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, TokenError>> {
        self.failing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records that identity `id`'s token failed; true when this begins an outage or the
    /// token now fails otherwise (a pulled token put back with its PIN changed): what is to
    /// be reported.
    pub fn failed(&self, id: i64, error: &TokenError) -> bool {
        let mut failing = self.lock();
        let new = failing
            .get(&id)
            .is_none_or(|e| std::mem::discriminant(e) != std::mem::discriminant(error));
        failing.insert(id, error.clone());
        new
    }

    /// The error identity `id`'s token failed with last, while it cannot sign.
    pub fn failing(&self, id: i64) -> Option<TokenError> {
        self.lock().get(&id).cloned()
    }

    /// Records that identity `id`'s token signs; true when that ends an outage.
    pub fn recovered(&self, id: i64) -> bool {
        self.lock().remove(&id).is_some()
    }
}

/// The audit entry of a token outage: `identity.pin_refused` for a refused or locked PIN,
/// `identity.token_failed` otherwise. An audit failure is logged; the hold still happens.
pub async fn audit_failure(db: &DatabaseConnection, id: i64, error: &TokenError) {
    let action = match error {
        TokenError::PinIncorrect | TokenError::PinLocked => Action::IdentityPinRefused,
        _ => Action::IdentityTokenFailed,
    };
    tracing::error!(identity = id, %error, "the seal's token cannot sign: its documents are held until it does");
    let details = json!({ "error": error.kind(), "reason": error.to_string() });
    append(db, action, id, details).await;
}

/// The audit entry of a token that signs again, and how many held documents that released.
pub async fn audit_recovered(db: &DatabaseConnection, id: i64, released: usize) {
    tracing::info!(
        identity = id,
        released,
        "the seal's token signs again: the documents held for it are released"
    );
    let details = json!({ "released": released });
    append(db, Action::IdentityTokenRecovered, id, details).await;
}

async fn append(db: &DatabaseConnection, action: Action, id: i64, details: serde_json::Value) {
    let result = async {
        let txn = audit::begin(db).await?;
        audit::append(
            &txn,
            &Event::new(audit::DAEMON, action, id.to_string(), details),
        )
        .await?;
        txn.commit().await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(identity = id, %action, error = %e, "could not write the audit entry");
    }
}

/// Tries each token that documents are held for, and releases them when it signs.
/// Returns how many documents were released.
pub async fn sweep(d: &Deliverer) -> Result<usize, DbErr> {
    let db = d.queue.db();
    let held = message::Entity::find()
        .filter(message::Column::State.eq(MessageState::Held))
        .filter(message::Column::Direction.eq(Direction::Out))
        .filter(message::Column::Reason.starts_with(TOKEN_HOLD))
        .all(db)
        .await?;
    let mut waiting: HashMap<i64, Vec<String>> = HashMap::new();
    for m in held {
        if let Some(id) = m.reason.as_deref().and_then(token_of_hold) {
            waiting.entry(id).or_default().push(m.id);
        }
    }
    let mut released = 0;
    for (id, messages) in waiting {
        let tested = match d.seals.by_id(db, id).await? {
            Ok(identity) => SealProblem::test(identity).await,
            Err(e) => Err(e),
        };
        if let Err(problem) = tested {
            // Reported when it fails otherwise than before (put back, but the PIN refused).
            if let Some(e) = problem.token_error() {
                if d.tokens.failed(id, e) {
                    audit_failure(db, id, e).await;
                }
            }
            tracing::debug!(identity = id, held = messages.len(), %problem, "the seal's token still cannot sign");
            continue;
        }
        let mut n = 0;
        for queue_id in &messages {
            match admin::release(db, audit::DAEMON, queue_id).await {
                Ok(()) => n += 1,
                // Released, deleted or held otherwise by an administrator meanwhile.
                Err(admin::AdminError::Db(e)) => return Err(e),
                Err(e) => tracing::debug!(queue_id = %queue_id, error = %e, "not released"),
            }
        }
        d.tokens.recovered(id);
        audit_recovered(db, id, n).await;
        released += n;
    }
    if released > 0 {
        d.queue.wake().notify_one();
    }
    Ok(released)
}

/// Runs [`sweep`] every `[queue] monitor_interval_secs` until `stop`.
pub async fn run(d: Arc<Deliverer>, mut stop: watch::Receiver<bool>) {
    let every = Duration::from_secs(d.config.queue.monitor_interval_secs.max(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = sweep(&d).await {
            tracing::error!(error = %e, "token watch failed; will try again");
        }
    }
}
