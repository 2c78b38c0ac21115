//! A small SMTP server that accepts and records what it is sent: the upstream in tests and
//! benchmarks. It can offer STARTTLS and DSN, refuse chosen recipients, and be stopped.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};

use crate::smtp::stream::Stream;

#[derive(Clone, Default)]
pub struct SinkConfig {
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Recipients (lower case) refused with the given reply, e.g. "550 5.1.1 no such user".
    pub reject: Vec<(String, String)>,
    pub advertise_dsn: bool,
    /// Keep message bodies (off in benchmarks to save memory).
    pub keep_data: bool,
    /// Wait this long before answering each end of DATA (a slow upstream).
    pub data_delay_ms: u64,
    /// Answer 354 to a DATA none of whose recipients was accepted (a server that ignores
    /// RFC 2920's advice), instead of refusing it as Postfix does.
    pub data_without_recipients: bool,
}

#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
    pub tls: bool,
    pub at: std::time::Instant,
}

pub struct Sink {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    pub count: Arc<std::sync::atomic::AtomicUsize>,
    /// Connections accepted.
    pub connections: Arc<std::sync::atomic::AtomicUsize>,
    /// Transactions whose MAIL command came with the next commands behind it in the same
    /// read (the client pipelined, RFC 2920).
    pub pipelined: Arc<std::sync::atomic::AtomicUsize>,
    pub arrived: Arc<Notify>,
    stop: watch::Sender<bool>,
}

impl Sink {
    pub async fn start(bind: SocketAddr, cfg: SinkConfig) -> std::io::Result<Sink> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let received = Arc::new(Mutex::new(Vec::new()));
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let arrived = Arc::new(Notify::new());
        let (stop, mut stop_rx) = watch::channel(false);
        let cfg = Arc::new(cfg);
        let (r2, c2, a2) = (received.clone(), count.clone(), arrived.clone());
        let conns = connections.clone();
        let pipelined = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let p2 = pipelined.clone();
        tokio::spawn(async move {
            loop {
                let (tcp, _) = tokio::select! {
                    a = listener.accept() => match a { Ok(x) => x, Err(_) => continue },
                    _ = stop_rx.changed() => break,
                };
                let _ = tcp.set_nodelay(true);
                conns.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let (cfg, r, c, a, p) =
                    (cfg.clone(), r2.clone(), c2.clone(), a2.clone(), p2.clone());
                let mut stopped = stop_rx.clone();
                tokio::spawn(async move {
                    // A stopped sink drops its open connections too, as a server going down does.
                    tokio::select! {
                        _ = session(Stream::Plain(tcp), cfg, r, c, a, p) => {}
                        _ = stopped.changed() => {}
                    }
                });
            }
        });
        Ok(Sink {
            addr,
            received,
            count,
            connections,
            pipelined,
            arrived,
            stop,
        })
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Waits until at least `n` messages arrived or `timeout` passed; returns the count.
    pub async fn wait_for(&self, n: usize, timeout: std::time::Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let have = self.count.load(std::sync::atomic::Ordering::SeqCst);
            if have >= n {
                return have;
            }
            if tokio::time::timeout_at(deadline, self.arrived.notified())
                .await
                .is_err()
            {
                return self.count.load(std::sync::atomic::Ordering::SeqCst);
            }
        }
    }

    /// Stops accepting connections and closes the open ones.
    pub fn stop(&self) {
        let _ = self.stop.send(true);
    }
}

async fn session(
    stream: Stream,
    cfg: Arc<SinkConfig>,
    received: Arc<Mutex<Vec<Received>>>,
    count: Arc<std::sync::atomic::AtomicUsize>,
    arrived: Arc<Notify>,
    pipelined: Arc<std::sync::atomic::AtomicUsize>,
) -> std::io::Result<()> {
    let mut io = BufReader::new(stream);
    io.get_mut().write_all(b"220 sink.test ESMTP\r\n").await?;
    let mut from = String::new();
    let mut rcpts = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if io.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&line).trim_end().to_string();
        let upper = text.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            let mut r = String::from("250-sink.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250-SIZE 100000000\r\n");
            if cfg.advertise_dsn {
                r.push_str("250-DSN\r\n");
            }
            if cfg.tls.is_some() && !io.get_ref().is_tls() {
                r.push_str("250-STARTTLS\r\n");
            }
            r.push_str("250 ENHANCEDSTATUSCODES\r\n");
            r
        } else if upper.starts_with("STARTTLS") {
            let Some(tls) = cfg.tls.clone() else {
                io.get_mut().write_all(b"502 5.5.1 no TLS\r\n").await?;
                continue;
            };
            io.get_mut().write_all(b"220 2.0.0 go ahead\r\n").await?;
            let Stream::Plain(tcp) = io.into_inner() else {
                return Ok(());
            };
            let s = tokio_rustls::TlsAcceptor::from(tls).accept(tcp).await?;
            io = BufReader::new(Stream::Tls(Box::new(s)));
            continue;
        } else if upper.starts_with("MAIL FROM:") {
            if !io.buffer().is_empty() {
                pipelined.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            from = text.clone();
            rcpts.clear();
            "250 2.1.0 ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let addr = text[8..]
                .trim()
                .trim_start_matches('<')
                .split('>')
                .next()
                .unwrap_or("")
                .to_ascii_lowercase();
            match cfg.reject.iter().find(|(a, _)| *a == addr) {
                Some((_, reply)) => format!("{reply}\r\n"),
                None => {
                    rcpts.push(text.clone());
                    "250 2.1.5 ok\r\n".into()
                }
            }
        } else if upper == "DATA" && rcpts.is_empty() && !cfg.data_without_recipients {
            // As Postfix answers a DATA no recipient of which was accepted (pipelined).
            "554 5.5.1 no valid recipients\r\n".into()
        } else if upper == "DATA" {
            io.get_mut().write_all(b"354 go\r\n").await?;
            let data = read_data(&mut io).await?;
            if cfg.data_delay_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(cfg.data_delay_ms)).await;
            }
            let tls = io.get_ref().is_tls();
            if let Ok(mut v) = received.lock() {
                v.push(Received {
                    mail_from: from.clone(),
                    rcpt_to: rcpts.clone(),
                    data: if cfg.keep_data { data } else { Vec::new() },
                    tls,
                    at: std::time::Instant::now(),
                });
            }
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            arrived.notify_waiters();
            "250 2.0.0 accepted by sink\r\n".into()
        } else if upper == "QUIT" {
            io.get_mut().write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(());
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            "250 2.0.0 ok\r\n".into()
        } else if upper.starts_with("AUTH") {
            "235 2.7.0 ok\r\n".into()
        } else {
            "500 5.5.1 unknown\r\n".into()
        };
        io.get_mut().write_all(reply.as_bytes()).await?;
    }
}

async fn read_data<R: tokio::io::AsyncBufRead + Unpin>(io: &mut R) -> std::io::Result<Vec<u8>> {
    let mut data = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if io.read_until(b'\n', &mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        if line == b".\r\n" {
            return Ok(data);
        }
        let l = if line.starts_with(b".") {
            &line[1..]
        } else {
            &line[..]
        };
        data.extend_from_slice(l);
    }
}
