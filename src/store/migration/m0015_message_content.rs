//! Migration `m0015_message_content`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
enum MessageContent {
    Table,
    Id,
    Content,
}

/// The bytes of queued messages, for a PostgreSQL database that several nodes share (SPEC
/// "Several nodes on one PostgreSQL": every node must be able to read every message). With
/// SQLite the bytes stay in the spool directory and this table stays empty.
pub(super) struct M0015MessageContent;

impl MigrationName for M0015MessageContent {
    fn name(&self) -> &str {
        "m0015_message_content"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0015MessageContent {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(MessageContent::Table)
                .if_not_exists()
                .col(string(MessageContent::Id).primary_key())
                .col(blob(MessageContent::Content))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(MessageContent::Table).to_owned())
            .await
    }
}
