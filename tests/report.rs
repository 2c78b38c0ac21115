//! `congvan report` through the real binary, on register rows written with known outcomes:
//! exact counts and on-time shares in text, CSV and JSON, Vietnam day boundaries of the date
//! range, rules named in Vietnamese, the CSV's byte-order mark read by Python's csv module,
//! HTML escaping of a hostile rule name, chart tick labels read back from the SVG, the
//! incoming report's signature counts, and both HTML pages rendered and printed to PDF (A4)
//! by headless Chromium.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Env, Setup};
use congvan::model::pdf::SignatureSummary;
use congvan::register::book::register_date;
use congvan::register::report::html;
use congvan::store::entity::pdf_document;
use congvan::store::entity::register_entry as entry;
use sea_orm::{ActiveModelTrait, Set};
use serde_json::Value;

const HOSTILE: &str = "<script>alert(\"x\")</script>&, \"q\"";

use common::unix_ms as ms;

struct Row {
    id: &'static str,
    direction: &'static str,
    state: &'static str,
    timeliness: Option<&'static str>,
    rule: &'static str,
    urgency: i32,
    at: &'static str,
    delay: Option<i64>,
}

#[allow(clippy::too_many_arguments)]
const fn row(
    id: &'static str,
    direction: &'static str,
    state: &'static str,
    timeliness: Option<&'static str>,
    rule: &'static str,
    urgency: i32,
    at: &'static str,
    delay: Option<i64>,
) -> Row {
    Row {
        id,
        direction,
        state,
        timeliness,
        rule,
        urgency,
        at,
        delay,
    }
}

/// January and February 2026, with rows just outside the period and in the other register.
const ROWS: &[Row] = &[
    row(
        "a1",
        "out",
        "delivered",
        Some("early"),
        "dispatch.thuong",
        0,
        "2026-01-05T09:00:00+07:00",
        Some(60_000),
    ),
    row(
        "a2",
        "out",
        "delivered",
        Some("on-time"),
        "dispatch.thuong",
        0,
        "2026-01-06T09:00:00+07:00",
        Some(120_000),
    ),
    row(
        "a3",
        "out",
        "delivered",
        Some("late"),
        "dispatch.khan",
        1,
        "2026-01-10T09:00:00+07:00",
        Some(7_200_000),
    ),
    row(
        "a4",
        "out",
        "refused",
        None,
        "secrecy.mat",
        0,
        "2026-01-12T09:00:00+07:00",
        None,
    ),
    // 23:30 on 31 January in Hanoi (16:30 UTC): still January.
    row(
        "a5",
        "out",
        "pending",
        None,
        "dispatch.hoa-toc",
        3,
        "2026-01-31T23:30:00+07:00",
        None,
    ),
    // 17:30 UTC on 31 January is 00:30 on 1 February in Hanoi: February.
    row(
        "b0",
        "out",
        "delivered",
        Some("on-time"),
        "dispatch.hoa-toc",
        3,
        "2026-01-31T17:30:00Z",
        Some(30_000),
    ),
    row(
        "b1",
        "out",
        "delivered",
        Some("early"),
        "dispatch.thuong",
        0,
        "2026-02-10T09:00:00+07:00",
        Some(240_000),
    ),
    row(
        "b2",
        "out",
        "failed",
        None,
        "dispatch.thuong",
        0,
        "2026-02-11T09:00:00+07:00",
        None,
    ),
    row(
        "b3",
        "out",
        "held",
        None,
        "dispatch.khan",
        1,
        "2026-02-12T09:00:00+07:00",
        None,
    ),
    row(
        "b4",
        "out",
        "refused",
        None,
        "number.duplicate",
        0,
        "2026-02-13T09:00:00+07:00",
        None,
    ),
    row(
        "b5",
        "out",
        "refused",
        None,
        "secrecy.mat",
        1,
        "2026-02-14T09:00:00+07:00",
        None,
    ),
    row(
        "b6",
        "out",
        "partial",
        Some("late"),
        "dispatch.thuong-khan",
        2,
        "2026-02-15T09:00:00+07:00",
        Some(172_800_000),
    ),
    row(
        "b7",
        "out",
        "refused",
        None,
        HOSTILE,
        0,
        "2026-02-20T09:00:00+07:00",
        None,
    ),
    // Outside 2026-01-01..2026-02-28, or incoming.
    row(
        "c1",
        "in",
        "delivered",
        None,
        "incoming.pass",
        0,
        "2026-01-07T09:00:00+07:00",
        Some(1_000),
    ),
    row(
        "c2",
        "out",
        "delivered",
        Some("early"),
        "dispatch.thuong",
        0,
        "2025-12-31T23:59:00+07:00",
        Some(5_000),
    ),
    row(
        "c3",
        "out",
        "delivered",
        Some("on-time"),
        "dispatch.thuong",
        0,
        "2026-03-01T00:00:00+07:00",
        Some(5_000),
    ),
];

async fn env_with_rows() -> Env {
    let env = Env::new(Setup::default()).await;
    let db = env.db().await;
    for r in ROWS {
        insert_row(&db, r, None).await;
    }
    db.close().await.ok();
    env
}

