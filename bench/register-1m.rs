//! Register benchmark: fills N register rows (default 1,000,000) spread over 2026 with a
//! realistic mix, then times the release binary's `report` in each format and `register list`
//! with its usual filters.
//!
//!     cargo build --release && cargo run --release --example register-1m -- [--rows N]
//!         [--database-url postgres://...] [--dir DIR] [--reuse] [--runs 3]
//!
//! `--fill-only` stops after filling (bench/report-screenshot.sh uses it); `--reuse` keeps an already filled database in DIR (default /tmp/congvan-register-1m).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use congvan::register::book::register_date;
use congvan::store::entity::register_entry as entry;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sea_orm::{
    ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    TransactionTrait,
};

struct Args {
    rows: u64,
    database_url: Option<String>,
    dir: PathBuf,
    reuse: bool,
    fill_only: bool,
    runs: usize,
    binary: String,
}

fn args() -> Args {
    let mut a = Args {
        rows: 1_000_000,
        database_url: None,
        dir: PathBuf::from("/tmp/congvan-register-1m"),
        reuse: false,
        fill_only: false,
        runs: 3,
        binary: "target/release/congvan".into(),
    };
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < v.len() {
        let val = v.get(i + 1).cloned().unwrap_or_default();
        match v[i].as_str() {
            "--rows" => a.rows = val.parse().expect("--rows N"),
            "--database-url" => a.database_url = Some(val),
            "--dir" => a.dir = PathBuf::from(val),
            "--runs" => a.runs = val.parse().expect("--runs N"),
            "--binary" => a.binary = val,
            "--reuse" => {
                a.reuse = true;
                i += 1;
                continue;
            }
            "--fill-only" => {
                a.fill_only = true;
                i += 1;
                continue;
            }
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    a
}

fn pick<T: Copy>(rng: &mut StdRng, choices: &[(u32, T)]) -> T {
    let total: u32 = choices.iter().map(|c| c.0).sum();
    let mut x = rng.random_range(0..total);
    for (w, v) in choices {
        if x < *w {
            return *v;
        }
        x -= w;
    }
    choices[0].1
}

/// A delay between `lo` and `hi` ms, log-uniform (most documents leave within minutes).
fn delay(rng: &mut StdRng, lo: f64, hi: f64) -> i64 {
    (lo.ln() + rng.random::<f64>() * (hi.ln() - lo.ln())).exp() as i64
}

/// Unix ms of 2026-01-01T00:00:00+07:00.
const YEAR_START: i64 = 1_767_200_400_000;
const DAY: i64 = 86_400_000;

fn make_row(i: u64, rng: &mut StdRng) -> entry::ActiveModel {
    // Working days mostly, working hours mostly (+07).
    let mut day = rng.random_range(0..365i64);
    if (day + 3) % 7 >= 5 && rng.random_bool(0.8) {
        day = (day + 2) % 365; // 1 January 2026 is a Thursday: days 2 and 3 are the weekend
    }
    let at = YEAR_START + day * DAY + rng.random_range(7 * 3_600_000..18 * 3_600_000i64);
    let incoming = rng.random_bool(0.15);
    let urgency = pick(rng, &[(70, 0), (15, 1), (7, 2), (6, 3), (2, 4)]);
    let (state, rule): (&str, String) = if incoming {
        if rng.random_bool(0.04) {
            ("refused", "incoming.fail".into())
        } else {
            ("delivered", "incoming.pass".into())
        }
    } else {
        let st = pick(
            rng,
            &[
                (900, "delivered"),
                (10, "partial"),
                (15, "failed"),
                (5, "pending"),
                (5, "held"),
                (5, "deleted"),
                (60, "refused"),
            ],
        );
        let rule = if st == "refused" {
            pick(
                rng,
                &[
                    (50, "secrecy.mat"),
                    (5, "secrecy.toi-mat"),
                    (20, "number.duplicate"),
                    (15, "domain.recipient"),
                    (10, "attachment.missing"),
                ],
            )
            .to_string()
        } else {
            format!(
                "dispatch.{}",
                congvan::policy::Urgency::from_rank(urgency).ascii()
            )
        };
        (st, rule)
    };
    let dispatched = state == "delivered" || state == "partial";
    let (timeliness, delay_ms) = if !dispatched {
        (None, None)
    } else if incoming {
        (None, Some(delay(rng, 200.0, 60_000.0)))
    } else {
        let t = pick(rng, &[(55, "early"), (38, "on-time"), (7, "late")]);
        let d = match t {
            "late" => delay(rng, DAY as f64, 6.0 * DAY as f64),
            _ => delay(rng, 2_000.0, 8.0 * 3_600_000.0),
        };
        (Some(t.to_string()), Some(d))
    };
    let deadline = (!incoming && state != "refused").then(|| at + 3 * DAY);
    let number = (!incoming && state != "refused").then(|| format!("{}/CV-UBND", i + 1));
    entry::ActiveModel {
        id: Set(format!("bench{i:08}")),
        direction: Set(if incoming {
            congvan::model::Direction::In
        } else {
            congvan::model::Direction::Out
        }),
        state: Set(state.parse().expect("a register entry state")),
        timeliness: Set(timeliness),
        rule: Set(Some(rule)),
        reason: Set((state == "refused").then(|| "refused by policy".to_string())),
        number_key: Set(number.as_deref().map(congvan::policy::number::key)),
        number: Set(number),
        subject: Set(format!(
            "Về việc triển khai kế hoạch công tác văn thư, lưu trữ năm 2026 (số {i})"
        )),
        listener: Set("relay".into()),
        client_ip: Set("10.0.0.5".into()),
        account: Set(Some("vanthu".into())),
        sender: Set("vanthu@hadong.hanoi.gov.vn".into()),
        header_from: Set("vanthu@hadong.hanoi.gov.vn".into()),
        recipients: Set("[\"vanthu@hanoi.gov.vn\",\"ubnd@bavi.hanoi.gov.vn\"]".into()),
        urgency: Set(urgency),
        secrecy: Set(if rule_is_secret(state) { 1 } else { 0 }),
        signed_date: Set(Some(register_date(at))),
        accepted_at: Set(at),
        accepted_date: Set(register_date(at)),
        deadline_at: Set(deadline),
        seal_serial: Set(dispatched.then(|| "4f2a9c".to_string())),
        seal_digest: Set(dispatched.then(|| "ab".repeat(32))),
        signed_at: Set(dispatched.then_some(at + 1_000)),
        sent_at: Set(delay_ms.map(|d| at + d)),
        delay_ms: Set(delay_ms),
        smime_result: Set(incoming.then(|| "pass".to_string())),
        smime_signer: Set(None),
        smime_reason: Set(None),
        archive_path: Set(None),
        archive_until: Set(None),
        updated_at: Set(at),
    }
}

fn rule_is_secret(state: &str) -> bool {
    state == "refused"
}

async fn fill(db: &sea_orm::DatabaseConnection, rows: u64) {
    let mut rng = StdRng::seed_from_u64(2026);
    let start = Instant::now();
    let per_statement = 500u64;
    let per_transaction = 50_000u64;
    let mut i = 0u64;
    while i < rows {
        let txn = db.begin().await.expect("begin");
        let end = (i + per_transaction).min(rows);
        while i < end {
            let stop = (i + per_statement).min(end);
            let batch: Vec<entry::ActiveModel> = (i..stop).map(|n| make_row(n, &mut rng)).collect();
            entry::Entity::insert_many(batch)
                .exec(&txn)
                .await
                .expect("insert");
            i = stop;
        }
        txn.commit().await.expect("commit");
        eprint!(
            "\r  {i} rows ({:.0} rows/s)",
            i as f64 / start.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    println!(
        "filled {rows} rows in {:.1} s ({:.0} rows/s)",
        start.elapsed().as_secs_f64(),
        rows as f64 / start.elapsed().as_secs_f64()
    );
}

/// Runs the binary `runs` times; returns (best, median) wall time.
fn time_cli(a: &Args, config: &std::path::Path, args: &[&str]) -> Option<(Duration, Duration)> {
    let mut times = Vec::new();
    for _ in 0..a.runs {
        let t = Instant::now();
        let out = Command::new(&a.binary)
            .arg("--config")
            .arg(config)
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::piped())
            .stdout(Stdio::piped())
            .output()
            .expect("run congvan");
        let el = t.elapsed();
        if !out.status.success() {
            eprintln!(
                "  congvan {args:?}: {:?} {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
            return None;
        }
        times.push(el);
    }
    times.sort();
    Some((times[0], times[times.len() / 2]))
}

fn show(label: &str, t: Option<(Duration, Duration)>) {
    match t {
        Some((best, median)) => println!(
            "{label:<58} best {:>7.3} s   median {:>7.3} s",
            best.as_secs_f64(),
            median.as_secs_f64()
        ),
        None => println!("{label:<58} failed"),
    }
}

#[tokio::main]
async fn main() {
    let a = args();
    std::fs::create_dir_all(&a.dir).unwrap();
    let db_url = a
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}/congvan.db", a.dir.display()));
    let config = a.dir.join("congvan.toml");
    std::fs::create_dir_all(a.dir.join("policies")).unwrap();
    std::fs::write(
        &config,
        format!(
            "hostname = \"gw.bench.gov.vn\"\ndata_dir = \"{d}\"\ndatabase_url = \"{db_url}\"\npolicy_dir = \"{d}/policies\"\n[outbound]\nupstream = \"outbox:{d}/outbox\"\n[inbound]\nlocal_domains = [\"hadong.hanoi.gov.vn\"]\ndeliver_to = \"outbox:{d}/inbox\"\n",
            d = a.dir.display()
        ),
    )
    .unwrap();
    let db = congvan::store::open(&db_url).await.expect("open database");
    let have = entry::Entity::find().count(&db).await.expect("count");
    if !(a.reuse && have >= a.rows) {
        if have > 0 {
            entry::Entity::delete_many().exec(&db).await.expect("clear");
        }
        fill(&db, a.rows).await;
        if db_url.starts_with("postgres") {
            use sea_orm::ConnectionTrait;
            // What autovacuum would do soon after a bulk load: statistics and the visibility
            // map (for index-only scans).
            db.execute_unprepared("VACUUM ANALYZE register_entry")
                .await
                .expect("vacuum");
        }
    } else {
        println!("reusing {have} rows in {db_url}");
    }
    // A document number that is in the register, for `--number`.
    let number: String = entry::Entity::find()
        .select_only()
        .column(entry::Column::Number)
        .filter(entry::Column::Direction.eq("out"))
        .filter(entry::Column::Number.is_not_null())
        .filter(entry::Column::Id.gte(format!("bench{:08}", a.rows / 2)))
        .order_by_asc(entry::Column::Id)
        .into_tuple::<Option<String>>()
        .one(&db)
        .await
        .expect("a number")
        .flatten()
        .unwrap_or_else(|| "1/CV-UBND".into());
    db.close().await.ok();
    if a.fill_only {
        println!("config: {}", config.display());
        return;
    }

    let year = ["--from", "2026-01-01", "--to", "2026-12-31"];
    let out = a.dir.join("report.out");
    let out = out.to_str().unwrap();
    for format in ["text", "csv", "json", "html"] {
        let mut args = vec!["report", "--format", format, "--output", out];
        args.extend(year);
        show(
            &format!("report --format {format} (2026, out)"),
            time_cli(&a, &config, &args),
        );
    }
    show(
        "report --format json --direction in (2026)",
        time_cli(
            &a,
            &config,
            &[
                "report",
                "--format",
                "json",
                "--direction",
                "in",
                "--from",
                "2026-01-01",
                "--to",
                "2026-12-31",
                "--output",
                out,
            ],
        ),
    );
    show(
        "report --format text --from 2026-06-01 --to 2026-06-30",
        time_cli(
            &a,
            &config,
            &[
                "report",
                "--from",
                "2026-06-01",
                "--to",
                "2026-06-30",
                "--output",
                out,
            ],
        ),
    );

    let has_list = Command::new(&a.binary)
        .args(["register", "list", "--help"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if has_list {
        for (label, args) in [
            (
                "register list --direction out",
                vec!["register", "list", "--direction", "out"],
            ),
            (
                "register list --direction out --from/--to (June)",
                vec![
                    "register",
                    "list",
                    "--direction",
                    "out",
                    "--from",
                    "2026-06-01",
                    "--to",
                    "2026-06-30",
                ],
            ),
            (
                "register list --direction out --number N",
                vec![
                    "register",
                    "list",
                    "--direction",
                    "out",
                    "--number",
                    &number,
                ],
            ),
            (
                "register list --direction in",
                vec!["register", "list", "--direction", "in"],
            ),
        ] {
            show(label, time_cli(&a, &config, &args));
        }
    } else {
        println!("(this binary has no `register list`: timing register::query in-process)");
        list_in_process(&db_url, a.runs, &number).await;
    }
}

/// The queries behind `register list` (register::query), timed in-process: the count and the
/// first 100 rows, newest first.
async fn list_in_process(db_url: &str, runs: usize, number: &str) {
    use congvan::queue::Direction;
    use congvan::register::query::{count, stream, Filter};
    use futures_util::StreamExt;
    let db = congvan::store::open(db_url).await.expect("open");
    let date = |s: &str| congvan::policy::classify::parse_iso_date(s);
    let filters = [
        ("query: out, newest 100", None, None, None),
        (
            "query: out, June, newest 100",
            date("2026-06-01"),
            date("2026-06-30"),
            None,
        ),
        (
            "query: out, --number N",
            None,
            None,
            Some(number.to_string()),
        ),
    ];
    for (label, from, to, number) in filters {
        let f = Filter {
            direction: Direction::Out,
            from,
            to,
            number,
            state: None,
        };
        let mut times = Vec::new();
        let mut found = (0, 0);
        for _ in 0..runs {
            let t = Instant::now();
            let n = count(&db, &f).await.expect("count");
            let mut s = stream(&db, &f, Some(100)).await.expect("stream");
            let mut rows = 0;
            while let Some(r) = s.next().await {
                r.expect("row");
                rows += 1;
            }
            drop(s);
            times.push(t.elapsed());
            found = (n, rows);
        }
        times.sort();
        show(
            &format!("{label} (count {}, rows {})", found.0, found.1),
            Some((times[0], times[times.len() / 2])),
        );
    }
}
