//! Migration `m0002_policy`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
pub(super) enum Refusal {
    Table,
    Id,
    At,
    Listener,
    ClientIp,
    Account,
    Sender,
    Recipients,
    Urgency,
    Secrecy,
    Number,
    Rule,
}

#[derive(DeriveIden)]
pub(super) enum IssuedNumber {
    Table,
    Id,
    Office,
    Year,
    Number,
    NumberKey,
    QueueId,
    Confirmed,
    At,
}

/// The policy's records: refused documents (metadata only) and issued document numbers
/// (unique per office, year and number).
pub(super) struct M0002Policy;

impl MigrationName for M0002Policy {
    fn name(&self) -> &str {
        "m0002_policy"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0002Policy {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Refusal::Table)
                .if_not_exists()
                .col(big_pk_auto(Refusal::Id))
                .col(big_integer(Refusal::At))
                .col(string(Refusal::Listener))
                .col(string(Refusal::ClientIp))
                .col(string_null(Refusal::Account))
                .col(text(Refusal::Sender))
                .col(text(Refusal::Recipients))
                .col(string(Refusal::Urgency))
                .col(string(Refusal::Secrecy))
                .col(text_null(Refusal::Number))
                .col(string(Refusal::Rule))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_refusal_at")
                .table(Refusal::Table)
                .col(Refusal::At)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(IssuedNumber::Table)
                .if_not_exists()
                .col(big_pk_auto(IssuedNumber::Id))
                .col(string(IssuedNumber::Office))
                .col(integer(IssuedNumber::Year))
                .col(text(IssuedNumber::Number))
                .col(string(IssuedNumber::NumberKey))
                .col(string(IssuedNumber::QueueId))
                .col(boolean(IssuedNumber::Confirmed))
                .col(big_integer(IssuedNumber::At))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_issued_number_unique")
                .table(IssuedNumber::Table)
                .col(IssuedNumber::Office)
                .col(IssuedNumber::Year)
                .col(IssuedNumber::NumberKey)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(IssuedNumber::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Refusal::Table).to_owned())
            .await
    }
}
