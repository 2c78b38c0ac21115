//! The daemon: opens the store, starts the queue, the scheduler and the listeners, tells
//! systemd it is ready once every listener is bound, and stops gracefully on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::audit::{self, Action, Event};
use crate::config::{Config, Role};
use crate::policy::SharedPolicy;
use crate::queue::delivery::Deliverer;
use crate::queue::{scheduler, Queue};
use crate::smtp::listener::{accept_loop, bind_all, ListenerSlots};
use crate::smtp::ServerCtx;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("spool: {0}")]
    Spool(std::io::Error),
    #[error("{0}")]
    Tls(String),
    #[error("{0}")]
    Bind(std::io::Error),
    #[error("[metrics] bind {addr}: {source}")]
    MetricsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("signing identities: {0}")]
    Pki(#[from] crate::pki::store::PkiError),
    /// A broken policy directory: the daemon does not start on it.
    #[error("the policy in {} is broken:\n{errors}", dir.display())]
    Policy {
        dir: std::path::PathBuf,
        errors: crate::policy::PolicyErrors,
    },
}

/// A running daemon, for `serve` and for tests that run it in-process.
pub struct Running {
    pub addrs: Vec<(Role, SocketAddr)>,
    /// The policy in force; `serve` reloads it on SIGHUP.
    pub policy: Arc<SharedPolicy>,
    /// The listeners' certificate; `serve` reloads it on SIGHUP.
    pub tls_cert: Option<Arc<crate::smtp::tls::ReloadableCert>>,
    /// For the audit entries of SIGHUP reloads.
    db: sea_orm::DatabaseConnection,
    stop: watch::Sender<bool>,
    done: tokio::task::JoinHandle<()>,
}

impl Running {
    pub fn addr(&self, role: Role) -> Option<SocketAddr> {
        self.addrs.iter().find(|(r, _)| *r == role).map(|(_, a)| *a)
    }
    /// Stops accepting, lets sessions and deliveries in flight finish, and returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.done.await;
    }
}

/// What the SMTP sessions of a daemon share, without listeners or delivery: the policy
/// (a broken one is an error), the database (migrated; document numbers reserved before a
/// crash settled), TLS and the queue. `shutdown` turning true asks every session to finish.
/// Tests drive sessions in-process on it.
pub async fn open(
    config: Arc<Config>,
    shutdown: watch::Receiver<bool>,
) -> Result<Arc<ServerCtx>, ServeError> {
    let policy =
        Arc::new(
            SharedPolicy::load(&config.policy_dir).map_err(|errors| ServeError::Policy {
                dir: config.policy_dir.clone(),
                errors,
            })?,
        );
    tracing::info!(profile = %policy.get().profile, dir = %config.policy_dir.display(), "policy loaded");
    let db = crate::store::open(&config.database_url()).await?;
    audit_policy(&db, &policy, Action::PolicyLoad, None).await;
    match crate::register::numbers::settle_reservations(&db).await {
        Ok((0, 0)) => {}
        Ok((confirmed, removed)) => {
            tracing::info!(
                confirmed,
                removed,
                "document numbers reserved before a crash settled"
            )
        }
        Err(e) => tracing::warn!(error = %e, "could not settle reserved document numbers"),
    }
    let tls = match &config.tls {
        Some(t) => {
            Some(crate::smtp::tls::load_server_config(&t.cert, &t.key).map_err(ServeError::Tls)?)
        }
        None => None,
    };
    crate::pki::store::check_key_permissions(&db).await?;
    let queue = Queue::start(db.clone(), config.spool_dir())
        .await
        .map_err(ServeError::Spool)?;
    let intake = crate::intake::Intake {
        config,
        db,
        queue,
        policy,
        trust_cache: Default::default(),
        seal_domains: Default::default(),
    };
    Ok(Arc::new(ServerCtx::new(intake, tls, shutdown)))
}

