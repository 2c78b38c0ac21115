//! The SMTP server: listeners per role, sessions, the strict reader, STARTTLS and AUTH.

pub mod context;
pub mod listener;
pub mod reader;
pub mod session;
pub mod stream;
pub mod throttle;
pub mod tls;

/// The reply catalogue moved to the crate root; the old path stays.
pub use crate::reply;
pub use context::ServerCtx;
