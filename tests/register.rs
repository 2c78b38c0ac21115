//! The registers end to end (issue 6): a mixed run of documents over real SMTP (normal,
//! urgent, late, a partly failed one with its DSN, refused confidential and duplicate ones,
//! incoming signed and unsigned), then `congvan register list|show` must hold exactly the
//! expected rows, with the seal, the handover book and the archived copy.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::*;
use congvan::config::Role;
use congvan::pki::identity::SigningIdentity;
use congvan::testkit::sink::{Sink, SinkConfig};
use serde_json::Value;

/// One clerk submission; the final reply.
async fn submit(
    gw: &congvan::server::Running,
    env: &Env,
    rcpts: &[&str],
    headers: &str,
) -> (u16, String) {
    let mut c = Client::clerk(addr(gw, Role::Submission), env).await;
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    for r in rcpts {
        c.expect(&format!("RCPT TO:<{r}>"), 250).await;
    }
    c.expect("DATA", 354).await;
    c.send(
        format!(
            "From: {CLERK_ADDR}\r\nTo: {}\r\n{headers}\r\nNoi dung.\r\n.\r\n",
            rcpts[0]
        )
        .as_bytes(),
    )
    .await;
    let reply = c.reply().await;
    c.expect("QUIT", 221).await;
    reply
}

fn queued_id(text: &str) -> String {
    text.split_whitespace().last().unwrap().to_string()
}

/// One message to the inbound listener, dot-stuffed; the final reply.
async fn send_inbound(gw: &congvan::server::Running, from: &str, msg: &[u8]) -> (u16, String) {
    let mut c = Client::connect(addr(gw, Role::Inbound)).await;
    c.reply().await;
    c.expect("EHLO mx.hanoi.gov.vn", 250).await;
    c.expect(&format!("MAIL FROM:<{from}>"), 250).await;
    c.expect("RCPT TO:<vanphong@dev.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    let mut data = Vec::new();
    for line in msg.split_inclusive(|&b| b == b'\n') {
        if line.starts_with(b".") {
            data.push(b'.');
        }
        data.extend_from_slice(line);
    }
    data.extend_from_slice(b".\r\n");
    c.send(&data).await;
    let reply = c.reply().await;
    c.expect("QUIT", 221).await;
    reply
}

fn cli_json(env: &Env, args: &[&str]) -> Value {
    let out = env.cli(args);
    assert!(out.status.success(), "{args:?}: {out:?}");
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}: {out:?}"))
}

