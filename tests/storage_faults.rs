//! Storage faults under load, on the real binary: a data directory on a small tmpfs filled to a
//! few free kilobytes, database files made immutable, an exclusive lock held by another
//! process, and a PostgreSQL server restarted. In each: no 250 without a durable commit, every
//! message that got 250 is delivered exactly once, nothing else is delivered, and acceptance
//! resumes by itself within 30 s of the fault clearing, without a restart.

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The reply to one end of DATA.
#[derive(Debug, Clone)]
struct Sent {
    at: Instant,
    code: u16,
    text: String,
    /// The queue id of a 250.
    id: Option<String>,
}

/// Clients sending small outgoing documents through the relay listener until stopped,
/// reconnecting when the gateway closes a session.
struct Load {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Sent>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    fn start(relay: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..clients)
            .map(|n| {
                let (stop, log) = (stop.clone(), log.clone());
                tokio::spawn(async move {
                    let mut seq = 0u64;
                    while !stop.load(Ordering::Relaxed) {
                        if session(relay, n, &mut seq, &stop, &log).await.is_err() {
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                })
            })
            .collect();
        Load { stop, log, tasks }
    }

    fn replies(&self) -> Vec<Sent> {
        self.log.lock().unwrap().clone()
    }

    async fn stop(self) -> Vec<Sent> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            let _ = t.await;
        }
        self.log.lock().unwrap().clone()
    }
}

async fn read_reply(
    r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> std::io::Result<(u16, String)> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(Duration::from_secs(40), r.read_line(&mut line))
            .await
            .map_err(|_| std::io::Error::other("reply timed out"))??;
        if n == 0 {
            return Err(std::io::Error::other("connection closed"));
        }
        text.push_str(&line);
        if line.len() >= 4 && line.as_bytes()[3] == b' ' {
            let code = line[..3].parse().unwrap_or(0);
            return Ok((code, text));
        }
    }
}

/// One SMTP session: messages until the gateway refuses a command or the load stops.
async fn session(
    relay: SocketAddr,
    client: usize,
    seq: &mut u64,
    stop: &AtomicBool,
    log: &Mutex<Vec<Sent>>,
) -> std::io::Result<()> {
    let (r, mut w) = TcpStream::connect(relay).await?.into_split();
    let mut r = BufReader::new(r);
    if read_reply(&mut r).await?.0 != 220 {
        return Ok(());
    }
    w.write_all(b"EHLO load.test\r\n").await?;
    if read_reply(&mut r).await?.0 != 250 {
        return Ok(());
    }
    while !stop.load(Ordering::Relaxed) {
        for cmd in ["MAIL FROM:<a@dev.gov.vn>", "RCPT TO:<b@hanoi.gov.vn>"] {
            w.write_all(format!("{cmd}\r\n").as_bytes()).await?;
            if read_reply(&mut r).await?.0 != 250 {
                return Ok(());
            }
        }
        w.write_all(b"DATA\r\n").await?;
        if read_reply(&mut r).await?.0 != 354 {
            return Ok(());
        }
        *seq += 1;
        let body = format!(
            "From: a@dev.gov.vn\r\nTo: b@hanoi.gov.vn\r\nSubject: fault load {client}-{seq}\r\n\r\nVan ban {client}-{seq}.\r\n.\r\n"
        );
        w.write_all(body.as_bytes()).await?;
        let (code, text) = read_reply(&mut r).await?;
        let id = (code == 250)
            .then(|| text.split_whitespace().last().map(str::to_string))
            .flatten();
        log.lock().unwrap().push(Sent {
            at: Instant::now(),
            code,
            text,
            id,
        });
    }
    let _ = w.write_all(b"QUIT\r\n").await;
    Ok(())
}

/// Queue ids of the messages delivered to an outbox directory, with how often each came.
fn delivered_ids(dir: &Path) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for f in eml_files(dir) {
        let name = f.file_stem().unwrap().to_string_lossy().to_string();
        let id = name.rsplit_once('-').map(|(id, _)| id).unwrap_or(&name);
        *out.entry(id.to_string()).or_insert(0) += 1;
    }
    out
}