/// A test signature with every enabled identity at start (SPEC "Operating it"): a seal
/// that cannot sign does not stop the daemon (its documents are held), but the log says so
/// now, and a token's failure is audited.
async fn test_seals(deliverer: &Deliverer, db: &sea_orm::DatabaseConnection) {
    let tests = match deliverer
        .seals
        .test_all(db, time::OffsetDateTime::now_utc())
        .await
    {
        Ok(t) => t,
        Err(e) => {
            tracing::error!(error = %e, "could not test the seals at start");
            return;
        }
    };
    for t in tests {
        let domains = t.domains.join(", ");
        match &t.result {
            Ok(()) => {
                tracing::info!(identity = t.id, %domains, token = t.token, "seal tested: it signs")
            }
            Err(problem) => {
                tracing::error!(identity = t.id, %domains, token = t.token, %problem, "seal tested: it CANNOT sign; documents needing it will be held");
                // Audited now; the administrator is mailed with the first document held.
                if let Some(e) = problem.token_error() {
                    crate::queue::token_watch::audit_failure(db, t.id, e).await;
                }
            }
        }
    }
}

pub async fn start(config: Config) -> Result<Running, ServeError> {
    let config = Arc::new(config);
    let (stop_tx, stop_rx) = watch::channel(false);
    let ctx = open(config.clone(), stop_rx.clone()).await?;
    let (db, queue, policy) = (
        ctx.intake.db.clone(),
        ctx.intake.queue.clone(),
        ctx.intake.policy.clone(),
    );
    let listeners = bind_all(&config).await.map_err(ServeError::Bind)?;
    let addrs = listeners
        .iter()
        .filter_map(|(l, s)| s.local_addr().ok().map(|a| (l.role, a)))
        .collect();

    let leases = Arc::new(crate::queue::lease::Leases::new(&config));
    let deliverer = Arc::new(Deliverer {
        config: config.clone(),
        queue: queue.clone(),
        seals: Default::default(),
        policy: policy.clone(),
        leases: leases.clone(),
        connections: Default::default(),
        trust: Default::default(),
        tokens: Default::default(),
        results: crate::queue::outcome::ResultWriter::start(
            db.clone(),
            leases.clone(),
            queue.wake(),
            (!queue.content_in_db()).then(|| queue.spool().to_path_buf()),
        ),
    });
    test_seals(&deliverer, &db).await;
    if let Some(bind) = config.metrics.bind {
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .map_err(|source| ServeError::MetricsBind { addr: bind, source })?;
        tracing::info!(addr = %bind, "metrics and health served on /metrics and /health");
        let endpoint = Arc::new(crate::metrics::Endpoint {
            db: db.clone(),
            config: config.clone(),
            deliverer: deliverer.clone(),
        });
        tokio::spawn(crate::metrics::serve(listener, endpoint, stop_rx.clone()));
    }
    tokio::spawn(crate::queue::token_watch::run(
        deliverer.clone(),
        stop_rx.clone(),
    ));
    let sched = tokio::spawn(scheduler::run(deliverer, stop_rx.clone()));
    tokio::spawn(crate::register::archive::run_syncer(
        config.data_dir.clone(),
    ));
    let archive_dir = config.data_dir.clone();
    tokio::spawn(crate::queue::monitor::run(
        queue.clone(),
        config.clone(),
        policy.clone(),
        leases.claim().to_string(),
        stop_rx.clone(),
    ));
    let mut accepts = Vec::new();
    let mut all_slots = Vec::new();
    for (l, sock) in listeners {
        // Each listener its own slots: a flood on one cannot shut out another.
        let slots = ListenerSlots::new(
            config.listener_max_connections(&l),
            config.limits.max_connections_per_ip,
        );
        all_slots.push(slots.clone());
        accepts.push(tokio::spawn(accept_loop(ctx.clone(), l, sock, slots)));
    }
    let done = tokio::spawn(async move {
        for a in accepts {
            let _ = a.await;
        }
        // Sessions finish their current transaction and get 421 at their next command.
        let drained = async {
            for slots in &all_slots {
                slots.drained().await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(60), drained)
            .await
            .is_err()
        {
            tracing::warn!("sessions still open after 60 s; stopping anyway");
        }
        let _ = sched.await;
        crate::register::archive::flush(&archive_dir).await;
        tracing::info!("stopped");
    });
    Ok(Running {
        addrs,
        policy,
        tls_cert: ctx.tls_cert.clone(),
        db,
        stop: stop_tx,
        done,
    })
}

/// `congvan serve`: runs until SIGTERM or SIGINT.
pub async fn serve(config: Config) -> Result<(), ServeError> {
    let running = start(config).await?;
    for (role, addr) in &running.addrs {
        tracing::info!(role = role.as_str(), %addr, "ready");
    }
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Ready]);
    // With WatchdogSec= in the unit, systemd restarts a daemon whose runtime stops
    // answering: the pings come from a task on the same runtime as the sessions.
    if let Some(every) = sd_notify::watchdog_enabled() {
        tokio::spawn(async move {
            loop {
                let _ = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]);
                tokio::time::sleep(every / 2).await;
            }
        });
    }
    wait_for_signal(&running.policy, running.tls_cert.as_deref(), &running.db).await;
    tracing::info!("shutting down: no new connections, finishing sessions in progress");
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
    running.stop().await;
    Ok(())
}

