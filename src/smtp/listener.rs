//! Binding the configured listeners and accepting connections, with session slots counted
//! per listener (so a flood on the public inbound port never takes the relay's or the
//! clerks' slots) and per client address on each listener, and a graceful stop: no new
//! connections, sessions finish what they are doing.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::context::ServerCtx;
use super::session::Session;
use super::stream::Stream;
use crate::config::{Config, ListenerConfig, Role};
use crate::reply::{std_replies, Reply};

/// The session slots of one listener: its own total (`max_connections`) and its own count
/// per client address (`[limits] max_connections_per_ip`). Nothing here is shared with
/// another listener.
pub struct ListenerSlots {
    total: Arc<Semaphore>,
    size: usize,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    per_ip_limit: usize,
}

impl ListenerSlots {
    pub fn new(size: usize, per_ip_limit: usize) -> Arc<ListenerSlots> {
        Arc::new(ListenerSlots {
            total: Arc::new(Semaphore::new(size)),
            size,
            per_ip: Mutex::new(HashMap::new()),
            per_ip_limit,
        })
    }

    /// Waits until every session of this listener has ended.
    pub async fn drained(&self) {
        let _ = self.total.acquire_many(self.size as u32).await;
    }
}

/// Holds one of a client address's session slots on a listener; released on drop.
struct IpSlot {
    slots: Arc<ListenerSlots>,
    ip: IpAddr,
}

impl IpSlot {
    fn take(slots: &Arc<ListenerSlots>, ip: IpAddr) -> Option<IpSlot> {
        let mut map = slots.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_insert(0);
        if *n >= slots.per_ip_limit {
            return None;
        }
        *n += 1;
        Some(IpSlot {
            slots: slots.clone(),
            ip,
        })
    }
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut map = self.slots.per_ip.lock().unwrap_or_else(|e| e.into_inner());
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

pub async fn accept_loop(
    ctx: Arc<ServerCtx>,
    listener: ListenerConfig,
    sock: TcpListener,
    slots: Arc<ListenerSlots>,
) {
    let mut shutdown = ctx.shutdown.clone();
    let local = sock
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| listener.bind.to_string());
    tracing::info!(role = listener.role.as_str(), addr = %local, max_connections = slots.size, "listening");
    loop {
        let accepted = tokio::select! {
            a = sock.accept() => a,
            _ = shutdown.changed() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        let Ok(permit) = slots.total.clone().try_acquire_owned() else {
            tracing::warn!(%peer, role = listener.role.as_str(), max_connections = slots.size, "every session slot of this listener is taken: 421");
            tokio::spawn(refuse(tcp, std_replies::listener_full()));
            continue;
        };
        let ip = crate::config::canonical_ip(peer.ip());
        let exempt = listener.role == Role::Relay && listener.is_trusted(ip);
        let slot = if exempt {
            None
        } else {
            match IpSlot::take(&slots, ip) {
                Some(s) => Some(s),
                None => {
                    tracing::warn!(%peer, role = listener.role.as_str(), "too many connections from this address: 421");
                    tokio::spawn(refuse(tcp, std_replies::too_many_from_address()));
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

/// Sends a refusal in place of the greeting and closes; a client that does not take it
/// within a few seconds is dropped.
async fn refuse(mut tcp: tokio::net::TcpStream, reply: Reply) {
    use tokio::io::AsyncWriteExt;
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tcp.write_all(reply.to_wire().as_bytes()),
    )
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
        let handshake = Duration::from_secs(ctx.config().limits.tls_handshake_secs);
        match tokio::time::timeout(handshake, acceptor.accept(tcp)).await {
            Ok(Ok(s)) => Stream::Tls(Box::new(s)),
            Ok(Err(e)) => {
                tracing::info!(%peer, error = %e, "TLS handshake failed");
                crate::metrics::get().tls_failures.inc();
                return;
            }
            Err(_) => {
                crate::metrics::get().tls_failures.inc();
                return;
            }
        }
    } else {
        Stream::Plain(tcp)
    };
    Session::new(ctx, l, peer, stream).run().await;
}
