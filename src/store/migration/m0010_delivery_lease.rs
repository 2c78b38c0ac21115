//! Migration `m0010_delivery_lease`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
pub(super) enum MessageLease {
    #[sea_orm(iden = "message")]
    Table,
    ClaimedBy,
    LeaseUntil,
    UnfinishedAttempts,
}

/// Who is delivering a message and until when (a lease the daemon renews while it works),
/// and how many delivery attempts were started and never finished (the daemon stopped under
/// them): a message with two is held as poison instead of being retried for ever.
pub(super) struct M0010DeliveryLease;

impl MigrationName for M0010DeliveryLease {
    fn name(&self) -> &str {
        "m0010_delivery_lease"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0010DeliveryLease {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(MessageLease::Table)
                .add_column(string_null(MessageLease::ClaimedBy))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(MessageLease::Table)
                .add_column(big_integer_null(MessageLease::LeaseUntil))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(MessageLease::Table)
                .add_column(integer(MessageLease::UnfinishedAttempts).default(0))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