async fn insert_row(db: &sea_orm::DatabaseConnection, r: &Row, smime: Option<&str>) {
    {
        let at = ms(r.at);
        entry::ActiveModel {
            id: Set(r.id.into()),
            direction: Set(r.direction.parse().expect("a direction")),
            state: Set(r.state.parse().expect("a register entry state")),
            timeliness: Set(r.timeliness.map(str::to_string)),
            rule: Set(Some(r.rule.into())),
            reason: Set(None),
            number: Set(None),
            number_key: Set(None),
            subject: Set("Báo cáo".into()),
            listener: Set("relay".into()),
            client_ip: Set("127.0.0.1".into()),
            account: Set(None),
            sender: Set("vanthu@dev.gov.vn".into()),
            header_from: Set("vanthu@dev.gov.vn".into()),
            recipients: Set("[\"a@hanoi.gov.vn\"]".into()),
            urgency: Set(r.urgency),
            secrecy: Set(0),
            signed_date: Set(None),
            accepted_at: Set(at),
            accepted_date: Set(register_date(at)),
            deadline_at: Set(r.timeliness.map(|_| at + 86_400_000)),
            seal_serial: Set(None),
            seal_digest: Set(None),
            signed_at: Set(None),
            sent_at: Set(r.delay.map(|d| at + d)),
            delay_ms: Set(r.delay),
            smime_result: Set(smime.map(str::to_string)),
            smime_signer: Set(None),
            smime_reason: Set(None),
            archive_path: Set(None),
            archive_until: Set(None),
            updated_at: Set(at),
        }
        .insert(db)
        .await
        .unwrap();
    }
}