/// The audit entry of a policy load or reload: which profile and which files (a digest of the
/// policy directory), or why the reload failed. A failed entry never stops the daemon.
async fn audit_policy(
    db: &sea_orm::DatabaseConnection,
    policy: &SharedPolicy,
    action: Action,
    errors: Option<&crate::policy::PolicyErrors>,
) {
    let dir = policy.dir();
    let mut details = serde_json::json!({
        "dir": dir.display().to_string(),
        "digest": audit::directory_digest(dir).ok(),
    });
    match errors {
        None => details["profile"] = serde_json::json!(policy.get().profile),
        Some(e) => {
            details["profile_in_force"] = serde_json::json!(policy.get().profile);
            details["errors"] =
                serde_json::json!(e.to_string().chars().take(4000).collect::<String>());
        }
    }
    audit::record_or_log(db, &Event::new(audit::DAEMON, action, "", details)).await;
}

async fn wait_for_signal(
    policy: &SharedPolicy,
    tls_cert: Option<&crate::smtp::tls::ReloadableCert>,
    db: &sea_orm::DatabaseConnection,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    // SIGHUP must not kill the daemon (systemd's ExecReload sends it). It re-reads the policy
    // directory, keeping the policy in force when the new one does not check, and the TLS
    // certificate and key, keeping the ones in use when the files do not load. Accounts,
    // identities and queue changes are read from the database as they happen.
    let mut hup = signal(SignalKind::hangup()).ok();
    loop {
        tokio::select! {
            _ = term.recv() => return,
            _ = tokio::signal::ctrl_c() => return,
            Some(()) = async { match hup.as_mut() { Some(h) => h.recv().await, None => std::future::pending().await } } => {
                if let Some(cert) = tls_cert {
                    match cert.reload() {
                        Ok(said) => tracing::info!(certificate = %said, "SIGHUP: TLS certificate reloaded"),
                        Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate not reloaded; the one in use is kept"),
                    }
                }
                match policy.reload() {
                    Ok(p) => {
                        tracing::info!(profile = %p.profile, "SIGHUP: policy reloaded");
                        audit_policy(db, policy, Action::PolicyReload, None).await;
                    }
                    Err(errors) => {
                        tracing::error!(%errors, "SIGHUP: policy reload failed; the policy in force is kept");
                        audit_policy(db, policy, Action::PolicyReloadFailed, Some(&errors)).await;
                    }
                }
            }
        }
    }
}
