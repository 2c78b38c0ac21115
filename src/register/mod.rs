//! The registers, the document numbers they issue, and the reports (issue 6). The audit log
//! is its own module (`crate::audit`).
//!
//! The outgoing register (sổ đăng ký văn bản đi) and the incoming register (sổ đăng ký văn
//! bản đến) are one table, `register_entry`, with a row per document, and `register_recipient`
//! with a row per recipient: the handover book (sổ bàn giao), holding each next hop's reply
//! and the DSNs sent about it.
//!
//! A row is written in the same transaction as the queued message (so 250 means both are
//! durable), or when a document is refused at SMTP time (metadata only: the content of a
//! refused document is never kept). Delivery updates it in the transaction that records the
//! attempt: the seal used, each recipient's outcome, the dispatch time and whether it was
//! early, on time or late. Mail the gateway writes itself (DSNs, notices) is not registered.

pub mod archive;
pub mod book;
pub mod numbers;
pub mod query;
pub mod report;

pub use book::{Refused, Timeliness};

/// Register entry states.
pub mod state {
    /// Accepted, not yet handed to every next hop.
    pub const PENDING: &str = "pending";
    /// Held in the queue (quarantine, an unusable seal, an administrator's hold).
    pub const HELD: &str = "held";
    /// Every recipient accepted by its next hop.
    pub const DELIVERED: &str = "delivered";
    /// Some recipients delivered, others failed for good.
    pub const PARTIAL: &str = "partial";
    /// No recipient could be delivered.
    pub const FAILED: &str = "failed";
    /// Refused at SMTP time by a rule; only metadata is kept.
    pub const REFUSED: &str = "refused";
    /// Removed from the queue by an administrator before delivery.
    pub const DELETED: &str = "deleted";
}
