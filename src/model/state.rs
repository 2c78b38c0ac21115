//! The states of a queued message, of each of its recipients and of a register entry: as
//! stored (a plain text column, read and written through sea-orm's string active enums), as
//! `queue list` shows them, and as the code compares them; and why a held message is held
//! ([`HoldKind`]).

use sea_orm::entity::prelude::*;

/// Where a message is in the queue (`message.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum MessageState {
    /// Accepted (or released, or retried): the scheduler takes it when its time comes.
    #[sea_orm(string_value = "waiting")]
    Waiting,
    /// Claimed by a daemon that is delivering it (see `lease`).
    #[sea_orm(string_value = "delivering")]
    Delivering,
    /// An attempt failed temporarily: tried again at `next_attempt_at`.
    #[sea_orm(string_value = "deferred")]
    Deferred,
    /// Waits for an administrator (quarantine, poison, unusable identity, `queue hold`).
    #[sea_orm(string_value = "held")]
    Held,
    /// Final: every recipient delivered.
    #[sea_orm(string_value = "delivered")]
    Delivered,
    /// Final: at least one recipient failed permanently.
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl MessageState {
    /// States that are "still in the queue".
    pub const QUEUED: [MessageState; 4] = [
        MessageState::Waiting,
        MessageState::Delivering,
        MessageState::Deferred,
        MessageState::Held,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MessageState::Waiting => "waiting",
            MessageState::Delivering => "delivering",
            MessageState::Deferred => "deferred",
            MessageState::Held => "held",
            MessageState::Delivered => "delivered",
            MessageState::Failed => "failed",
        }
    }
}

/// The delivery state of one envelope recipient (`recipient.state`, and the register's
/// `register_recipient.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum RecipientState {
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "delivered")]
    Delivered,
    #[sea_orm(string_value = "failed")]
    Failed,
}

impl RecipientState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecipientState::Pending => "pending",
            RecipientState::Delivered => "delivered",
            RecipientState::Failed => "failed",
        }
    }
}

/// A stored name that is none of the known ones.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownValue {
    pub kind: &'static str,
    pub value: String,
}

/// The string forms of a stored enum whose `as_str` is what is stored and shown: `FromStr`
/// and `TryFrom<&str>` (parsed once, where a stored string is read), `Display`, `Serialize`.
macro_rules! string_forms {
    ($ty:ty, $kind:literal) => {
        impl std::str::FromStr for $ty {
            type Err = $crate::model::state::UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <$ty as sea_orm::Iterable>::iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| $crate::model::state::UnknownValue {
                        kind: $kind,
                        value: s.to_string(),
                    })
            }
        }

        impl TryFrom<&str> for $ty {
            type Error = $crate::model::state::UnknownValue;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_forms;

/// A state equals its stored name, so tests and scripts can write `m.state == "held"`.
macro_rules! eq_stored_name {
    ($ty:ty) => {
        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }
    };
}
pub(crate) use eq_stored_name;

/// Where a document stands in its register (`register_entry.state`): what `register list`
/// shows and reports count. The column stays plain text (tests and benches write it as such),
/// read and written through sea-orm's string active enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum EntryState {
    /// Accepted, not yet handed to every next hop.
    #[sea_orm(string_value = "pending")]
    Pending,
    /// Held in the queue (quarantine, an unusable seal, an administrator's hold).
    #[sea_orm(string_value = "held")]
    Held,
    /// Every recipient accepted by its next hop.
    #[sea_orm(string_value = "delivered")]
    Delivered,
    /// Some recipients delivered, others failed for good.
    #[sea_orm(string_value = "partial")]
    Partial,
    /// No recipient could be delivered.
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Refused at SMTP time by a rule; only metadata is kept.
    #[sea_orm(string_value = "refused")]
    Refused,
    /// Removed from the queue by an administrator before delivery.
    #[sea_orm(string_value = "deleted")]
    Deleted,
}

impl EntryState {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryState::Pending => "pending",
            EntryState::Held => "held",
            EntryState::Delivered => "delivered",
            EntryState::Partial => "partial",
            EntryState::Failed => "failed",
            EntryState::Refused => "refused",
            EntryState::Deleted => "deleted",
        }
    }
}

