//! DATA: the strict reader takes the message (CRLF only, no NUL, size, deadlines, memory
//! budget), then the intake stage decides and commits, with a panic contained to this
//! message (SPEC "Robustness").

use super::{Next, Session, SessionStream};
use crate::config::Role;
use crate::intake::{Client, Envelope};
use crate::reply::{std_replies, Reply};
use crate::smtp::reader::{DataOutcome, DataPace, Expired};

impl<T: SessionStream> Session<T> {
    pub(super) async fn data(&mut self) -> std::io::Result<Next> {
        match &self.tx {
            None => {
                self.push(&std_replies::bad_sequence("send MAIL first"));
                return Ok(Next::Continue);
            }
            Some(tx) if tx.rcpts.is_empty() => {
                self.push(&std_replies::no_valid_recipients());
                return Ok(Next::Continue);
            }
            _ => {}
        }
        self.out
            .extend_from_slice(b"354 End data with <CR><LF>.<CR><LF>\r\n");
        self.flush().await?;
        let max = self.ctx.config().max_message_size as usize;
        let limits = &self.ctx.config().limits;
        let (data_secs, min_rate) = (limits.data_timeout_secs, limits.min_data_rate);
        let pace = DataPace::new(limits.data_timeout(), limits.command_timeout(), min_rate);
        // Inbound messages draw on their own half of the budget as well as on the whole.
        let mut budgets = Vec::with_capacity(2);
        if self.role() == Role::Inbound {
            budgets.extend(self.ctx.inbound_data_budget.clone());
        }
        budgets.extend(self.ctx.data_budget.clone());
        // `_held` keeps the message's share of the memory budget until it has been handled.
        let (outcome, _held) = match self
            .reader
            .read_data(&mut self.stream, max, pace, &budgets)
            .await
        {
            Ok(Some(o)) => o,
            Ok(None) => return Ok(Next::Close),
            Err(e) if Expired::of(&e).is_some() => {
                // Nothing of the message is kept; 421 closes the session.
                let sender = self.tx.take().map(|t| t.sender).unwrap_or_default();
                let reply = if Expired::of(&e) == Some(Expired::DataRate) {
                    std_replies::data_too_slow(min_rate)
                } else {
                    std_replies::data_timeout(data_secs)
                };
                tracing::warn!(peer = %self.peer, %sender, reply = %reply, "DATA deadline passed: closing");
                self.push(&reply);
                return Ok(Next::Continue);
            }
            Err(e) => return Err(e),
        };
        let Some(tx) = self.tx.take() else {
            return Ok(Next::Continue);
        };
        self.idle_commands = 0;
        let reply = match outcome {
            DataOutcome::BareLf => {
                tracing::warn!(peer = %self.peer, sender = %tx.sender, "message with bare CR/LF refused");
                std_replies::bare_lf_data()
            }
            DataOutcome::Nul => {
                tracing::warn!(peer = %self.peer, sender = %tx.sender, "message with a NUL byte refused");
                std_replies::nul_data()
            }
            DataOutcome::TooBig => std_replies::message_too_big(max as u64),
            DataOutcome::OverBudget => {
                tracing::warn!(peer = %self.peer, sender = %tx.sender, "message refused for now: the memory budget for messages being received is spent ([limits] max_data_memory_mb)");
                std_replies::memory_budget_spent()
            }
            DataOutcome::Ok(data) => self.accept_contained(tx, data).await,
        };
        self.push(&reply);
        Ok(Next::Continue)
    }

    /// The `with` protocol of the Received field (RFC 3848).
    fn protocol(&self) -> &'static str {
        match (self.esmtp, self.stream.is_tls(), self.auth.is_some()) {
            (false, _, _) => "SMTP",
            (true, true, true) => "ESMTPSA",
            (true, true, false) => "ESMTPS",
            (true, false, true) => "ESMTPA",
            (true, false, false) => "ESMTP",
        }
    }

    /// End of DATA with the work on the message contained (SPEC "Robustness"): a panic in
    /// it (checks, classification, policy, verification) fails this message only, with
    /// 451 4.3.0; the transaction is over and the session goes on with the next command.
    async fn accept_contained(&mut self, tx: Envelope, data: Vec<u8>) -> Reply {
        use futures_util::FutureExt;
        let peer = self.peer;
        let listener = self.role().as_str();
        let sender = tx.sender.clone();
        let client = Client {
            role: self.role(),
            ip: peer.ip(),
            helo: self.helo.as_deref().unwrap_or_default(),
            protocol: self.protocol(),
            account: self.auth.as_ref(),
        };
        let intake = &self.ctx.intake;
        match std::panic::AssertUnwindSafe(intake.receive(&client, tx, data))
            .catch_unwind()
            .await
        {
            Ok(reply) => reply,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                tracing::error!(%peer, listener, %sender, panic = %what, "processing the message panicked: 451, the message was not accepted");
                std_replies::local_error()
            }
        }
    }
}
