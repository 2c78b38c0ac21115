//! S/MIME: canonicalisation of the entity to sign, and signing (CMS SignedData, detached).

pub mod canon;
pub mod sign;
