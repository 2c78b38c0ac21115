//! Metrics and health (SPEC "Operating it"): `[metrics] bind` serves Prometheus text on
//! `/metrics` and `/health` (200 when the database and the local domains' seals are usable,
//! 503 otherwise). Counters are process-wide ([`get`]) and counted where things happen; the
//! queue's sizes and oldest ages are read from the database at each scrape.
//!
//! The HTTP side answers `GET` of those two paths only, after reading at most one request
//! head of [`MAX_REQUEST_HEAD`] bytes within [`REQUEST_TIMEOUT`]; one request per
//! connection.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use sea_orm::{ConnectionTrait, DatabaseConnection, FromQueryResult, Statement};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The longest request head read; a longer one is answered 431.
pub const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// The time a client has to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Direction {
    pub direction: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Rule {
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub route: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Cause {
    pub cause: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Result_ {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Lane {
    state: String,
    urgency: String,
}

/// The daemon's counters.
pub struct Metrics {
    pub accepted: Family<Direction, Counter>,
    pub refused: Family<Rule, Counter>,
    /// Per recipient and attempt: delivered, deferred or failed.
    pub attempts: Family<Outcome, Counter>,
    pub held: Family<Cause, Counter>,
    pub deadline_violations: Counter,
    pub seal_seconds: Histogram,
    pub verify_seconds: Family<Result_, Histogram>,
    pub tls_failures: Counter,
    pub auth_failures: Counter,
}

fn seconds_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0,
    ])
}

impl Metrics {
    fn new() -> Metrics {
        Metrics {
            accepted: Family::default(),
            refused: Family::default(),
            attempts: Family::default(),
            held: Family::default(),
            deadline_violations: Counter::default(),
            seal_seconds: seconds_buckets(),
            verify_seconds: Family::new_with_constructor(seconds_buckets),
            tls_failures: Counter::default(),
            auth_failures: Counter::default(),
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "congvan_messages_accepted",
            "Messages accepted (250) by direction",
            self.accepted.clone(),
        );
        r.register(
            "congvan_messages_refused",
            "Messages refused at SMTP time by the rule that refused them",
            self.refused.clone(),
        );
        r.register(
            "congvan_delivery_attempts",
            "Delivery attempts per recipient by route and outcome (delivered, deferred, failed)",
            self.attempts.clone(),
        );
        r.register(
            "congvan_messages_held",
            "Messages held by cause (seal, token, quarantine, poison, panic, spool)",
            self.held.clone(),
        );
        r.register(
            "congvan_deadline_violations",
            "Documents that passed their dispatch deadline undelivered",
            self.deadline_violations.clone(),
        );
        r.register_with_unit(
            "congvan_seal_duration",
            "Time to seal an outgoing document (PDF seals and the S/MIME seal)",
            Unit::Seconds,
            self.seal_seconds.clone(),
        );
        r.register_with_unit(
            "congvan_verify_duration",
            "Time to verify an incoming message's S/MIME signature, by result",
            Unit::Seconds,
            self.verify_seconds.clone(),
        );
        r.register(
            "congvan_tls_handshake_failures",
            "TLS handshakes that failed (implicit TLS and STARTTLS)",
            self.tls_failures.clone(),
        );
        r.register(
            "congvan_auth_failures",
            "Failed SMTP AUTH attempts",
            self.auth_failures.clone(),
        );
    }
}

/// The process's counters.
pub fn get() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[derive(Debug, FromQueryResult)]
struct QueueRow {
    state: String,
    urgency: i32,
    n: i64,
    oldest: Option<i64>,
}

/// The whole exposition: the counters, and the queue read now.
pub async fn render(db: &DatabaseConnection) -> Result<String, sea_orm::DbErr> {
    let mut registry = Registry::default();
    get().register(&mut registry);
    let size = Family::<Lane, Gauge>::default();
    let oldest = Family::<Lane, Gauge>::default();
    let rows = QueueRow::find_by_statement(Statement::from_string(
        db.get_database_backend(),
        "SELECT state, urgency, COUNT(*) AS n, MIN(received_at) AS oldest \
         FROM message GROUP BY state, urgency",
    ))
    .all(db)
    .await?;
    let now = crate::util::now_ms();
    for r in rows {
        let lane = Lane {
            state: r.state,
            urgency: crate::policy::Urgency::from_rank(r.urgency).ascii().into(),
        };
        size.get_or_create(&lane).set(r.n);
        if let Some(t) = r.oldest {
            oldest.get_or_create(&lane).set((now - t).max(0) / 1000);
        }
    }
    registry.register(
        "congvan_queue_messages",
        "Messages in the queue by state and urgency lane",
        size,
    );
    registry.register_with_unit(
        "congvan_queue_oldest_age",
        "Age of the oldest message in the queue by state and urgency lane",
        Unit::Seconds,
        oldest,
    );
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .map_err(|e| sea_orm::DbErr::Custom(e.to_string()))?;
    Ok(out)
}

