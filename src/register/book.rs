//! Writing the registers: a row when a document is accepted (inside the queue's commit) or
//! refused, and its updates as delivery goes on (inside the transaction that records each
//! attempt). Every function takes a connection or a transaction, so a caller decides what
//! commits together.

use sea_orm::sea_query::{Expr, ExprTrait, SimpleExpr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QuerySelect, Set,
};

use crate::model::EntryState;
use crate::model::{Direction, NewMessage, RecipientState};
use crate::policy::calendar::vietnam_date;
use crate::policy::{Secrecy, Urgency};
use crate::store::batch::{update_rows, RowUpdate};
use crate::store::entity::{register_entry as entry, register_recipient as rr};
use crate::util::{new_queue_id, now_ms};

/// Whether a document left before, on or after its deadline day (đúng hạn / quá hạn).
///
/// Judged by days in Asia/Ho_Chi_Minh, as the records office counts them: a document that
/// leaves on its deadline day is on time whatever the hour, one that leaves a day or more
/// before it is early, and one that leaves on a later day is late.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeliness {
    Early,
    OnTime,
    Late,
}

impl Timeliness {
    pub const ALL: [Timeliness; 3] = [Timeliness::Early, Timeliness::OnTime, Timeliness::Late];

    pub fn as_str(self) -> &'static str {
        match self {
            Timeliness::Early => "early",
            Timeliness::OnTime => "on-time",
            Timeliness::Late => "late",
        }
    }

    /// As the district reports write it.
    pub fn vi(self) -> &'static str {
        match self {
            Timeliness::Early => "Trước hạn",
            Timeliness::OnTime => "Đúng hạn",
            Timeliness::Late => "Quá hạn",
        }
    }

    pub fn parse(s: &str) -> Option<Timeliness> {
        Timeliness::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The timeliness of a document sent at `sent_at` with deadline `deadline_at` (Unix ms).
    pub fn judge(sent_at: i64, deadline_at: i64) -> Timeliness {
        let sent = vietnam_date(ms_to_datetime(sent_at));
        let due = vietnam_date(ms_to_datetime(deadline_at));
        match sent.cmp(&due) {
            std::cmp::Ordering::Less => Timeliness::Early,
            std::cmp::Ordering::Equal => Timeliness::OnTime,
            std::cmp::Ordering::Greater => Timeliness::Late,
        }
    }
}

fn ms_to_datetime(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The register's date of an instant (Unix ms): its day in Asia/Ho_Chi_Minh, `YYYY-MM-DD`.
pub fn register_date(ms: i64) -> String {
    vietnam_date(ms_to_datetime(ms)).to_string()
}

fn json_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
}

/// The rows of a document the queue is committing: `None` for the gateway's own mail.
pub(crate) fn accepted(
    id: &str,
    m: &NewMessage,
    accepted_at: i64,
) -> Option<(entry::ActiveModel, Vec<rr::ActiveModel>)> {
    if m.generated {
        return None;
    }
    let c = &m.classification;
    let smime = m.smime.as_ref();
    let row = entry::ActiveModel {
        id: Set(id.to_string()),
        direction: Set(m.direction),
        state: Set(if m.hold_reason.is_some() {
            EntryState::Held
        } else {
            EntryState::Pending
        }),
        timeliness: Set(None),
        rule: Set(m.rule.clone()),
        reason: Set(m.hold_reason.clone()),
        number: Set(c.number.clone()),
        number_key: Set(c.number.as_deref().map(crate::policy::number::key)),
        subject: Set(m.subject.clone()),
        listener: Set(m.listener.clone()),
        client_ip: Set(m.client_ip.clone()),
        account: Set(m.account.clone()),
        sender: Set(m.sender.clone()),
        header_from: Set(m.header_from.clone()),
        recipients: Set(json_list(
            &m.recipients
                .iter()
                .map(|r| r.address.clone())
                .collect::<Vec<_>>(),
        )),
        urgency: Set(c.urgency.rank()),
        secrecy: Set(c.secrecy.rank()),
        signed_date: Set(c.signed_date.map(|d| d.to_string())),
        accepted_at: Set(accepted_at),
        accepted_date: Set(register_date(accepted_at)),
        deadline_at: Set(m.deadline_at),
        seal_serial: Set(None),
        seal_digest: Set(None),
        signed_at: Set(None),
        sent_at: Set(None),
        delay_ms: Set(None),
        smime_result: Set(smime.map(|s| s.result.as_str().to_string())),
        smime_signer: Set(smime.and_then(|s| s.signer.clone())),
        smime_reason: Set(smime.and_then(|s| s.reason.clone())),
        archive_path: Set(None),
        archive_until: Set(None),
        updated_at: Set(accepted_at),
    };
    let rcpts = m
        .recipients
        .iter()
        .map(|r| rr::ActiveModel {
            entry_id: Set(id.to_string()),
            address: Set(r.address.clone()),
            route: Set(r.route.as_str().into()),
            state: Set(RecipientState::Pending),
            attempts: Set(0),
            reply: Set(None),
            at: Set(None),
            dsn: Set(None),
            ..Default::default()
        })
        .collect();
    Some((row, rcpts))
}