fn run_ok(env: &Env, args: &[&str]) -> String {
    let out = env.cli(args);
    assert!(
        out.status.success(),
        "congvan {args:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn json_report(env: &Env, from: &str, to: &str) -> Value {
    let s = run_ok(
        env,
        &["report", "--from", from, "--to", to, "--format", "json"],
    );
    serde_json::from_str(&s).expect("JSON report")
}

fn counts(v: &Value, fields: &[(&str, u64)]) {
    for (k, want) in fields {
        assert_eq!(v[*k].as_u64(), Some(*want), "{k} in {v}");
    }
}

#[tokio::test]
async fn json_counts_match_the_register() {
    let env = env_with_rows().await;
    let r = json_report(&env, "2026-01-01", "2026-02-28");
    assert_eq!(r["direction"], "out");
    assert_eq!(r["from"], "2026-01-01");
    assert_eq!(r["to"], "2026-02-28");
    counts(
        &r["totals"],
        &[
            ("total", 13),
            ("dispatched", 6),
            ("early", 2),
            ("on_time", 2),
            ("late", 2),
            ("delivered", 5),
            ("partial", 1),
            ("pending", 1),
            ("held", 1),
            ("failed", 1),
            ("refused", 4),
            ("deleted", 0),
        ],
    );
    // Six delays: the mean of the 3rd and 4th (120 000 and 240 000 ms).
    assert_eq!(r["totals"]["median_delay_ms"], 180_000);

    let months = r["months"].as_array().unwrap();
    assert_eq!(months.len(), 2);
    assert_eq!(months[0]["month"], "2026-01");
    counts(
        &months[0],
        &[
            ("total", 5),
            ("dispatched", 3),
            ("early", 1),
            ("on_time", 1),
            ("late", 1),
            ("pending", 1),
            ("refused", 1),
        ],
    );
    assert_eq!(months[0]["median_delay_ms"], 120_000);
    assert_eq!(months[1]["month"], "2026-02");
    counts(
        &months[1],
        &[
            ("total", 8),
            ("dispatched", 3),
            ("early", 1),
            ("on_time", 1),
            ("late", 1),
            ("held", 1),
            ("failed", 1),
            ("refused", 3),
            ("partial", 1),
        ],
    );
    assert_eq!(months[1]["median_delay_ms"], 240_000);
    // January by urgency: Thường has early, on time and a refusal; Khẩn the late one;
    // Hỏa tốc the pending one (its February document is counted in February).
    let jan = months[0]["by_urgency"].as_array().unwrap();
    assert_eq!(jan.len(), 5);
    assert_eq!(jan[0]["urgency"], "thuong");
    assert_eq!(jan[0]["name"], "Thường");
    counts(
        &jan[0],
        &[
            ("total", 3),
            ("early", 1),
            ("on_time", 1),
            ("late", 0),
            ("refused", 1),
        ],
    );
    counts(&jan[1], &[("total", 1), ("late", 1)]);
    assert_eq!(jan[3]["urgency"], "hoa-toc");
    assert_eq!(jan[3]["name"], "Hỏa tốc");
    counts(&jan[3], &[("total", 1), ("pending", 1), ("dispatched", 0)]);
    let feb = months[1]["by_urgency"].as_array().unwrap();
    counts(&feb[3], &[("total", 1), ("on_time", 1)]);
    counts(&feb[2], &[("total", 1), ("late", 1), ("partial", 1)]);

    let urg = r["urgencies"].as_array().unwrap();
    let medians: Vec<Value> = urg.iter().map(|u| u["median_delay_ms"].clone()).collect();
    assert_eq!(
        medians,
        [
            Value::from(120_000),
            Value::from(7_200_000),
            Value::from(172_800_000),
            Value::from(30_000),
            Value::Null
        ]
    );
    counts(&urg[0], &[("total", 7), ("dispatched", 3), ("refused", 3)]);

    let refusals = r["refusals"].as_array().unwrap();
    assert_eq!(refusals[0]["rule"], "secrecy.mat");
    assert_eq!(refusals[0]["count"], 2);
    let mut rest: Vec<(String, u64)> = refusals[1..]
        .iter()
        .map(|x| {
            (
                x["rule"].as_str().unwrap().into(),
                x["count"].as_u64().unwrap(),
            )
        })
        .collect();
    rest.sort();
    assert_eq!(
        rest,
        [
            (HOSTILE.to_string(), 1),
            ("number.duplicate".to_string(), 1)
        ]
    );
}

#[tokio::test]
async fn date_range_follows_vietnam_days() {
    let env = env_with_rows().await;
    // 31 January in Hanoi: only a5 (23:30 +07); b0 (17:30 UTC) is already 1 February there.
    let r = json_report(&env, "2026-01-31", "2026-01-31");
    counts(&r["totals"], &[("total", 1), ("pending", 1)]);
    let r = json_report(&env, "2026-02-01", "2026-02-01");
    counts(&r["totals"], &[("total", 1), ("on_time", 1)]);
    assert_eq!(r["totals"]["median_delay_ms"], 30_000);
    // Both ends are included: 23:59 on 31 December and 00:00 on 1 March.
    let r = json_report(&env, "2025-12-31", "2026-03-01");
    counts(&r["totals"], &[("total", 15), ("early", 3), ("on_time", 3)]);
    assert_eq!(r["months"].as_array().unwrap().len(), 4);
    assert_eq!(r["months"][0]["month"], "2025-12");
    // The incoming register is its own report.
    let s = run_ok(
        &env,
        &[
            "report",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--direction",
            "in",
            "--json",
        ],
    );
    let r: Value = serde_json::from_str(&s).unwrap();
    assert_eq!(r["direction"], "in");
    counts(&r["totals"], &[("total", 1), ("delivered", 1)]);
    // An empty period is a report with zeros.
    let r = json_report(&env, "2024-01-01", "2024-12-31");
    counts(&r["totals"], &[("total", 0)]);
    assert!(r["totals"]["median_delay_ms"].is_null());
    assert_eq!(r["months"].as_array().unwrap().len(), 0);
    // Bad usage exits 2.
    let out = env.cli(&["report", "--from", "2026-03-01", "--to", "2026-02-01"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.cli(&["report", "--from", "1/2/2026"]);
    assert_eq!(out.status.code(), Some(2));
    // The default period (this year to today) runs.
    run_ok(&env, &["report"]);
}

/// A minimal RFC 4180 reader (quoted fields, doubled quotes, CRLF records).
fn parse_csv(s: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => quoted = false,
                c => field.push(c),
            }
        } else {
            match c {
                '"' => quoted = true,
                ',' => row.push(std::mem::take(&mut field)),
                '\r' => {
                    assert_eq!(chars.next(), Some('\n'), "CRLF line ends");
                    row.push(std::mem::take(&mut field));
                    rows.push(std::mem::take(&mut row));
                }
                c => field.push(c),
            }
        }
    }
    assert!(
        field.is_empty() && row.is_empty(),
        "last record ends with CRLF"
    );
    rows
}

#[tokio::test]
async fn csv_rows_per_month_and_urgency() {
    let env = env_with_rows().await;
    let s = run_ok(
        &env,
        &[
            "report",
            "--from",
            "2026-01-01",
            "--to",
            "2026-02-28",
            "--format",
            "csv",
        ],
    );
    let body = s
        .strip_prefix('\u{feff}')
        .expect("CSV begins with a UTF-8 BOM");
    let rows = parse_csv(body);
    let header = &rows[0];
    assert_eq!(header[0], "kind");
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    assert!(rows.iter().all(|r| r.len() == header.len()));
    let find = |kind: &str, month: &str, urgency: &str, rule: &str| -> &Vec<String> {
        rows.iter()
            .find(|r| {
                r[0] == kind
                    && r[col("month")] == month
                    && r[col("urgency")] == urgency
                    && r[col("rule")] == rule
            })
            .unwrap_or_else(|| panic!("no row {kind} {month} {urgency} {rule}"))
    };
    let kinds = |k: &str| rows.iter().filter(|r| r[0] == k).count();
    assert_eq!(kinds("month_urgency"), 10);
    assert_eq!(kinds("month"), 2);
    assert_eq!(kinds("urgency"), 5);
    assert_eq!(kinds("total"), 1);
    assert_eq!(kinds("refusal"), 3);
    let jan_thuong = find("month_urgency", "2026-01", "thuong", "");
    assert_eq!(jan_thuong[col("urgency_name")], "Thường");
    assert_eq!(jan_thuong[col("total")], "3");
    assert_eq!(jan_thuong[col("early")], "1");
    assert_eq!(jan_thuong[col("on_time")], "1");
    assert_eq!(jan_thuong[col("late")], "0");
    assert_eq!(jan_thuong[col("refused")], "1");
    let feb_hoa_toc = find("month_urgency", "2026-02", "hoa-toc", "");
    assert_eq!(feb_hoa_toc[col("urgency_name")], "Hỏa tốc");
    assert_eq!(feb_hoa_toc[col("on_time")], "1");
    let feb = find("month", "2026-02", "", "");
    assert_eq!(feb[col("total")], "8");
    assert_eq!(feb[col("median_delay_ms")], "240000");
    let total = find("total", "", "", "");
    assert_eq!(total[col("total")], "13");
    assert_eq!(total[col("late")], "2");
    assert_eq!(total[col("median_delay_ms")], "180000");
    assert_eq!(
        find("urgency", "", "khan", "")[col("median_delay_ms")],
        "7200000"
    );
    // The hostile rule survives the quoting intact.
    assert_eq!(find("refusal", "", "", HOSTILE)[col("refused")], "1");
    assert_eq!(find("refusal", "", "", "secrecy.mat")[col("refused")], "2");
}

