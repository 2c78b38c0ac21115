//! Migration `m0016_leader_archive`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
enum LeaderLease {
    Table,
    Name,
    Holder,
    Until,
}

#[derive(DeriveIden)]
enum ArchiveContent {
    Table,
    Id,
    Content,
}

/// For several nodes on one PostgreSQL (SPEC "Several nodes on one PostgreSQL"):
/// `leader_lease`, one row per job that runs on one node at a time (the deadline monitor and
/// archive pruning), naming the daemon that runs it and until when; and `archive_content`,
/// the archived copies of sent documents kept in the database, where every node can read
/// and prune them (with SQLite the copies stay files under `data_dir/archive`).
pub(super) struct M0016LeaderArchive;

impl MigrationName for M0016LeaderArchive {
    fn name(&self) -> &str {
        "m0016_leader_archive"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0016LeaderArchive {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(LeaderLease::Table)
                .if_not_exists()
                .col(string(LeaderLease::Name).primary_key())
                .col(string(LeaderLease::Holder))
                .col(big_integer(LeaderLease::Until))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(ArchiveContent::Table)
                .if_not_exists()
                .col(string(ArchiveContent::Id).primary_key())
                .col(blob(ArchiveContent::Content))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(ArchiveContent::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(LeaderLease::Table).to_owned())
            .await
    }
}
