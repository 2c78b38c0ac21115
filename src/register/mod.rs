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
pub mod export;
pub mod numbers;
pub mod pdf;
pub mod query;
pub mod report;

pub use book::{Refused, Timeliness};

/// Register entry states (`crate::model::EntryState`), under their old path.
pub use crate::model::EntryState;
