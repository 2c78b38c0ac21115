//! `congvan register export` through the real binary, on register rows written with known
//! contents in a real database: the CSV read back by Python's csv module (byte-order mark,
//! Vietnamese, columns, the derived incoming numbers), the HTML page escaped and
//! self-contained, and printed by headless Chromium to a PDF with one page per month.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{python, Env, Setup};
use congvan::register::book::register_date;
use congvan::store::entity::{pdf_document, register_entry as entry};
use sea_orm::{ActiveModelTrait, Set};

const HOSTILE: &str = "<script>alert(\"x\")</script> & <b>đậm</b>";

use common::unix_ms as ms;

struct Doc {
    id: &'static str,
    direction: &'static str,
    state: &'static str,
    at: &'static str,
    number: Option<&'static str>,
    signed: Option<&'static str>,
    subject: &'static str,
    from: &'static str,
    recipients: &'static [&'static str],
    urgency: i32,
    secrecy: i32,
    rule: Option<&'static str>,
    timeliness: Option<&'static str>,
    sent_after_ms: Option<i64>,
    smime: Option<&'static str>,
}

const fn doc(id: &'static str, direction: &'static str, at: &'static str) -> Doc {
    Doc {
        id,
        direction,
        state: "delivered",
        at,
        number: None,
        signed: None,
        subject: "Báo cáo",
        from: "vanthu@dev.gov.vn",
        recipients: &["vanphong@hanoi.gov.vn"],
        urgency: 0,
        secrecy: 0,
        rule: None,
        timeliness: None,
        sent_after_ms: Some(60_000),
        smime: None,
    }
}

/// Outgoing documents in January, February and March 2026 (one refused, one hostile subject),
/// one on the last evening of December; incoming documents around the new year.
fn docs() -> Vec<Doc> {
    vec![
        Doc {
            number: Some("01/QĐ-UBND"),
            signed: Some("2026-01-05"),
            subject: "Quyết định về việc ban hành quy chế làm việc, năm 2026",
            recipients: &["vanphong@hanoi.gov.vn", "sotuphap@hanoi.gov.vn"],
            timeliness: Some("on-time"),
            ..doc("o-jan-1", "out", "2026-01-05T09:00:00+07:00")
        },
        Doc {
            number: Some("02/CT-UBND"),
            signed: Some("2026-01-12"),
            subject: "Chỉ thị \"khẩn\" về phòng, chống lụt bão",
            urgency: 3,
            timeliness: Some("late"),
            ..doc("o-jan-2", "out", "2026-01-12T16:30:00+07:00")
        },
        Doc {
            state: "refused",
            subject: "",
            secrecy: 1,
            rule: Some("secrecy.mat"),
            sent_after_ms: None,
            ..doc("refused-o-jan-3", "out", "2026-01-20T10:00:00+07:00")
        },
        Doc {
            number: Some("05/TB-UBND"),
            signed: Some("2026-02-13"),
            subject: HOSTILE,
            urgency: 1,
            ..doc("o-feb-1", "out", "2026-02-13T08:00:00+07:00")
        },
        Doc {
            state: "failed",
            subject: "=SUM(A1:A9)",
            sent_after_ms: None,
            ..doc("o-mar-1", "out", "2026-03-02T08:00:00+07:00")
        },
        // 31 December 2025, 23:30 in Hà Nội: December, not January, though UTC says so too.
        doc("o-dec", "out", "2025-12-31T23:30:00+07:00"),
        // Incoming: the series restarts on 1 January; the refused one is not counted.
        Doc {
            from: "vanthu@hanoi.gov.vn",
            recipients: &["vanphong@dev.gov.vn"],
            smime: Some("pass"),
            ..doc("i-dec", "in", "2025-12-30T09:00:00+07:00")
        },
        Doc {
            from: "vanthu@hanoi.gov.vn",
            recipients: &["vanphong@dev.gov.vn"],
            number: Some("12/UBND-VP"),
            signed: Some("2026-01-02"),
            subject: "Giấy mời họp giao ban",
            smime: Some("pass"),
            ..doc("i-jan-1", "in", "2026-01-05T08:10:00+07:00")
        },
        Doc {
            state: "refused",
            from: "spam@example.com",
            recipients: &["vanphong@dev.gov.vn"],
            subject: "",
            rule: Some("incoming.smime"),
            ..doc("refused-i-jan", "in", "2026-01-06T08:10:00+07:00")
        },
        Doc {
            from: "vanthu@sotuphap.hanoi.gov.vn",
            recipients: &["vanphong@dev.gov.vn"],
            subject: "Công văn bị sửa trên đường",
            smime: Some("fail"),
            ..doc("i-jan-2", "in", "2026-01-20T14:00:00+07:00")
        },
        Doc {
            from: "vanthu@hanoi.gov.vn",
            recipients: &["vanphong@dev.gov.vn"],
            subject: "Kế hoạch tháng Hai",
            smime: Some("pass"),
            ..doc("i-feb-1", "in", "2026-02-03T09:00:00+07:00")
        },
    ]
}