string_forms!(EntryState, "register entry state");
string_forms!(MessageState, "message state");
string_forms!(RecipientState, "recipient state");
eq_stored_name!(EntryState);
eq_stored_name!(MessageState);
eq_stored_name!(RecipientState);

/// The reason a message is held with when two of its attempts did not finish (SPEC.md).
pub const POISON_REASON: &str = "poison: processing stopped the gateway twice";

/// Why a message is `held`. The reason is stored as text (written by whoever held it, shown
/// as is by `queue show`); [`HoldKind::of_reason`] is the one place that reads a kind back
/// from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HoldKind {
    /// An incoming message held by the `[incoming]` policy (`quarantined: smime=...`,
    /// written by `intake::incoming`).
    Quarantine,
    /// Its delivery stopped the daemon twice ([`POISON_REASON`]).
    Poison,
    /// A panic in its delivery (`internal error: ...`).
    InternalError,
    /// Its spool file could not be read (`spool file ... unreadable: ...`).
    SpoolUnreadable,
    /// An outgoing document that cannot be sealed: no usable signing identity, signing
    /// failed, or nested too deep to seal safely. It is never sent unsigned.
    CannotSeal,
    /// An outgoing document whose identity's key is on a token that cannot sign now
    /// (missing, locked, PIN refused): released by the token watch when it signs again.
    Token,
    /// Anything else: an administrator's `queue hold` with its own words.
    Admin,
}

impl HoldKind {
    /// The kind a stored hold reason says. An administrator's free text is `Admin`, unless
    /// it happens to begin like one of the gateway's own reasons.
    pub fn of_reason(reason: &str) -> HoldKind {
        /// How `Deliverer::seal` words the reasons it holds a document for.
        const CANNOT_SEAL: [&str; 4] = [
            "cannot sign with identity ",
            "signing task failed: ",
            "no signing identity (digital seal) is configured for ",
            "the signing identity for ",
        ];
        if reason.starts_with("quarantined") {
            HoldKind::Quarantine
        } else if reason == POISON_REASON {
            HoldKind::Poison
        } else if reason.starts_with(INTERNAL_ERROR) {
            HoldKind::InternalError
        } else if reason.starts_with("spool file ") {
            HoldKind::SpoolUnreadable
        } else if token_of_hold(reason).is_some() {
            HoldKind::Token
        } else if CANNOT_SEAL.iter().any(|p| reason.starts_with(p))
            || reason.ends_with(CANNOT_SEAL_SAFELY)
        {
            HoldKind::CannotSeal
        } else {
            HoldKind::Admin
        }
    }

    /// The `cause` named by the audit entry of an automatic hold.
    pub fn cause(self) -> &'static str {
        match self {
            HoldKind::Quarantine => "quarantine",
            HoldKind::Poison => "poison",
            HoldKind::InternalError => "panic",
            HoldKind::SpoolUnreadable => "spool",
            HoldKind::CannotSeal => "seal",
            HoldKind::Token => "token",
            HoldKind::Admin => "admin",
        }
    }
}

/// The start of the reason a document is held for when its identity's token cannot sign;
/// the identity's id follows, then ` cannot sign: ` and the token's error.
pub const TOKEN_HOLD: &str = "the token of identity ";

/// The reason a document is held for its identity's token.
pub fn token_hold_reason(identity: i64, error: &dyn std::fmt::Display) -> String {
    format!("{TOKEN_HOLD}{identity} cannot sign: {error}")
}

/// The identity whose token a hold reason waits for.
pub fn token_of_hold(reason: &str) -> Option<i64> {
    let rest = reason.strip_prefix(TOKEN_HOLD)?;
    let (id, rest) = rest.split_once(' ')?;
    rest.starts_with("cannot sign: ").then_some(())?;
    id.parse().ok()
}

