//! sea-orm entities. Times are Unix milliseconds (i64) so that SQLite and PostgreSQL store
//! and compare them the same way.

pub mod account {
    use sea_orm::entity::prelude::*;

    /// A clerk's (văn thư) SMTP AUTH account.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "account")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        #[sea_orm(unique)]
        pub name: String,
        /// Argon2id PHC string.
        pub password_hash: String,
        /// JSON array of addresses ("a@d") or whole domains ("@d") the account may send as.
        pub allowed_from: String,
        pub disabled: bool,
        pub created_at: i64,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod message {
    use sea_orm::entity::prelude::*;

    /// One message in the queue. Its content is the spool file `spool/<id>.eml`, or with
    /// PostgreSQL its `message_content` row.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "message")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// "out" (văn bản đi) or "in" (văn bản đến), a text column.
        pub direction: crate::model::Direction,
        /// waiting | delivering | deferred | held | delivered | failed (a text column).
        pub state: crate::model::MessageState,
        /// Envelope sender; empty for the null sender.
        pub sender: String,
        pub header_from: String,
        pub subject: String,
        /// Urgency rank 0 (thường) .. 4 (hỏa tốc hẹn giờ): the delivery lane.
        pub urgency: i32,
        pub secrecy: i32,
        /// Unix ms by which the document must have left, when a rule gives one.
        pub deadline_at: Option<i64>,
        pub size: i64,
        pub listener: String,
        pub client_ip: String,
        pub helo: String,
        pub account: Option<String>,
        pub received_at: i64,
        pub next_attempt_at: i64,
        pub attempts: i32,
        pub reason: Option<String>,
        /// DSN RET (FULL | HDRS) and ENVID from MAIL FROM.
        pub dsn_ret: Option<String>,
        pub dsn_envid: Option<String>,
        pub body_8bit: bool,
        pub smtputf8: bool,
        /// Written by the gateway itself (DSN, notice): not subject to dispatch rules.
        pub generated: bool,
        pub updated_at: i64,
        /// No longer written: the register entry (`register_entry.seal_*`) records the seal of
        /// the attempt that delivered. Kept so older databases need no destructive migration.
        pub signed_serial: Option<String>,
        pub signed_digest: Option<String>,
        pub signed_at: Option<i64>,
        /// When the deadline monitor warned the escalation addresses.
        pub warned_at: Option<i64>,
        /// When the deadline passed with the document still undelivered (a violation).
        pub violated_at: Option<i64>,
        /// When the sender was sent a "delayed" DSN for a long deferral (once per message).
        pub delay_notified_at: Option<i64>,
        /// S/MIME verification of an incoming message: the RFC 7281 result, the signer's
        /// address, and the reason when not `pass`.
        pub smime_result: Option<String>,
        pub smime_signer: Option<String>,
        pub smime_reason: Option<String>,
        /// The daemon delivering it (`node/incarnation`) while `delivering`.
        pub claimed_by: Option<String>,
        /// Unix ms until which that daemon holds it; renewed while the attempt runs. Once
        /// past, the attempt is taken to have stopped with its daemon.
        pub lease_until: Option<i64>,
        /// Delivery attempts started (counted by the claim) and never finished: the daemon
        /// stopped under them. Two make the message poison (held).
        pub unfinished_attempts: i32,
        /// The message's Message-ID field as received (printable, at most 255 characters),
        /// for the log; None for the gateway's own mail or a message without one.
        pub header_message_id: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(has_many = "super::recipient::Entity")]
        Recipient,
    }

    impl Related<super::recipient::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Recipient.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod recipient {
    use sea_orm::entity::prelude::*;

    /// One envelope recipient of a queued message, with its own delivery state.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "recipient")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub message_id: String,
        pub address: String,
        /// "outbound" (outbound.upstream) or "inbound" (inbound.deliver_to).
        pub route: String,
        /// pending | delivered | failed (a text column).
        pub state: crate::model::RecipientState,
        /// DSN NOTIFY bits (smtp-proto's RCPT_NOTIFY_*), 0 when not given.
        pub notify: i32,
        pub orcpt: Option<String>,
        pub last_reply: Option<String>,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {
        #[sea_orm(
            belongs_to = "super::message::Entity",
            from = "Column::MessageId",
            to = "super::message::Column::Id",
            on_delete = "Cascade"
        )]
        Message,
    }

    impl Related<super::message::Entity> for Entity {
        fn to() -> RelationDef {
            Relation::Message.def()
        }
    }

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod identity {
    use sea_orm::entity::prelude::*;

    /// A signing identity (the office's digital seal) for one or more From domains.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "identity")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub subject: String,
        pub issuer: String,
        pub serial: String,
        /// JSON array of lower-case domains.
        pub domains: String,
        /// JSON array of the certificate's e-mail addresses.
        pub emails: String,
        pub algorithm: String,
        pub not_before: i64,
        pub not_after: i64,
        pub disabled: bool,
        /// Empty for a key on a token.
        pub key_file: String,
        pub chain_file: String,
        /// SHA-256 of the signer certificate, hex.
        pub fingerprint: String,
        pub created_at: i64,
        pub updated_at: i64,
        /// The key on a token: its RFC 7512 URI, the PKCS#11 module, and the file the daemon
        /// reads the PIN from when no systemd credential `congvan-pin-<id>` is given.
        pub pkcs11_uri: Option<String>,
        pub pkcs11_module: Option<String>,
        pub pin_file: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod trust_anchor {
    use sea_orm::entity::prelude::*;

    /// A CA certificate trusted for verifying incoming signatures.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "trust_anchor")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub subject: String,
        pub not_after: i64,
        #[sea_orm(unique)]
        pub fingerprint: String,
        pub pem: String,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod crl {
    use sea_orm::entity::prelude::*;

    /// A certificate revocation list, DER.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "crl")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub issuer: String,
        pub this_update: i64,
        pub next_update: Option<i64>,
        pub der: Vec<u8>,
        pub created_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod seal_image {
    use sea_orm::entity::prelude::*;

    /// The office's seal image of one identity (`cert import --seal-image`): the PNG and the
    /// seal's real width, shown over the competent signer's visible PDF signature.
    #[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
    #[sea_orm(table_name = "seal_image")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub identity_id: i64,
        pub png: Vec<u8>,
        pub width_mm: f64,
        /// Unix ms.
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod message_content {
    use sea_orm::entity::prelude::*;

    /// A queued message's bytes when the database is PostgreSQL (several nodes read them);
    /// with SQLite they are the spool file `spool/<id>.eml` (see `queue::Spool`).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "message_content")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub content: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod leader_lease {
    use sea_orm::entity::prelude::*;

    /// A job that runs on one node at a time (the deadline monitor and archive pruning): the
    /// daemon that holds it (`node/pid.random`, as in `message.claimed_by`) and until when
    /// (Unix ms). See `queue::leader`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "leader_lease")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        pub holder: String,
        pub until: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod archive_content {
    use sea_orm::entity::prelude::*;

    /// The archived copy of a sent document when the database is PostgreSQL, keyed by its
    /// register entry; with SQLite the copy is a file under `data_dir/archive`.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "archive_content")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub content: Vec<u8>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod pdf_document {
    use sea_orm::entity::prelude::*;

    /// One PDF part of a document in a register (SPEC "Documents"): its name, SHA-256 before
    /// and after sealing, and the signatures found. Keyed by the register entry (the queue
    /// id) and the part's position among the message's PDF parts.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "pdf_document")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub entry_id: String,
        /// "out" or "in", a text column.
        pub direction: crate::model::Direction,
        pub position: i32,
        pub name: String,
        pub sha256_before: String,
        /// Set when the gateway sealed the file.
        pub sha256_after: Option<String>,
        /// JSON array of `pdf::SignatureSummary`.
        pub signatures: String,
        /// Why the part was not sealed, or what else the register should say.
        pub note: Option<String>,
        /// Unix ms.
        pub at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod register_entry {
    use sea_orm::entity::prelude::*;

    /// One document in a register: outgoing (sổ đăng ký văn bản đi) or incoming (sổ đăng ký
    /// văn bản đến). Its id is the queue id, or `refused-…` for a document refused at SMTP time.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "register_entry")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        /// "out" (văn bản đi) or "in" (văn bản đến), a text column.
        pub direction: crate::model::Direction,
        /// pending | held | delivered | partial | failed | refused | deleted (a text column).
        pub state: crate::model::EntryState,
        /// early | on-time | late, once delivered; none without a deadline.
        pub timeliness: Option<String>,
        /// The dispatch rule that set the deadline, or the rule that refused the document.
        pub rule: Option<String>,
        /// Why the document is held, failed or refused.
        pub reason: Option<String>,
        /// The document number as written (`05/QĐ-UBND`), and its comparison key.
        pub number: Option<String>,
        pub number_key: Option<String>,
        /// Decoded subject; empty for refused documents (their content is not kept).
        pub subject: String,
        pub listener: String,
        pub client_ip: String,
        /// The clerk's account, for submissions.
        pub account: Option<String>,
        pub sender: String,
        pub header_from: String,
        /// JSON array of the envelope recipients.
        pub recipients: String,
        pub urgency: i32,
        pub secrecy: i32,
        /// `YYYY-MM-DD`, when the document says.
        pub signed_date: Option<String>,
        /// Unix ms, and the day in Asia/Ho_Chi_Minh (`YYYY-MM-DD`): the register's date.
        pub accepted_at: i64,
        pub accepted_date: String,
        pub deadline_at: Option<i64>,
        /// The seal used: certificate serial (hex) and SHA-256 of the signed content.
        pub seal_serial: Option<String>,
        pub seal_digest: Option<String>,
        pub signed_at: Option<i64>,
        /// When the last recipient was settled with at least one delivered (dispatch time).
        pub sent_at: Option<i64>,
        /// sent_at − accepted_at.
        pub delay_ms: Option<i64>,
        /// Incoming: the S/MIME result (pass, fail, …), the signer's address and the reason.
        pub smime_result: Option<String>,
        pub smime_signer: Option<String>,
        pub smime_reason: Option<String>,
        /// The copy of the message as sent, and until when it is kept.
        pub archive_path: Option<String>,
        pub archive_until: Option<i64>,
        pub updated_at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod register_recipient {
    use sea_orm::entity::prelude::*;

    /// One recipient of a registered document: the handover book (sổ bàn giao).
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "register_recipient")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        pub entry_id: String,
        pub address: String,
        /// outbound | inbound
        pub route: String,
        /// pending | delivered | failed (a text column).
        pub state: crate::model::RecipientState,
        pub attempts: i32,
        /// The next hop's last reply.
        pub reply: Option<String>,
        /// When it was delivered or failed (Unix ms).
        pub at: Option<i64>,
        /// The DSNs sent to the sender about this recipient (`failed 5.1.1 <dsn id>`, …).
        pub dsn: Option<String>,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub mod audit_log {
    use sea_orm::entity::prelude::*;

    /// One entry of the hash-chained audit log (see `crate::audit`). Never updated or
    /// deleted by congvan.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_log")]
    pub struct Model {
        /// 1, 2, 3, … assigned by the appender: a gap means a removed entry.
        #[sea_orm(primary_key, auto_increment = false)]
        pub seq: i64,
        /// Unix ms.
        pub at: i64,
        /// Who: `cli:<unix user>`, `daemon`, an account name, a client address.
        pub actor: String,
        /// What, dotted: `account.add`, `trust.remove`, `queue.release`, …
        pub action: String,
        /// The object acted on: an identity id, an account name, a queue id; may be empty.
        pub subject: String,
        /// Canonical JSON (sorted keys, no whitespace): metadata only, never secrets or content.
        pub details: String,
        /// The previous entry's `hash` (the genesis value for entry 1).
        pub prev_hash: String,
        /// Hex SHA-256 over this entry's fields and `prev_hash`.
        pub hash: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A document number issued by an office in a year (bảng `issued_number`).
pub mod issued_number {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "issued_number")]
    pub struct Model {
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The issuing office: the header From domain.
        pub office: String,
        pub year: i32,
        /// As written (normalised), e.g. `05/QĐ-UBND`.
        pub number: String,
        /// Upper-cased for comparison; unique with office and year.
        pub number_key: String,
        /// The queue id of the message that carried it first.
        pub queue_id: String,
        /// False between reservation and the queue's commit.
        pub confirmed: bool,
        pub at: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