async fn env_with_docs() -> Env {
    let env = Env::new(Setup::default()).await;
    let db = env.db().await;
    for d in docs() {
        let at = ms(d.at);
        entry::ActiveModel {
            id: Set(d.id.into()),
            direction: Set(d.direction.parse().expect("a direction")),
            state: Set(d.state.parse().expect("a register entry state")),
            timeliness: Set(d.timeliness.map(str::to_string)),
            rule: Set(d.rule.map(str::to_string)),
            reason: Set(None),
            number: Set(d.number.map(str::to_string)),
            number_key: Set(d.number.map(congvan::policy::number::key)),
            subject: Set(d.subject.into()),
            listener: Set("submission".into()),
            client_ip: Set("127.0.0.1".into()),
            account: Set(None),
            sender: Set(d.from.into()),
            header_from: Set(d.from.into()),
            recipients: Set(serde_json::to_string(d.recipients).unwrap()),
            urgency: Set(d.urgency),
            secrecy: Set(d.secrecy),
            signed_date: Set(d.signed.map(str::to_string)),
            accepted_at: Set(at),
            accepted_date: Set(register_date(at)),
            deadline_at: Set(d.timeliness.map(|_| at + 86_400_000)),
            seal_serial: Set(None),
            seal_digest: Set(None),
            signed_at: Set(None),
            sent_at: Set(d.sent_after_ms.map(|x| at + x)),
            delay_ms: Set(d.sent_after_ms),
            smime_result: Set(d.smime.map(str::to_string)),
            smime_signer: Set(d.smime.map(|_| d.from.to_string())),
            smime_reason: Set(d
                .smime
                .filter(|r| *r == "fail")
                .map(|_| "message digest mismatch".to_string())),
            archive_path: Set(None),
            archive_until: Set(None),
            updated_at: Set(at),
        }
        .insert(&db)
        .await
        .unwrap();
    }
    // The competent signer's PDF signature and the office's seal on January's decision.
    pdf_document::ActiveModel {
        entry_id: Set("o-jan-1".into()),
        direction: Set("out".parse().unwrap()),
        position: Set(0),
        name: Set("qd-01.pdf".into()),
        sha256_before: Set("00".repeat(32)),
        sha256_after: Set(Some("11".repeat(32))),
        signatures: Set(serde_json::json!([
            {"field": "Sig1", "signer": "Nguyễn Văn An", "serial": "01", "time": null, "result": "pass"},
            {"field": "Sig2", "signer": "UBND quận Hà Đông", "serial": "02", "time": null, "result": "pass (organisation)"}
        ]).to_string()),
        note: Set(None),
        at: Set(ms("2026-01-05T09:01:00+07:00")),
        ..Default::default()
    }
    .insert(&db)
    .await
    .unwrap();
    db.close().await.ok();
    env
}

