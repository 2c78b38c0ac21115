//! Migration `m0005_verification`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
pub(super) enum MessageVerification {
    #[sea_orm(iden = "message")]
    Table,
    SmimeResult,
    SmimeSigner,
    SmimeReason,
}

/// The S/MIME verification result of an incoming message (issue 4), until the incoming
/// register records it.
pub(super) struct M0005Verification;

impl MigrationName for M0005Verification {
    fn name(&self) -> &str {
        "m0005_verification"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0005Verification {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            MessageVerification::SmimeResult,
            MessageVerification::SmimeSigner,
            MessageVerification::SmimeReason,
        ] {
            m.alter_table(
                Table::alter()
                    .table(MessageVerification::Table)
                    .add_column(text_null(col))
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