#[tokio::test]
async fn text_names_levels_in_vietnamese_with_ascii() {
    let env = env_with_rows().await;
    let s = run_ok(
        &env,
        &["report", "--from", "2026-01-01", "--to", "2026-02-28"],
    );
    assert!(unicode_normalization::is_nfc(&s), "NFC output");
    for level in [
        "Thường (thuong)",
        "Khẩn (khan)",
        "Thượng khẩn (thuong-khan)",
        "Hỏa tốc (hoa-toc)",
        "Hỏa tốc hẹn giờ (hoa-toc-hen-gio)",
    ] {
        assert!(s.contains(level), "{level} in\n{s}");
    }
    let value = |label: &str| -> String {
        s.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("{label} in\n{s}"))
            .to_string()
    };
    assert_eq!(value("Tổng số văn bản (documents)"), "13");
    assert_eq!(value("Trước hạn (early)"), "2");
    assert_eq!(value("Đúng hạn (on-time)"), "2");
    assert_eq!(value("Quá hạn (late)"), "2");
    assert_eq!(value("Bị từ chối (refused)"), "4");
    assert!(s.contains("3 min 00 s (180000 ms)"), "{s}");
    assert!(s.contains("secrecy.mat"));
    // --output writes the same report to a file.
    let file = env.path().join("report.txt");
    let printed = run_ok(
        &env,
        &[
            "report",
            "--from",
            "2026-01-01",
            "--to",
            "2026-02-28",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    assert!(printed.is_empty());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), s);
}

fn html_report(env: &Env) -> std::path::PathBuf {
    let file = env.path().join("report.html");
    run_ok(
        env,
        &[
            "report",
            "--from",
            "2026-01-01",
            "--to",
            "2026-02-28",
            "--format",
            "html",
            "--output",
            file.to_str().unwrap(),
        ],
    );
    file
}

/// The incoming report for March 2026 as an HTML page, written to `name` in the test's
/// directory.
fn incoming_html_report(env: &Env, name: &str) -> std::path::PathBuf {
    let file = env.path().join(name);
    run_ok(
        env,
        &[
            "report",
            "--direction",
            "in",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
            "--format",
            "html",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    file
}

#[tokio::test]
async fn html_is_self_contained_and_escaped() {
    let env = env_with_rows().await;
    let page = std::fs::read_to_string(html_report(&env)).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"vi\">"));
    assert!(page.contains("<meta charset=\"utf-8\">"));
    assert!(unicode_normalization::is_nfc(&page));
    // The hostile rule is text, never markup, in the chart and in the table.
    assert!(!page.contains("<script"), "unescaped rule");
    assert!(!page.contains(HOSTILE));
    let escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;, &quot;q&quot;";
    assert!(
        page.matches(escaped).count() >= 2,
        "escaped rule in chart and table"
    );
    // Nothing to fetch: no scripts, links, images, fonts or external URLs.
    for bad in [
        "<link", "<img", "src=", "href=", "@import", "url(", "https:",
    ] {
        assert!(!page.contains(bad), "{bad} in the page");
    }
    let without_ns = page.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
    assert!(!without_ns.contains("http:"));
    // Charts with titles, a legend, and a data table under each.
    for id in [
        "chart-months",
        "chart-refusals",
        "chart-median",
        "chart-urgency",
    ] {
        assert!(
            page.contains(&format!("aria-labelledby=\"{id}-t {id}-d\"")),
            "{id}"
        );
    }
    // One chart compares the urgency levels (no longer one small chart per level).
    assert_eq!(
        page.matches("id=\"chart-urgency").count(),
        2,
        "title and desc of one chart"
    );
    // The office, the period and when the page was made, in Vietnam time.
    assert!(page.contains("<strong>gw.test.gov.vn</strong>"), "office");
    assert!(page.contains("Kỳ báo cáo (period) 2026-01-01 – 2026-02-28"));
    assert!(page.contains("+07:00"), "time made");
    assert!(page.contains("@page{size:A4"));
    assert!(page.contains("break-inside:avoid"));
    assert!(page.matches("<figure>").count() <= page.matches("<table").count());
    assert!(page.contains("Hỏa tốc (hoa-toc)"));
    for colour in [
        html::EARLY,
        html::ON_TIME,
        html::LATE,
        html::REFUSED,
        html::MEDIAN,
    ] {
        assert!(page.contains(&format!("fill=\"{colour}\"")), "{colour}");
    }
}

