//! Migration `m0012_seal_image`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
enum SealImage {
    Table,
    IdentityId,
    Png,
    WidthMm,
    UpdatedAt,
}

/// The office's seal image per identity (`cert import --seal-image`, SPEC "Documents"): the
/// PNG as the admin gave it and the seal's real width. A table of its own, so the identity
/// rows read for every delivery do not carry the image.
pub(super) struct M0012SealImage;

impl MigrationName for M0012SealImage {
    fn name(&self) -> &str {
        "m0012_seal_image"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0012SealImage {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(SealImage::Table)
                .if_not_exists()
                .col(big_integer(SealImage::IdentityId).primary_key())
                .col(blob(SealImage::Png))
                .col(double(SealImage::WidthMm))
                .col(big_integer(SealImage::UpdatedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
