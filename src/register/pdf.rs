//! The PDF parts of a registered document (SPEC "Documents"): per part its name, SHA-256
//! before and after sealing, and the signatures found, in `pdf_document`. Written with the
//! queued message (incoming) or with the delivery attempt that sealed them (outgoing); an
//! attempt that seals again replaces what an earlier one wrote, so the register holds the
//! file that was last sent.

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
};

use crate::model::Direction;
use crate::pdf::{PartSealed, SignatureSummary};
use crate::store::entity::pdf_document;

/// Replaces the PDF parts recorded for `entry_id` with `parts`, in the caller's transaction
/// (delivery's: the attempt that sealed them).
pub async fn replace_parts(
    txn: &impl ConnectionTrait,
    entry_id: &str,
    direction: Direction,
    parts: &[PartSealed],
    at_ms: i64,
) -> Result<(), DbErr> {
    pdf_document::Entity::delete_many()
        .filter(pdf_document::Column::EntryId.eq(entry_id))
        .exec(txn)
        .await?;
    let rows = rows(entry_id, direction, parts, at_ms);
    if !rows.is_empty() {
        pdf_document::Entity::insert_many(rows).exec(txn).await?;
    }
    Ok(())
}

/// The rows for `parts` of `entry_id`, for a transaction that writes them with others (the
/// queue's commit of an incoming document).
pub fn rows(
    entry_id: &str,
    direction: Direction,
    parts: &[PartSealed],
    at_ms: i64,
) -> Vec<pdf_document::ActiveModel> {
    parts
        .iter()
        .enumerate()
        .map(|(position, part)| pdf_document::ActiveModel {
            entry_id: Set(entry_id.to_string()),
            direction: Set(direction),
            position: Set(position as i32),
            name: Set(part.name.clone()),
            sha256_before: Set(part.sha256_before.clone()),
            sha256_after: Set(part.sha256_after.clone()),
            signatures: Set(serde_json::to_string(&part.signatures).unwrap_or_default()),
            note: Set(part.note.clone()),
            at: Set(at_ms),
            ..Default::default()
        })
        .collect()
}

/// The PDF parts recorded for `entry_id`, in message order.
pub async fn parts_of(db: &impl ConnectionTrait, entry_id: &str) -> Result<Vec<PartSealed>, DbErr> {
    let rows = pdf_document::Entity::find()
        .filter(pdf_document::Column::EntryId.eq(entry_id))
        .order_by_asc(pdf_document::Column::Position)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| PartSealed {
            name: r.name,
            sha256_before: r.sha256_before,
            sha256_after: r.sha256_after,
            signatures: serde_json::from_str::<Vec<SignatureSummary>>(&r.signatures)
                .unwrap_or_default(),
            note: r.note,
        })
        .collect())
}