/// A document refused at SMTP time: what the register keeps of it (no subject, no content).
#[derive(Debug, Clone)]
pub struct Refused {
    pub direction: Direction,
    pub listener: String,
    pub client_ip: String,
    pub account: Option<String>,
    pub sender: String,
    pub header_from: String,
    pub recipients: Vec<String>,
    pub urgency: Urgency,
    pub secrecy: Secrecy,
    pub number: Option<String>,
    /// The rule that refused it, e.g. `secrecy.mat`.
    pub rule: String,
    /// The reply's English text.
    pub reason: String,
    /// Incoming: the S/MIME result behind the refusal.
    pub smime: Option<crate::model::SmimeRecord>,
}

/// Writes a refused document's row; returns its register id.
pub async fn record_refused(db: &impl ConnectionTrait, r: &Refused) -> Result<String, DbErr> {
    let id = new_queue_id();
    let now = now_ms();
    entry::ActiveModel {
        id: Set(id.clone()),
        direction: Set(r.direction),
        state: Set(EntryState::Refused),
        timeliness: Set(None),
        rule: Set(Some(r.rule.clone())),
        reason: Set(Some(r.reason.clone())),
        number: Set(r.number.clone()),
        number_key: Set(r.number.as_deref().map(crate::policy::number::key)),
        subject: Set(String::new()),
        listener: Set(r.listener.clone()),
        client_ip: Set(r.client_ip.clone()),
        account: Set(r.account.clone()),
        sender: Set(r.sender.clone()),
        header_from: Set(r.header_from.clone()),
        recipients: Set(json_list(&r.recipients)),
        urgency: Set(r.urgency.rank()),
        secrecy: Set(r.secrecy.rank()),
        signed_date: Set(None),
        accepted_at: Set(now),
        accepted_date: Set(register_date(now)),
        deadline_at: Set(None),
        seal_serial: Set(None),
        seal_digest: Set(None),
        signed_at: Set(None),
        sent_at: Set(None),
        delay_ms: Set(None),
        smime_result: Set(r.smime.as_ref().map(|s| s.result.as_str().to_string())),
        smime_signer: Set(r.smime.as_ref().and_then(|s| s.signer.clone())),
        smime_reason: Set(r.smime.as_ref().and_then(|s| s.reason.clone())),
        archive_path: Set(None),
        archive_until: Set(None),
        updated_at: Set(now),
    }
    .insert(db)
    .await?;
    Ok(id)
}

/// Sets the state (and reason) of a pending or held entry: a hold, a release, a deletion.
/// Entries already settled keep their outcome; the gateway's own mail has no entry.
pub async fn set_state(
    db: &impl ConnectionTrait,
    id: &str,
    new_state: EntryState,
    reason: Option<&str>,
) -> Result<(), DbErr> {
    entry::Entity::update_many()
        .col_expr(entry::Column::State, Expr::value(new_state))
        .col_expr(
            entry::Column::Reason,
            Expr::value(reason.map(str::to_string)),
        )
        .col_expr(entry::Column::UpdatedAt, Expr::value(now_ms()))
        .filter(entry::Column::Id.eq(id))
        .filter(entry::Column::State.is_in([EntryState::Pending, EntryState::Held]))
        .exec(db)
        .await
        .map(|_| ())
}

