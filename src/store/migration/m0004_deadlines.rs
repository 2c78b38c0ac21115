//! Migration `m0004_deadlines`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
pub(super) enum MessageDeadline {
    #[sea_orm(iden = "message")]
    Table,
    WarnedAt,
    ViolatedAt,
}

/// When the deadline monitor warned about a message, and when it recorded a missed deadline.
pub(super) struct M0004Deadlines;

impl MigrationName for M0004Deadlines {
    fn name(&self) -> &str {
        "m0004_deadlines"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0004Deadlines {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [MessageDeadline::WarnedAt, MessageDeadline::ViolatedAt] {
            m.alter_table(
                Table::alter()
                    .table(MessageDeadline::Table)
                    .add_column(big_integer_null(col))
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
