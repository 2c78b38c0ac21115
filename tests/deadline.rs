//! The deadline monitor end to end: a document whose deadline passes while the upstream is
//! down produces the warning and then the violation, mailed to the escalation address; an
//! urgent document that cannot be delivered is escalated at once.

mod common;

use std::time::Duration;

use common::*;
use congvan::config::Role;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

async fn env_with_escalation() -> (Env, u16) {
    let port = free_port();
    let env = Env::new(Setup {
        upstream: Some(format!("smtp://127.0.0.1:{port}")),
        extra: "monitor_interval_secs = 1\n".into(),
        ..Setup::default()
    })
    .await;
    let profile = env.path().join("policies/default.toml");
    let text = std::fs::read_to_string(&profile).unwrap();
    assert!(
        text.contains("notify = []"),
        "the shipped profile has an empty escalation list"
    );
    std::fs::write(
        &profile,
        text.replacen("notify = []", "notify = [\"chanhvp@dev.gov.vn\"]", 1),
    )
    .unwrap();
    (env, port)
}

async fn submit(gw: &congvan::server::Running, env: &Env, headers: &str) -> String {
    let mut c = Client::clerk(addr(gw, Role::Submission), env).await;
    c.expect(&format!("MAIL FROM:<{CLERK_ADDR}>"), 250).await;
    c.expect("RCPT TO:<vanthu@hanoi.gov.vn>", 250).await;
    c.expect("DATA", 354).await;
    c.send(format!("From: {CLERK_ADDR}\r\n{headers}\r\nx\r\n.\r\n").as_bytes())
        .await;
    let (code, t) = c.reply().await;
    assert_eq!(code, 250, "{t}");
    t.split_whitespace().last().unwrap().to_string()
}

/// Notices in the inbox addressed to the escalation address, as text.
fn notices(env: &Env) -> Vec<String> {
    eml_files(&env.inbox())
        .into_iter()
        .filter(|f| envelope_of(f)["recipients"][0] == "chanhvp@dev.gov.vn")
        .map(|f| {
            let raw = std::fs::read(&f).unwrap();
            let m = mail_parser::MessageParser::default().parse(&raw).unwrap();
            format!(
                "{}\n{}",
                m.subject().unwrap_or_default(),
                m.body_text(0).unwrap_or_default()
            )
        })
        .collect()
}

async fn wait_notice(env: &Env, needle: &str, id: &str) -> String {
    for _ in 0..200 {
        if let Some(n) = notices(env)
            .into_iter()
            .find(|n| n.contains(needle) && n.contains(id))
        {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no notice with {needle:?} for {id}: {:?}", notices(env));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_passing_while_the_upstream_is_down_warns_then_records_a_violation() {
    let (env, _port) = env_with_escalation().await;
    let gw = env.start().await;
    let id = submit(
        &gw,
        &env,
        "Subject: Báo cáo tháng\r\nX-Congvan-Number: 41/BC-UBND\r\n",
    )
    .await;
    // The document waits for the upstream; bring its deadline to three seconds from now.
    let db = env.db().await;
    let soon = congvan::util::now_ms() + 3000;
    congvan::store::entity::message::Entity::update_many()
        .col_expr(
            congvan::store::entity::message::Column::DeadlineAt,
            Expr::value(soon),
        )
        .filter(congvan::store::entity::message::Column::Id.eq(&id))
        .exec(&db)
        .await
        .unwrap();
    let warning = wait_notice(&env, "Cảnh báo hạn gửi", &id).await;
    assert!(warning.contains("Báo cáo tháng"), "{warning}");
    // It names the document as the office knows it: by its number first.
    assert!(
        warning.contains("Số, ký hiệu / Number: 41/BC-UBND\r\nTrích yếu / Subject: Báo cáo tháng"),
        "{warning}"
    );
    let violation = wait_notice(&env, "Quá hạn gửi", &id).await;
    assert!(violation.contains("violation is recorded"), "{violation}");
    let out = env.cli(&["queue", "list", "--json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let e = list
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == id.as_str())
        .unwrap()
        .clone();
    assert_eq!(e["deadline_warned"], true);
    assert_eq!(e["deadline_missed"], true);
    // Each is sent once.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(notices(&env).iter().filter(|n| n.contains(&id)).count(), 2);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undeliverable_urgent_document_is_escalated_at_once() {
    let (env, _port) = env_with_escalation().await;
    let gw = env.start().await;
    // Khẩn: due by the end of the working day, but its first attempt failed: warned now.
    let khan = submit(
        &gw,
        &env,
        "Subject: Khẩn cấp\r\nX-Congvan-Urgency: khan\r\n",
    )
    .await;
    let warning = wait_notice(&env, "Cảnh báo hạn gửi", &khan).await;
    assert!(warning.contains("Khẩn (khan)"), "{warning}");
    // Hỏa tốc: due at once, so a failed attempt is already a missed deadline.
    let hoatoc = submit(
        &gw,
        &env,
        "Subject: Hỏa tốc\r\nX-Congvan-Urgency: hoa-toc\r\n",
    )
    .await;
    let violation = wait_notice(&env, "Quá hạn gửi", &hoatoc).await;
    assert!(violation.contains("Hỏa tốc (hoa-toc)"), "{violation}");
    gw.stop().await;
}
