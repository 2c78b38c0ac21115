//! Migration `m0009_delay_notice`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
pub(super) enum MessageDelay {
    #[sea_orm(iden = "message")]
    Table,
    DelayNotifiedAt,
}

/// When the sender was told that a message is delayed (RFC 3464 `Action: delayed`), so the
/// notice goes once.
pub(super) struct M0009DelayNotice;

impl MigrationName for M0009DelayNotice {
    fn name(&self) -> &str {
        "m0009_delay_notice"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0009DelayNotice {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(MessageDelay::Table)
                .add_column(big_integer_null(MessageDelay::DelayNotifiedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
