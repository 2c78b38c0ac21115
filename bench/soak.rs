//! SIGKILL soak: the real `congvan serve` (release build) under load on its relay listener,
//! with an SMTP sink (from `congvan::testkit`) as its upstream, killed with SIGKILL N times at
//! random moments and started again each time. Right after each kill, before the restart, it
//! reads from the database which messages were `delivering` (the deliveries in flight: the
//! only ones SPEC.md lets be delivered twice). At the end it releases the messages held as
//! poison (in flight at two kills), waits for the queue to drain, and counts acknowledged
//! (250), delivered, lost (acknowledged, never delivered) and duplicated deliveries, and
//! checks every duplicate against the in-flight sets. Loopback only.
//!
//!     cargo build --release --bin congvan && cargo run --release --example soak -- [--kills 100]
//!         [--connections 8] [--min-ms 200] [--max-ms 2000] [--max-seconds 1200]
//!         [--sink-delay-ms 0] [--database-url postgres://...] [--binary target/release/congvan]
//!
//! Exit status 1 when a message was lost or a duplicate is not explained by a kill.

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use congvan::store::entity::message;
use congvan::testkit::sink::{Sink, SinkConfig};
use rand::Rng;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    kills: usize,
    connections: usize,
    min_ms: u64,
    max_ms: u64,
    max_seconds: u64,
    sink_delay_ms: u64,
    database_url: Option<String>,
    binary: String,
}

fn args() -> Args {
    let mut a = Args {
        kills: 100,
        connections: 8,
        min_ms: 200,
        max_ms: 2000,
        max_seconds: 1200,
        sink_delay_ms: 0,
        database_url: None,
        binary: "target/release/congvan".into(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        let num = |what: &str| -> u64 {
            val.parse()
                .unwrap_or_else(|_| panic!("{what} needs a number"))
        };
        match v[i].as_str() {
            "--kills" => a.kills = num("--kills") as usize,
            "--connections" => a.connections = num("--connections").max(1) as usize,
            "--min-ms" => a.min_ms = num("--min-ms"),
            "--max-ms" => a.max_ms = num("--max-ms"),
            "--max-seconds" => a.max_seconds = num("--max-seconds"),
            "--sink-delay-ms" => a.sink_delay_ms = num("--sink-delay-ms"),
            "--database-url" => a.database_url = Some(val),
            "--binary" => a.binary = val,
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a.max_ms = a.max_ms.max(a.min_ms + 1);
    a
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from)
        .expect("run from the repository root (policies/)")
        .flatten()
    {
        let t = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &t);
        } else {
            std::fs::copy(e.path(), t).unwrap();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Reads one (possibly multi-line) reply; None when the connection ended.
async fn reply(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    loop {
        if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = buf.drain(..p + 2).collect();
            let l = String::from_utf8_lossy(&line).to_string();
            if l.as_bytes().get(3) == Some(&b' ') {
                return Some(l);
            }
            continue;
        }
        let mut b = [0u8; 4096];
        match tokio::time::timeout(Duration::from_secs(30), s.read(&mut b)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&b[..n]),
            _ => return None,
        }
    }
}

/// One client: sends numbered messages until told to stop, reconnecting whenever the
/// daemon goes away. Records each acknowledged token with its queue id.
async fn client(
    conn: usize,
    port: u16,
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<HashMap<String, String>>>,
    sent: Arc<AtomicUsize>,
) {
    let mut n = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = s.set_nodelay(true);
        let mut buf = Vec::new();
        if reply(&mut s, &mut buf).await.is_none()
            || s.write_all(b"EHLO soak\r\n").await.is_err()
            || reply(&mut s, &mut buf).await.is_none()
        {
            continue;
        }
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let token = format!("soak-{conn}-{n}");
            let envelope =
                b"MAIL FROM:<soak@dev.gov.vn>\r\nRCPT TO:<sink@hanoi.gov.vn>\r\nDATA\r\n";
            if s.write_all(envelope).await.is_err() {
                break;
            }
            let mut ok = true;
            for _ in 0..3 {
                match reply(&mut s, &mut buf).await {
                    Some(r) if r.starts_with('2') || r.starts_with('3') => {}
                    _ => {
                        ok = false;
                        break;
                    }
                }
            }
            if !ok {
                break;
            }
            let body = format!(
                "From: soak@dev.gov.vn\r\nTo: sink@hanoi.gov.vn\r\nSubject: {token}\r\n\r\n{}\r\n.\r\n",
                "Noi dung van ban. ".repeat(40)
            );
            sent.fetch_add(1, Ordering::Relaxed);
            if s.write_all(body.as_bytes()).await.is_err() {
                break;
            }
            match reply(&mut s, &mut buf).await {
                Some(r) if r.starts_with("250") => {
                    let id = r.split_whitespace().last().unwrap_or("").to_string();
                    acked.lock().unwrap().insert(token, id);
                }
                // A 4xx (e.g. shutting down) or a dead connection: not acknowledged.
                Some(_) => {}
                None => break,
            }
        }
    }
}

