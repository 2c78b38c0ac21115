//! `[incoming]`: S/MIME verification of mail from other offices, and what happens to a message
//! whose result is not `pass`, per sender domain.

use std::collections::BTreeMap;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::valid_domain;

/// `[incoming]`: S/MIME verification of mail from other offices, and what to do with a
/// message whose result is not `pass`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IncomingRules {
    /// Every issuer on a signer's path must have a current CRL; otherwise `temperror`.
    pub require_revocation_data: bool,
    /// A valid signature by the Sender address on a message whose From is another address
    /// (RFC 8550 §3 delegation): `allow` (pass, the result names both) or `fail`.
    pub sender_delegation: crate::smime::verify::SenderDelegation,
    /// The action for a non-pass result when no `[incoming.senders]` entry matches.
    pub action: IncomingAction,
    /// Per sender domain suffix (of the From address); the longest matching suffix wins.
    #[serde(deserialize_with = "deserialize_sender_actions")]
    pub senders: BTreeMap<String, IncomingAction>,
}

impl IncomingRules {
    /// The action for a non-pass result from `domain` (lower case).
    pub fn action_for(&self, domain: &str) -> IncomingAction {
        super::profile::by_longest_suffix(&self.senders, domain)
            .copied()
            .unwrap_or(self.action)
    }
}

/// What happens to an incoming message whose S/MIME result is not `pass`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IncomingAction {
    /// Deliver it with the Authentication-Results field (the office mail system decides).
    #[default]
    Deliver,
    /// Hold it in the queue until `congvan queue release`.
    Quarantine,
    /// Refuse it at end of DATA with the reason (550 5.7.5; 451 4.7.5 for temperror).
    Refuse,
}

fn deserialize_sender_actions<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, IncomingAction>, D::Error> {
    let raw = BTreeMap::<String, IncomingAction>::deserialize(d)?;
    let mut out = BTreeMap::new();
    for (domain, action) in raw {
        if !valid_domain(&domain) {
            return Err(de::Error::custom(format!(
                "{domain:?} is not a domain suffix"
            )));
        }
        out.insert(domain.trim_end_matches('.').to_ascii_lowercase(), action);
    }
    Ok(out)
}
