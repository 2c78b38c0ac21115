//! Migration `m0001_queue`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use sea_orm_migration::prelude::*;
use sea_orm_migration::schema::*;

#[derive(DeriveIden)]
pub(super) enum Account {
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
pub(super) enum Message {
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
pub(super) enum Recipient {
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

pub(super) struct M0001Queue;

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