fn rgb(hex: &str) -> [u8; 3] {
    let h = hex.trim_start_matches('#');
    let p = |i: usize| u8::from_str_radix(&h[i..i + 2], 16).unwrap();
    [p(0), p(2), p(4)]
}

/// Runs headless Chromium to screenshot `page` (1280 × `height`) into `png`.
fn screenshot(page: &Path, png: &Path, profile: &Path, height: u32) {
    common::chromium::render(
        page,
        &format!("--screenshot={}", png.display()),
        profile,
        (1280, height),
    );
}

/// Runs headless Chromium to print `page` to `pdf` (A4, as the page's `@page` asks).
fn print_to_pdf(page: &Path, pdf: &Path, profile: &Path) {
    common::chromium::render(
        page,
        &format!("--print-to-pdf={}", pdf.display()),
        profile,
        (1280, 1000),
    );
}

/// The pages of a PDF and the size of the first one, in points.
fn pdf_pages(pdf: &Path) -> (usize, f32, f32) {
    let doc = lopdf::Document::load(pdf).expect("a PDF");
    let pages = doc.get_pages();
    let first = *pages.values().next().expect("a page");
    let page = doc.get_dictionary(first).unwrap();
    let mb = page.get(b"MediaBox").unwrap().as_array().unwrap();
    let n = |o: &lopdf::Object| o.as_float().unwrap_or_else(|_| o.as_i64().unwrap() as f32);
    (pages.len(), n(&mb[2]) - n(&mb[0]), n(&mb[3]) - n(&mb[1]))
}

/// Keeps a copy of an artefact in `CONGVAN_SCREENSHOT_DIR` when set, to be looked at.
fn keep(file: &Path, name: &str) {
    if let Some(dir) = std::env::var_os("CONGVAN_SCREENSHOT_DIR") {
        std::fs::create_dir_all(&dir).ok();
        std::fs::copy(file, Path::new(&dir).join(name)).unwrap();
    }
}

/// Screenshots `page` and checks that each colour fills more than `min` pixels.
fn assert_colours(page: &Path, png: &Path, colours: &[(&str, &str)], min: usize) {
    let profile = tempfile::tempdir().unwrap();
    screenshot(page, png, profile.path(), 4000);
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    assert_eq!(info.bit_depth, png::BitDepth::Eight);
    let pixels = &buf[..info.buffer_size()];
    let count = |c: [u8; 3]| {
        pixels
            .chunks_exact(channels)
            .filter(|p| p[..3] == c)
            .count()
    };
    for (name, colour) in colours {
        let n = count(rgb(colour));
        assert!(
            n > min,
            "{name} ({colour}): {n} pixels in {}",
            png.display()
        );
    }
}

#[tokio::test]
async fn html_charts_render_in_headless_chromium() {
    if !common::chromium::available() {
        return;
    }
    let env = env_with_incoming().await;
    let page = html_report(&env);
    let png = env.path().join("report.png");
    // Each series fills far more than its legend swatches (12×12 px each): the bars are
    // there. February's late bar alone is about 300 × 45 px at this size.
    assert_colours(
        &page,
        &png,
        &[
            ("early", html::EARLY),
            ("on time", html::ON_TIME),
            ("late", html::LATE),
            ("refusals", html::REFUSED),
            ("median delay", html::MEDIAN),
        ],
        5_000,
    );
    keep(&png, "report-out.png");

    let incoming = incoming_html_report(&env, "report-in.html");
    let png_in = env.path().join("report-in.png");
    assert_colours(
        &incoming,
        &png_in,
        &[
            ("signature results", html::SIGNATURES),
            ("reception to delivery", html::MEDIAN),
        ],
        5_000,
    );
    keep(&png_in, "report-in.png");

    // Printed on A4 (595 × 842 pt): the outgoing page on PAGES_OUT pages, the incoming one on
    // PAGES_IN; no chart or table is cut (break-inside: avoid), so a page holds whole blocks.
    let profile = tempfile::tempdir().unwrap();
    for (html_file, name, want) in [
        (&page, "report-out.pdf", PAGES_OUT),
        (&incoming, "report-in.pdf", PAGES_IN),
    ] {
        let pdf = env.path().join(name);
        print_to_pdf(html_file, &pdf, profile.path());
        keep(&pdf, name);
        let (pages, w, h) = pdf_pages(&pdf);
        assert!(
            (w - 595.0).abs() < 2.0 && (h - 842.0).abs() < 2.0,
            "{name}: {w} × {h} pt, not A4"
        );
        assert!(
            want.contains(&pages),
            "{name}: {pages} pages, expected {want:?}"
        );
    }
}

