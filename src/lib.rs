//! congvan: a mail gateway for official documents (công văn) of Vietnamese government
//! offices. The path of a message reads like Postfix's pipeline:
//!
//! ```text
//! smtp/listener -> smtp/session/{ehlo,auth,mail,rcpt,data} -> intake/{outgoing,incoming}
//!   (nesting, headers, classify, decide, seal check | verify) -> queue (the only writer) -> 250
//! queue/scheduler -> queue/delivery -> queue/prepare, smime/{canon,sign} -> queue/transport
//!   -> queue/staged (outcome, DSN, register, audit in one transaction)
//! ```
//!
//! docs/architecture.md walks one message through these files.

pub mod accounts;
pub mod address;
pub mod audit;
pub mod backup;
pub mod check;
pub mod cli;
pub mod config;
pub mod dev;
pub mod intake;
pub mod metrics;
pub mod mime;
pub mod model;
pub mod nesting;
pub mod pdf;
pub mod pki;
pub mod policy;
pub mod queue;
pub mod register;
pub mod reply;
pub mod server;
pub mod smime;
pub mod smtp;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testkit;
pub mod util;
