//! Dispatch policies end to end, on the shipped `policies/`: confidential documents refused at
//! end of DATA leaving nothing but metadata, document numbers (form, uniqueness, resend),
//! deadlines and lanes on queued messages, a broken policy stopping `policy check` and
//! `serve`, and the `policy explain` / `policy calendar` commands.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use congvan::config::Role;
use congvan::store::entity::{message, register_entry};
use sea_orm::EntityTrait;

const SPEC_REFUSAL: &str = "550 5.7.1 confidential documents may not be sent by email (rule secrecy.mat) / Văn bản mật không được gửi qua thư điện tử";

/// MAIL, RCPT, DATA and the message (which must end in CRLF); returns the final reply.
async fn submit(c: &mut Client, from: &str, rcpt: &str, msg: &str) -> (u16, String) {
    c.expect(&format!("MAIL FROM:<{from}>"), 250).await;
    c.expect(&format!("RCPT TO:<{rcpt}>"), 250).await;
    c.expect("DATA", 354).await;
    c.send(format!("{msg}.\r\n").as_bytes()).await;
    c.reply().await
}

/// Every file under `dir` whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if let Ok(bytes) = std::fs::read(&p) {
            if bytes.windows(needle.len()).any(|w| w == needle) {
                hits.push(p.display().to_string());
            }
        }
    }
    hits
}