/// The outgoing page prints on 4 A4 pages here (lead and summary; months and the urgency
/// chart; the urgency table and refusals; the median delay), the incoming one on 2; one more
/// page is allowed for other fonts. A page that printed as one long sheet, or that cut
/// every chart across pages, would fall outside.
const PAGES_OUT: std::ops::RangeInclusive<usize> = 4..=5;
const PAGES_IN: std::ops::RangeInclusive<usize> = 2..=3;

/// The incoming rows: March 2026, with S/MIME results and PDF parts.
/// (id, state, smime_result, delay ms)
const INCOMING: &[(&str, &str, Option<&str>, Option<i64>)] = &[
    ("i1", "delivered", Some("pass"), Some(200)),
    ("i2", "delivered", Some("pass"), Some(400)),
    ("i3", "refused", Some("fail"), None),
    ("i4", "delivered", Some("none"), Some(600)),
    ("i5", "held", Some("temperror"), None),
    ("i6", "delivered", None, Some(900)),
];

fn sig(result: &str) -> SignatureSummary {
    SignatureSummary {
        field: "Signature1".into(),
        signer: "Nguyễn Văn A".into(),
        serial: "01".into(),
        time: None,
        result: result.into(),
        time_stamp: None,
    }
}

/// The outgoing rows, plus incoming ones with signature results and PDF parts: i1 a valid
/// PDF signature, i2 a PDF without one, i4 a PDF with an invalid one (and a valid one);
/// an outgoing document's PDF, which the incoming report must not count.
async fn env_with_incoming() -> Env {
    let env = env_with_rows().await;
    let db = env.db().await;
    for (i, &(id, state, smime, delay)) in INCOMING.iter().enumerate() {
        let at: &'static str = [
            "2026-03-02T08:00:00+07:00",
            "2026-03-03T08:00:00+07:00",
            "2026-03-04T08:00:00+07:00",
            "2026-03-05T08:00:00+07:00",
            "2026-03-06T08:00:00+07:00",
            "2026-03-07T08:00:00+07:00",
        ][i];
        let rule = if state == "refused" {
            "incoming.fail"
        } else {
            "incoming.pass"
        };
        let r = row(id, "in", state, None, rule, 0, at, delay);
        insert_row(&db, &r, smime).await;
    }
    let parts: [(&str, &str, Vec<SignatureSummary>); 4] = [
        ("i1", "in", vec![sig("pass")]),
        ("i2", "in", vec![]),
        (
            "i4",
            "in",
            vec![
                sig("pass"),
                sig("fail: the document was changed after signing"),
            ],
        ),
        ("a1", "out", vec![sig("fail: x")]),
    ];
    for (entry_id, direction, signatures) in parts {
        pdf_document::ActiveModel {
            entry_id: Set(entry_id.into()),
            direction: Set(direction.parse().unwrap()),
            position: Set(0),
            name: Set("cong-van.pdf".into()),
            sha256_before: Set("00".into()),
            sha256_after: Set(None),
            signatures: Set(serde_json::to_string(&signatures).unwrap()),
            note: Set(None),
            at: Set(0),
            ..Default::default()
        }
        .insert(&db)
        .await
        .unwrap();
    }
    db.close().await.ok();
    env
}

