//! Schema migrations: the same statements for SQLite and PostgreSQL.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Queue),
            Box::new(M0002Policy),
            Box::new(M0003Pki),
            Box::new(M0004Deadlines),
            Box::new(M0005Verification),
            Box::new(M0006Register),
            Box::new(M0007Audit),
            Box::new(M0008ReportIndexes),
            Box::new(M0009DelayNotice),
            Box::new(M0010DeliveryLease),
        ]
    }
}

#[derive(DeriveIden)]
enum Account {
    Table,
    Id,
    Name,
    PasswordHash,
    AllowedFrom,
    Disabled,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Message {
    Table,
    Id,
    Direction,
    State,
    Sender,
    HeaderFrom,
    Subject,
    Urgency,
    Secrecy,
    DeadlineAt,
    Size,
    Listener,
    ClientIp,
    Helo,
    Account,
    ReceivedAt,
    NextAttemptAt,
    Attempts,
    Reason,
    DsnRet,
    DsnEnvid,
    #[sea_orm(iden = "body_8bit")]
    Body8bit,
    Smtputf8,
    Generated,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum Recipient {
    Table,
    Id,
    MessageId,
    Address,
    Route,
    State,
    Notify,
    Orcpt,
    LastReply,
    UpdatedAt,
}

struct M0001Queue;

impl MigrationName for M0001Queue {
    fn name(&self) -> &str {
        "m0001_queue"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0001Queue {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.create_table(
            Table::create()
                .table(Account::Table)
                .if_not_exists()
                .col(big_pk_auto(Account::Id))
                .col(string_uniq(Account::Name))
                .col(string(Account::PasswordHash))
                .col(text(Account::AllowedFrom))
                .col(boolean(Account::Disabled).default(false))
                .col(big_integer(Account::CreatedAt))
                .col(big_integer(Account::UpdatedAt))
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Message::Table)
                .if_not_exists()
                .col(string(Message::Id).primary_key())
                .col(string(Message::Direction))
                .col(string(Message::State))
                .col(string(Message::Sender))
                .col(text(Message::HeaderFrom))
                .col(text(Message::Subject))
                .col(integer(Message::Urgency))
                .col(integer(Message::Secrecy))
                .col(big_integer_null(Message::DeadlineAt))
                .col(big_integer(Message::Size))
                .col(string(Message::Listener))
                .col(string(Message::ClientIp))
                .col(text(Message::Helo))
                .col(string_null(Message::Account))
                .col(big_integer(Message::ReceivedAt))
                .col(big_integer(Message::NextAttemptAt))
                .col(integer(Message::Attempts))
                .col(text_null(Message::Reason))
                .col(string_null(Message::DsnRet))
                .col(text_null(Message::DsnEnvid))
                .col(boolean(Message::Body8bit))
                .col(boolean(Message::Smtputf8))
                .col(boolean(Message::Generated))
                .col(big_integer(Message::UpdatedAt))
                .to_owned(),
        )
        .await?;
        // The scheduler's pick: due messages by lane, then earliest deadline.
        m.create_index(
            Index::create()
                .name("idx_message_state_due")
                .table(Message::Table)
                .col(Message::State)
                .col(Message::NextAttemptAt)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        m.create_table(
            Table::create()
                .table(Recipient::Table)
                .if_not_exists()
                .col(big_pk_auto(Recipient::Id))
                .col(string(Recipient::MessageId))
                .col(text(Recipient::Address))
                .col(string(Recipient::Route))
                .col(string(Recipient::State))
                .col(integer(Recipient::Notify))
                .col(text_null(Recipient::Orcpt))
                .col(text_null(Recipient::LastReply))
                .col(big_integer(Recipient::UpdatedAt))
                .foreign_key(
                    ForeignKey::create()
                        .name("fk_recipient_message")
                        .from(Recipient::Table, Recipient::MessageId)
                        .to(Message::Table, Message::Id)
                        .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
        )
        .await?;
        m.create_index(
            Index::create()
                .name("idx_recipient_message")
                .table(Recipient::Table)
                .col(Recipient::MessageId)
                .if_not_exists()
                .to_owned(),
        )
        .await?;
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.drop_table(Table::drop().table(Recipient::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Message::Table).to_owned())
            .await?;
        m.drop_table(Table::drop().table(Account::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Identity {
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
enum TrustAnchor {
    Table,
    Id,
    Subject,
    NotAfter,
    Fingerprint,
    Pem,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Crl {
    Table,
    Id,
    Issuer,
    ThisUpdate,
    NextUpdate,
    Der,
    CreatedAt,
}

#[derive(DeriveIden)]
enum MessageSig {
    #[sea_orm(iden = "message")]
    Table,
    SignedSerial,
    SignedDigest,
    SignedAt,
}

/// Signing identities, trust anchors, CRLs, and the seal used on each message.
struct M0003Pki;

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

#[derive(DeriveIden)]
enum Refusal {
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
enum IssuedNumber {
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
struct M0002Policy;

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

#[derive(DeriveIden)]
enum MessageDeadline {
    #[sea_orm(iden = "message")]
    Table,
    WarnedAt,
    ViolatedAt,
}

/// When the deadline monitor warned about a message, and when it recorded a missed deadline.
struct M0004Deadlines;

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

#[derive(DeriveIden)]
enum MessageVerification {
    #[sea_orm(iden = "message")]
    Table,
    SmimeResult,
    SmimeSigner,
    SmimeReason,
}

/// The S/MIME verification result of an incoming message (issue 4), until the incoming
/// register records it.
struct M0005Verification;

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

#[derive(DeriveIden)]
enum RegisterEntry {
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
enum RegisterRecipient {
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
struct M0006Register;

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

#[derive(DeriveIden)]
enum AuditLog {
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

/// The hash-chained audit log (issue 6). `seq` is assigned by the appender (last + 1), not
/// by the database, so a removed row leaves a gap that `audit verify` names.
struct M0007Audit;

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

struct M0008ReportIndexes;

impl MigrationName for M0008ReportIndexes {
    fn name(&self) -> &str {
        "m0008_report_indexes"
    }
}

/// Indexes for `congvan report` (issue 6), so a year of register rows is aggregated from
/// index entries alone, never by scanning the table:
/// - the counts: `GROUP BY accepted_date, urgency, timeliness, state` walks
///   `(direction, accepted_date, urgency, timeliness, state, delay_ms)` in order (a streaming
///   aggregate on SQLite, no sort);
/// - the medians (`ORDER BY delay_ms LIMIT 2 OFFSET n`, overall, per month, per urgency) read
///   `(direction, delay_ms, accepted_date)` and `(direction, urgency, delay_ms,
///   accepted_date)` in delay order, testing the day in the index, without sorting;
/// - refusals by rule, and pending or held documents: `(direction, state, accepted_date, rule)`.
///
/// And one for `register list --number N`: without statistics SQLite prefers walking
/// `(direction, accepted_at)` for the newest-first order and tests every row's number;
/// `(direction, number_key, accepted_at)` matches both the filter and the order, so it wins.
#[async_trait::async_trait]
impl MigrationTrait for M0008ReportIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use RegisterEntry as E;
        for (name, cols) in [
            (
                "idx_register_report",
                vec![
                    E::Direction,
                    E::AcceptedDate,
                    E::Urgency,
                    E::Timeliness,
                    E::State,
                    E::DelayMs,
                ],
            ),
            (
                "idx_register_delay",
                vec![E::Direction, E::DelayMs, E::AcceptedDate],
            ),
            (
                "idx_register_urgency_delay",
                vec![E::Direction, E::Urgency, E::DelayMs, E::AcceptedDate],
            ),
            (
                "idx_register_state_rule",
                vec![E::Direction, E::State, E::AcceptedDate, E::Rule],
            ),
            (
                "idx_register_dir_number_at",
                vec![E::Direction, E::NumberKey, E::AcceptedAt],
            ),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(E::Table).if_not_exists();
            for c in cols {
                idx.col(c);
            }
            m.create_index(idx.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "idx_register_report",
            "idx_register_delay",
            "idx_register_urgency_delay",
            "idx_register_state_rule",
            "idx_register_dir_number_at",
        ] {
            m.drop_index(Index::drop().name(name).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum MessageDelay {
    #[sea_orm(iden = "message")]
    Table,
    DelayNotifiedAt,
}

/// When the sender was told that a message is delayed (RFC 3464 `Action: delayed`), so the
/// notice goes once.
struct M0009DelayNotice;

impl MigrationName for M0009DelayNotice {
    fn name(&self) -> &str {
        "m0009_delay_notice"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0009DelayNotice {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        m.alter_table(
            Table::alter()
                .table(MessageDelay::Table)
                .add_column(big_integer_null(MessageDelay::DelayNotifiedAt))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

#[derive(DeriveIden)]
enum MessageLease {
    #[sea_orm(iden = "message")]
    Table,
    ClaimedBy,
    LeaseUntil,
    UnfinishedAttempts,
}

/// Who is delivering a message and until when (a lease the daemon renews while it works),
/// and how many delivery attempts were started and never finished (the daemon stopped under
/// them): a message with two is held as poison instead of being retried for ever.
struct M0010DeliveryLease;

impl MigrationName for M0010DeliveryLease {
    fn name(&self) -> &str {
        "m0010_delivery_lease"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for M0010DeliveryLease {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per ALTER TABLE.
        m.alter_table(
            Table::alter()
                .table(MessageLease::Table)
                .add_column(string_null(MessageLease::ClaimedBy))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(MessageLease::Table)
                .add_column(big_integer_null(MessageLease::LeaseUntil))
                .to_owned(),
        )
        .await?;
        m.alter_table(
            Table::alter()
                .table(MessageLease::Table)
                .add_column(integer(MessageLease::UnfinishedAttempts).default(0))
                .to_owned(),
        )
        .await
    }

    async fn down(&self, _m: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnectionTrait;

    #[tokio::test]
    async fn earlier_refusals_become_refused_register_rows() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
        let db = sea_orm::Database::connect(&url).await.unwrap();
        Migrator::up(&db, Some(5)).await.unwrap();
        // 2026-11-21 17:30 UTC is 22 November in Hanoi.
        db.execute_unprepared(
            "INSERT INTO refusal (at, listener, client_ip, account, sender, recipients, urgency, \
             secrecy, number, rule) VALUES (1795282200000, 'submission', '10.0.0.9', 'vanthu', \
             'vanthu@dev.gov.vn', '[\"a@hanoi.gov.vn\"]', 'thuong-khan', 'toi-mat', \
             '07/BC-UBND', 'secrecy.toi-mat'), (1795282200001, 'inbound', '10.0.0.7', NULL, \
             'vanthu@hanoi.gov.vn', '[]', 'thuong', 'thuong', NULL, 'incoming.fail')",
        )
        .await
        .unwrap();
        Migrator::up(&db, None).await.unwrap();
        use sea_orm::EntityTrait;
        let rows = crate::store::entity::register_entry::Entity::find()
            .all(&db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        let inbound = rows.iter().find(|r| r.listener == "inbound").unwrap();
        assert_eq!(inbound.direction, "in", "a refusal on the inbound listener");
        let r = rows.iter().find(|r| r.listener == "submission").unwrap();
        assert_eq!(r.direction, "out");
        assert_eq!(r.state, "refused");
        assert_eq!(r.rule.as_deref(), Some("secrecy.toi-mat"));
        assert_eq!(r.urgency, crate::policy::Urgency::ThuongKhan.rank());
        assert_eq!(r.secrecy, crate::policy::Secrecy::ToiMat.rank());
        assert_eq!(r.accepted_date, "2026-11-22");
        assert_eq!(r.number_key.as_deref(), Some("07/BC-UBND"));
        assert!(db
            .execute_unprepared("SELECT 1 FROM refusal")
            .await
            .is_err());
        db.close().await.ok();
    }
}
