//! Load benchmark: the real `congvan serve` (release build) with an SMTP sink as upstream,
//! N concurrent connections on the relay listener sending M messages of S bytes.
//! Prints accepted messages per second, p50/p99 from end of DATA to 250, and p50/p99 from
//! 250 to the upstream's acceptance.
//!
//!     cargo build --release && cargo run --release --example load -- [--connections 32]
//!         [--messages 5000] [--size 100000] [--database-url postgres://...] [--archive-days N]
//!         [--pdf SIGNED.pdf --trust ROOT.pem [--pdf-policy seal|check|off]]
//!
//! With `--pdf`, each message carries that (signed) PDF instead of `--size` bytes of text, and
//! the profile checks the signer's signature at end of DATA and seals the PDF at delivery.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use congvan::testkit::sink::{Sink, SinkConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Args {
    connections: usize,
    messages: usize,
    size: usize,
    database_url: Option<String>,
    binary: String,
    /// `[register] archive_days`; None = the product's default.
    archive_days: Option<u32>,
    /// A signed PDF sent as each message's attachment, with `[pdf] require_signer_signature`
    /// and `seal_pdf` on (the check at end of DATA, the organisation's signature at delivery).
    pdf: Option<String>,
    /// The trust anchor of the PDF's signer (`cert trust add`).
    trust: Option<String>,
    /// With `--pdf`: `seal` (check and seal, the default), `check` (check only) or `off`.
    pdf_policy: String,
}