async fn wait_port(port: u16) {
    // A minute: a loaded two-core CI machine can be slow to start a daemon.
    for _ in 0..1200 {
        if TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("port {port} never opened");
}

fn daemon_log(env: &Env) -> String {
    let log = std::fs::read_to_string(env.path().join("daemon.log")).unwrap_or_default();
    // The end is what matters when a test fails.
    let start = log.len().saturating_sub(12_000);
    let start = (start..log.len())
        .find(|i| log.is_char_boundary(*i))
        .unwrap_or(0);
    log[start..].to_string()
}

/// Runs the load through a fault: `fault` starts it, `clear` ends it `hold` later. Then checks that
/// acceptance came back within 30 s, that every 250 was delivered exactly once and nothing
/// else was, and that the queue is empty.
async fn run_through_fault<F, C>(env: &Env, ports: [u16; 4], fault: F, hold: Duration, clear: C)
where
    F: AsyncFnOnce(),
    C: AsyncFnOnce(),
{
    let daemon = Daemon::spawn(env, &[]);
    wait_port(ports[2]).await;
    let relay: SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();
    let load = Load::start(relay, 4);

    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = load.replies();
    assert!(
        before.iter().any(|s| s.code == 250),
        "messages accepted before the fault: {before:?}\n{}",
        daemon_log(env)
    );

    let fault_at = Instant::now();
    fault().await;
    tokio::time::sleep(hold).await;
    clear().await;
    let cleared_at = Instant::now();

    // Acceptance resumes by itself: a 250 within 30 s, then only 250s.
    let resumed = loop {
        let replies = load.replies();
        if let Some(s) = replies.iter().find(|s| s.at > cleared_at && s.code == 250) {
            break Some(s.at - cleared_at);
        }
        if cleared_at.elapsed() > Duration::from_secs(30) {
            break None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Some(resumed) = resumed else {
        let replies = load.stop().await;
        panic!(
            "no 250 within 30 s of the fault clearing; last replies {:?}\n{}",
            &replies[replies.len().saturating_sub(8)..],
            daemon_log(env)
        );
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let replies = load.stop().await;

    let during: Vec<&Sent> = replies
        .iter()
        .filter(|s| s.at > fault_at && s.at <= cleared_at)
        .collect();
    let refused: Vec<&Sent> = replies.iter().filter(|s| s.code != 250).collect();
    assert!(
        !refused.is_empty(),
        "the fault was felt: some message refused; replies during it {during:?}\n{}",
        daemon_log(env)
    );
    for s in &refused {
        assert!(
            (s.code == 451 && s.text.contains("4.3.0"))
                || (s.code == 452 && s.text.contains("4.3.1")),
            "a storage fault gives 451 4.3.0 or 452 4.3.1: {s:?}"
        );
        assert!(s.text.contains(" / "), "English and Vietnamese: {s:?}");
    }
    let tail: Vec<&Sent> = replies
        .iter()
        .filter(|s| s.at > cleared_at + resumed + Duration::from_secs(1))
        .collect();
    assert!(
        !tail.is_empty() && tail.iter().all(|s| s.code == 250),
        "after recovery every message is accepted: {tail:?}\n{}",
        daemon_log(env)
    );

    // Every 250 is delivered exactly once; nothing that was refused is delivered.
    let accepted: Vec<String> = replies.iter().filter_map(|s| s.id.clone()).collect();
    let mut delivered = BTreeMap::new();
    for _ in 0..300 {
        delivered = delivered_ids(&env.outbox());
        if accepted.iter().all(|id| delivered.contains_key(id)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let missing: Vec<&String> = accepted
        .iter()
        .filter(|id| !delivered.contains_key(*id))
        .collect();
    let unexpected: Vec<&String> = delivered
        .keys()
        .filter(|id| !accepted.contains(id))
        .collect();
    let twice: Vec<(&String, &usize)> = delivered.iter().filter(|(_, n)| **n > 1).collect();
    let mut codes = BTreeMap::new();
    for s in &refused {
        *codes.entry(s.code).or_insert(0) += 1;
    }
    eprintln!(
        "{} accepted, {} refused {codes:?} ({} replies during the fault), acceptance resumed {:?} after the fault cleared; {} delivered",
        accepted.len(),
        refused.len(),
        during.len(),
        resumed,
        delivered.len()
    );
    assert!(
        missing.is_empty() && unexpected.is_empty() && twice.is_empty(),
        "got 250 but not delivered: {missing:?}; delivered without 250: {unexpected:?}; delivered twice: {twice:?}\n{}",
        daemon_log(env)
    );

    // Nothing is left in the queue (no message stuck `delivering`).
    let mut left = serde_json::Value::Null;
    for _ in 0..100 {
        let out = env.cli(&["queue", "list", "--json"]);
        left = serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
        if left.as_array().is_some_and(|a| a.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        left,
        serde_json::json!([]),
        "queue empty\n{}",
        daemon_log(env)
    );
    let status = daemon.stop();
    assert!(status.success(), "graceful stop: {status:?}");
}

fn env_ports() -> [u16; 4] {
    [free_port(), free_port(), free_port(), free_port()]
}

async fn sqlite_env(ports: [u16; 4]) -> Env {
    Env::new(Setup {
        ports: Some(ports),
        database: TestDb::Sqlite,
        ..Setup::default()
    })
    .await
}

/// A mount point unmounted when dropped (also when the test fails).
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Moves the gateway's data directory (database and spool) to `to`, rewriting the config.
fn move_data_dir(env: &mut Env, to: &Path) {
    let from = env.path().to_path_buf();
    for name in ["congvan.db", "congvan.db-wal", "congvan.db-shm"] {
        if from.join(name).exists() {
            std::fs::rename(from.join(name), to.join(name))
                .or_else(|_| std::fs::copy(from.join(name), to.join(name)).map(|_| ()))
                .unwrap();
            let _ = std::fs::remove_file(from.join(name));
        }
    }
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    let text = text
        .replace(
            &format!("data_dir = \"{}\"", from.display()),
            &format!("data_dir = \"{}\"", to.display()),
        )
        .replace(
            &format!("sqlite://{}/congvan.db", from.display()),
            &format!("sqlite://{}/congvan.db", to.display()),
        );
    std::fs::write(&env.config_path, text).unwrap();
    env.config = congvan::config::Config::load(&env.config_path).unwrap();
}

/// (a) The data directory (SQLite database and spool) on a 32 MB tmpfs, filled to a few free
/// kilobytes while clients send, then freed again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_full_on_a_small_tmpfs() {
    let ports = env_ports();
    let mut env = sqlite_env(ports).await;
    let fs = env.path().join("fs");
    std::fs::create_dir_all(&fs).unwrap();
    if let Err(e) = run(Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs"])
        .arg(&fs))
    {
        eprintln!("SKIPPED: cannot mount a tmpfs here ({e})");
        return;
    }
    let _mount = Mount(fs.clone());
    move_data_dir(&mut env, &fs);
    let filler = fs.join("filler");
    let filler2 = filler.clone();
    run_through_fault(
        &env,
        ports,
        async move || {
            // Fill to the last byte, then give back 8 KB: a spool file fits, a commit does not.
            use std::io::Write;
            let mut f = std::fs::File::create(&filler).unwrap();
            let chunk = vec![0u8; 64 * 1024];
            let mut len = 0u64;
            while let Ok(n @ 1..) = f.write(&chunk) {
                len += n as u64;
            }
            f.set_len(len.saturating_sub(8192)).unwrap();
            f.sync_all().unwrap();
        },
        Duration::from_secs(6),
        async move || {
            std::fs::remove_file(&filler2).unwrap();
        },
    )
    .await;
}

/// `chattr +i` on files, undone when dropped (else the temp dir could not be removed).
struct Immutable(Vec<PathBuf>);

impl Immutable {
    fn set(files: Vec<PathBuf>) -> Result<Immutable, String> {
        run(Command::new("chattr").arg("+i").args(&files))?;
        Ok(Immutable(files))
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").args(&self.0).status();
    }
}

/// Whether `chattr +i` on this filesystem makes writes through an already open descriptor
/// fail (ext4 does; tmpfs does not), as the daemon's database files are open all along.
fn immutable_stops_open_writers(dir: &Path) -> Result<(), String> {
    use std::io::Write;
    let probe = dir.join("immutable-probe");
    let mut f = std::fs::File::create(&probe).map_err(|e| e.to_string())?;
    let guard = Immutable::set(vec![probe.clone()])?;
    let wrote = f.write_all(b"x").and_then(|_| f.sync_all());
    drop(guard);
    let _ = std::fs::remove_file(&probe);
    match wrote {
        Err(_) => Ok(()),
        Ok(()) => Err("writes through an open descriptor still succeed after chattr +i".into()),
    }
}

/// (b) The database files made immutable (`chattr +i`: root ignores file modes, not this)
/// while clients send, then writable again. On a filesystem where that does not stop open
/// descriptors, the data directory moves to a loop-mounted ext4 image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_database_files() {
    let ports = env_ports();
    let mut env = sqlite_env(ports).await;
    let mut _mount = None;
    if let Err(here) = immutable_stops_open_writers(env.path()) {
        let fs = env.path().join("fs");
        let image = env.path().join("fs.ext4");
        std::fs::create_dir_all(&fs).unwrap();
        let mounted = run(Command::new("truncate").args(["-s", "64M"]).arg(&image))
            .and_then(|_| run(Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image)))
            .and_then(|_| {
                run(Command::new("mount")
                    .args(["-o", "loop"])
                    .arg(&image)
                    .arg(&fs))
            });
        if let Err(e) = mounted {
            eprintln!("SKIPPED: {here} and no loop-mounted ext4 ({e})");
            return;
        }
        _mount = Some(Mount(fs.clone()));
        move_data_dir(&mut env, &fs);
        if let Err(e) = immutable_stops_open_writers(&fs) {
            eprintln!("SKIPPED: {e}");
            return;
        }
    }
    let data = env.config.data_dir.clone();
    let guard: Arc<Mutex<Option<Immutable>>> = Arc::default();
    let (set, clear) = (guard.clone(), guard.clone());
    run_through_fault(
        &env,
        ports,
        async move || {
            let files: Vec<PathBuf> = ["congvan.db", "congvan.db-wal"]
                .iter()
                .map(|n| data.join(n))
                .filter(|p| p.exists())
                .collect();
            *set.lock().unwrap() = Some(Immutable::set(files).expect("chattr +i"));
        },
        Duration::from_secs(6),
        async move || {
            clear.lock().unwrap().take();
        },
    )
    .await;
}

/// (c) Another process holds an exclusive lock on the database (Python's sqlite3, `BEGIN
/// EXCLUSIVE`) for 20 s, longer than the 15 s busy timeout, while clients send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exclusive_lock_held_by_another_process() {
    let ports = env_ports();
    let env = sqlite_env(ports).await;
    let db = env.path().join("congvan.db");
    let locker: Arc<Mutex<Option<std::process::Child>>> = Arc::default();
    let (start, stop) = (locker.clone(), locker.clone());
    run_through_fault(
        &env,
        ports,
        async move || {
            use std::io::BufRead;
            let script = "import sqlite3,sys\n\
                c=sqlite3.connect(sys.argv[1],timeout=60,isolation_level=None)\n\
                c.execute('BEGIN EXCLUSIVE')\n\
                print('locked',flush=True)\n\
                sys.stdin.readline()\n\
                c.execute('ROLLBACK')\n";
            let mut child = Command::new("python3")
                .arg("-c")
                .arg(script)
                .arg(&db)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .expect("python3");
            let mut line = String::new();
            std::io::BufReader::new(child.stdout.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), "locked");
            *start.lock().unwrap() = Some(child);
        },
        // Longer than a commit can wait: the pool's acquire timeout and SQLite's busy
        // timeout (15 s each) can both pass before the first 451, as on a loaded machine.
        Duration::from_secs(35),
        async move || {
            use std::io::Write;
            let mut child = stop.lock().unwrap().take().unwrap();
            child.stdin.take().unwrap().write_all(b"\n").unwrap();
            assert!(child.wait().unwrap().success());
        },
    )
    .await;
}

/// A throw-away PostgreSQL cluster on a free loopback port, stopped when dropped.
struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl PgCluster {
    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn start() -> Result<PgCluster, String> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .map_err(|e| format!("no PostgreSQL binaries in /usr/lib/postgresql ({e})"))?
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .ok_or("no initdb under /usr/lib/postgresql/*/bin")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .map_err(|e| e.to_string())?;
        let cluster = PgCluster {
            bin,
            dir,
            port: free_port(),
        };
        std::fs::create_dir(cluster.data()).map_err(|e| e.to_string())?;
        run(Command::new("chown").arg("postgres:").arg(cluster.data()))?;
        cluster.pg(&[
            "initdb",
            "-D",
            &cluster.data().display().to_string(),
            "-A",
            "trust",
            "-U",
            "postgres",
        ])?;
        cluster.ctl("start")?;
        Ok(cluster)
    }

    fn pg(&self, args: &[&str]) -> Result<(), String> {
        run(Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(args[0]))
            .args(&args[1..]))
    }

    fn ctl(&self, what: &str) -> Result<(), String> {
        let data = self.data().display().to_string();
        let log = self.data().join("pg.log").display().to_string();
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port, data
        );
        match what {
            "start" => self.pg(&[
                "pg_ctl", "-D", &data, "-l", &log, "-o", &opts, "-w", "start",
            ]),
            _ => self.pg(&["pg_ctl", "-D", &data, "-m", "fast", "-w", "stop"]),
        }
    }

    fn admin_url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.data().display().to_string();
        let _ = self.pg(&["pg_ctl", "-D", &data, "-m", "immediate", "-w", "stop"]);
    }
}

