//! The SMTP server: listeners per role, sessions, the strict reader, STARTTLS and AUTH.

pub mod incoming;
pub mod listener;
pub mod reader;
pub mod reply;
pub mod session;
pub mod stream;
pub mod throttle;
pub mod tls;

pub use listener::ServerCtx;