fn dir_is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut r| r.next().is_none())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confidential_documents_are_refused_and_leave_nothing_but_metadata() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let marker = "BI-MAT-NOI-DUNG-7f3a";

    // A clerk, subject tag [MẬT].
    let mut c = Client::clerk(addr(&gw, Role::Submission), &env).await;
    let msg = format!(
        "From: {CLERK_ADDR}\r\nTo: vanphong@hanoi.gov.vn\r\nSubject: [MẬT] Báo cáo {marker}\r\nX-Congvan-Number: 07/BC-UBND\r\n\r\nNội dung {marker}\r\n"
    );
    let (code, text) = submit(&mut c, CLERK_ADDR, "vanphong@hanoi.gov.vn", &msg).await;
    assert_eq!(code, 550, "{text}");
    assert_eq!(text.trim_end(), SPEC_REFUSAL);

    // X-Congvan-Secrecy: toi-mat, in the same session.
    let msg = format!(
        "From: {CLERK_ADDR}\r\nSubject: {marker}\r\nX-Congvan-Secrecy: toi-mat\r\n\r\n{marker}\r\n"
    );
    let (code, text) = submit(&mut c, CLERK_ADDR, "vanphong@hanoi.gov.vn", &msg).await;
    assert_eq!(code, 550, "{text}");
    assert!(
        text.starts_with("550 5.7.1 confidential documents may not be sent by email (rule secrecy.toi-mat) / Văn bản mật"),
        "{text}"
    );
    c.expect("QUIT", 221).await;

    // The relay, an RFC 2047-encoded NFD "[tối mật]" (base64 of UTF-8).
    let mut r = Client::connect(addr(&gw, Role::Relay)).await;
    r.reply().await;
    r.expect("EHLO mail.dev.gov.vn", 250).await;
    let msg = format!(
        "From: chanhvp@dev.gov.vn\r\nSubject: =?UTF-8?B?W3RvzILMgWkgbWHMo8yCdF0g?= {marker}\r\n\r\n{marker}\r\n"
    );
    let (code, text) = submit(&mut r, "chanhvp@dev.gov.vn", "a@hanoi.gov.vn", &msg).await;
    assert_eq!(code, 550, "{text}");
    assert!(text.contains("(rule secrecy.toi-mat)"), "{text}");

    // Nothing queued, spooled or delivered; only the refusal rows.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(eml_files(&env.outbox()).is_empty());
    assert!(dir_is_empty(&env.config.spool_dir()), "spool is empty");
    let db = env.db().await;
    assert!(message::Entity::find().all(&db).await.unwrap().is_empty());
    let rows = refusals(&db).await;
    let rules: Vec<&str> = rows.iter().filter_map(|r| r.rule.as_deref()).collect();
    assert_eq!(
        rules,
        vec!["secrecy.toi-mat", "secrecy.toi-mat", "secrecy.mat"]
    );
    // The register keeps the attempt's metadata, never the subject or the content.
    for row in &rows {
        assert_eq!(row.direction, "out");
        assert!(row.subject.is_empty(), "{row:?}");
        assert!(row.secrecy >= 1, "{row:?}");
        assert!(!format!("{row:?}").contains(marker), "{row:?}");
    }
    assert_eq!(rows[0].header_from, "chanhvp@dev.gov.vn");
    let first = rows.last().unwrap();
    assert_eq!(first.listener, "submission");
    assert_eq!(first.account.as_deref(), Some(CLERK));
    assert_eq!(first.sender, CLERK_ADDR);
    assert_eq!(first.recipients, "[\"vanphong@hanoi.gov.vn\"]");
    assert_eq!(first.secrecy, congvan::policy::Secrecy::Mat.rank());
    assert_eq!(first.number.as_deref(), Some("07/BC-UBND"));
    assert_eq!(rows[0].listener, "relay");
    db.close().await.ok();
    // Not a byte of the content anywhere under the gateway's directory (SQLite included).
    assert_eq!(
        files_containing(env.path(), marker.as_bytes()),
        Vec::<String>::new()
    );

    // The session and the queue still work for ordinary documents.
    let mut c = Client::clerk(addr(&gw, Role::Submission), &env).await;
    let (code, text) = submit(
        &mut c,
        CLERK_ADDR,
        "a@hanoi.gov.vn",
        &simple_message(CLERK_ADDR, "a@hanoi.gov.vn", "Bảo vệ bí mật nhà nước"),
    )
    .await;
    assert_eq!(code, 250, "'mật' outside brackets is not a tag: {text}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_log_never_holds_a_refused_documents_content() {
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let env = Env::new(Setup {
        ports: Some(ports),
        ..Setup::default()
    })
    .await;
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .arg("--config")
        .arg(&env.config_path)
        .arg("serve")
        .env("CONGVAN_LOG", "trace")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(env.path().join("daemon.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let relay: std::net::SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();
    let mut c = None;
    for _ in 0..200 {
        if let Ok(s) = tokio::net::TcpStream::connect(relay).await {
            drop(s);
            c = Some(Client::connect(relay).await);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut c = c.expect("daemon listening");
    c.reply().await;
    c.expect("EHLO mail.dev.gov.vn", 250).await;
    let marker = "TUYET-MAT-9c1e";
    let msg = format!("From: a@dev.gov.vn\r\nSubject: [Tuyệt mật] {marker}\r\nX-Congvan-Urgency: hoa-toc\r\n\r\n{marker}\r\n");
    let (code, text) = submit(&mut c, "a@dev.gov.vn", "b@hanoi.gov.vn", &msg).await;
    assert_eq!(code, 550, "{text}");
    c.expect("QUIT", 221).await;
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    assert!(daemon.wait().unwrap().success());
    let log = std::fs::read_to_string(env.path().join("daemon.log")).unwrap();
    assert!(log.contains("secrecy.tuyet-mat"), "{log}");
    assert!(log.contains("refused by policy"), "{log}");
    assert!(!log.contains(marker), "content in the log:\n{log}");
    assert_eq!(
        files_containing(env.path(), marker.as_bytes()),
        Vec::<String>::new()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn document_numbers_are_checked_for_form_and_uniqueness() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = Client::clerk(addr(&gw, Role::Submission), &env).await;
    let doc = |number: &str, extra: &str| {
        format!("From: {CLERK_ADDR}\r\nSubject: Quyết định\r\nX-Congvan-Number: {number}\r\nX-Congvan-Signed-Date: 2026-03-02\r\n{extra}\r\nNội dung.\r\n")
    };
    let to = "a@hanoi.gov.vn";
    let (code, text) = submit(&mut c, CLERK_ADDR, to, &doc("05/QĐ-UBND", "")).await;
    assert_eq!(code, 250, "{text}");
    // The same number again, even written differently: refused.
    let (code, text) = submit(&mut c, CLERK_ADDR, to, &doc("Số: 05/qđ-ubnd", "")).await;
    assert_eq!(code, 550, "{text}");
    assert!(
        text.starts_with(
            "550 5.7.1 document number 05/qđ-ubnd was already issued by dev.gov.vn in 2026"
        ),
        "{text}"
    );
    assert!(text.contains("(rule number.duplicate)"), "{text}");
    // Marked as a resend: accepted.
    let (code, text) = submit(
        &mut c,
        CLERK_ADDR,
        to,
        &doc("05/QĐ-UBND", "X-Congvan-Resend: yes\r\n"),
    )
    .await;
    assert_eq!(code, 250, "{text}");
    // Another year: a new series.
    let other_year = "From: vanthu@dev.gov.vn\r\nSubject: x\r\nX-Congvan-Number: 05/QĐ-UBND\r\nX-Congvan-Signed-Date: 2027-01-04\r\n\r\nx\r\n";
    let (code, text) = submit(&mut c, CLERK_ADDR, to, other_year).await;
    assert_eq!(code, 250, "{text}");
    // Not zero-padded below 10: refused for its form.
    let (code, text) = submit(&mut c, CLERK_ADDR, to, &doc("5/QĐ-UBND", "")).await;
    assert_eq!(code, 550, "{text}");
    assert!(
        text.starts_with("550 5.6.0 document number is not of the form 05/QĐ-UBND"),
        "{text}"
    );
    assert!(text.contains("(rule number.form)"), "{text}");
    let db = env.db().await;
    assert_eq!(message::Entity::find().all(&db).await.unwrap().len(), 3);
    let rules: Vec<String> = refusals(&db)
        .await
        .into_iter()
        .filter_map(|r| r.rule)
        .collect();
    assert_eq!(rules, vec!["number.form", "number.duplicate"]);
    db.close().await.ok();
    gw.stop().await;
}

/// 2026-02-25 17:00 +07:00 in Unix ms: the DOMAIN.md vector's deadline.
const FEB_25_CLOSE_MS: i64 = 1_772_013_600_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queued_documents_carry_their_deadline_and_lane() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let mut c = Client::clerk(addr(&gw, Role::Submission), &env).await;
    let to = "a@hanoi.gov.vn";
    let signed = format!(
        "From: {CLERK_ADDR}\r\nSubject: Công văn\r\nX-Congvan-Signed-Date: 2026-02-13\r\n\r\nx\r\n"
    );
    let (code, text) = submit(&mut c, CLERK_ADDR, to, &signed).await;
    assert_eq!(code, 250, "{text}");
    let normal_id = text.split_whitespace().last().unwrap().to_string();
    let urgent = format!("From: {CLERK_ADDR}\r\nSubject: [THƯỢNG KHẨN] Báo cáo\r\n\r\nx\r\n");
    let (code, text) = submit(&mut c, CLERK_ADDR, to, &urgent).await;
    assert_eq!(code, 250, "{text}");
    let urgent_id = text.split_whitespace().last().unwrap().to_string();

    let db = env.db().await;
    let normal = message::Entity::find_by_id(normal_id)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(normal.urgency, 0);
    assert_eq!(
        normal.deadline_at,
        Some(FEB_25_CLOSE_MS),
        "signed 13/2/2026 + 3 working days"
    );
    let urgent = message::Entity::find_by_id(urgent_id)
        .one(&db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(urgent.urgency, 2, "the thượng khẩn lane");
    let deadline = urgent.deadline_at.expect("a same-working-day deadline");
    let now = congvan::util::now_ms();
    assert!(
        deadline > now - 60_000 && deadline < now + 5 * 86_400_000,
        "{deadline}"
    );
    db.close().await.ok();
    gw.stop().await;
}

/// The line number (1-based) of the first line of `text` containing `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_policy_fails_check_and_stops_serve() {
    let env = Env::new(Setup::default()).await;
    let out = env.cli(&["policy", "check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("profile in force: default"));

    let file = env.path().join("policies/default.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let broken = text.replacen("working_days = 3", "workingdays = 3", 1);
    std::fs::write(&file, &broken).unwrap();
    let line = line_of(&broken, "workingdays = 3");

    let out = env.cli(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "{}:{line}:1 (key `dispatch.thuong.workingdays`): unknown field `workingdays`",
        file.display()
    );
    assert!(err.contains(&want), "{err}");
    let out = env.cli(&["policy", "check", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"][0]["line"], line);
    assert_eq!(report["errors"][0]["key"], "dispatch.thuong.workingdays");
    assert_eq!(report["errors"][0]["file"], file.display().to_string());

    // `serve` does not start on it, in-process or as the binary.
    assert!(congvan::server::start(env.config.clone()).await.is_err());
    let out = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .arg("--config")
        .arg(&env.config_path)
        .arg("serve")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&want), "{err}");

    // Another policy directory can be checked with --dir.
    let out = env.cli(&[
        "policy",
        "check",
        "--dir",
        shipped_policies().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    // An unknown profile in active.toml.
    std::fs::write(&file, text).unwrap();
    std::fs::write(
        env.path().join("policies/active.toml"),
        "profile = \"nd30\"\n",
    )
    .unwrap();
    let out = env.cli(&["policy", "check"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("active.toml:1:11 (key `profile`): there is no profile \"nd30\""),
        "{err}"
    );
}

fn sample_eml(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_explain_shows_sources_rule_action_and_deadline() {
    let env = Env::new(Setup::default()).await;
    // LF line endings, as a saved file has them; an edXML part gives the number and date.
    let edxml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<edXML:edXMLEnvelope xmlns:edXML=\"http://www.e-doc.vn/Schema/\"><edXML:edXMLHeader><edXML:MessageHeader><edXML:Code><edXML:CodeNumber>26</edXML:CodeNumber><edXML:CodeNotation>CT-UBND</edXML:CodeNotation></edXML:Code><edXML:PromulgationInfo><edXML:PromulgationDate>2026-02-13</edXML:PromulgationDate></edXML:PromulgationInfo><edXML:OtherInfo><edXML:Priority>0</edXML:Priority></edXML:OtherInfo></edXML:MessageHeader></edXML:edXMLHeader></edXML:edXMLEnvelope>";
    let eml = sample_eml(
        env.path(),
        "ct26.eml",
        &format!("From: {CLERK_ADDR}\nTo: vanphong@hanoi.gov.vn\nSubject: Chỉ thị về tăng cường\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain; charset=utf-8\n\nNội dung.\n--b\nContent-Type: application/xml\nContent-Disposition: attachment; filename=\"ct26.edxml\"\n\n{edxml}\n--b\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=\"ct26.pdf\"\n\n%PDF-1.7\n--b--\n"),
    );
    let out = env.cli(&[
        "policy",
        "explain",
        &eml,
        "--at",
        "2026-02-13T10:00:00+07:00",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "profile:      default",
        "urgency:      Thường (thuong)",
        "Thường (thuong) from edXML OtherInfo/Priority",
        "number:       26/CT-UBND",
        "26/CT-UBND from edXML Code/CodeNumber+CodeNotation",
        "signing date: 2026-02-13",
        "2026-02-13 from edXML PromulgationInfo/PromulgationDate",
        "attachments:  1",
        "recipient:    vanphong@hanoi.gov.vn (allowed)",
        "rule:         dispatch.thuong (3 working days after the signing date)",
        "action:       accept, lane Thường (thuong)",
        "deadline:     2026-02-25\n",
        "deadline at:  2026-02-25T17:00:00+07:00",
        "  2026-02-17 Tết Nguyên Đán (Lunar New Year)",
        "late:         no",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let out = env.cli(&[
        "policy",
        "explain",
        &eml,
        "--at",
        "2026-02-13T10:00:00+07:00",
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["rule"], "dispatch.thuong");
    assert_eq!(j["action"], "accept");
    assert_eq!(j["deadline"], "2026-02-25");
    assert_eq!(j["classification"]["number"]["value"], "26/CT-UBND");
    assert_eq!(
        j["classification"]["urgency"]["sources"][0],
        "edXML OtherInfo/Priority"
    );
    assert_eq!(j["number_uniqueness_checked"], true);

    // A confidential document, with conflicting urgency sources.
    let eml = sample_eml(
        env.path(),
        "mat.eml",
        &format!("From: {CLERK_ADDR}\nTo: a@hanoi.gov.vn\nSubject: [HỎA TỐC] [MẬT] Kế hoạch\nX-Congvan-Urgency: khan\n\nx\n"),
    );
    let out = env.cli(&["policy", "explain", &eml]);
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "urgency:      Hỏa tốc (hoa-toc)",
        "Khẩn (khan) from header X-Congvan-Urgency",
        "Hỏa tốc (hoa-toc) from subject tag \"[HỎA TỐC]\"",
        "secrecy:      Mật (mat)",
        "Mật (mat) from subject tag \"[MẬT]\"",
        "the stricter Hỏa tốc (hoa-toc) applies",
        "rule:         secrecy.mat",
        &format!("action:       refuse: {SPEC_REFUSAL}"),
        "deadline:     - (not sent)",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }

    // The Decree 30 profile, one setting away: the next working day.
    std::fs::write(
        env.path().join("policies/active.toml"),
        "profile = \"nd30-2020\"\n",
    )
    .unwrap();
    let eml = sample_eml(
        env.path(),
        "nd30.eml",
        &format!("From: {CLERK_ADDR}\nTo: a@hanoi.gov.vn\nSubject: x\nX-Congvan-Signed-Date: 2026-02-13\n\nx\n"),
    );
    let out = env.cli(&[
        "policy",
        "explain",
        &eml,
        "--at",
        "2026-02-13 16:00",
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["profile"], "nd30-2020");
    assert_eq!(j["deadline"], "2026-02-23");
    assert_eq!(j["deadline_rule"], "1 working day after the signing date");

    // Bad usage exits 2.
    let out = env.cli(&["policy", "explain", &eml, "--at", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    let out = env.cli(&["policy", "explain", "--help"]);
    assert_eq!(out.status.code(), Some(0));
}

/// Turns `[classification] subject_number` on in the env's copy of the default profile.
fn enable_subject_number(env: &Env) {
    let file = env.path().join("policies/default.toml");
    let text = std::fs::read_to_string(&file).unwrap();
    let off = "\nsubject_number = false";
    assert!(text.contains(off), "the shipped profile has the key, off");
    std::fs::write(&file, text.replacen(off, "\nsubject_number = true", 1)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_explain_names_the_subject_as_the_source_of_number_and_date() {
    let env = Env::new(Setup::default()).await;
    let eml = sample_eml(
        env.path(),
        "subject.eml",
        &format!("From: {CLERK_ADDR}\nTo: vanphong@hanoi.gov.vn\nSubject: Số 26/CT-UBND ngày 13/02/2026 về việc phòng chống lụt bão\n\nNội dung.\n"),
    );
    let explain = |eml: &str| {
        let out = env.cli(&[
            "policy",
            "explain",
            eml,
            "--at",
            "2026-02-13T10:00:00+07:00",
        ]);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    // Off in the shipped profile: the Subject is only text.
    let text = explain(&eml);
    assert!(text.contains("number:       -\n"), "{text}");

    enable_subject_number(&env);
    let text = explain(&eml);
    for want in [
        "number:       26/CT-UBND",
        "26/CT-UBND from Subject \"Số 26/CT-UBND ngày 13/02/2026\"",
        "signing date: 2026-02-13",
        "2026-02-13 from Subject \"Số 26/CT-UBND ngày 13/02/2026\"",
        "deadline:     2026-02-25\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(
        !text.contains("phòng chống"),
        "only the matched text is shown"
    );

    // NFD, no diacritics on the label, a date that does not exist: the number is taken,
    // the date is not, and the output says why (without refusing the document).
    let nfd: String =
        unicode_normalization::UnicodeNormalization::nfd("so 27/CT-UBND ngày 31/02/2026 về việc")
            .collect();
    let eml = sample_eml(
        env.path(),
        "bad-date.eml",
        &format!("From: {CLERK_ADDR}\nTo: vanphong@hanoi.gov.vn\nSubject: {nfd}\n\nx\n"),
    );
    let text = explain(&eml);
    for want in [
        "number:       27/CT-UBND",
        "signing date: - (the day of acceptance counts)",
        "not taken:\n  signed_date (Subject \"so 27/CT-UBND ngày 31/02/2026\"): \"31/02/2026\" is not a date",
        "action:       accept",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }

    // A header wins over the Subject.
    let eml = sample_eml(
        env.path(),
        "both.eml",
        &format!("From: {CLERK_ADDR}\nTo: vanphong@hanoi.gov.vn\nSubject: Số 26/CT-UBND ngày 13/02/2026 về việc\nX-Congvan-Number: 28/CT-UBND\n\nx\n"),
    );
    let text = explain(&eml);
    assert!(text.contains("number:       28/CT-UBND"), "{text}");
    assert!(text.contains("signing date: 2026-02-13"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_calendar_prints_the_domain_vectors() {
    let env = Env::new(Setup::default()).await;
    let run = |from: &str, n: &str| {
        let out = env.cli(&["policy", "calendar", "--from", from, "--working-days", n]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    // Signed Friday 13 February 2026: Tết 14–22 February, deadline Wednesday the 25th.
    let mut want = String::from("deadline: 2026-02-25\n");
    for day in 14..=22 {
        want.push_str(&format!("2026-02-{day} Tết Nguyên Đán (Lunar New Year)\n"));
    }
    assert_eq!(run("2026-02-13", "3"), want);
    // Its next working day is Monday 23 February.
    assert!(run("2026-02-13", "1").starts_with("deadline: 2026-02-23\n"));
    // Hung Kings 2026 falls on Sunday 26 April: Monday 27 is off too.
    assert_eq!(
        run("2026-04-24", "1"),
        "deadline: 2026-04-28\n2026-04-25 Thứ Bảy (Saturday)\n2026-04-26 Giỗ Tổ Hùng Vương (Hung Kings' Commemoration)\n2026-04-27 Nghỉ bù Giỗ Tổ Hùng Vương (compensatory day for 2026-04-26)\n"
    );
    // 2 January 2026 swapped with Saturday 10 January.
    let out = run("2025-12-31", "1");
    assert!(
        out.starts_with("deadline: 2026-01-05\n2026-01-01 Tết Dương lịch"),
        "{out}"
    );
    assert!(out.contains("\n2026-01-02 Nghỉ hoán đổi"), "{out}");
    assert_eq!(run("2026-01-09", "1"), "deadline: 2026-01-10\n");
    // --json, and usage errors.
    let out = env.cli(&[
        "policy",
        "calendar",
        "--from",
        "2026-02-13",
        "--working-days",
        "3",
        "--json",
    ]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["deadline"], "2026-02-25");
    assert_eq!(j["deadline_at"], "2026-02-25T17:00:00+07:00");
    assert_eq!(j["skipped"].as_array().unwrap().len(), 9);
    let out = env.cli(&[
        "policy",
        "calendar",
        "--from",
        "13/02/2026",
        "--working-days",
        "3",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_policy_and_keeps_it_when_the_new_one_is_broken() {
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let env = Env::new(Setup {
        ports: Some(ports),
        ..Setup::default()
    })
    .await;
    let mut daemon = Command::new(env!("CARGO_BIN_EXE_congvan"))
        .arg("--config")
        .arg(&env.config_path)
        .arg("serve")
        .env("CONGVAN_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(env.path().join("daemon.log")).unwrap(),
        ))
        .spawn()
        .unwrap();
    let relay: std::net::SocketAddr = format!("127.0.0.1:{}", ports[2]).parse().unwrap();
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(relay).await.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let send_mat = || async {
        let mut c = Client::connect(relay).await;
        c.reply().await;
        c.expect("EHLO mail.dev.gov.vn", 250).await;
        let msg = "From: a@dev.gov.vn\r\nSubject: [MAT] x\r\n\r\nx\r\n";
        submit(&mut c, "a@dev.gov.vn", "b@hanoi.gov.vn", msg)
            .await
            .0
    };
    let hup = |daemon: &std::process::Child| {
        // SAFETY: signalling our own child.
        unsafe {
            libc::kill(daemon.id() as i32, libc::SIGHUP);
        }
    };
    let log = || std::fs::read_to_string(env.path().join("daemon.log")).unwrap();
    let wait_log = |needle: &'static str| async move {
        for _ in 0..100 {
            if log().contains(needle) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{needle:?} never logged:\n{}", log());
    };
    assert_eq!(send_mat().await, 550);

    // A profile for an office with an approved encrypted channel, switched to by SIGHUP.
    let policies = env.path().join("policies");
    std::fs::write(
        policies.join("open.toml"),
        "[secrecy.mat]\naction = \"accept\"\n",
    )
    .unwrap();
    std::fs::write(policies.join("active.toml"), "profile = \"open\"\n").unwrap();
    hup(&daemon);
    wait_log("SIGHUP: policy reloaded").await;
    assert_eq!(send_mat().await, 250);

    // A broken directory: the reload fails and the policy in force stays.
    std::fs::write(policies.join("active.toml"), "profile = \"missing\"\n").unwrap();
    hup(&daemon);
    wait_log("policy reload failed").await;
    assert_eq!(send_mat().await, 250);
    assert!(daemon.try_wait().unwrap().is_none(), "still running");

    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    assert!(daemon.wait().unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_submissions_of_one_number_issue_it_once() {
    let env = Env::new(Setup::default()).await;
    let gw = env.start().await;
    let relay = addr(&gw, Role::Relay);
    let mut tasks = Vec::new();
    for i in 0..6 {
        tasks.push(tokio::spawn(async move {
            let mut c = Client::connect(relay).await;
            c.reply().await;
            c.expect("EHLO mail.dev.gov.vn", 250).await;
            let msg = format!("From: chanhvp@dev.gov.vn\r\nSubject: lần {i}\r\nX-Congvan-Number: 12/TB-UBND\r\n\r\nx\r\n");
            submit(&mut c, "chanhvp@dev.gov.vn", "a@hanoi.gov.vn", &msg).await.0
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    codes.sort();
    assert_eq!(codes, vec![250, 550, 550, 550, 550, 550]);
    gw.stop().await;
}

/// The register's refused documents, newest first.
async fn refusals(db: &sea_orm::DatabaseConnection) -> Vec<register_entry::Model> {
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    register_entry::Entity::find()
        .filter(register_entry::Column::State.eq("refused"))
        .order_by_desc(register_entry::Column::AcceptedAt)
        .order_by_desc(register_entry::Column::Id)
        .all(db)
        .await
        .unwrap()
}
