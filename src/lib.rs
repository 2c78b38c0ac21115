//! congvan: a mail gateway for official documents (công văn) of Vietnamese government
//! offices. The path of a message reads like Postfix's pipeline:
//!
//! ```text
//! listener -> smtp session -> policy (classify, decide) -> queue (the only writer) -> 250
//! queue scheduler -> smime (sign | verify) -> delivery -> register / DSN
//! ```

pub mod accounts;
pub mod address;
pub mod cli;
pub mod config;
pub mod dev;
pub mod intake;
pub mod mime;
pub mod nesting;
pub mod pki;
pub mod policy;
pub mod queue;
pub mod register;
pub mod reply;
pub mod server;
pub mod smime;
pub mod smtp;
pub mod store;
#[doc(hidden)]
pub mod testkit;
pub mod util;
