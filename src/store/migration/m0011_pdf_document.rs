//! Migration `m0011_pdf_document`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
pub(super) enum PdfDocument {
    Table,
    Id,
    EntryId,
    Direction,
    Position,
    Name,
    Sha256Before,
    Sha256After,
    Signatures,
    Note,
    At,
}

/// The PDF parts of a document, as the register keeps them (SPEC "Documents"): per part its
/// name, SHA-256 before and after sealing, and the signatures found (JSON).
pub(super) struct M0011PdfDocument;

impl MigrationName for M0011PdfDocument {
    fn name(&self) -> &str {
        "m0011_pdf_document"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0011PdfDocument {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(PdfDocument::Table)
                .if_not_exists()
                .col(big_pk_auto(PdfDocument::Id))
                .col(string(PdfDocument::EntryId))
                .col(string(PdfDocument::Direction))
                .col(integer(PdfDocument::Position))
                .col(text(PdfDocument::Name))
                .col(string(PdfDocument::Sha256Before))
                .col(string_null(PdfDocument::Sha256After))
                .col(text(PdfDocument::Signatures))
                .col(text_null(PdfDocument::Note))
                .col(big_integer(PdfDocument::At))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_pdf_document_entry")
                .table(PdfDocument::Table)
                .col(PdfDocument::EntryId)
                .col(PdfDocument::Position)
                .unique()
                .if_not_exists()
                .to_owned(),
        )
        .await
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
