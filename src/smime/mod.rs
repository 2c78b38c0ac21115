//! S/MIME: canonicalisation of the entity to sign, signing (CMS SignedData, detached), and
//! verification of incoming signed mail.

pub mod ber;
pub mod canon;
pub mod mime_walk;
pub mod sign;
pub mod verify;