fn export(env: &Env, args: &[&str], file: &Path) -> Vec<u8> {
    let mut all = vec!["register", "export"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["-o", file.to_str().unwrap()]);
    let out = env.cli(&all);
    assert!(
        out.status.success(),
        "congvan {all:?}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty(), "-o writes nothing to stdout");
    std::fs::read(file).unwrap()
}

/// The CSV as Python's csv module reads it with the `utf-8-sig` codec (as a spreadsheet
/// program would, dropping the byte-order mark): the rows, as JSON.
fn python_rows(file: &Path) -> Vec<Vec<String>> {
    let (ok, out) = python(&format!(
        "import csv, json\nwith open({:?}, encoding='utf-8-sig', newline='') as f:\n    print(json.dumps(list(csv.reader(f))))",
        file.to_str().unwrap()
    ));
    assert!(ok, "python: {out}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[tokio::test]
async fn outgoing_csv_reads_back_in_python_with_the_bom() {
    let env = env_with_docs().await;
    let file = env.path().join("so-di.csv");
    let raw = export(
        &env,
        &[
            "--direction",
            "out",
            "--from",
            "2026-01-01",
            "--to",
            "2026-03-31",
            "--format",
            "csv",
        ],
        &file,
    );
    assert!(raw.starts_with(b"\xEF\xBB\xBF"), "UTF-8 byte-order mark");
    let text = String::from_utf8(raw[3..].to_vec()).unwrap();
    // CRLF after every record, and no bare LF outside a quoted field.
    assert!(text.ends_with("\r\n"));
    assert_eq!(
        text.matches("\r\n").count(),
        5,
        "a header and four documents: {text}"
    );

    let rows = python_rows(&file);
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(
        rows[0],
        congvan::register::export::OUT_COLUMNS
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
    assert_eq!(rows[0][0], "Số, ký hiệu văn bản");
    for r in &rows {
        assert_eq!(r.len(), 12, "{r:?}");
    }
    // January's decision: its number, date, subject with a comma, the PDF's competent signer
    // (not the office seal), two recipients on two lines, two copies, the time it left.
    assert_eq!(
        rows[1],
        [
            "01/QĐ-UBND",
            "05/01/2026",
            "Quyết định về việc ban hành quy chế làm việc, năm 2026",
            "Nguyễn Văn An",
            "vanphong@hanoi.gov.vn\nsotuphap@hanoi.gov.vn",
            "",
            "2",
            "05/01/2026 09:01",
            "",
            "",
            "",
            "",
        ]
    );
    // The urgent directive: quotes survive, the level is named, late in the notes.
    assert_eq!(rows[2][0], "02/CT-UBND");
    assert_eq!(rows[2][2], "Chỉ thị \"khẩn\" về phòng, chống lụt bão");
    assert_eq!(rows[2][9], "Hỏa tốc");
    assert_eq!(rows[2][11], "Gửi quá hạn");
    // The refused confidential document is not in the book; February's hostile subject is
    // plain text; March's formula-looking subject cannot run in a spreadsheet.
    assert!(!rows.iter().any(|r| r[11].contains("từ chối")));
    assert_eq!(rows[3][2], HOSTILE);
    assert_eq!(rows[3][9], "Khẩn");
    assert_eq!(rows[4][2], "'=SUM(A1:A9)");
    assert_eq!(rows[4][7], "", "never sent");
    assert!(
        rows[4][11].starts_with("Gửi không thành công"),
        "{:?}",
        rows[4]
    );

    // Asked for, the refused document is listed with its rule, and no copies.
    let with = env.path().join("so-di-all.csv");
    export(
        &env,
        &[
            "--direction",
            "out",
            "--from",
            "2026-01-01",
            "--to",
            "2026-01-31",
            "--format",
            "csv",
            "--include-refused",
        ],
        &with,
    );
    let rows = python_rows(&with);
    assert_eq!(rows.len(), 4, "{rows:?}");
    assert_eq!(rows[3][6], "");
    assert_eq!(rows[3][10], "Mật");
    assert!(rows[3][11].contains("Bị từ chối (secrecy.mat)"), "{rows:?}");
}

#[tokio::test]
async fn incoming_csv_numbers_each_year_in_reception_order() {
    let env = env_with_docs().await;
    let file = env.path().join("so-den.csv");
    export(
        &env,
        &[
            "--direction",
            "in",
            "--from",
            "2025-12-01",
            "--to",
            "2026-02-28",
            "--format",
            "csv",
        ],
        &file,
    );
    let rows = python_rows(&file);
    assert_eq!(
        rows[0],
        congvan::register::export::IN_COLUMNS
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>()
    );
    let got: Vec<(&str, &str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str(), r[5].as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("30/12/2025 09:00", "1", "Báo cáo"),
            ("05/01/2026 08:10", "1", "Giấy mời họp giao ban"),
            ("20/01/2026 14:00", "2", "Công văn bị sửa trên đường"),
            ("03/02/2026 09:00", "3", "Kế hoạch tháng Hai"),
        ]
    );
    let jan = &rows[2];
    assert_eq!(jan[2], "vanthu@hanoi.gov.vn");
    assert_eq!(jan[3], "12/UBND-VP");
    assert_eq!(jan[4], "02/01/2026");
    assert_eq!(jan[6], "vanphong@dev.gov.vn");
    assert!(jan[10].starts_with("Chữ ký số S/MIME hợp lệ"), "{jan:?}");
    // A tampered document says so in the book.
    assert!(
        rows[3][10].contains("KHÔNG hợp lệ: message digest mismatch"),
        "{:?}",
        rows[3]
    );

    // February alone keeps the year's numbering: the third document received in 2026.
    let feb = env.path().join("so-den-feb.csv");
    export(
        &env,
        &[
            "--direction",
            "in",
            "--from",
            "2026-02-01",
            "--format",
            "csv",
        ],
        &feb,
    );
    let rows = python_rows(&feb);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(rows[1][1], "3");
}

#[tokio::test]
async fn export_refuses_a_reversed_range_and_explains_its_columns() {
    let env = Env::new(Setup::default()).await;
    let out = env.cli(&[
        "register",
        "export",
        "--direction",
        "out",
        "--from",
        "2026-03-01",
        "--to",
        "2026-02-01",
    ]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let help = env.cli(&["register", "export", "--help"]);
    let help = String::from_utf8(help.stdout).unwrap();
    for col in [
        "Số, ký hiệu văn bản",
        "Số đến",
        "Ký nhận",
        "Ghi chú",
        "byte-order mark",
    ] {
        assert!(help.contains(col), "{col} in --help:\n{help}");
    }
    // An empty register for the current month is still a valid book.
    let out = env.cli(&["register", "export", "--direction", "in", "--format", "csv"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout.iter().filter(|&&b| b == b'\n').count(), 1);
}

fn html_export(env: &Env) -> PathBuf {
    let file = env.path().join("so-di.html");
    export(
        env,
        &[
            "--direction",
            "out",
            "--from",
            "2026-01-01",
            "--to",
            "2026-03-31",
            "--format",
            "html",
        ],
        &file,
    );
    file
}

#[tokio::test]
async fn html_is_self_contained_escaped_and_headed() {
    let env = env_with_docs().await;
    let page = std::fs::read_to_string(html_export(&env)).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>\n<html lang=\"vi\">"));
    assert!(!page.contains("<script"), "unescaped subject");
    assert!(!page.contains("<b>"), "unescaped subject");
    assert!(page.contains(
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &lt;b&gt;đậm&lt;/b&gt;"
    ));
    for bad in [
        "<link", "<img", "src=", "href=", "@import", "url(", "http:", "https:",
    ] {
        assert!(!page.contains(bad), "{bad} in the page");
    }
    assert!(page.contains("size:A4 landscape"));
    assert_eq!(page.matches("<section class=\"month\"").count(), 3);
    for m in [
        "Tháng 01 năm 2026",
        "Tháng 02 năm 2026",
        "Tháng 03 năm 2026",
    ] {
        assert!(page.contains(m), "{m}");
    }
    assert_eq!(
        page.matches("SỔ ĐĂNG KÝ VĂN BẢN ĐI").count(),
        4,
        "title and 3 headings"
    );
    assert_eq!(
        page.matches("gw.test.gov.vn").count(),
        4,
        "office in title and headings"
    );
    assert!(page.contains("+07:00"), "the time it was made");
    assert!(
        !page.contains("secrecy.mat"),
        "refused documents are left out"
    );
    assert!(!page.contains("o-dec") && !page.contains("31/12/2025"));

    // Months without documents still get their page, saying so.
    let empty = env.path().join("empty.html");
    let page = String::from_utf8(export(
        &env,
        &[
            "--direction",
            "out",
            "--from",
            "2026-04-01",
            "--to",
            "2026-05-31",
        ],
        &empty,
    ))
    .unwrap();
    assert_eq!(page.matches("<section class=\"month\"").count(), 2);
    assert_eq!(page.matches("Không có văn bản trong tháng.").count(), 2);
    assert!(page.ends_with("</section>\n</body>\n</html>\n"));
}

/// Screenshots `page` to `shots/NAME.png` and prints it to `shots/NAME.pdf` in headless
/// Chromium; returns the two files.
fn shoot_and_print(page: &Path, shots: &Path, name: &str, profile: &Path) -> (PathBuf, PathBuf) {
    let png = shots.join(format!("{name}.png"));
    let pdf = shots.join(format!("{name}.pdf"));
    for what in [
        format!("--screenshot={}", png.display()),
        format!("--print-to-pdf={}", pdf.display()),
    ] {
        common::chromium::render(page, &what, profile, (1400, 1000));
    }
    eprintln!("screenshot: {}\nprinted: {}", png.display(), pdf.display());
    (png, pdf)
}

#[tokio::test]
async fn html_prints_one_a4_landscape_page_per_month_in_chromium() {
    if !common::chromium::available() {
        return;
    }
    let env = env_with_docs().await;
    let page = html_export(&env);
    // Kept where a person can look at them after the run.
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let profile = tempfile::tempdir().unwrap();
    let (png, pdf) = shoot_and_print(&page, &shots, "register-export-out", profile.path());

    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&png).unwrap()));
    let info = decoder.read_info().unwrap().info().clone();
    assert_eq!((info.width, info.height), (1400, 1000));

    let pdf_bytes = std::fs::read(&pdf).unwrap();
    assert!(pdf_bytes.starts_with(b"%PDF-"));
    let info = Command::new("pdfinfo").arg(&pdf).output();
    match info {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let field = |k: &str| {
                text.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim().to_string())
                    .unwrap_or_else(|| panic!("{k} in {text}"))
            };
            assert_eq!(field("Pages:"), "3", "one page per month:\n{text}");
            // A4 landscape: 297 × 210 mm, 841.89 × 595.28 pt (Chromium rounds to its pixels).
            let size = field("Page size:");
            assert!(size.starts_with("841.") && size.contains(" x 59"), "{size}");
        }
        _ => {
            let n = pdf_bytes
                .windows(b"/Type /Page".len() + 1)
                .filter(|w| w.starts_with(b"/Type /Page") && !w.ends_with(b"s"))
                .count();
            assert_eq!(n, 3, "one page per month");
        }
    }
    // The text layer holds the Vietnamese headings of each month (pdftotext, when there).
    if let Ok(out) = Command::new("pdftotext").arg(&pdf).arg("-").output() {
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            let pages: Vec<&str> = text.split('\u{c}').collect();
            for (i, m) in [
                "Tháng 01 năm 2026",
                "Tháng 02 năm 2026",
                "Tháng 03 năm 2026",
            ]
            .iter()
            .enumerate()
            {
                assert!(pages[i].contains(m), "page {}: {}", i + 1, pages[i]);
                assert!(pages[i].contains("SỔ ĐĂNG KÝ VĂN BẢN ĐI"), "page {}", i + 1);
            }
            assert!(pages[0].contains("Nguyễn Văn An"));
        }
    }

    // The incoming book: December 2025 to February 2026, three pages again.
    let page = env.path().join("so-den.html");
    export(
        &env,
        &[
            "--direction",
            "in",
            "--from",
            "2025-12-01",
            "--to",
            "2026-02-28",
            "--format",
            "html",
        ],
        &page,
    );
    let (_, pdf) = shoot_and_print(&page, &shots, "register-export-in", profile.path());
    let pdf_bytes = std::fs::read(&pdf).unwrap();
    let pages = pdf_bytes
        .windows(b"/Type /Page".len() + 1)
        .filter(|w| w.starts_with(b"/Type /Page") && !w.ends_with(b"s"))
        .count();
    assert_eq!(pages, 3, "one page per month");
}