/// (d) The PostgreSQL server stopped under load (fast shutdown: sessions and transactions
/// in progress are cut) and started again 18 s later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_under_load() {
    let pg = match PgCluster::start() {
        Ok(pg) => Arc::new(pg),
        Err(e) => {
            eprintln!("SKIPPED: cannot run a throw-away PostgreSQL: {e}");
            return;
        }
    };
    let ports = env_ports();
    let env = Env::new(Setup {
        ports: Some(ports),
        database: TestDb::Postgres(pg.admin_url()),
        ..Setup::default()
    })
    .await;
    let (down, up) = (pg.clone(), pg.clone());
    run_through_fault(
        &env,
        ports,
        async move || down.ctl("stop").expect("pg_ctl stop"),
        // Longer than the pool's 15 s acquire timeout, so that sessions waiting for the
        // database are answered 451 rather than served when it is back.
        Duration::from_secs(18),
        async move || up.ctl("start").expect("pg_ctl start"),
    )
    .await;
}

/// A message marked `delivering` that no delivery of the running daemon holds (a claim whose
/// answer a database fault swallowed) is put back and delivered, without a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_left_delivering_is_taken_up_again() {
    use congvan::store::entity::message;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    let ports = env_ports();
    let upstream_port = free_port();
    let env = Env::new(Setup {
        ports: Some(ports),
        upstream: Some(format!("smtp://127.0.0.1:{upstream_port}")),
        ..Setup::default()
    })
    .await;
    let daemon = Daemon::spawn(&env, &[]);
    wait_port(ports[2]).await;
    let relay: SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();
    let mut c = Client::connect(relay).await;
    c.reply().await;
    c.expect("EHLO x", 250).await;
    c.expect("MAIL FROM:<a@dev.gov.vn>", 250).await;
    c.expect("RCPT TO:<b@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(b"From: a@dev.gov.vn\r\nSubject: stray\r\n\r\nx\r\n.\r\n")
        .await;
    let (code, text) = c.reply().await;
    assert_eq!(code, 250, "{text}");
    let id = text.split_whitespace().last().unwrap().to_string();

    // The upstream is down, so the message is deferred; mark it as if a claim had been lost
    // (the UPDATE committed, its answer never came back) and its lease had run out since.
    let db = env.db().await;
    let mut marked = false;
    for _ in 0..200 {
        let res = message::Entity::update_many()
            .col_expr(message::Column::State, Expr::value("delivering"))
            .col_expr(message::Column::ClaimedBy, Expr::value("lost-claim"))
            .col_expr(
                message::Column::LeaseUntil,
                Expr::value(congvan::util::now_ms() - 1_000),
            )
            .col_expr(
                message::Column::UpdatedAt,
                Expr::value(congvan::util::now_ms() - 120_000),
            )
            .filter(message::Column::Id.eq(&id))
            .filter(message::Column::State.eq("deferred"))
            .exec(&db)
            .await
            .unwrap();
        if res.rows_affected == 1 {
            marked = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(marked, "message deferred, then marked delivering");
    let sink = congvan::testkit::sink::Sink::start(
        format!("127.0.0.1:{upstream_port}").parse().unwrap(),
        congvan::testkit::sink::SinkConfig {
            keep_data: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let n = sink.wait_for(1, Duration::from_secs(45)).await;
    assert_eq!(n, 1, "delivered after being put back\n{}", daemon_log(&env));
    let data = String::from_utf8_lossy(&sink.messages()[0].data).to_string();
    assert!(data.contains(&id), "the stray message itself");
    assert!(
        daemon_log(&env).contains("delivery interrupted (its daemon stopped); retried now"),
        "{}",
        daemon_log(&env)
    );
    db.close().await.ok();
    daemon.stop();
}
