//! Migration `m0014_message_id`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
enum Message {
    Table,
    HeaderMessageId,
}

/// The message's own Message-ID field, so that each log line about a queued message can
/// name it beside the queue id (SPEC "Operating it").
pub(super) struct M0014MessageId;

impl MigrationName for M0014MessageId {
    fn name(&self) -> &str {
        "m0014_message_id"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0014MessageId {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        if !m
            .has_column("message", Message::HeaderMessageId.to_string())
            .await?
        {
            m.alter_table(
                Table::alter()
                    .table(Message::Table)
                    .add_column(text_null(Message::HeaderMessageId))
                    .to_owned(),
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
