//! Migration `m0006_register`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use super::*;
use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
pub(super) enum RegisterEntry {
    Table,
    Id,
    Direction,
    State,
    Timeliness,
    Rule,
    Reason,
    Number,
    NumberKey,
    Subject,
    Listener,
    ClientIp,
    Account,
    Sender,
    HeaderFrom,
    Recipients,
    Urgency,
    Secrecy,
    SignedDate,
    AcceptedAt,
    AcceptedDate,
    DeadlineAt,
    SealSerial,
    SealDigest,
    SignedAt,
    SentAt,
    DelayMs,
    SmimeResult,
    SmimeSigner,
    SmimeReason,
    ArchivePath,
    ArchiveUntil,
    UpdatedAt,
}

#[derive(DeriveIden)]
pub(super) enum RegisterRecipient {
    Table,
    Id,
    EntryId,
    Address,
    Route,
    State,
    Attempts,
    Reply,
    At,
    Dsn,
}

/// The registers (issue 6): one row per document, outgoing (sổ đăng ký văn bản đi) and
/// incoming (sổ đăng ký văn bản đến), and one row per recipient (the handover book, sổ bàn
/// giao). Refused documents, until now in `refusal`, become register rows in state `refused`.
pub(super) struct M0006Register;

impl MigrationName for M0006Register {
    fn name(&self) -> &str {
        "m0006_register"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0006Register {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use RegisterEntry as E;
        use RegisterRecipient as R;
        m.create_table(
            Table::create()
                .table(E::Table)
                .if_not_exists()
                .col(string(E::Id).primary_key())
                .col(string(E::Direction))
                .col(string(E::State))
                .col(string_null(E::Timeliness))
                .col(string_null(E::Rule))
                .col(text_null(E::Reason))
                .col(text_null(E::Number))
                .col(string_null(E::NumberKey))
                .col(text(E::Subject))
                .col(string(E::Listener))
                .col(string(E::ClientIp))
                .col(string_null(E::Account))
                .col(text(E::Sender))
                .col(text(E::HeaderFrom))
                .col(text(E::Recipients))
                .col(integer(E::Urgency))
                .col(integer(E::Secrecy))
                .col(string_null(E::SignedDate))
                .col(big_integer(E::AcceptedAt))
                .col(string(E::AcceptedDate))
                .col(big_integer_null(E::DeadlineAt))
                .col(string_null(E::SealSerial))
                .col(string_null(E::SealDigest))
                .col(big_integer_null(E::SignedAt))
                .col(big_integer_null(E::SentAt))
                .col(big_integer_null(E::DelayMs))
                .col(string_null(E::SmimeResult))
                .col(text_null(E::SmimeSigner))
                .col(text_null(E::SmimeReason))
                .col(text_null(E::ArchivePath))
                .col(big_integer_null(E::ArchiveUntil))
                .col(big_integer(E::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // `register list`: newest first within a direction (by number: m0008); archive pruning.
        for (name, cols) in [
            ("idx_register_dir_at", vec![E::Direction, E::AcceptedAt]),
            ("idx_register_archive_until", vec![E::ArchiveUntil]),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(E::Table).if_not_exists();
            for c in cols {
                idx.col(c);
            }
            m.create_index(idx.to_owned()).await?;
        }
        m.create_table(
            Table::create()
                .table(R::Table)
                .if_not_exists()
                .col(big_pk_auto(R::Id))
                .col(string(R::EntryId))
                .col(text(R::Address))
                .col(string(R::Route))
                .col(string(R::State))
                .col(integer(R::Attempts).default(0))
                .col(text_null(R::Reply))
                .col(big_integer_null(R::At))
                .col(text_null(R::Dsn))
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_register_recipient_entry")
                .table(R::Table)
                .col(R::EntryId)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        // Earlier refusals become refused register rows (metadata only, as before).
        let db = m.get_connection();
        let backend = db.get_database_backend();
        let rows = db
            .query_all_raw(sea_orm::Statement::from_string(
                backend,
                "SELECT id, at, listener, client_ip, account, sender, recipients, urgency, \
                 secrecy, number, rule FROM refusal",
            ))
            .await?;
        for row in rows {
            let id: i64 = row.try_get("", "id")?;
            let at: i64 = row.try_get("", "at")?;
            let urgency: String = row.try_get("", "urgency")?;
            let secrecy: String = row.try_get("", "secrecy")?;
            let number: Option<String> = row.try_get("", "number")?;
            let listener: String = row.try_get("", "listener")?;
            let date = frozen::vietnam_date(at);
            let insert = Query::insert()
                .into_table(E::Table)
                .columns([
                    E::Id,
                    E::Direction,
                    E::State,
                    E::Rule,
                    E::Number,
                    E::NumberKey,
                    E::Subject,
                    E::Listener,
                    E::ClientIp,
                    E::Account,
                    E::Sender,
                    E::HeaderFrom,
                    E::Recipients,
                    E::Urgency,
                    E::Secrecy,
                    E::AcceptedAt,
                    E::AcceptedDate,
                    E::UpdatedAt,
                ])
                .values_panic([
                    format!("refused-{id}").into(),
                    if listener == "inbound" { "in" } else { "out" }.into(),
                    "refused".into(),
                    row.try_get::<String>("", "rule")?.into(),
                    number.clone().into(),
                    number.as_deref().map(frozen::number_key).into(),
                    "".into(),
                    listener.clone().into(),
                    row.try_get::<String>("", "client_ip")?.into(),
                    row.try_get::<Option<String>>("", "account")?.into(),
                    row.try_get::<String>("", "sender")?.into(),
                    "".into(),
                    row.try_get::<String>("", "recipients")?.into(),
                    frozen::urgency_rank(&urgency).into(),
                    frozen::secrecy_rank(&secrecy).into(),
                    at.into(),
                    date.to_string().into(),
                    at.into(),
                ])
                // SQLite runs migrations outside a transaction: a re-run after a crash
                // half-way must not trip over the rows already copied.
                .on_conflict(OnConflict::column(E::Id).do_nothing().to_owned())
                .to_owned();
            m.exec_stmt(insert).await?;
        }
        m.drop_table(Table::drop().table(Refusal::Table).to_owned())
            .await?;
        Ok(())
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

/// What m0006 needed of the policy code, copied as it was then: a migration must give the
/// same result whatever today's code says, so none calls into it.
mod frozen {
    use unicode_normalization::UnicodeNormalization;

    /// The calendar day in Vietnam (UTC+7, no daylight saving) of a Unix time in ms.
    pub fn vietnam_date(at_ms: i64) -> time::Date {
        let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
        time::OffsetDateTime::from_unix_timestamp(at_ms / 1000)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
            .to_offset(offset)
            .date()
    }

    /// The comparison key of a document number: NFC, upper case.
    pub fn number_key(text: &str) -> String {
        text.nfc().collect::<String>().to_uppercase()
    }

    /// The urgency rank of a level's ASCII name, as the refusal table stored it.
    pub fn urgency_rank(ascii: &str) -> i32 {
        match ascii {
            "khan" => 1,
            "thuong-khan" => 2,
            "hoa-toc" => 3,
            "hoa-toc-hen-gio" => 4,
            _ => 0,
        }
    }

    /// The secrecy rank of a level's ASCII name, as the refusal table stored it.
    pub fn secrecy_rank(ascii: &str) -> i32 {
        match ascii {
            "mat" => 1,
            "toi-mat" => 2,
            "tuyet-mat" => 3,
            _ => 0,
        }
    }
}
