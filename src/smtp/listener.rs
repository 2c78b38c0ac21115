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
        let ctx2 = ctx.clone();
        let l = listener.clone();
        tokio::spawn(async move {
            serve_connection(ctx2, l, peer, tcp).await;
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
        match tokio::time::timeout(ctx.config.limits.idle_timeout(), acceptor.accept(tcp)).await {
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
