//! Two nodes on one PostgreSQL (SPEC "Several nodes on one PostgreSQL"): both accept and
//! deliver, each with its own data directory (so a message's bytes must come from the
//! database); one is SIGKILLed in the middle of the load. Every acknowledged message reaches
//! the upstream; a message arrives twice only when the killed node's delivery of it was in
//! flight, and then only after that node's lease ran out (never by both nodes at once).
//!
//! Runs on PostgreSQL only (CONGVAN_TEST_DATABASE_URL; `.ci/run` runs the suite on it).

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use congvan::testkit::sink::{Sink, SinkConfig};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QuerySelect};

const LEASE_SECS: u64 = 4;
const CONCURRENCY: usize = 8;

/// A daemon of a node: `congvan serve` with its own configuration, killed when dropped.
struct Node {
    child: std::process::Child,
    relay: std::net::SocketAddr,
}

impl Node {
    fn spawn(config: &Path, log: &Path, relay: std::net::SocketAddr) -> Node {
        let log = std::fs::File::create(log).unwrap();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_congvan"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .env("CONGVAN_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::from(log))
            .spawn()
            .expect("spawn congvan serve");
        Node { child, relay }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn wait_port(addr: std::net::SocketAddr) {
    for _ in 0..300 {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{addr} did not open");
}

/// Node B: node A's configuration with its own data directory, ports and node id, on the
/// same database (its TLS files and policies are read from A's directory).
fn second_node(env: &Env, dir: &Path, ports: [u16; 4]) -> PathBuf {
    let a = std::fs::read_to_string(&env.config_path).unwrap();
    let mut b = String::new();
    let mut bind = 0;
    for line in a.lines() {
        if line.starts_with("data_dir = ") {
            b.push_str(&format!("data_dir = \"{}\"\n", dir.display()));
        } else if line.starts_with("bind = ") {
            b.push_str(&format!("bind = \"127.0.0.1:{}\"\n", ports[bind]));
            bind += 1;
        } else if line.starts_with("node_id = ") {
            b.push_str("node_id = \"node-b\"\n");
        } else {
            b.push_str(line);
            b.push('\n');
        }
    }
    assert_eq!(bind, 4, "four listeners in the test configuration");
    let path = dir.join("congvan.toml");
    std::fs::write(&path, b).unwrap();
    path
}

fn message(seq: usize) -> String {
    format!(
        "From: vanthu@dev.gov.vn\r\nTo: a@so-noivu.gov.vn\r\nSubject: Van ban {seq}\r\n\
         X-Test-Seq: {seq}\r\nMessage-ID: <seq-{seq}@dev.gov.vn>\r\n\r\nNoi dung {seq}.\r\n"
    )
}

/// Sends `seqs` over one relay connection (reconnecting after a refused transaction) and
/// records each one that got 250. Stops once `dead` is set (its node was killed).
async fn send_all(
    relay: std::net::SocketAddr,
    seqs: Vec<usize>,
    acked: Arc<Mutex<Vec<usize>>>,
    dead: Arc<AtomicBool>,
) {
    let mut client: Option<Client> = None;
    for seq in seqs {
        if dead.load(Ordering::SeqCst) {
            return;
        }
        if client.is_none() {
            let Ok(tcp) = tokio::net::TcpStream::connect(relay).await else {
                return;
            };
            let mut c = Client::over(tcp);
            if c.reply().await.0 != 220 || c.cmd("EHLO load.test").await.0 != 250 {
                return;
            }
            client = Some(c);
        }
        let c = client.as_mut().unwrap();
        let ok = c.cmd("MAIL FROM:<vanthu@dev.gov.vn>").await.0 == 250
            && c.cmd("RCPT TO:<a@so-noivu.gov.vn>").await.0 == 250
            && c.cmd("DATA").await.0 == 354
            && {
                c.send(format!("{}.\r\n", message(seq)).as_bytes()).await;
                c.reply().await.0 == 250
            };
        if ok {
            acked.lock().unwrap().push(seq);
        } else {
            client = None;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_share_the_queue_and_survive_one_killed() {
    if std::env::var("CONGVAN_TEST_DATABASE_URL").map_or(true, |u| u.is_empty()) {
        eprintln!("skipped: several nodes need PostgreSQL (CONGVAN_TEST_DATABASE_URL)");
        return;
    }
    // A slow upstream, so that deliveries are in flight when node A dies.
    let sink = Sink::start(
        "127.0.0.1:0".parse().unwrap(),
        SinkConfig {
            keep_data: true,
            data_delay_ms: 30,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let ports_a = [free_port(), free_port(), free_port(), free_port()];
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://{}", sink.addr)),
        ports: Some(ports_a),
        extra: format!(
            "node_id = \"node-a\"\nlease_secs = {LEASE_SECS}\nconcurrency = {CONCURRENCY}\nmonitor_interval_secs = 1\n"
        ),
        ..Default::default()
    })
    .await;
    let dir_b = tempfile::tempdir().unwrap();
    let ports_b = [free_port(), free_port(), free_port(), free_port()];
    let config_b = second_node(&env, dir_b.path(), ports_b);
    let relay =
        |p: [u16; 4]| -> std::net::SocketAddr { format!("127.0.0.1:{}", p[2]).parse().unwrap() };
    let mut a = Node::spawn(
        &env.config_path,
        &env.path().join("node-a.log"),
        relay(ports_a),
    );
    wait_port(a.relay).await;
    // A starts first, so it runs the deadline monitor and B must take it over after the kill.
    let db = env.db().await;
    let monitor = || congvan::queue::leader::holder(&db, congvan::queue::leader::MONITOR);
    for _ in 0..100 {
        if monitor().await.unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (first_holder, _) = monitor()
        .await
        .unwrap()
        .expect("node A runs the deadline monitor");
    assert!(first_holder.starts_with("node-a/"), "{first_holder}");
    let b = Node::spawn(&config_b, &dir_b.path().join("node-b.log"), relay(ports_b));
    wait_port(b.relay).await;

    // 240 documents, half to each node over three connections each.
    const TOTAL: usize = 240;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let a_dead = Arc::new(AtomicBool::new(false));
    let never = Arc::new(AtomicBool::new(false));
    let mut senders = Vec::new();
    for lane in 0..6 {
        let seqs: Vec<usize> = (0..TOTAL).filter(|s| s % 6 == lane).collect();
        let (addr, dead) = if lane % 2 == 0 {
            (a.relay, a_dead.clone())
        } else {
            (b.relay, never.clone())
        };
        senders.push((
            lane % 2 == 0,
            tokio::spawn(send_all(addr, seqs, acked.clone(), dead)),
        ));
    }
    // Kill A once both nodes have delivered part of the load.
    let arrived = sink.wait_for(TOTAL / 4, Duration::from_secs(120)).await;
    assert!(
        arrived >= TOTAL / 4,
        "only {arrived} delivered before the kill"
    );
    // B has not taken the monitor while A runs.
    let (holder, _) = monitor()
        .await
        .unwrap()
        .expect("a node runs the deadline monitor");
    assert_eq!(holder, first_holder, "one node at a time");
    a_dead.store(true, Ordering::SeqCst);
    a.kill();
    for (to_a, s) in senders {
        // A sender whose node was killed under it may fail in any way (the test client
        // panics on a broken connection); what it had acknowledged stays recorded.
        let r = s.await;
        assert!(to_a || r.is_ok(), "a sender to node B failed: {r:?}");
    }
    let acked: Vec<usize> = acked.lock().unwrap().clone();
    assert!(
        acked.len() > TOTAL / 2,
        "most documents were acknowledged: {}",
        acked.len()
    );

    // The queue drains: A's queued and in-flight documents go through B once A's leases have
    // run out (one A had handed upstream but not yet recorded goes a second time). Nothing is
    // left held (a message whose bytes B could not read would be).
    let in_queue = || {
        congvan::store::entity::message::Entity::find()
            .filter(congvan::store::entity::message::Column::State.is_in([
                "waiting",
                "deferred",
                "held",
                "delivering",
            ]))
            .count(&db)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let left = in_queue().await.unwrap();
        if left == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{left} messages left in the queue"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every acknowledged document arrived.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let arrivals = loop {
        let mut seen: BTreeMap<usize, Vec<std::time::Instant>> = BTreeMap::new();
        for m in sink.messages() {
            let text = String::from_utf8_lossy(&m.data).to_string();
            let seq = text
                .lines()
                .find_map(|l| l.strip_prefix("X-Test-Seq: "))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .expect("a test document");
            seen.entry(seq).or_default().push(m.at);
        }
        if acked.iter().all(|s| seen.contains_key(s)) || tokio::time::Instant::now() > deadline {
            break seen;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let missing: Vec<&usize> = acked.iter().filter(|s| !arrivals.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "acknowledged but never delivered: {missing:?}; node B's log: {}",
        std::fs::read_to_string(dir_b.path().join("node-b.log"))
            .unwrap_or_default()
            .lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let twice_count = arrivals.values().filter(|at| at.len() > 1).count();
    eprintln!(
        "{} acknowledged of {TOTAL}, {} at the upstream, {twice_count} twice",
        acked.len(),
        arrivals.len()
    );
    // Twice only for A's deliveries in flight (at most its concurrency), and the second
    // only after A's lease ran out: never by both nodes at once.
    let twice: Vec<(&usize, &Vec<std::time::Instant>)> =
        arrivals.iter().filter(|(_, at)| at.len() > 1).collect();
    assert!(
        twice.len() <= CONCURRENCY,
        "{} documents delivered more than once (node A had at most {CONCURRENCY} in flight)",
        twice.len()
    );
    for (seq, at) in &twice {
        assert_eq!(at.len(), 2, "document {seq} delivered {} times", at.len());
        let gap = at[1].duration_since(at[0]);
        assert!(
            gap >= Duration::from_secs(LEASE_SECS - 1),
            "document {seq} delivered twice {gap:?} apart: by both nodes at once"
        );
    }
    // B takes the monitor over once A's lease on it has run out (every acknowledged document
    // may have arrived before that, when A had nothing in flight at the kill).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(LEASE_SECS * 5);
    let holder = loop {
        let (holder, _) = monitor()
            .await
            .unwrap()
            .expect("a node runs the deadline monitor");
        if holder.starts_with("node-b/") || tokio::time::Instant::now() > deadline {
            break holder;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        holder.starts_with("node-b/"),
        "node B took over the monitor from {first_holder}: {holder}"
    );
    // Each delivered document's copy is in the database, whichever node sent it.
    use congvan::store::entity::register_entry as entry;
    let copies: Vec<(String, Option<String>)> = entry::Entity::find()
        .select_only()
        .column(entry::Column::Id)
        .column(entry::Column::ArchivePath)
        .filter(entry::Column::State.eq("delivered"))
        .into_tuple()
        .all(&db)
        .await
        .unwrap();
    assert!(
        copies.len() >= acked.len(),
        "{} delivered entries",
        copies.len()
    );
    for (id, path) in &copies {
        assert_eq!(
            path.as_deref(),
            Some(congvan::register::archive::IN_DATABASE),
            "{id}"
        );
    }
    let archived = congvan::store::entity::archive_content::Entity::find()
        .count(&db)
        .await
        .unwrap();
    assert_eq!(
        archived as usize,
        copies.len(),
        "one archived copy per delivered document"
    );
    let contents = congvan::store::entity::message_content::Entity::find()
        .count(&db)
        .await
        .unwrap();
    assert_eq!(contents, 0, "the bytes of delivered messages are removed");
    drop(b);
}