#[tokio::test]
async fn on_time_share_leads_every_format() {
    let env = env_with_rows().await;
    // Dispatched: a1 early, a2 on time, a3 late (January); b0 on time, b1 early, b6 late
    // (February): 4 of 6 on time or early.
    let r = json_report(&env, "2026-01-01", "2026-02-28");
    assert_eq!(r["on_time_share"], 0.6667);
    assert_eq!(r["totals"]["on_time_share"], 0.6667);
    assert_eq!(r["months"][0]["on_time_share"], 0.6667);
    assert_eq!(r["months"][1]["on_time_share"], 0.6667);
    let shares: Vec<Value> = r["urgencies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["on_time_share"].clone())
        .collect();
    // Thường: a1, a2, b1 (3/3); Khẩn: a3 late; Thượng khẩn: b6 late; Hỏa tốc: b0; hẹn giờ: none.
    assert_eq!(
        shares,
        [
            Value::from(1.0),
            Value::from(0.0),
            Value::from(0.0),
            Value::from(1.0),
            Value::Null
        ]
    );
    // January's Hỏa tốc document is pending: not dispatched, so no share.
    assert!(r["months"][0]["by_urgency"][3]["on_time_share"].is_null());
    // Only February 1 (b0, on time): 100 %.
    let r = json_report(&env, "2026-02-01", "2026-02-01");
    assert_eq!(r["on_time_share"], 1.0);

    // Text: the share is the first figure, on the line after the heading.
    let text = run_ok(
        &env,
        &["report", "--from", "2026-01-01", "--to", "2026-02-28"],
    );
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines[3], "Tỷ lệ gửi đúng hạn (on-time share): 66,7 % (4/6)",
        "{text}"
    );
    let line_of = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line_of("2026-01"), "2026-01 66,7 % 2/3");
    assert_eq!(line_of("Thường (thuong)"), "Thường (thuong) 100,0 % 3/3");
    assert_eq!(line_of("Khẩn (khan)"), "Khẩn (khan) 0,0 % 0/1");

    // CSV: the total row's on_time_share.
    let csv = run_ok(
        &env,
        &[
            "report",
            "--from",
            "2026-01-01",
            "--to",
            "2026-02-28",
            "--format",
            "csv",
        ],
    );
    let rows = parse_csv(csv.trim_start_matches('\u{feff}'));
    let col = |n: &str| rows[0].iter().position(|h| h == n).unwrap();
    let total = rows.iter().find(|r| r[0] == "total").unwrap();
    assert_eq!(total[col("on_time_share")], "0.6667");
    let khan = rows
        .iter()
        .find(|r| r[0] == "urgency" && r[col("urgency")] == "khan")
        .unwrap();
    assert_eq!(khan[col("on_time_share")], "0");

    // HTML: the first and biggest figure.
    let page = std::fs::read_to_string(html_report(&env)).unwrap();
    let big = page
        .find("<div class=\"big\">66,7 %</div>")
        .expect("the lead figure");
    assert!(big < page.find("<table").unwrap() && big < page.find("<svg").unwrap());
    assert_eq!(page.matches("class=\"big\"").count(), 1);
    assert!(page.contains(".lead .big{font-size:3.2em"));
}