/// Waits until no register entry of `direction` is pending.
async fn settled(env: &Env, direction: &str, n: usize) -> Vec<Value> {
    for _ in 0..300 {
        let rows = cli_json(
            env,
            &["register", "list", "--direction", direction, "--json"],
        );
        let rows = rows.as_array().unwrap().clone();
        if rows.len() == n && rows.iter().all(|r| r["state"] != "pending") {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "register {direction} never settled: {}",
        cli_json(
            env,
            &["register", "list", "--direction", direction, "--json"]
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixed_run_leaves_exactly_the_expected_register_rows() {
    let sink = Sink::start(
        "127.0.0.1:0".parse().unwrap(),
        SinkConfig {
            reject: vec![(
                "nobody@hanoi.gov.vn".into(),
                "550 5.1.1 no such user".into(),
            )],
            keep_data: true,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{}", sink.addr.port())),
        ..Setup::default()
    })
    .await;
    // Another office's PKI, trusted for incoming mail.
    let pki_dir = tempfile::tempdir().unwrap();
    let pki = congvan::pki::testpki::generate(pki_dir.path(), "hanoi.gov.vn").unwrap();
    let root = pki.root.cert_pem.to_str().unwrap().to_string();
    assert!(env.cli(&["cert", "trust", "add", &root]).status.success());
    let gw = env.start().await;

    // Outgoing: normal (early), urgent (same day), late (signed long ago), partly failed.
    let (code, t) = submit(
        &gw,
        &env,
        &["a@hanoi.gov.vn"],
        "Subject: Ke hoach thang 12\r\nX-Congvan-Number: 01/KH-UBND\r\n",
    )
    .await;
    assert_eq!(code, 250, "{t}");
    let normal = queued_id(&t);
    let (code, t) = submit(
        &gw,
        &env,
        &["b@hanoi.gov.vn"],
        "Subject: Bao cao gap\r\nX-Congvan-Urgency: hoa-toc\r\nX-Congvan-Number: 02/BC-UBND\r\n",
    )
    .await;
    assert_eq!(code, 250, "{t}");
    let urgent = queued_id(&t);
    let (code, t) = submit(
        &gw,
        &env,
        &["c@hanoi.gov.vn"],
        "Subject: Thong bao cu\r\nX-Congvan-Number: 03/TB-UBND\r\nX-Congvan-Signed-Date: 2026-01-05\r\n",
    )
    .await;
    assert_eq!(code, 250, "{t}");
    let late = queued_id(&t);
    let (code, t) = submit(
        &gw,
        &env,
        &["ok@hanoi.gov.vn", "nobody@hanoi.gov.vn"],
        "Subject: Giay moi\r\nX-Congvan-Number: 04/GM-UBND\r\n",
    )
    .await;
    assert_eq!(code, 250, "{t}");
    let partial = queued_id(&t);
    // Refused: confidential, and a number already issued.
    let (code, t) = submit(
        &gw,
        &env,
        &["a@hanoi.gov.vn"],
        "Subject: [MAT] Ke hoach bi mat\r\nX-Congvan-Number: 05/KH-UBND\r\n",
    )
    .await;
    assert_eq!(code, 550, "{t}");
    let (code, t) = submit(
        &gw,
        &env,
        &["a@hanoi.gov.vn"],
        "Subject: Ke hoach (lan 2)\r\nX-Congvan-Number: 01/KH-UBND\r\n",
    )
    .await;
    assert_eq!(code, 550, "{t}");

    // Incoming: signed by the other office (with its number), and unsigned.
    let sender = SigningIdentity::from_pem(
        &std::fs::read(&pki.p256.chain_pem).unwrap(),
        &std::fs::read(&pki.p256.key_pem).unwrap(),
    )
    .unwrap();
    let from = pki.p256.email.clone();
    let plain = format!(
        "From: {from}\r\nTo: vanphong@dev.gov.vn\r\nSubject: Cong van 26/CT-UBND\r\nX-Congvan-Number: 26/CT-UBND\r\nX-Congvan-Urgency: khan\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\nKinh gui.\r\n"
    );
    let signed = congvan::smime::sign::sign_message(
        plain.as_bytes(),
        &sender,
        time::OffsetDateTime::now_utc(),
    )
    .unwrap()
    .bytes;
    let (code, t) = send_inbound(&gw, &from, &signed).await;
    assert_eq!(code, 250, "{t}");
    let incoming_signed = queued_id(&t);
    let (code, t) = send_inbound(
        &gw,
        "vanthu@haiphong.gov.vn",
        b"From: vanthu@haiphong.gov.vn\r\nTo: vanphong@dev.gov.vn\r\nSubject: Thu moi\r\n\r\nKhong ky so.\r\n",
    )
    .await;
    assert_eq!(code, 250, "{t}");
    let incoming_unsigned = queued_id(&t);

    // The outgoing register: four documents and two refusals, nothing else (the DSN the
    // gateway wrote is not a document).
    let out = settled(&env, "out", 6).await;
    let by_id: HashMap<String, Value> = out
        .iter()
        .map(|r| (r["id"].as_str().unwrap().to_string(), r.clone()))
        .collect();
    let row = |id: &str| by_id.get(id).unwrap_or_else(|| panic!("{id} in {out:?}"));

    assert_eq!(row(&normal)["state"], "delivered");
    assert_eq!(row(&normal)["timeliness"], "early");
    assert_eq!(row(&normal)["number"], "01/KH-UBND");
    assert_eq!(row(&normal)["rule"], "dispatch.thuong");
    assert_eq!(row(&normal)["account"], CLERK);
    assert_eq!(row(&normal)["subject"], "Ke hoach thang 12");

    assert_eq!(row(&urgent)["urgency"], "hoa-toc");
    assert_eq!(row(&urgent)["state"], "delivered");
    // Immediate rule: on time when it left on the day of acceptance (Asia/Ho_Chi_Minh).
    let same_day = row(&urgent)["register_date"].as_str().unwrap()
        == congvan::register::book::register_date(
            time::OffsetDateTime::parse(
                row(&urgent)["sent_at"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
            .unwrap(),
        );
    assert_eq!(
        row(&urgent)["timeliness"],
        if same_day { "on-time" } else { "late" }
    );

    assert_eq!(row(&late)["timeliness"], "late");
    assert_eq!(row(&late)["signed_date"], "2026-01-05");
    assert!(row(&late)["deadline"]
        .as_str()
        .unwrap()
        .starts_with("2026-01-08"));

    assert_eq!(row(&partial)["state"], "partial");

    let refused: Vec<&Value> = out.iter().filter(|r| r["state"] == "refused").collect();
    let mut rules: Vec<&str> = refused
        .iter()
        .map(|r| r["rule"].as_str().unwrap())
        .collect();
    rules.sort();
    assert_eq!(rules, vec!["number.duplicate", "secrecy.mat"]);
    for r in &refused {
        assert_eq!(r["subject"], "", "no content of a refused document: {r}");
        assert!(r["sent_at"].is_null());
    }

    // Every delivered document names its seal, and its archived copy is what the upstream got.
    let received = sink.messages();
    for id in [&normal, &urgent, &late, &partial] {
        let r = row(id);
        assert!(!r["seal_serial"].as_str().unwrap().is_empty(), "{r}");
        let digest = r["seal_digest"].as_str().unwrap();
        assert_eq!(digest.len(), 64, "{r}");
        let copy = archived_copy(&env, id, r["archive_path"].as_str().unwrap()).await;
        assert!(
            received.iter().any(|m| m.data == copy),
            "{id}: the archived copy is byte for byte what was sent"
        );
        assert!(r["delay_seconds"].as_i64().unwrap() >= 0);
    }

    // The handover book of the partly failed document: one delivered, one failed with its DSN.
    let shown = cli_json(&env, &["register", "show", &partial, "--json"]);
    let handover = shown["handover"].as_array().unwrap();
    assert_eq!(handover.len(), 2, "{shown}");
    let ok = handover
        .iter()
        .find(|h| h["address"] == "ok@hanoi.gov.vn")
        .unwrap();
    assert_eq!(ok["state"], "delivered");
    assert!(ok["reply"].as_str().unwrap().contains(": 250 "), "{ok}");
    let bad = handover
        .iter()
        .find(|h| h["address"] == "nobody@hanoi.gov.vn")
        .unwrap();
    assert_eq!(bad["state"], "failed");
    assert!(bad["reply"].as_str().unwrap().contains("5.1.1"), "{bad}");
    // The DSN is queued just after the attempt is recorded.
    let mut dsn = Value::Null;
    for _ in 0..100 {
        let shown = cli_json(&env, &["register", "show", &partial, "--json"]);
        dsn = shown["handover"]
            .as_array()
            .unwrap()
            .iter()
            .find(|h| h["address"] == "nobody@hanoi.gov.vn")
            .unwrap()["dsn"]
            .clone();
        if !dsn.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        dsn.as_str()
            .unwrap_or_default()
            .starts_with("DSN failed 5.1.1 ("),
        "{dsn}"
    );

    // The incoming register: the signed document with its signer and number, the unsigned one.
    let inc = settled(&env, "in", 2).await;
    let signed_row = inc
        .iter()
        .find(|r| r["id"] == incoming_signed.as_str())
        .unwrap();
    assert_eq!(signed_row["smime_result"], "pass", "{signed_row}");
    assert_eq!(signed_row["smime_signer"], from.as_str());
    assert_eq!(signed_row["number"], "26/CT-UBND");
    assert_eq!(signed_row["urgency"], "khan");
    assert_eq!(signed_row["state"], "delivered");
    assert!(signed_row["sent_at"].is_string(), "delivered at");
    let unsigned_row = inc
        .iter()
        .find(|r| r["id"] == incoming_unsigned.as_str())
        .unwrap();
    assert_eq!(unsigned_row["smime_result"], "none", "{unsigned_row}");
    assert_eq!(unsigned_row["state"], "delivered");

    // Filters: by number (any case), by state, by day.
    let by_number = cli_json(
        &env,
        &[
            "register",
            "list",
            "--direction",
            "out",
            "--number",
            "01/kh-ubnd",
            "--json",
        ],
    );
    let states: Vec<&str> = by_number
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states.len(),
        2,
        "the document and the refused duplicate: {by_number}"
    );
    assert!(states.contains(&"delivered") && states.contains(&"refused"));
    let refused_only = cli_json(
        &env,
        &[
            "register",
            "list",
            "--direction",
            "out",
            "--state",
            "refused",
            "--json",
        ],
    );
    assert_eq!(refused_only.as_array().unwrap().len(), 2);
    let today = row(&normal)["register_date"].as_str().unwrap().to_string();
    let day = cli_json(
        &env,
        &[
            "register",
            "list",
            "--direction",
            "out",
            "--from",
            &today,
            "--to",
            &today,
            "--json",
        ],
    );
    assert_eq!(day.as_array().unwrap().len(), 6);
    let before = cli_json(
        &env,
        &[
            "register",
            "list",
            "--direction",
            "out",
            "--to",
            "2026-01-01",
            "--json",
        ],
    );
    assert_eq!(before.as_array().unwrap().len(), 0);

    // The report's counts are the register's.
    let report = cli_json(
        &env,
        &[
            "report", "--from", &today, "--to", &today, "--format", "json",
        ],
    );
    let totals = &report["totals"];
    let count = |f: &dyn Fn(&Value) -> bool| out.iter().filter(|r| f(r)).count() as u64;
    assert_eq!(totals["total"], 6, "{report}");
    assert_eq!(totals["refused"], 2);
    assert_eq!(totals["delivered"], 3);
    assert_eq!(totals["partial"], 1);
    assert_eq!(totals["dispatched"], 4);
    for (key, t) in [("early", "early"), ("on_time", "on-time"), ("late", "late")] {
        assert_eq!(
            totals[key].as_u64().unwrap(),
            count(&|r| r["timeliness"] == t),
            "{key}: {report}"
        );
    }
    assert_eq!(
        totals["early"], 2,
        "the normal and the partly failed document"
    );
    assert!(totals["late"].as_u64().unwrap() >= 1, "{report}");
    let mut refusals: Vec<(String, u64)> = report["refusals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["rule"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .collect();
    refusals.sort();
    assert_eq!(
        refusals,
        vec![
            ("number.duplicate".to_string(), 1),
            ("secrecy.mat".to_string(), 1)
        ]
    );
    let incoming = cli_json(
        &env,
        &[
            "report",
            "--direction",
            "in",
            "--from",
            &today,
            "--to",
            &today,
            "--format",
            "json",
        ],
    );
    assert_eq!(incoming["totals"]["total"], 2, "{incoming}");
    assert_eq!(incoming["totals"]["delivered"], 2, "{incoming}");

    // A limit keeps the newest; the JSON stays an array and the count goes to stderr.
    let limited = env.cli(&[
        "register",
        "list",
        "--direction",
        "out",
        "--limit",
        "2",
        "--json",
    ]);
    assert!(limited.status.success());
    let rows: Value = serde_json::from_slice(&limited.stdout).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 2);
    assert_eq!(rows[0]["id"], out[0]["id"], "newest first");
    assert!(String::from_utf8_lossy(&limited.stderr).contains("2 of 6 entries"));

    // The human listing names the count, fits 120 columns, names levels in Vietnamese with
    // the ASCII form, the rule of a refused document and the signature of an incoming one;
    // the short id it shows is enough for `register show`. --wide shows whole ids.
    let text = env.cli(&["register", "list", "--direction", "out"]);
    assert!(text.status.success());
    let table = String::from_utf8_lossy(&text.stdout).to_string();
    assert!(table.contains("6 entries"), "{table}");
    for line in table.lines() {
        assert!(line.chars().count() <= 120, "wider than 120: {line:?}");
    }
    assert!(table.contains("Hỏa tốc (hoa-toc)"), "{table}");
    assert!(table.contains("refused secrecy.mat"), "{table}");
    let urgent_line = table
        .lines()
        .find(|l| l.contains("02/BC-UBND"))
        .expect("the urgent document's row");
    let short = urgent_line.split_whitespace().last().unwrap();
    assert_eq!(short.len(), 12, "{urgent_line}");
    assert!(urgent.starts_with(short));
    let by_short = cli_json(&env, &["register", "show", short, "--json"]);
    assert_eq!(by_short["id"], urgent.as_str(), "{by_short}");
    let wide = env.cli(&["register", "list", "--direction", "out", "--wide"]);
    assert!(String::from_utf8_lossy(&wide.stdout).contains(urgent.as_str()));
    let incoming_text = env.cli(&["register", "list", "--direction", "in"]);
    let incoming_table = String::from_utf8_lossy(&incoming_text.stdout).to_string();
    assert!(incoming_table.contains("smime=pass"), "{incoming_table}");
    assert!(incoming_table.contains("smime=none"), "{incoming_table}");
    let bad = env.cli(&[
        "register",
        "list",
        "--direction",
        "out",
        "--from",
        "22/11/2026",
    ]);
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");
    let missing = env.cli(&["register", "show", "no-such-entry"]);
    assert_eq!(missing.status.code(), Some(1), "{missing:?}");
    gw.stop().await;
}

/// `register show ID --json`, once `ready` holds for it.
async fn shown_when(env: &Env, id: &str, ready: impl Fn(&Value) -> bool) -> Value {
    for _ in 0..200 {
        let v = cli_json(env, &["register", "show", id, "--json"]);
        if ready(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "{id}: {}",
        cli_json(env, &["register", "show", id, "--json"])
    );
}

fn handover<'a>(v: &'a Value, address: &str) -> &'a Value {
    v["handover"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["address"] == address)
        .unwrap()
}

fn ms(rfc3339: &Value) -> i64 {
    let t = time::OffsetDateTime::parse(
        rfc3339.as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

/// Retries a queue command while the scheduler has the message in flight.
async fn queue_cmd(env: &Env, verb: &str, id: &str) {
    for _ in 0..100 {
        if env.cli(&["queue", verb, id]).status.success() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("queue {verb} {id} never succeeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_deletions_and_partial_deliveries_keep_the_dispatch_time_of_the_delivery() {
    let port = free_port();
    let sink = Sink::start(
        format!("127.0.0.1:{port}").parse().unwrap(),
        SinkConfig {
            reject: vec![("b@hanoi.gov.vn".into(), "451 4.2.0 mailbox busy".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{port}")),
        ..Setup::default()
    })
    .await;
    let gw = env.start().await;
    let rcpts = ["a@hanoi.gov.vn", "b@hanoi.gov.vn"];
    let (code, t) = submit(&gw, &env, &rcpts, "Subject: X\r\n").await;
    assert_eq!(code, 250, "{t}");
    let x = queued_id(&t);
    let (code, t) = submit(&gw, &env, &rcpts, "Subject: Y\r\n").await;
    assert_eq!(code, 250, "{t}");
    let y = queued_id(&t);
    let a_delivered = |v: &Value| handover(v, "a@hanoi.gov.vn")["state"] == "delivered";
    let first_x = shown_when(&env, &x, a_delivered).await;
    let first_y = shown_when(&env, &y, a_delivered).await;
    assert_eq!(first_x["state"], "pending", "b is still waiting: {first_x}");
    assert!(first_x["sent_at"].is_null());

    // Hold and release show in the register.
    queue_cmd(&env, "hold", &y).await;
    let held = cli_json(&env, &["register", "show", &y, "--json"]);
    assert_eq!(held["state"], "held", "{held}");
    assert_eq!(held["reason"], "held by administrator");
    queue_cmd(&env, "release", &y).await;
    assert_ne!(
        cli_json(&env, &["register", "show", &y, "--json"])["state"],
        "held"
    );
    // Deleted after a partial delivery: still dispatched to a, at a's delivery time.
    queue_cmd(&env, "delete", &y).await;
    let deleted = cli_json(&env, &["register", "show", &y, "--json"]);
    assert_eq!(deleted["state"], "partial", "{deleted}");
    let a_at = &handover(&first_y, "a@hanoi.gov.vn")["at"];
    assert_eq!(ms(&deleted["sent_at"]), ms(a_at), "{deleted}");
    assert_eq!(deleted["timeliness"], "early");
    let b = handover(&deleted, "b@hanoi.gov.vn");
    assert_eq!(b["state"], "failed");
    assert!(b["reply"].as_str().unwrap().contains("deleted"), "{b}");

    // A numbered document that never left and is deleted frees its number.
    let numbered = "Subject: Z\r\nX-Congvan-Number: 09/TB-UBND\r\n";
    let (code, t) = submit(&gw, &env, &["b@hanoi.gov.vn"], numbered).await;
    assert_eq!(code, 250, "{t}");
    let z = queued_id(&t);
    queue_cmd(&env, "delete", &z).await;
    let gone = cli_json(&env, &["register", "show", &z, "--json"]);
    assert_eq!(gone["state"], "deleted", "{gone}");
    let (code, t) = submit(&gw, &env, &["b@hanoi.gov.vn"], numbered).await;
    assert_eq!(code, 250, "the number is free again: {t}");

    // b now fails for good, a while after a was delivered: the dispatch time stays a's.
    sink.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let _sink = Sink::start(
        format!("127.0.0.1:{port}").parse().unwrap(),
        SinkConfig {
            reject: vec![("b@hanoi.gov.vn".into(), "550 5.1.1 no such user".into())],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let settled = shown_when(&env, &x, |v| v["state"] != "pending").await;
    assert_eq!(settled["state"], "partial", "{settled}");
    let a_at = ms(&handover(&first_x, "a@hanoi.gov.vn")["at"]);
    let b_at = ms(&handover(&settled, "b@hanoi.gov.vn")["at"]);
    assert!(b_at >= a_at + 1000, "b failed later: {settled}");
    assert_eq!(ms(&settled["sent_at"]), a_at, "{settled}");
    assert_eq!(
        settled["delay_seconds"].as_i64().unwrap(),
        (a_at - ms(&settled["accepted_at"])) / 1000
    );
    // The seal named is the one of the attempt that delivered to a.
    assert_eq!(settled["seal_digest"], first_x["seal_digest"], "{settled}");
    gw.stop().await;
}

/// A document's archived copy through `register show ID --copy`, checked against where the
/// register says it is: its file (SQLite), or its row of `archive_content` (PostgreSQL, where
/// every node must read it).
async fn archived_copy(env: &Env, id: &str, path: &str) -> Vec<u8> {
    let out = env.cli(&["register", "show", id, "--copy"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kept = if path == congvan::register::archive::IN_DATABASE {
        let db = env.db().await;
        congvan::register::archive::content_in_database(&db, id)
            .await
            .unwrap()
            .expect("the copy's row")
    } else {
        std::fs::read(path).unwrap()
    };
    assert_eq!(
        out.stdout, kept,
        "{id}: --copy writes the copy the register names"
    );
    out.stdout
}

/// `[classification] subject_number`: a clerk whose mail program cannot set headers writes
/// the number and signing date in the Subject (RFC 2047-encoded, as Outlook and Thunderbird
/// send it); the register and its export hold them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_in_the_subject_reaches_the_register() {
    use base64::Engine;
    let env = Env::new(Setup::default()).await;
    let profile = env.path().join("policies/default.toml");
    let text = std::fs::read_to_string(&profile).unwrap();
    let off = "\nsubject_number = false";
    assert!(text.contains(off), "the shipped profile has the key, off");
    std::fs::write(&profile, text.replacen(off, "\nsubject_number = true", 1)).unwrap();
    let gw = env.start().await;
    // Signed today, so that the dispatch deadline is still ahead.
    let today = congvan::policy::calendar::vietnam_date(time::OffsetDateTime::now_utc());
    let signed = format!(
        "{:02}/{:02}/{}",
        today.day(),
        today.month() as u8,
        today.year()
    );
    let subject = format!("Số 26/CT-UBND ngày {signed} về việc phòng, chống lụt bão");
    let encoded = format!(
        "=?UTF-8?B?{}?=",
        base64::engine::general_purpose::STANDARD.encode(&subject)
    );
    let (code, text) = submit(
        &gw,
        &env,
        &["vanphong@hanoi.gov.vn"],
        &format!("Subject: {encoded}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"),
    )
    .await;
    assert_eq!(code, 250, "{text}");
    let rows = settled(&env, "out", 1).await;
    assert_eq!(rows[0]["number"], "26/CT-UBND", "{}", rows[0]);
    assert_eq!(rows[0]["signed_date"], today.to_string());
    assert_eq!(rows[0]["subject"], subject.as_str());

    // The same number again, without saying it is a resend: refused as a duplicate.
    let (code, text) = submit(
        &gw,
        &env,
        &["vanphong@hanoi.gov.vn"],
        &format!("Subject: {encoded}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"),
    )
    .await;
    assert_eq!(code / 100, 5, "{text}");

    // The export of that month shows the number and the signing date in their columns.
    let day = rows[0]["register_date"].as_str().unwrap();
    let file = env.path().join("so-di.csv");
    let out = env.cli(&[
        "register",
        "export",
        "--direction",
        "out",
        "--format",
        "csv",
        "--from",
        &format!("{}01", &day[..8]),
        "-o",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let (ok, printed) = python(&format!(
        "import csv, json\nwith open({:?}, encoding='utf-8-sig', newline='') as f:\n    print(json.dumps(list(csv.reader(f))))",
        file.to_str().unwrap()
    ));
    assert!(ok, "{printed}");
    let book: Vec<Vec<String>> = serde_json::from_str(&printed).unwrap();
    assert_eq!(
        book.len(),
        2,
        "the refused duplicate is not in the book: {book:?}"
    );
    assert_eq!(
        book[1][..3],
        ["26/CT-UBND", signed.as_str(), subject.as_str()]
    );
    gw.stop().await;
}
