//! MAIL FROM: who may send as whom on each listener (SPEC "Outgoing mail" 1), no source
//! routes or `%`/`!` relaying, SIZE and the ESMTP parameters offered; starts a transaction.

use super::{LowerDomain, Session, SessionStream};
use crate::address;
use crate::config::Role;
use crate::intake::Envelope;
use crate::reply::std_replies;

impl<T: SessionStream> Session<T> {
    pub(super) fn mail(&mut self, line: &[u8], from: smtp_proto::MailFrom<String>) {
        if self.helo.is_none() {
            self.push(&std_replies::bad_sequence("send EHLO or HELO first"));
            return;
        }
        if self.tx.is_some() {
            self.push(&std_replies::bad_sequence("nested MAIL command"));
            return;
        }
        let role = self.role();
        if role.requires_auth() && self.auth.is_none() {
            self.push(&std_replies::auth_required());
            return;
        }
        let sender = from.address.trim().to_string();
        let raw = String::from_utf8_lossy(line);
        // On every listener: no source route, no `%` or `!` relaying in the sender.
        if let Err(why) = address::check_reverse_path(address::raw_path_of(&raw), &sender) {
            tracing::warn!(peer = %self.peer, sender = %sender, why = why.describe(), "sender path refused");
            let reply = match why {
                address::PathRefusal::SourceRoute => std_replies::source_route_refused(),
                other => std_replies::sender_path_refused(other.describe()),
            };
            self.push(&reply);
            return;
        }
        if from.size > 0 && from.size as u64 > self.ctx.config().max_message_size {
            self.push(&std_replies::message_too_big(
                self.ctx.config().max_message_size,
            ));
            return;
        }
        // Parameters of extensions we do not announce are refused, not silently ignored
        // (REQUIRETLS in particular would otherwise be a promise we do not keep).
        for (flag, name) in [
            (smtp_proto::MAIL_REQUIRETLS, "REQUIRETLS"),
            (smtp_proto::MAIL_BODY_BINARYMIME, "BODY=BINARYMIME"),
        ] {
            if from.flags & flag != 0 {
                self.push(&std_replies::parameter_not_supported(name));
                return;
            }
        }
        let smtputf8 = from.flags & smtp_proto::MAIL_SMTPUTF8 != 0;
        if !sender.is_ascii() && !smtputf8 {
            self.push(&std_replies::needs_smtputf8("sender"));
            return;
        }
        if let Some((_, domain)) = sender.rsplit_once('@') {
            if let Err(why) = address::check_domain(domain) {
                self.push(&std_replies::bad_sender_domain(why.describe()));
                return;
            }
        }
        match role {
            Role::Submission | Role::Submissions => {
                let allowed = self
                    .auth
                    .as_ref()
                    .map(|a| a.allowed_from.clone())
                    .unwrap_or_default();
                if sender.is_empty() || !address::allowed_by(&allowed, &sender) {
                    self.push(&std_replies::sender_not_owned(&sender));
                    return;
                }
            }
            Role::Relay => {
                // The null sender (the office server's bounces) is allowed.
                if !sender.is_empty() && !self.ctx.intake.relay_may_send_as(&sender) {
                    self.push(&std_replies::sender_domain_not_allowed(&sender));
                    return;
                }
            }
            Role::Inbound => {}
        }
        let ret = if from.flags & smtp_proto::MAIL_RET_FULL != 0 {
            Some("FULL".to_string())
        } else if from.flags & smtp_proto::MAIL_RET_HDRS != 0 {
            Some("HDRS".to_string())
        } else {
            None
        };
        self.tx = Some(Envelope {
            sender: sender.to_ascii_lowercase_domain(),
            body_8bit: from.flags & smtp_proto::MAIL_BODY_8BITMIME != 0,
            smtputf8,
            ret,
            envid: from.env_id.clone(),
            rcpts: Vec::new(),
        });
        // `idle_commands` is reset at the end of DATA, not here: MAIL and RSET in turn
        // must not keep a session open for ever.
        self.push(&std_replies::sender_ok());
    }
}