#[tokio::test]
async fn rules_are_named_in_vietnamese_with_the_code() {
    let env = env_with_rows().await;
    let r = json_report(&env, "2026-01-01", "2026-02-28");
    let refusals = r["refusals"].as_array().unwrap();
    let name = |rule: &str| {
        refusals
            .iter()
            .find(|x| x["rule"] == rule)
            .map(|x| x["name"].clone())
            .unwrap()
    };
    assert_eq!(
        name("secrecy.mat"),
        "Văn bản mật không được gửi qua thư điện tử"
    );
    assert_eq!(
        name("number.duplicate"),
        "Số văn bản đã được cấp trong năm; gửi lại phải có X-Congvan-Resend: yes"
    );
    assert!(name(HOSTILE).is_null(), "an unknown code has no name");
    let text = run_ok(
        &env,
        &["report", "--from", "2026-01-01", "--to", "2026-02-28"],
    );
    let line = text
        .lines()
        .find(|l| l.contains("(secrecy.mat)"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        line.split_whitespace().collect::<Vec<_>>().join(" "),
        "Văn bản mật không được gửi qua thư điện tử (secrecy.mat) 2"
    );
    let page = std::fs::read_to_string(html_report(&env)).unwrap();
    assert!(page.contains("<tr><th scope=\"row\">Văn bản mật không được gửi qua thư điện tử (secrecy.mat)</th><td>2</td></tr>"));
}

#[tokio::test]
async fn csv_has_a_bom_that_python_reads() {
    let env = env_with_rows().await;
    let file = env.path().join("report.csv");
    run_ok(
        &env,
        &[
            "report",
            "--from",
            "2026-01-01",
            "--to",
            "2026-02-28",
            "--format",
            "csv",
            "-o",
            file.to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(&bytes[..3], b"\xef\xbb\xbf", "UTF-8 byte-order mark");
    // As a spreadsheet would: Python's csv module with encoding utf-8-sig.
    let script = r#"
import csv, json, sys
with open(sys.argv[1], newline="", encoding="utf-8-sig") as f:
    rows = list(csv.DictReader(f))
print(json.dumps({
    "first": list(rows[0].keys())[0],
    "names": sorted({r["urgency_name"] for r in rows if r["urgency_name"]}),
    "rules": sorted({r["rule_name"] for r in rows if r["rule_name"]}),
    "total_share": [r["on_time_share"] for r in rows if r["kind"] == "total"],
}, ensure_ascii=False))
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["first"], "kind",
        "the BOM is not part of the first column's name"
    );
    assert_eq!(
        v["names"],
        serde_json::json!([
            "Hỏa tốc",
            "Hỏa tốc hẹn giờ",
            "Khẩn",
            "Thường",
            "Thượng khẩn"
        ])
    );
    assert!(v["rules"]
        .as_array()
        .unwrap()
        .contains(&Value::from("Văn bản mật không được gửi qua thư điện tử")));
    assert_eq!(v["total_share"], serde_json::json!(["0.6667"]));
}

/// The numbers on a chart's value axis (its `text-anchor="end"` tick labels) and its
/// value-axis title.
fn y_ticks(page: &str, id: &str) -> (Vec<f64>, String) {
    let start = page
        .find(&format!("aria-labelledby=\"{id}-t {id}-d\""))
        .unwrap_or_else(|| panic!("{id}"));
    let svg = &page[start..start + page[start..].find("</svg>").unwrap()];
    let mut ticks = Vec::new();
    for part in svg.split("class=\"tick\" text-anchor=\"end\">").skip(1) {
        let label = &part[..part.find('<').unwrap()];
        ticks.push(
            label
                .parse::<f64>()
                .unwrap_or_else(|_| panic!("tick {label:?}")),
        );
    }
    let rotate = svg.find("rotate(-90)").unwrap();
    let title = &svg[rotate..];
    let title = &title[title.find('>').unwrap() + 1..title.find("</text>").unwrap()];
    (ticks, title.to_string())
}

fn assert_sensible(ticks: &[f64], max_value: f64) {
    assert!(ticks.len() >= 3, "{ticks:?}");
    assert_eq!(ticks[0], 0.0);
    assert!(
        ticks.windows(2).all(|w| w[1] > w[0]),
        "increasing, distinct: {ticks:?}"
    );
    let top = *ticks.last().unwrap();
    assert!(
        top >= max_value && top <= 2.5 * max_value,
        "top {top} for {max_value}"
    );
}

#[tokio::test]
async fn chart_ticks_read_in_the_right_unit() {
    let env = env_with_incoming().await;
    let page = std::fs::read_to_string(html_report(&env)).unwrap();
    // Medians 2 min (January) and 4 min (February): minutes.
    let (ticks, title) = y_ticks(&page, "chart-median");
    assert_eq!(title, "Trung vị, phút (median, min)");
    assert_sensible(&ticks, 4.0);
    let (ticks, _) = y_ticks(&page, "chart-months");
    assert_sensible(&ticks, 3.0);
    // Incoming: 200, 400, 600, 900 ms: milliseconds, not 0.0 seconds.
    let file = incoming_html_report(&env, "in.html");
    let page = std::fs::read_to_string(file).unwrap();
    let (ticks, title) = y_ticks(&page, "chart-median");
    assert_eq!(title, "Trung vị, mili giây (median, ms)");
    assert_sensible(&ticks, 500.0);
}

#[tokio::test]
async fn incoming_report_counts_signature_results() {
    let env = env_with_incoming().await;
    let s = run_ok(
        &env,
        &[
            "report",
            "--direction",
            "in",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
            "--json",
        ],
    );
    let r: Value = serde_json::from_str(&s).unwrap();
    let counts_of = |list: &Value| -> Vec<(String, u64)> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|x| {
                (
                    x["result"].as_str().unwrap().to_string(),
                    x["count"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    let want = |v: &[(&str, u64)]| -> Vec<(String, u64)> {
        v.iter().map(|(a, b)| (a.to_string(), *b)).collect()
    };
    // i6 has no result recorded: none.
    assert_eq!(
        counts_of(&r["signatures"]["smime"]),
        want(&[
            ("pass", 2),
            ("fail", 1),
            ("none", 2),
            ("neutral", 0),
            ("temperror", 1),
            ("permerror", 0)
        ])
    );
    // i1 valid, i2 unsigned, i4 one invalid signature; a1's PDF is outgoing.
    assert_eq!(
        counts_of(&r["signatures"]["pdf"]),
        want(&[("pass", 1), ("fail", 1), ("none", 1)])
    );
    // Reception to delivery: 200, 400, 600, 900 ms: median 500.
    assert_eq!(r["totals"]["median_delay_ms"], 500);
    assert_eq!(r["months"][0]["median_delay_ms"], 500);
    // The outgoing report has no signature counts.
    assert!(json_report(&env, "2026-03-01", "2026-03-31")
        .get("signatures")
        .is_none());

    let text = run_ok(
        &env,
        &[
            "report",
            "--direction",
            "in",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
        ],
    );
    assert!(
        text.starts_with("Báo cáo tình hình tiếp nhận văn bản đến / Incoming documents report\n")
    );
    assert!(!text.contains("on-time share"), "{text}");
    let file = incoming_html_report(&env, "in.html");
    let page = std::fs::read_to_string(file).unwrap();
    assert!(page.contains("<h1>Báo cáo tình hình tiếp nhận văn bản đến</h1>"));
    assert!(
        !page.contains("gửi văn bản đúng hạn"),
        "not the outgoing title"
    );
    for absent in ["chart-months", "chart-urgency", "on-time-share", "Quá hạn"] {
        assert!(!page.contains(absent), "{absent} in the incoming page");
    }
    assert!(page.contains("<tr><th scope=\"row\">không hợp lệ (fail)</th><td>1</td></tr>"));
    assert!(page.contains("<tr><th scope=\"row\">không có chữ ký (none)</th><td>2</td></tr>"));
    assert!(page.contains("<tr><th scope=\"row\">chữ ký không hợp lệ (fail)</th><td>1</td></tr>"));
    let csv = run_ok(
        &env,
        &[
            "report",
            "--direction",
            "in",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
            "--format",
            "csv",
        ],
    );
    assert!(
        csv.contains("\r\nsmime,,,,temperror,lỗi tạm thời khi kiểm tra,,1,"),
        "{csv}"
    );
    assert!(csv.contains("\r\npdf,,,,none,không có chữ ký,,1,"), "{csv}");
}