fn args() -> Args {
    let mut a = Args {
        connections: 32,
        messages: 5000,
        size: 100_000,
        database_url: None,
        binary: "target/release/congvan".into(),
        archive_days: None,
        pdf: None,
        trust: None,
        pdf_policy: "seal".into(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--connections" => a.connections = val.parse().expect("--connections N"),
            "--messages" => a.messages = val.parse().expect("--messages N"),
            "--size" => a.size = val.parse().expect("--size BYTES"),
            "--database-url" => a.database_url = Some(val),
            "--binary" => a.binary = val,
            "--archive-days" => a.archive_days = Some(val.parse().expect("--archive-days N")),
            "--pdf" => a.pdf = Some(val),
            "--trust" => a.trust = Some(val),
            "--pdf-policy" => a.pdf_policy = val,
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
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

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

async fn reply(s: &mut TcpStream, buf: &mut Vec<u8>) -> String {
    loop {
        if let Some(p) = buf.windows(2).position(|w| w == b"\r\n") {
            let line: Vec<u8> = buf.drain(..p + 2).collect();
            let l = String::from_utf8_lossy(&line).to_string();
            if l.as_bytes().get(3) == Some(&b' ') {
                return l;
            }
            continue;
        }
        let mut b = [0u8; 4096];
        let n = s.read(&mut b).await.expect("read");
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&b[..n]);
    }
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
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let relay_port = free_port();
    let db = a
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/congvan.db", d.display()));
    let cfg = format!(
        "hostname = \"bench.gov.vn\"\ndata_dir = \"{d}\"\ndatabase_url = \"{db}\"\npolicy_dir = \"{d}/policies\"\n\
         [[listener]]\nrole = \"relay\"\nbind = \"127.0.0.1:{relay_port}\"\ntrusted_networks = [\"127.0.0.0/8\"]\n\
         [outbound]\nupstream = \"smtp://127.0.0.1:{}\"\ntls = \"none\"\n[inbound]\ndeliver_to = \"outbox:{d}/inbox\"\n\
         [limits]\nmax_connections = 5000\n[queue]\nconcurrency = 32\n{register}",
        sink.addr.port(),
        d = d.display(),
        register = a
            .archive_days
            .map(|n| format!("[register]\narchive_days = {n}\n"))
            .unwrap_or_default()
    );
    std::fs::write(d.join("congvan.toml"), cfg).unwrap();
    // The shipped policies, and a seal for the sender's domain (outgoing mail is signed).
    copy_dir(std::path::Path::new("policies"), &d.join("policies"));
    congvan::dev::make_pki(d).unwrap();
    let st = Command::new(&a.binary)
        .args([
            "--config",
            d.join("congvan.toml").to_str().unwrap(),
            "cert",
            "import",
            "--cert",
        ])
        .arg(d.join("pki/dev.gov.vn.chain.pem"))
        .arg("--key")
        .arg(d.join("pki/dev.gov.vn.key.pem"))
        .args(["--domain", "dev.gov.vn"])
        .stdout(Stdio::null())
        .status()
        .expect("congvan cert import");
    assert!(st.success(), "cert import failed");
    if let Some(root) = &a.trust {
        let st = Command::new(&a.binary)
            .args(["--config", d.join("congvan.toml").to_str().unwrap()])
            .args(["cert", "trust", "add", root])
            .stdout(Stdio::null())
            .status()
            .expect("congvan cert trust add");
        assert!(st.success(), "cert trust add failed");
    }
    if a.pdf.is_some() {
        let profile = d.join("policies/default.toml");
        let mut text = std::fs::read_to_string(&profile).unwrap();
        if a.pdf_policy != "off" {
            text = text.replace(
                "require_signer_signature = false",
                "require_signer_signature = true",
            );
        }
        if a.pdf_policy == "seal" {
            text = text.replace("seal_pdf = false", "seal_pdf = true");
        }
        std::fs::write(&profile, text).unwrap();
    }
    let mut daemon = Command::new(&a.binary)
        .args([
            "--config",
            d.join("congvan.toml").to_str().unwrap(),
            "serve",
        ])
        .env("CONGVAN_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("run the congvan binary (cargo build --release first)");
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", relay_port)).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut body = match &a.pdf {
        None => {
            let mut body =
                b"From: bench@dev.gov.vn\r\nTo: sink@hanoi.gov.vn\r\nSubject: bench\r\n\r\n"
                    .to_vec();
            while body.len() < a.size {
                body.extend_from_slice(&[b'Q'; 76]);
                body.extend_from_slice(b"\r\n");
            }
            body
        }
        Some(file) => {
            use base64::Engine;
            let pdf = std::fs::read(file).expect("--pdf file");
            let mut body = b"From: bench@dev.gov.vn\r\nTo: sink@hanoi.gov.vn\r\nSubject: bench\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nKinh gui.\r\n--b\r\nContent-Type: application/pdf; name=\"van-ban.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n".to_vec();
            let b64 = base64::engine::general_purpose::STANDARD.encode(&pdf);
            for line in b64.as_bytes().chunks(76) {
                body.extend_from_slice(line);
                body.extend_from_slice(b"\r\n");
            }
            body.extend_from_slice(b"--b--\r\n");
            body
        }
    };
    body.extend_from_slice(b".\r\n");
    let body = Arc::new(body);
    let accepted_at: Arc<Mutex<HashMap<String, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let data_lat: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let per_conn = a.messages / a.connections;
    let total = per_conn * a.connections;
    println!(
        "congvan load: {} connections x {} messages of {} bytes = {} messages, database {}",
        a.connections,
        per_conn,
        a.size,
        total,
        if a.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..a.connections {
        let (body, accepted_at, data_lat) = (body.clone(), accepted_at.clone(), data_lat.clone());
        tasks.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(("127.0.0.1", relay_port)).await.unwrap();
            s.set_nodelay(true).unwrap();
            let mut buf = Vec::new();
            reply(&mut s, &mut buf).await;
            s.write_all(b"EHLO bench\r\n").await.unwrap();
            reply(&mut s, &mut buf).await;
            for _ in 0..per_conn {
                s.write_all(
                    b"MAIL FROM:<bench@dev.gov.vn>\r\nRCPT TO:<sink@hanoi.gov.vn>\r\nDATA\r\n",
                )
                .await
                .unwrap();
                for _ in 0..3 {
                    let r = reply(&mut s, &mut buf).await;
                    assert!(r.starts_with('2') || r.starts_with('3'), "{r}");
                }
                s.write_all(&body).await.unwrap();
                let t0 = Instant::now();
                let r = reply(&mut s, &mut buf).await;
                let t1 = Instant::now();
                assert!(r.starts_with("250"), "{r}");
                let id = r.split_whitespace().last().unwrap().to_string();
                data_lat
                    .lock()
                    .unwrap()
                    .push((t1 - t0).as_secs_f64() * 1000.0);
                accepted_at.lock().unwrap().insert(id, t1);
            }
            let _ = s.write_all(b"QUIT\r\n").await;
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let accept_secs = start.elapsed().as_secs_f64();
    let got = sink.wait_for(total, Duration::from_secs(600)).await;
    let all_secs = start.elapsed().as_secs_f64();
    let accepted = accepted_at.lock().unwrap().clone();
    let mut relay_lat = Vec::new();
    for m in sink.messages() {
        let text = String::from_utf8_lossy(&m.data[..m.data.len().min(600)]).to_string();
        if let Some(pos) = text.find(" id ") {
            let id: String = text[pos + 4..].chars().take(32).collect();
            if let Some(t) = accepted.get(&id) {
                relay_lat.push(m.at.saturating_duration_since(*t).as_secs_f64() * 1000.0);
            }
        }
    }
    let mut dl = data_lat.lock().unwrap().clone();
    println!(
        "accepted: {total} in {accept_secs:.2} s = {:.0} messages/s (durable 250s)",
        total as f64 / accept_secs
    );
    println!(
        "delivered to the sink: {got} in {all_secs:.2} s = {:.0} messages/s end to end",
        got as f64 / all_secs
    );
    println!(
        "DATA end -> 250:   p50 {:.1} ms  p99 {:.1} ms",
        pct(&mut dl, 0.5),
        pct(&mut dl, 0.99)
    );
    println!(
        "250 -> upstream:   p50 {:.1} ms  p99 {:.1} ms",
        pct(&mut relay_lat, 0.5),
        pct(&mut relay_lat, 0.99)
    );
    // utime and stime (fields 14 and 15 of /proc/PID/stat, after the parenthesised name), in
    // clock ticks of 10 ms: the daemon's whole CPU, start-up included, over what it delivered.
    if let Ok(stat) = std::fs::read_to_string(format!("/proc/{}/stat", daemon.id())) {
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        if let (Some(user), Some(system)) = (ticks(11), ticks(12)) {
            let cpu_ms = (user + system) * 10.0;
            println!(
                "daemon CPU: {:.1} s = {:.2} ms per delivered message ({:.0} % in the kernel)",
                cpu_ms / 1000.0,
                cpu_ms / got.max(1) as f64,
                100.0 * system / (user + system).max(1.0)
            );
        }
    }
    if let Ok(status) = std::fs::read_to_string(format!("/proc/{}/status", daemon.id())) {
        if let Some(l) = status.lines().find(|l| l.starts_with("VmHWM")) {
            println!("daemon peak RSS: {}", l.trim_start_matches("VmHWM:").trim());
        }
    }
    // SAFETY: stopping our own child.
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    let _ = daemon.wait();
}
