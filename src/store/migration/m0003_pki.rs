//! Migration `m0003_pki`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
pub(super) enum Identity {
    Table,
    Id,
    Subject,
    Issuer,
    Serial,
    Domains,
    Emails,
    Algorithm,
    NotBefore,
    NotAfter,
    Disabled,
    KeyFile,
    ChainFile,
    Fingerprint,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(super) enum TrustAnchor {
    Table,
    Id,
    Subject,
    NotAfter,
    Fingerprint,
    Pem,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(super) enum Crl {
    Table,
    Id,
    Issuer,
    ThisUpdate,
    NextUpdate,
    Der,
    CreatedAt,
}

#[derive(DeriveIden)]
pub(super) enum MessageSig {
    #[sea_orm(iden = "message")]
    Table,
    SignedSerial,
    SignedDigest,
    SignedAt,
}

/// Signing identities, trust anchors, CRLs, and the seal used on each message.
pub(super) struct M0003Pki;

impl MigrationName for M0003Pki {
    fn name(&self) -> &str {
        "m0003_pki"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0003Pki {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Identity::Table)
                .if_not_exists()
                .col(big_pk_auto(Identity::Id))
                .col(text(Identity::Subject))
                .col(text(Identity::Issuer))
                .col(string(Identity::Serial))
                .col(text(Identity::Domains))
                .col(text(Identity::Emails))
                .col(string(Identity::Algorithm))
                .col(big_integer(Identity::NotBefore))
                .col(big_integer(Identity::NotAfter))
                .col(boolean(Identity::Disabled).default(false))
                .col(text(Identity::KeyFile))
                .col(text(Identity::ChainFile))
                .col(string(Identity::Fingerprint))
                .col(big_integer(Identity::CreatedAt))
                .col(big_integer(Identity::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(TrustAnchor::Table)
                .if_not_exists()
                .col(big_pk_auto(TrustAnchor::Id))
                .col(text(TrustAnchor::Subject))
                .col(big_integer(TrustAnchor::NotAfter))
                .col(string_uniq(TrustAnchor::Fingerprint))
                .col(text(TrustAnchor::Pem))
                .col(big_integer(TrustAnchor::CreatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Crl::Table)
                .if_not_exists()
                .col(big_pk_auto(Crl::Id))
                .col(text(Crl::Issuer))
                .col(big_integer(Crl::ThisUpdate))
                .col(big_integer_null(Crl::NextUpdate))
                .col(blob(Crl::Der))
                .col(big_integer(Crl::CreatedAt))
                .to_owned(),
        )
        .await?;
        // SQLite takes one column per ALTER TABLE.
        for col in [MessageSig::SignedSerial, MessageSig::SignedDigest] {
            m.alter_table(
                Table::alter()
                    .table(MessageSig::Table)
                    .add_column(string_null(col))
                    .to_owned(),
            )
            .await?;
        }
        m.alter_table(
            Table::alter()
                .table(MessageSig::Table)
                .add_column(big_integer_null(MessageSig::SignedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for t in [
            Identity::Table.into_iden(),
            TrustAnchor::Table.into_iden(),
            Crl::Table.into_iden(),
        ] {
            m.drop_table(Table::drop().table(t).to_owned()).await?;
        }
        Ok(())
    }
}