/// The start of the reason a message is held for after a panic.
pub const INTERNAL_ERROR: &str = "internal error: ";
/// The end of the reason a document nested too deep to seal is held for.
pub const CANNOT_SEAL_SAFELY: &str = "it cannot be sealed safely";

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::{ActiveEnum, Iterable};

    #[test]
    fn stored_names_round_trip() {
        for s in MessageState::iter() {
            assert_eq!(s.to_value(), s.as_str());
            assert_eq!(s.as_str().parse::<MessageState>(), Ok(s));
            assert_eq!(s.to_string(), s.as_str());
        }
        for s in RecipientState::iter() {
            assert_eq!(s.to_value(), s.as_str());
            assert_eq!(s.as_str().parse::<RecipientState>(), Ok(s));
        }
        assert!("Held".parse::<MessageState>().is_err());
        for d in [crate::model::Direction::Out, crate::model::Direction::In] {
            assert_eq!(d.to_value(), d.as_str());
            assert_eq!(crate::model::Direction::try_from(d.as_str()), Ok(d));
        }
        assert!("IN".parse::<crate::model::Direction>().is_err());
        assert_eq!(
            serde_json::to_string(&MessageState::Deferred).unwrap(),
            "\"deferred\""
        );
    }

    #[test]
    fn hold_kinds_from_the_reasons_as_written() {
        use HoldKind::*;
        for (reason, kind) in [
            ("quarantined: smime=fail (bad signature)", Quarantine),
            (POISON_REASON, Poison),
            ("internal error: index out of bounds", InternalError),
            (
                "spool file /var/spool/x.eml unreadable: No such file",
                SpoolUnreadable,
            ),
            ("cannot sign with identity 3: key unreadable", CannotSeal),
            ("signing task failed: task panicked", CannotSeal),
            (
                "no signing identity (digital seal) is configured for a.gov.vn",
                CannotSeal,
            ),
            (
                "the signing identity for a.gov.vn cannot be used: expired",
                CannotSeal,
            ),
            (
                "MIME nesting deeper than 20 ([limits] max_mime_depth): it cannot be sealed safely",
                CannotSeal,
            ),
            (
                token_hold_reason(7, &"no token \"Con dau\" is present").as_str(),
                Token,
            ),
            ("the token of identity x cannot sign: y", Admin),
            ("waiting for the director", Admin),
            ("", Admin),
        ] {
            assert_eq!(HoldKind::of_reason(reason), kind, "{reason}");
        }
        assert_eq!(token_of_hold(&token_hold_reason(7, &"gone")), Some(7));
    }

    /// The column stays plain text on both databases: bound as a string, never cast to an
    /// enum type.
    #[test]
    fn stored_as_plain_text() {
        use crate::store::entity::message;
        use sea_orm::{DbBackend, QueryFilter, QueryTrait};
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let sql = message::Entity::find()
                .filter(message::Column::State.is_in(MessageState::QUEUED))
                .build(backend)
                .to_string();
            assert!(
                sql.contains(r#""state" IN ('waiting', 'delivering', 'deferred', 'held')"#),
                "{sql}"
            );
            assert!(!sql.to_ascii_uppercase().contains("CAST"), "{sql}");
        }
    }

    /// The register's columns too: direction and state bound as strings on both databases.
    #[test]
    fn register_columns_stored_as_plain_text() {
        use crate::model::Direction;
        use crate::store::entity::{register_entry as entry, register_recipient as rr};
        use sea_orm::sea_query::Expr;
        use sea_orm::{DbBackend, QueryFilter, QueryTrait};
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let sql = entry::Entity::find()
                .filter(entry::Column::Direction.eq(Direction::In))
                .filter(entry::Column::State.is_in([EntryState::Pending, EntryState::Held]))
                .build(backend)
                .to_string();
            assert!(
                sql.contains(r#""direction" = 'in'"#)
                    && sql.contains(r#""state" IN ('pending', 'held')"#),
                "{sql}"
            );
            assert!(!sql.to_ascii_uppercase().contains("CAST"), "{sql}");
            let sql = rr::Entity::update_many()
                .col_expr(rr::Column::State, Expr::value(RecipientState::Failed))
                .filter(rr::Column::State.eq(RecipientState::Pending))
                .build(backend)
                .to_string();
            assert!(
                sql.contains(r#""state" = 'failed'"#) && sql.contains(r#""state" = 'pending'"#),
                "{sql}"
            );
            assert!(!sql.to_ascii_uppercase().contains("CAST"), "{sql}");
        }
    }
}
