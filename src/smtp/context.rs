//! What every SMTP session of one daemon shares: the intake stage it hands messages to, TLS,
//! the AUTH throttle, the memory budget for messages being received, and the stop signal.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};

use super::reader::{DataBudget, BUDGET_UNIT};
use super::throttle::AuthThrottle;
use crate::intake::Intake;

pub struct ServerCtx {
    /// End of DATA: configuration, database, queue, policy and trust material.
    pub intake: Intake,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// The certificate `tls` serves, reloaded on SIGHUP.
    pub tls_cert: Option<Arc<crate::smtp::tls::ReloadableCert>>,
    pub throttle: AuthThrottle,
    pub shutdown: watch::Receiver<bool>,
    /// Memory for messages being received, shared by all sessions (`[limits]
    /// max_data_memory_mb`); `None` without a limit.
    pub data_budget: Option<DataBudget>,
    /// The part of `data_budget` inbound listeners may hold together (half of it), so
    /// messages from outside can never take the memory the relay and the clerks need.
    pub inbound_data_budget: Option<DataBudget>,
}

impl ServerCtx {
    /// The sessions' shared state for `intake`'s configuration; `shutdown` turning true
    /// asks every session to finish.
    pub fn new(
        intake: Intake,
        tls: Option<(
            Arc<rustls::ServerConfig>,
            Arc<crate::smtp::tls::ReloadableCert>,
        )>,
        shutdown: watch::Receiver<bool>,
    ) -> ServerCtx {
        let (tls, tls_cert) = match tls {
            Some((c, r)) => (Some(c), Some(r)),
            None => (None, None),
        };
        let limits = &intake.config.limits;
        let units = limits.max_data_memory_mb * (1 << 20) / BUDGET_UNIT;
        let budget = |units: usize| {
            (limits.max_data_memory_mb > 0)
                .then(|| Arc::new(Semaphore::new(units.clamp(1, Semaphore::MAX_PERMITS))))
        };
        ServerCtx {
            throttle: AuthThrottle::new(
                limits.max_auth_failures,
                Duration::from_secs(limits.auth_block_secs),
            ),
            tls,
            tls_cert,
            shutdown,
            data_budget: budget(units),
            inbound_data_budget: budget(units / 2),
            intake,
        }
    }

    pub fn config(&self) -> &crate::config::Config {
        &self.intake.config
    }
}
