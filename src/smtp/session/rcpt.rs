//! RCPT TO: routing (local domains inbound, the rest outbound when the policy allows the
//! domain), no relaying from the inbound listener, DSN NOTIFY and ORCPT kept per recipient.

use super::{LowerDomain, Session, SessionStream};
use crate::address;
use crate::config::Role;
use crate::queue::{NewRecipient, Route};
use crate::reply::std_replies;

impl<T: SessionStream> Session<T> {
    pub(super) fn rcpt(&mut self, line: &[u8], to: smtp_proto::RcptTo<String>) {
        let Some(tx) = self.tx.as_ref() else {
            self.push(&std_replies::bad_sequence("send MAIL first"));
            return;
        };
        let smtputf8 = tx.smtputf8;
        let count = tx.rcpts.len();
        let raw = String::from_utf8_lossy(line);
        if let Some(p) = address::raw_path_of(&raw) {
            if let Err(why) = address::check_forward_path(p) {
                tracing::warn!(peer = %self.peer, path = %p, "relay trick refused");
                self.push(&std_replies::relay_trick_refused(why.describe()));
                return;
            }
        }
        let mut addr = to.address.trim().to_string();
        // RFC 5321 4.5.1: <postmaster> without a domain must be accepted.
        let raw_path = address::raw_path_of(&raw)
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if addr.is_empty() && raw_path == "postmaster" {
            if let Some(d) = self.ctx.config().inbound.local_domains.first() {
                addr = format!("postmaster@{d}");
            }
        }
        if addr.is_empty() {
            self.push(&std_replies::recipient_needs_domain());
            return;
        }
        if !addr.is_ascii() && !smtputf8 {
            self.push(&std_replies::needs_smtputf8("recipient"));
            return;
        }
        // Refused here, not bounced later: `user@domain.` is not `user@domain`.
        let domain_part = addr.rsplit_once('@').map_or("", |(_, d)| d);
        if let Err(why) = address::check_domain(domain_part) {
            self.push(&std_replies::bad_recipient_domain(why.describe()));
            return;
        }
        if count >= self.ctx.config().limits.max_recipients {
            self.push(&std_replies::too_many_recipients());
            return;
        }
        let Some(domain) = address::domain_of(&addr) else {
            self.push(&std_replies::bad_recipient_syntax());
            return;
        };
        let local = self.ctx.config().inbound.is_local_domain(&domain);
        let route = match (self.role(), local) {
            (_, true) => Route::Inbound,
            (Role::Inbound, false) => {
                self.push(&std_replies::not_a_local_domain(&domain));
                return;
            }
            (_, false) => {
                if !self
                    .ctx
                    .intake
                    .policy
                    .get()
                    .domains()
                    .recipient_allowed(&domain)
                {
                    self.push(&std_replies::recipient_domain_not_allowed(&domain));
                    return;
                }
                Route::Outbound
            }
        };
        let notify = (to.flags
            & (smtp_proto::RCPT_NOTIFY_SUCCESS
                | smtp_proto::RCPT_NOTIFY_FAILURE
                | smtp_proto::RCPT_NOTIFY_DELAY
                | smtp_proto::RCPT_NOTIFY_NEVER)) as i32;
        if let Some(tx) = self.tx.as_mut() {
            tx.rcpts.push(NewRecipient {
                address: addr.to_ascii_lowercase_domain(),
                route,
                notify,
                // smtp-proto accepts only the rfc822 type and gives the decoded address.
                orcpt: to.orcpt.as_ref().map(|a| format!("rfc822;{a}")),
            });
        }
        self.push(&std_replies::recipient_ok());
    }
}
