//! The types several stages share: what the intake stage hands the queue (`NewMessage`,
//! `NewRecipient`, `Route`), what the registers record of it (`Direction`, `SmimeRecord`), and
//! the states a queued message and its recipients go through (`state`). Kept apart so that the
//! queue and the registers, which both use them, do not depend on each other for types.

pub mod pdf;
pub mod state;

use crate::policy::Classification;
use crate::smime::verify::SmimeResult;

pub use state::{EntryState, HoldKind, MessageState, RecipientState};

/// Which register a message belongs to (`message.direction`, `register_entry.direction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, sea_orm::EnumIter, sea_orm::DeriveActiveEnum)]
#[sea_orm(
    rs_type = "String",
    db_type = "String(sea_orm::sea_query::StringLen::None)"
)]
pub enum Direction {
    /// Văn bản đi.
    #[sea_orm(string_value = "out")]
    Out,
    /// Văn bản đến.
    #[sea_orm(string_value = "in")]
    In,
}

state::string_forms!(Direction, "direction");
state::eq_stored_name!(Direction);

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Out => "out",
            Direction::In => "in",
        }
    }
}

/// Which delivery target a recipient goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `outbound.upstream`
    Outbound,
    /// `inbound.deliver_to`: local domains and mail the gateway writes itself.
    Inbound,
}

impl Route {
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Outbound => "outbound",
            Route::Inbound => "inbound",
        }
    }
}

#[derive(Debug, Clone)]
pub struct NewRecipient {
    pub address: String,
    pub route: Route,
    pub notify: i32,
    pub orcpt: Option<String>,
}

/// Everything known about an accepted message except its bytes.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub direction: Direction,
    pub sender: String,
    pub recipients: Vec<NewRecipient>,
    pub header_from: String,
    pub subject: String,
    pub classification: Classification,
    pub deadline_at: Option<i64>,
    pub listener: String,
    pub client_ip: String,
    pub helo: String,
    pub account: Option<String>,
    pub dsn_ret: Option<String>,
    pub dsn_envid: Option<String>,
    pub body_8bit: bool,
    pub smtputf8: bool,
    pub generated: bool,
    /// Set when the message must wait for an administrator (e.g. an unusable identity).
    pub hold_reason: Option<String>,
    /// The S/MIME verification of an incoming message.
    pub smime: Option<SmimeRecord>,
    /// The dispatch rule that set the deadline (`dispatch.thuong`), for the register.
    pub rule: Option<String>,
    /// The document number reserved for this message (`issued_number` row), confirmed in
    /// the same transaction that commits the message.
    pub number_reservation: Option<i64>,
    /// When the session took the message (Unix ms), the moment its deadline was counted
    /// from; the commit time when not given.
    pub accepted_at: Option<i64>,
    /// The PDF parts and the signatures found on them (incoming documents), for the register.
    pub pdfs: Vec<pdf::PartSealed>,
    /// The message's Message-ID field, for the log.
    pub message_id: Option<String>,
}

/// What is recorded about an incoming message's signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmimeRecord {
    /// The RFC 7281 result, stored as its name (pass | fail | none | neutral | temperror |
    /// permerror).
    pub result: SmimeResult,
    pub signer: Option<String>,
    pub reason: Option<String>,
}

impl NewMessage {
    /// Mail the gateway writes itself (DSNs, notices): null sender, so nothing can bounce
    /// back into a loop; not subject to the dispatch rules.
    pub fn generated(header_from: String, subject: &str, recipients: Vec<NewRecipient>) -> Self {
        NewMessage {
            direction: Direction::Out,
            sender: String::new(),
            recipients,
            header_from,
            subject: subject.to_string(),
            classification: Classification::default(),
            deadline_at: None,
            listener: "local".into(),
            client_ip: String::new(),
            helo: String::new(),
            account: None,
            dsn_ret: None,
            dsn_envid: None,
            body_8bit: true,
            smtputf8: false,
            generated: true,
            hold_reason: None,
            smime: None,
            rule: None,
            number_reservation: None,
            accepted_at: None,
            pdfs: Vec::new(),
            message_id: None,
        }
    }
}