fn spawn(binary: &str, dir: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .unwrap();
    Command::new(binary)
        .args([
            "--config",
            dir.join("congvan.toml").to_str().unwrap(),
            "serve",
        ])
        .env("CONGVAN_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .expect("run the congvan binary (cargo build --release --bin congvan first)")
}

async fn wait_port(port: u16) {
    for _ in 0..600 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the daemon did not open its port; see daemon.log");
}

fn queue_id_of(data: &[u8]) -> Option<String> {
    // The relay's Received header names the queue id: "... id <32 hex>".
    let head = String::from_utf8_lossy(&data[..data.len().min(2000)]).to_string();
    let pos = head.find(" id ")?;
    let id: String = head[pos + 4..].chars().take(32).collect();
    congvan::util::is_queue_id(&id).then_some(id)
}

fn token_of(data: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(data);
    let pos = text.find("Subject: soak-")?;
    Some(
        text[pos + 9..]
            .split(|c: char| c.is_whitespace() || c == ']')
            .next()?
            .to_string(),
    )
}

#[tokio::main]
async fn main() {
    let a = args();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sink = Sink::start(
        "127.0.0.1:0".parse().unwrap(),
        SinkConfig {
            keep_data: true,
            data_delay_ms: a.sink_delay_ms,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let relay_port = free_port();
    let db_url = a
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/congvan.db", d.display()));
    let cfg = format!(
        "hostname = \"soak.gov.vn\"\ndata_dir = \"{d}\"\ndatabase_url = \"{db_url}\"\npolicy_dir = \"{d}/policies\"\n\
         [[listener]]\nrole = \"relay\"\nbind = \"127.0.0.1:{relay_port}\"\ntrusted_networks = [\"127.0.0.0/8\"]\n\
         [outbound]\nupstream = \"smtp://127.0.0.1:{}\"\ntls = \"none\"\n[inbound]\ndeliver_to = \"outbox:{d}/inbox\"\n\
         [limits]\nmax_connections = 1000\n[queue]\nconcurrency = 16\nretry_base_secs = 1\nretry_max_secs = 2\n",
        sink.addr.port(),
        d = d.display(),
    );
    std::fs::write(d.join("congvan.toml"), cfg).unwrap();
    copy_dir(std::path::Path::new("policies"), &d.join("policies"));
    congvan::dev::make_pki(d).unwrap();
    let st = Command::new(&a.binary)
        .args(["--config", d.join("congvan.toml").to_str().unwrap()])
        .args(["cert", "import", "--cert"])
        .arg(d.join("pki/dev.gov.vn.chain.pem"))
        .arg("--key")
        .arg(d.join("pki/dev.gov.vn.key.pem"))
        .args(["--domain", "dev.gov.vn"])
        .stdout(Stdio::null())
        .status()
        .expect("congvan cert import");
    assert!(st.success(), "cert import failed");
    let db = congvan::store::open(&db_url).await.expect("database");

    println!(
        "congvan soak: {} SIGKILLs every {}..{} ms, {} connections on the relay, database {}",
        a.kills,
        a.min_ms,
        a.max_ms,
        a.connections,
        if a.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let started = Instant::now();
    let mut daemon = spawn(&a.binary, d);
    wait_port(relay_port).await;
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<HashMap<String, String>>> = Default::default();
    let sent = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..a.connections)
        .map(|c| {
            tokio::spawn(client(
                c,
                relay_port,
                stop.clone(),
                acked.clone(),
                sent.clone(),
            ))
        })
        .collect();

    // The kills: each followed by a look at what was in flight, then a restart.
    let mut in_flight: Vec<HashSet<String>> = Vec::new();
    for k in 0..a.kills {
        if started.elapsed() > Duration::from_secs(a.max_seconds) {
            println!("time bound reached after {k} kills");
            break;
        }
        let wait = rand::rng().random_range(a.min_ms..a.max_ms);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(daemon.id() as i32, libc::SIGKILL);
        }
        let _ = daemon.wait();
        let delivering: HashSet<String> = message::Entity::find()
            .filter(message::Column::State.eq("delivering"))
            .all(&db)
            .await
            .expect("read the queue after the kill")
            .into_iter()
            .map(|m| m.id)
            .collect();
        in_flight.push(delivering);
        daemon = spawn(&a.binary, d);
        wait_port(relay_port).await;
        if (k + 1) % 10 == 0 {
            println!(
                "  {} kills, {} acknowledged, {} at the sink, in flight at this kill: {}",
                k + 1,
                acked.lock().unwrap().len(),
                sink.count.load(Ordering::SeqCst),
                in_flight.last().map(|s| s.len()).unwrap_or(0)
            );
        }
    }
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        let _ = c.await;
    }

    // Poison: in flight at two kills, held. Released so that they are delivered too.
    let held = message::Entity::find()
        .filter(message::Column::State.eq("held"))
        .all(&db)
        .await
        .unwrap();
    let poison: Vec<String> = held
        .iter()
        .filter(|m| m.reason.as_deref() == Some(congvan::queue::delivery::POISON_REASON))
        .map(|m| m.id.clone())
        .collect();
    let other_held = held.len() - poison.len();
    for id in &poison {
        let st = Command::new(&a.binary)
            .args(["--config", d.join("congvan.toml").to_str().unwrap()])
            .args(["queue", "release", id])
            .stdout(Stdio::null())
            .status()
            .expect("congvan queue release");
        assert!(st.success(), "queue release {id}");
    }
    // Drain: nothing waiting, delivering or deferred.
    let drain_start = Instant::now();
    loop {
        let left = message::Entity::find()
            .filter(message::Column::State.is_in(["waiting", "delivering", "deferred"]))
            .all(&db)
            .await
            .unwrap()
            .len();
        if left == 0 {
            break;
        }
        if drain_start.elapsed() > Duration::from_secs(300) {
            println!("queue not drained after 300 s: {left} left");
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // SAFETY: stopping our own child.
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    let _ = daemon.wait();
    let secs = started.elapsed().as_secs_f64();

    // Counting.
    let acked = acked.lock().unwrap().clone();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    let mut per_token: HashMap<String, usize> = HashMap::new();
    for m in sink.messages() {
        if let Some(id) = queue_id_of(&m.data) {
            *per_id.entry(id).or_default() += 1;
        }
        if let Some(t) = token_of(&m.data) {
            *per_token.entry(t).or_default() += 1;
        }
    }
    let delivered_acked = acked.keys().filter(|t| per_token.contains_key(*t)).count();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|(t, _)| !per_token.contains_key(*t))
        .map(|(_, id)| id)
        .collect();
    let unacked_delivered = per_token.keys().filter(|t| !acked.contains_key(*t)).count();
    let duplicates: usize = per_id.values().map(|n| n - 1).sum();
    let mut times_in_flight: HashMap<&str, usize> = HashMap::new();
    for set in &in_flight {
        for id in set {
            *times_in_flight.entry(id.as_str()).or_default() += 1;
        }
    }
    let bound: usize = in_flight.iter().map(|s| s.len()).sum();
    let unexplained: Vec<(&String, usize)> = per_id
        .iter()
        .filter(|(id, n)| **n - 1 > times_in_flight.get(id.as_str()).copied().unwrap_or(0))
        .map(|(id, n)| (id, *n))
        .collect();
    let max_in_flight = in_flight.iter().map(|s| s.len()).max().unwrap_or(0);

    println!(
        "kills:                          {} in {secs:.0} s",
        in_flight.len()
    );
    println!(
        "messages sent (DATA ended):     {}",
        sent.load(Ordering::Relaxed)
    );
    println!("acknowledged (250):             {}", acked.len());
    println!("delivered (acknowledged ones):  {delivered_acked}");
    println!("lost (250, never delivered):    {}", lost.len());
    println!(
        "delivered without a 250 seen:   {unacked_delivered} (committed, killed before the reply)"
    );
    println!(
        "deliveries at the sink:         {}",
        sink.count.load(Ordering::SeqCst)
    );
    println!(
        "duplicated deliveries:          {duplicates} (bound: {bound} deliveries in flight over all kills, at most {max_in_flight} at one)"
    );
    println!("duplicates not in flight:       {}", unexplained.len());
    println!("held as poison and released:    {}", poison.len());
    println!("held for another reason:        {other_held}");
    for id in lost.iter().take(10) {
        println!("  lost: {id}");
    }
    for (id, n) in unexplained.iter().take(10) {
        println!(
            "  unexplained: {id} delivered {n} times, in flight at {} kills",
            times_in_flight.get(id.as_str()).copied().unwrap_or(0)
        );
    }
    if std::env::var_os("SOAK_KEEP").is_some() {
        println!("kept: {}", dir.keep().display());
    }
    if !lost.is_empty() || !unexplained.is_empty() {
        std::process::exit(1);
    }
}
