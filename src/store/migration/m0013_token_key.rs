//! Migration `m0013_token_key`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
enum Identity {
    Table,
    Pkcs11Uri,
    Pkcs11Module,
    PinFile,
}

/// Identities whose key is on a token (SPEC "Keys on a token (PKCS#11)"): the RFC 7512 URI
/// of the key, the module that drives the token, and the file the daemon reads the PIN from
/// (never the PIN). One column per statement: SQLite alters one at a time.
pub(super) struct M0013TokenKey;

impl MigrationName for M0013TokenKey {
    fn name(&self) -> &str {
        "m0013_token_key"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0013TokenKey {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for column in [
            Identity::Pkcs11Uri,
            Identity::Pkcs11Module,
            Identity::PinFile,
        ] {
            if !m.has_column("identity", column.to_string()).await? {
                m.alter_table(
                    Table::alter()
                        .table(Identity::Table)
                        .add_column(text_null(column))
                        .to_owned(),
                )
                .await?;
            }
        }
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
