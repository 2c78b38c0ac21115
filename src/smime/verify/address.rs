//! Header fields and addresses: the From and Sender of a header section, protected header
//! fields (RFC 9788) against the outer ones, what a reader is shown, and the signer's address.

use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;

use super::{Failure, SenderDelegation, Verdict, VerifyOptions};
use crate::address::{self, Mailbox, Shown};
use crate::smime::mime_walk::Entity;

/// The author fields of a header section.
#[derive(Debug, Clone)]
pub(super) struct Identity {
    pub(super) from: Vec<Mailbox>,
    /// The display names, group names and comments of the From field, decoded.
    from_shown: Vec<(Shown, String)>,
    pub(super) sender: Vec<Mailbox>,
}

impl Identity {
    pub(super) fn read(e: &Entity<'_>) -> Result<Identity, Failure> {
        let froms = e.all("From");
        let field = match froms.len() {
            0 => return Err(Failure::NoFrom),
            1 => address::parse_address_field(froms[0].value),
            count => return Err(Failure::SeveralFrom { count }),
        };
        let (from, from_shown) = (field.mailboxes, field.shown);
        if from.is_empty() {
            return Err(Failure::BadAddress { field: "From" });
        }
        let senders = e.all("Sender");
        let sender = match senders.len() {
            0 => Vec::new(),
            1 => {
                let s = address::parse_address_field(senders[0].value).mailboxes;
                if s.len() != 1 {
                    return Err(Failure::BadAddress { field: "Sender" });
                }
                s
            }
            count => return Err(Failure::SeveralSender { count }),
        };
        Ok(Identity {
            from,
            from_shown,
            sender,
        })
    }
}

pub(super) fn same_mailboxes(a: &[Mailbox], b: &[Mailbox]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.address == y.address)
}

/// Header fields RFC 9788 protects and congvan compares (as its signer writes them).
pub(super) fn is_protected_name(name: &str) -> bool {
    crate::smime::sign::is_protected(name)
}

/// Names the outer fields that differ from the protected ones.
pub(super) fn compare_headers(outer: &Entity<'_>, inner: &Entity<'_>, v: &mut Verdict) {
    let mut names: Vec<String> = Vec::new();
    for f in outer.fields.iter().chain(inner.fields.iter()) {
        if is_protected_name(f.name) && !names.iter().any(|n| n.eq_ignore_ascii_case(f.name)) {
            names.push(f.name.to_string());
        }
    }
    for name in names {
        let values = |e: &Entity<'_>| -> Vec<String> {
            e.fields
                .iter()
                .filter(|f| f.is(&name))
                .map(|f| f.normalized())
                .collect()
        };
        if values(outer) != values(inner) {
            v.header_mismatches.push(canonical_name(&name));
        }
    }
}

fn canonical_name(name: &str) -> String {
    crate::smime::sign::PROTECTED_FIELDS
        .iter()
        .find(|p| p.eq_ignore_ascii_case(name))
        .map(|p| p.to_string())
        .unwrap_or_else(|| name.to_string())
}

/// A display name, group name or comment of From that shows an address other than a From
/// address (after RFC 2047 decoding and NFKC normalisation) is a `fail`.
pub(super) fn check_shown(id: &Identity) -> Result<(), Failure> {
    for (place, text) in &id.from_shown {
        for shown in address::addresses_shown(text) {
            if !id.from.iter().any(|m| m.address == shown) {
                return Err(Failure::DisplayNameTrick {
                    place: *place,
                    shown,
                });
            }
        }
    }
    Ok(())
}

/// The responsible address must be one of the certificate's (RFC 8550 §3); returns it. A
/// Sender that is not a From address is delegation: named in the result, and allowed or
/// failed by `opts.sender_delegation`.
pub(super) fn check_address(
    id: &Identity,
    cert: &X509Certificate<'_>,
    opts: VerifyOptions,
    v: &mut Verdict,
) -> Result<String, Failure> {
    let (field, address) = match (id.sender.first(), id.from.as_slice()) {
        (Some(s), _) => ("Sender", &s.address),
        (None, [one]) => ("From", &one.address),
        (None, many) => return Err(Failure::FromNeedsSender { count: many.len() }),
    };
    let emails = cert_emails(cert);
    if !emails.iter().any(|e| e == address) {
        return Err(Failure::AddressMismatch {
            field,
            address: address.clone(),
            cert: if emails.is_empty() {
                "none".into()
            } else {
                emails.join(", ")
            },
        });
    }
    if field == "Sender" && !id.from.iter().any(|m| m.address == *address) {
        let from = id
            .from
            .iter()
            .map(|m| m.address.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if opts.sender_delegation == SenderDelegation::Fail {
            return Err(Failure::SenderDelegation {
                sender: address.clone(),
                from,
            });
        }
        v.notes_en.push(format!(
            "signed by the Sender <{address}> on behalf of the From <{from}> [RFC 8550 delegation]"
        ));
        v.notes_vi
            .push(format!("Ký bởi Sender <{address}> thay mặt From <{from}>"));
    }
    Ok(address.clone())
}

/// SAN rfc822Name entries and subject emailAddress attributes, lower case.
pub(super) fn cert_emails(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for n in &san.value.general_names {
            if let GeneralName::RFC822Name(e) = n {
                out.push(e.trim().to_ascii_lowercase());
            }
        }
    }
    for atv in cert.subject().iter_email() {
        if let Ok(e) = atv.as_str() {
            out.push(e.trim().to_ascii_lowercase());
        }
    }
    out.dedup();
    out
}
