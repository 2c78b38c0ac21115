//! Certificates and keys: signing identities (the office's digital seal), trust anchors and
//! revocation lists, and where they are kept.

pub mod describe;
pub mod identity;
pub mod kek;
pub mod store;
#[doc(hidden)]
#[cfg(any(test, feature = "testing"))]
pub mod testpki;
pub mod token;
pub mod trust;