/// More documents than one page of the reader (1,000), many received in the same
/// millisecond: every one is in the book once, numbered without a gap, in reception order.
#[tokio::test]
async fn a_long_register_is_read_in_pages_without_gaps_or_repeats() {
    use sea_orm::EntityTrait;
    let env = Env::new(Setup::default()).await;
    let db = env.db().await;
    let base = ms("2026-03-02T08:00:00+07:00");
    let n = 2_050usize;
    let rows: Vec<entry::ActiveModel> = (0..n)
        .map(|i| {
            // Three documents per millisecond: pages end in the middle of a tie.
            let at = base + (i / 3) as i64;
            entry::ActiveModel {
                id: Set(format!("p-{i:05}")),
                direction: Set("in".parse().unwrap()),
                state: Set("delivered".parse().unwrap()),
                timeliness: Set(None),
                rule: Set(None),
                reason: Set(None),
                number: Set(None),
                number_key: Set(None),
                subject: Set(format!("p-{i:05}")),
                listener: Set("inbound".into()),
                client_ip: Set("127.0.0.1".into()),
                account: Set(None),
                sender: Set("vanthu@hanoi.gov.vn".into()),
                header_from: Set("vanthu@hanoi.gov.vn".into()),
                recipients: Set("[\"vanphong@dev.gov.vn\"]".into()),
                urgency: Set(0),
                secrecy: Set(0),
                signed_date: Set(None),
                accepted_at: Set(at),
                accepted_date: Set(register_date(at)),
                deadline_at: Set(None),
                seal_serial: Set(None),
                seal_digest: Set(None),
                signed_at: Set(None),
                sent_at: Set(Some(at + 1000)),
                delay_ms: Set(Some(1000)),
                smime_result: Set(Some("pass".into())),
                smime_signer: Set(None),
                smime_reason: Set(None),
                archive_path: Set(None),
                archive_until: Set(None),
                updated_at: Set(at),
            }
        })
        .collect();
    for chunk in rows.chunks(200) {
        entry::Entity::insert_many(chunk.to_vec())
            .exec(&db)
            .await
            .unwrap();
    }
    db.close().await.ok();
    let file = env.path().join("march.csv");
    export(
        &env,
        &[
            "--direction",
            "in",
            "--from",
            "2026-03-01",
            "--format",
            "csv",
        ],
        &file,
    );
    let book = python_rows(&file);
    assert_eq!(book.len(), n + 1);
    for (i, row) in book[1..].iter().enumerate() {
        assert_eq!(row[1], (i + 1).to_string(), "{row:?}");
        assert_eq!(row[5], format!("p-{i:05}"), "{row:?}");
    }
}
