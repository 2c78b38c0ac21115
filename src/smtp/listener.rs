//! Binding the configured listeners and accepting connections, with a cap on concurrent
//! sessions and a graceful stop: no new connections, sessions finish what they are doing.

use std::net::SocketAddr;
use std::sync::Arc;

use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use super::session::Session;
use super::stream::Stream;
use super::throttle::AuthThrottle;
use crate::config::{Config, ListenerConfig, Role};
use crate::policy::SharedPolicy;
use crate::queue::Queue;

/// What every session shares.
pub struct ServerCtx {
    pub config: Arc<Config>,
    pub db: DatabaseConnection,
    pub queue: Queue,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub throttle: AuthThrottle,
    /// The dispatch policy in force (domain rules, classification, decisions); swapped
    /// whole on reload.
    pub policy: Arc<SharedPolicy>,
    pub shutdown: watch::Receiver<bool>,
    pub sessions: Arc<Semaphore>,
    /// Open sessions per client address.
    pub per_ip: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
    /// Memory for messages being received, shared by all sessions (`[limits]
    /// max_data_memory_mb`); `None` without a limit.
    pub data_budget: Option<super::reader::DataBudget>,
}

/// Holds one of a client address's session slots; released on drop.
struct IpSlot {
    ctx: Arc<ServerCtx>,
    ip: std::net::IpAddr,
}

impl IpSlot {
    fn take(ctx: &Arc<ServerCtx>, ip: std::net::IpAddr, limit: usize) -> Option<IpSlot> {
        let mut map = ctx.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            ctx: ctx.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.ctx.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Binds every listener; fails before anything is accepted if one cannot be bound.
pub async fn bind_all(config: &Config) -> std::io::Result<Vec<(ListenerConfig, TcpListener)>> {
    let mut out = Vec::new();
    for l in &config.listeners {
        let sock = TcpListener::bind(l.bind).await.map_err(|e| {
            std::io::Error::new(
                e.kind(),
                format!(
                    "cannot bind {} listener on {}: {e}",
                    l.role.as_str(),
                    l.bind
                ),
            )
        })?;
        out.push((l.clone(), sock));
    }
    Ok(out)
}

pub async fn accept_loop(ctx: Arc<ServerCtx>, listener: ListenerConfig, sock: TcpListener) {
    let mut shutdown = ctx.shutdown.clone();
    let local = sock.local_addr().ok();
    tracing::info!(role = listener.role.as_str(), addr = ?local, "listening");
    loop {
        let accepted = tokio::select! {
            a = sock.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = ctx.sessions.clone().try_acquire_owned() else {
            tokio::spawn(refuse_busy(tcp));
            continue;
        };
        let ip = crate::config::canonical_ip(peer.ip());
        let exempt = listener.role == Role::Relay && listener.is_trusted(ip);
        let slot = if exempt {
            None
        } else {
            match IpSlot::take(&ctx, ip, ctx.config.limits.max_connections_per_ip) {
                Some(s) => Some(s),
                None => {
                    tracing::warn!(%peer, "too many connections from this address");
                    tokio::spawn(refuse_busy(tcp));
                    continue;
                }
            }
        };
        let ctx2 = ctx.clone();
        let l = listener.clone();
        tokio::spawn(async move {
            serve_connection(ctx2, l, peer, tcp).await;
            drop(slot);
            drop(permit);
        });
    }
    tracing::info!(role = listener.role.as_str(), "stopped accepting");
}

async fn refuse_busy(mut tcp: tokio::net::TcpStream) {
    use tokio::io::AsyncWriteExt;
    let _ = tcp
        .write_all(b"421 4.7.0 Too many connections, try again later / Qua nhieu ket noi\r\n")
        .await;
}

async fn serve_connection(
    ctx: Arc<ServerCtx>,
    l: ListenerConfig,
    peer: SocketAddr,
    tcp: tokio::net::TcpStream,
) {
    let stream = if l.role == Role::Submissions {
        let Some(cfg) = ctx.tls.clone() else {
            return;
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(cfg);
        let handshake = std::time::Duration::from_secs(ctx.config.limits.tls_handshake_secs);
        match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => Stream::Tls(Box::new(s)),
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => return,
        }
    } else {
        Stream::Plain(tcp)
    };
    Session::new(ctx, l, peer, stream).run().await;
}