/// One delivery attempt, as the register records it.
pub struct Attempt<'a> {
    pub entry_id: &'a str,
    /// When the document was accepted (the queue's `received_at`, the entry's `accepted_at`)
    /// and its deadline: known to the caller, so not read back.
    pub accepted_at: i64,
    pub deadline_at: Option<i64>,
    pub at: i64,
    /// (address, recipient state after the attempt, the next hop's reply)
    pub recipients: Vec<(&'a str, RecipientState, &'a str)>,
    /// Every recipient's (state, when) after the attempt, when the caller knows them all
    /// (the queue's recipient rows, which change with these): then they are not read back.
    pub outcomes: Option<&'a [(RecipientState, i64)]>,
    /// The seal used: certificate serial and content digest.
    pub seal: Option<(&'a str, &'a str)>,
    /// Why recipients are still pending (the first temporary failure).
    pub deferred: Option<&'a str>,
    /// The copy of the message as sent: where, and until when it is kept.
    pub archive: Option<super::archive::Copy>,
}

/// Records attempts (one, or a group commit's); where no recipient is left pending, settles
/// the entry: delivered, partial or failed, with the dispatch time, the delay and the
/// timeliness. One UPDATE for all their handover rows and one for all their entries.
/// The gateway's own mail has no entry: the caller does not pass its attempts.
pub async fn record_attempts(
    db: &impl ConnectionTrait,
    attempts: &[Attempt<'_>],
) -> Result<(), DbErr> {
    let handover = attempts.iter().flat_map(|a| {
        a.recipients.iter().map(move |(address, st, reply)| {
            let mut values = vec![
                (rr::Column::State, Expr::value(*st)),
                (rr::Column::Reply, Expr::value(reply.to_string())),
                (rr::Column::Attempts, Expr::col(rr::Column::Attempts).add(1)),
            ];
            if *st != RecipientState::Pending {
                values.push((rr::Column::At, Expr::value(a.at)));
            }
            RowUpdate::new(
                rr::Column::EntryId
                    .eq(a.entry_id)
                    .and(rr::Column::Address.eq(*address)),
                values,
            )
        })
    });
    for update in update_rows::<rr::Entity>(handover.collect()) {
        update.exec(db).await?;
    }
    let mut entries = Vec::with_capacity(attempts.len());
    for a in attempts {
        let mut values = settled(
            db,
            a.entry_id,
            a.outcomes,
            a.accepted_at,
            a.deadline_at,
            a.at,
            EntryState::Failed,
            a.deferred,
        )
        .await?;
        // The seal and the copy of the first attempt that delivered: what recipients received
        // first. Later attempts (re-sealed, maybe by a renewed identity) do not overwrite
        // them: each column keeps its value unless the entry has neither yet (the SET
        // expressions all see the row as it was).
        let mut first: Vec<(entry::Column, sea_orm::Value)> = Vec::new();
        if let Some((serial, digest)) = a.seal {
            first.push((entry::Column::SealSerial, serial.into()));
            first.push((entry::Column::SealDigest, digest.into()));
            first.push((entry::Column::SignedAt, a.at.into()));
        }
        if let Some(copy) = &a.archive {
            first.push((entry::Column::ArchivePath, copy.place.clone().into()));
            first.push((entry::Column::ArchiveUntil, copy.until.into()));
        }
        for (column, value) in first {
            let none_yet = entry::Column::SealSerial
                .is_null()
                .and(entry::Column::ArchivePath.is_null());
            values.push((
                column,
                Expr::case(none_yet, Expr::val(value))
                    .finally(Expr::col(column))
                    .into(),
            ));
        }
        entries.push(RowUpdate::new(entry::Column::Id.eq(a.entry_id), values));
    }
    for update in update_rows::<entry::Entity>(entries) {
        update.exec(db).await?;
    }
    // The bytes of a copy kept in the database (PostgreSQL): only the first attempt that
    // delivered makes one (the deliverer looks for an earlier copy first), and an earlier
    // row stays as it is.
    for a in attempts {
        if let Some(bytes) = a.archive.as_ref().and_then(|c| c.content.as_deref()) {
            super::archive::insert_content(db, a.entry_id, bytes).await?;
        }
    }
    Ok(())
}

/// The values that bring an entry's state in line with its handover rows: pending while any
/// recipient is; otherwise delivered, partial, or `none_delivered` (failed, deleted), with
/// `reason`. The dispatch time is when the last delivered recipient was delivered, not when
/// the last one failed. The handover rows are read unless the caller knows them (`known`).
#[allow(clippy::too_many_arguments)]
async fn settled(
    db: &impl ConnectionTrait,
    entry_id: &str,
    known: Option<&[(RecipientState, i64)]>,
    accepted_at: i64,
    deadline_at: Option<i64>,
    now: i64,
    none_delivered: EntryState,
    reason: Option<&str>,
) -> Result<Vec<(entry::Column, SimpleExpr)>, DbErr> {
    let rows: Vec<(RecipientState, Option<i64>)> = match known {
        Some(known) => known.iter().map(|&(st, at)| (st, Some(at))).collect(),
        None => {
            rr::Entity::find()
                .select_only()
                .column(rr::Column::State)
                .column(rr::Column::At)
                .filter(rr::Column::EntryId.eq(entry_id))
                .into_tuple()
                .all(db)
                .await?
        }
    };
    let pending = rows.iter().any(|(s, _)| *s == RecipientState::Pending);
    let delivered: Vec<i64> = rows
        .iter()
        .filter(|(s, _)| *s == RecipientState::Delivered)
        .map(|(_, at)| at.unwrap_or(now))
        .collect();
    let mut values = vec![
        (entry::Column::UpdatedAt, Expr::value(now)),
        (
            entry::Column::Reason,
            Expr::value(reason.map(str::to_string)),
        ),
    ];
    if pending {
        values.push((entry::Column::State, Expr::value(EntryState::Pending)));
    } else {
        let settled = if !rows.is_empty() && delivered.len() == rows.len() {
            EntryState::Delivered
        } else if !delivered.is_empty() {
            EntryState::Partial
        } else {
            none_delivered
        };
        values.push((entry::Column::State, Expr::value(settled)));
        if let Some(sent) = delivered.iter().max().copied() {
            values.push((entry::Column::SentAt, Expr::value(sent)));
            values.push((entry::Column::DelayMs, Expr::value(sent - accepted_at)));
            values.push((
                entry::Column::Timeliness,
                Expr::value(deadline_at.map(|d| Timeliness::judge(sent, d).as_str())),
            ));
        }
    }
    Ok(values)
}

/// An administrator deleted the message from the queue: its recipients still waiting are
/// not handed over, and the entry keeps what was dispatched before (partial), or is deleted.
/// Returns whether anything had been dispatched.
pub async fn record_deleted(
    db: &impl ConnectionTrait,
    entry_id: &str,
    accepted_at: i64,
    deadline_at: Option<i64>,
    why: &str,
) -> Result<bool, DbErr> {
    let now = now_ms();
    rr::Entity::update_many()
        .col_expr(rr::Column::State, Expr::value(RecipientState::Failed))
        .col_expr(rr::Column::Reply, Expr::value(why))
        .col_expr(rr::Column::At, Expr::value(now))
        .filter(rr::Column::EntryId.eq(entry_id))
        .filter(rr::Column::State.eq(RecipientState::Pending))
        .exec(db)
        .await?;
    let values = settled(
        db,
        entry_id,
        None,
        accepted_at,
        deadline_at,
        now,
        EntryState::Deleted,
        Some(why),
    )
    .await?;
    for update in
        update_rows::<entry::Entity>(vec![RowUpdate::new(entry::Column::Id.eq(entry_id), values)])
    {
        update.exec(db).await?;
    }
    let dispatched = rr::Entity::find()
        .filter(rr::Column::EntryId.eq(entry_id))
        .filter(rr::Column::State.eq(RecipientState::Delivered))
        .count(db)
        .await?;
    Ok(dispatched > 0)
}

/// Notes a DSN sent to the sender about a recipient (`DSN failed 5.1.1 (<dsn id>)`).
pub async fn note_dsn(
    db: &impl ConnectionTrait,
    entry_id: &str,
    address: &str,
    note: &str,
) -> Result<(), DbErr> {
    let rows = rr::Entity::find()
        .filter(rr::Column::EntryId.eq(entry_id))
        .filter(rr::Column::Address.eq(address))
        .all(db)
        .await?;
    for row in rows {
        let dsn = match &row.dsn {
            Some(earlier) => format!("{earlier}; {note}"),
            None => note.to_string(),
        };
        rr::Entity::update_many()
            .col_expr(rr::Column::Dsn, Expr::value(dsn))
            .filter(rr::Column::Id.eq(row.id))
            .exec(db)
            .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        let t =
            time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap();
        (t.unix_timestamp_nanos() / 1_000_000) as i64
    }

    /// Two attempts of a document to two recipients: the first delivers to one (sealed,
    /// copied), the second to the other with a new seal and copy. The register keeps the
    /// first seal and copy, settles once nothing is pending, and dates the dispatch by the
    /// last delivery; the same whether the caller gives every recipient's outcome or the
    /// handover rows are read back. The second attempt is recorded in one batch with another
    /// document's first (one UPDATE for both entries): each entry gets its own values.
    #[tokio::test]
    async fn the_first_delivering_attempt_names_the_seal_and_the_copy() {
        for given in [false, true] {
            first_delivering_attempt(given).await;
        }
    }

    async fn first_delivering_attempt(given: bool) {
        use crate::model::{NewRecipient, Route};
        let (db, _dir) = crate::store::test_database().await;
        let mut m = NewMessage::generated(
            "vanthu@dev.gov.vn".into(),
            "Công văn",
            ["a@hanoi.gov.vn", "b@hanoi.gov.vn"]
                .map(|a| NewRecipient {
                    address: a.into(),
                    route: Route::Outbound,
                    notify: 0,
                    orcpt: None,
                })
                .to_vec(),
        );
        m.generated = false;
        m.deadline_at = Some(ms("2026-02-25T17:00:00+07:00"));
        let accepted_at = ms("2026-02-24T08:00:00+07:00");
        for id in ["e1", "e2"] {
            let (row, rcpts) = accepted(id, &m, accepted_at).unwrap();
            row.insert(&db).await.unwrap();
            rr::Entity::insert_many(rcpts).exec(&db).await.unwrap();
        }
        let copy = |place: &str, content: &[u8]| super::super::archive::Copy {
            place: place.into(),
            until: accepted_at + 1,
            content: Some(content.into()),
        };
        let first_at = ms("2026-02-24T09:00:00+07:00");
        let last_at = ms("2026-02-26T10:00:00+07:00");
        let after_first = [
            (RecipientState::Delivered, first_at),
            (RecipientState::Pending, first_at),
        ];
        let after_last = [
            (RecipientState::Delivered, first_at),
            (RecipientState::Delivered, last_at),
        ];
        let entry_now = async |id: &str| {
            entry::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .unwrap()
        };
        let attempt = |entry_id, at, recipients, outcomes, seal, archive, deferred| Attempt {
            entry_id,
            accepted_at,
            deadline_at: m.deadline_at,
            at,
            recipients,
            outcomes: Some(outcomes).filter(|_| given),
            seal,
            deferred,
            archive,
        };
        record_attempts(
            &db,
            &[attempt(
                "e1",
                first_at,
                vec![
                    ("a@hanoi.gov.vn", RecipientState::Delivered, "250 ok"),
                    ("b@hanoi.gov.vn", RecipientState::Pending, "451 later"),
                ],
                &after_first,
                Some(("01aa", "d1")),
                Some(copy("first", b"one")),
                Some("451 later"),
            )],
        )
        .await
        .unwrap();
        let e = entry_now("e1").await;
        assert_eq!(e.state, EntryState::Pending);
        assert_eq!(e.seal_serial.as_deref(), Some("01aa"));
        assert_eq!(e.signed_at, Some(first_at));
        assert_eq!(e.archive_path.as_deref(), Some("first"));
        assert_eq!(e.sent_at, None);
        record_attempts(
            &db,
            &[
                attempt(
                    "e1",
                    last_at,
                    vec![("b@hanoi.gov.vn", RecipientState::Delivered, "250 ok")],
                    &after_last,
                    Some(("02bb", "d2")),
                    Some(copy("second", b"two")),
                    None,
                ),
                attempt(
                    "e2",
                    last_at,
                    vec![
                        ("a@hanoi.gov.vn", RecipientState::Delivered, "250 ok"),
                        ("b@hanoi.gov.vn", RecipientState::Delivered, "250 ok"),
                    ],
                    &[(RecipientState::Delivered, last_at); 2],
                    Some(("03cc", "d3")),
                    Some(copy("third", b"three")),
                    None,
                ),
            ],
        )
        .await
        .unwrap();
        let e = entry_now("e1").await;
        assert_eq!(e.state, EntryState::Delivered);
        assert_eq!(
            (
                e.seal_serial.as_deref(),
                e.seal_digest.as_deref(),
                e.signed_at
            ),
            (Some("01aa"), Some("d1"), Some(first_at))
        );
        assert_eq!(e.archive_path.as_deref(), Some("first"));
        assert_eq!(e.archive_until, Some(accepted_at + 1));
        assert_eq!(
            super::super::archive::content_in_database(&db, "e1")
                .await
                .unwrap()
                .as_deref(),
            Some(&b"one"[..])
        );
        assert_eq!(e.sent_at, Some(last_at));
        assert_eq!(e.delay_ms, Some(last_at - accepted_at));
        assert_eq!(e.timeliness.as_deref(), Some("late"));
        assert_eq!(e.reason, None);
        let e = entry_now("e2").await;
        assert_eq!(
            (
                e.state,
                e.seal_serial.as_deref(),
                e.archive_path.as_deref(),
                e.sent_at
            ),
            (
                EntryState::Delivered,
                Some("03cc"),
                Some("third"),
                Some(last_at)
            )
        );
        let mut rows: Vec<(String, String, RecipientState, i32, Option<i64>)> = rr::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.entry_id, r.address, r.state, r.attempts, r.at))
            .collect();
        rows.sort_by(|x, y| (&x.0, &x.1).cmp(&(&y.0, &y.1)));
        let delivered = |entry: &str, address: &str, attempts, at| {
            (
                entry.to_string(),
                address.to_string(),
                RecipientState::Delivered,
                attempts,
                Some(at),
            )
        };
        assert_eq!(
            rows,
            [
                delivered("e1", "a@hanoi.gov.vn", 1, first_at),
                delivered("e1", "b@hanoi.gov.vn", 2, last_at),
                delivered("e2", "a@hanoi.gov.vn", 1, last_at),
                delivered("e2", "b@hanoi.gov.vn", 1, last_at),
            ]
        );
    }

    #[test]
    fn timeliness_counts_days_in_vietnam() {
        // Deadline: end of Wednesday 25 February 2026 (17:00 +07).
        let due = ms("2026-02-25T17:00:00+07:00");
        assert_eq!(
            Timeliness::judge(ms("2026-02-24T09:00:00+07:00"), due),
            Timeliness::Early
        );
        assert_eq!(
            Timeliness::judge(ms("2026-02-25T08:00:00+07:00"), due),
            Timeliness::OnTime
        );
        // Late in the evening of the deadline day still counts as that day.
        assert_eq!(
            Timeliness::judge(ms("2026-02-25T22:00:00+07:00"), due),
            Timeliness::OnTime
        );
        // 00:30 on the 26th in Hanoi is still the 25th in UTC: the day is Vietnam's.
        assert_eq!(
            Timeliness::judge(ms("2026-02-26T00:30:00+07:00"), due),
            Timeliness::Late
        );
        // An immediate rule's deadline is the moment of acceptance: same day is on time.
        let accepted = ms("2026-03-02T10:00:00+07:00");
        assert_eq!(
            Timeliness::judge(accepted + 5_000, accepted),
            Timeliness::OnTime
        );
    }

    #[test]
    fn register_date_is_the_day_in_hanoi() {
        assert_eq!(register_date(ms("2026-01-01T17:30:00Z")), "2026-01-02");
        assert_eq!(register_date(ms("2026-01-01T16:59:59Z")), "2026-01-01");
    }
}