/// What `/health` says: the database answers, and each local domain's seal can sign now.
pub async fn health(
    db: &DatabaseConnection,
    config: &crate::config::Config,
    seals: &crate::pki::store::SealCache,
    tokens: &crate::queue::token_watch::Outages,
) -> (bool, serde_json::Value) {
    use crate::pki::store::Seal;
    let database = db
        .execute_unprepared("SELECT 1")
        .await
        .map(|_| "ok".to_string())
        .unwrap_or_else(|e| e.to_string());
    let mut ok = database == "ok";
    let mut domains = serde_json::Map::new();
    if ok {
        let now = time::OffsetDateTime::now_utc();
        for d in &config.inbound.local_domains {
            let said = match seals.for_domain(db, d, now).await {
                Ok(Seal::Usable { id, .. }) => match tokens.failing(id) {
                    None => "ok".to_string(),
                    Some(e) => format!("the token cannot sign: {e}"),
                },
                Ok(Seal::None) => "no signing identity".to_string(),
                Ok(Seal::Unusable { reason, .. }) => reason,
                Err(e) => e.to_string(),
            };
            ok &= said == "ok";
            domains.insert(d.clone(), said.into());
        }
    }
    (
        ok,
        serde_json::json!({ "ok": ok, "database": database, "seals": domains }),
    )
}

/// The request line's method and path, from a request head; None when it is not HTTP.
pub fn request_target(head: &[u8]) -> Option<(&str, &str)> {
    let line_end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&head[..line_end]).ok()?;
    let mut parts = line.split(' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return None;
    }
    Some((method, target.split('?').next().unwrap_or(target)))
}

/// What the HTTP side needs of the daemon.
pub struct Endpoint {
    pub db: DatabaseConnection,
    pub config: Arc<crate::config::Config>,
    pub deliverer: Arc<crate::queue::delivery::Deliverer>,
}

/// Serves `/metrics` and `/health` on `listener` until `stop`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    endpoint: Arc<Endpoint>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => return,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let endpoint = endpoint.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(REQUEST_TIMEOUT * 2, answer(stream, &endpoint)).await;
        });
    }
}

async fn answer(mut stream: tokio::net::TcpStream, e: &Endpoint) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let complete = tokio::time::timeout(REQUEST_TIMEOUT, async {
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") {
                return Ok(true);
            }
            if head.len() > MAX_REQUEST_HEAD {
                return Ok(false);
            }
        }
    })
    .await;
    let (status, kind, body) = match complete {
        Ok(Ok(true)) => match request_target(&head) {
            Some(("GET", "/metrics")) => match render(&e.db).await {
                Ok(text) => (
                    "200 OK",
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    text,
                ),
                Err(err) => (
                    "503 Service Unavailable",
                    "text/plain; charset=utf-8",
                    format!("database: {err}\n"),
                ),
            },
            Some(("GET", "/health")) => {
                let (ok, v) =
                    health(&e.db, &e.config, &e.deliverer.seals, &e.deliverer.tokens).await;
                (
                    if ok {
                        "200 OK"
                    } else {
                        "503 Service Unavailable"
                    },
                    "application/json",
                    format!("{v}\n"),
                )
            }
            Some(("GET", _)) => (
                "404 Not Found",
                "text/plain",
                "GET /metrics or /health\n".into(),
            ),
            Some(_) => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
            None => (
                "400 Bad Request",
                "text/plain",
                "not an HTTP/1 request\n".into(),
            ),
        },
        Ok(Ok(false)) if head.len() > MAX_REQUEST_HEAD => (
            "431 Request Header Fields Too Large",
            "text/plain",
            String::new(),
        ),
        _ => return Ok(()),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            request_target(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/metrics"))
        );
        assert_eq!(
            request_target(b"GET /health?x=1 HTTP/1.0\r\n\r\n"),
            Some(("GET", "/health"))
        );
        assert_eq!(request_target(b"GET /metrics\r\n\r\n"), None);
        assert_eq!(request_target(b"EHLO x\r\n"), None);
        assert_eq!(request_target(b"GET metrics HTTP/1.1\r\n"), None);
        assert_eq!(request_target(b"GET / HTTP/1.1 extra\r\n"), None);
    }
}
