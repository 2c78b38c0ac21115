//! Migration `m0007_audit`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
pub(super) enum AuditLog {
    Table,
    Seq,
    At,
    Actor,
    Action,
    Subject,
    Details,
    PrevHash,
    Hash,
}

/// The hash-chained audit log (issue 6). `seq` is assigned by the appender (last + 1), not
/// by the database, so a removed row leaves a gap that `audit verify` names.
pub(super) struct M0007Audit;

impl MigrationName for M0007Audit {
    fn name(&self) -> &str {
        "m0007_audit"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0007Audit {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(AuditLog::Table)
                .if_not_exists()
                .col(big_integer(AuditLog::Seq).primary_key())
                .col(big_integer(AuditLog::At))
                .col(string(AuditLog::Actor))
                .col(string(AuditLog::Action))
                .col(text(AuditLog::Subject))
                .col(text(AuditLog::Details))
                .col(string_len(AuditLog::PrevHash, 64))
                .col(string_len(AuditLog::Hash, 64))
                .to_owned(),
        )
        .await?;
        // Lets `audit verify` find where a moved entry came from (by the hash it links to).
        m.create_index(
            Index::create()
                .name("idx_audit_log_hash")
                .table(AuditLog::Table)
                .col(AuditLog::Hash)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(AuditLog::Table).to_owned())
            .await
    }
}
