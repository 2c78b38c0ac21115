//! The audit log on a real database: appends from several tasks, and every kind of tampering
//! `verify` must find.

use super::verify::VERIFY_BATCH;
use super::*;
use sea_orm::Statement;
use sea_orm::{ConnectionTrait, DatabaseConnection};

async fn db() -> (DatabaseConnection, tempfile::TempDir) {
    crate::store::test_database().await
}

async fn fill(db: &DatabaseConnection, n: usize) {
    for i in 0..n {
        let ev = Event::new(
            "cli:test",
            Action::AccountAdd,
            format!("clerk{i}"),
            serde_json::json!({"allowed_from": [format!("clerk{i}@dev.gov.vn")]}),
        );
        record(db, &ev).await.unwrap();
    }
}

async fn sql(db: &DatabaseConnection, s: &str) {
    db.execute_raw(Statement::from_string(db.get_database_backend(), s))
        .await
        .unwrap();
}

async fn bad(db: &DatabaseConnection) -> BadEntry {
    let r = verify(db, None).await.unwrap();
    assert!(!r.intact, "{r:?}");
    r.first_bad.unwrap()
}

#[test]
fn encoding_is_length_prefixed_and_covers_every_field() {
    let base = Fields {
        seq: 1,
        at: 1000,
        actor: "ab",
        action: "c",
        subject: "s",
        details: "{}",
        prev_hash: GENESIS,
    };
    let h = entry_hash(&base);
    assert_eq!(h.len(), 64);
    // Moving a byte across a field boundary changes the hash.
    assert_ne!(
        h,
        entry_hash(&Fields {
            actor: "a",
            action: "bc",
            ..base
        })
    );
    for other in [
        Fields { seq: 2, ..base },
        Fields { at: 1001, ..base },
        Fields {
            subject: "t",
            ..base
        },
        Fields {
            details: "{\"a\":1}",
            ..base
        },
        Fields {
            prev_hash: "1",
            ..base
        },
    ] {
        assert_ne!(h, entry_hash(&other));
    }
}

#[test]
fn canonical_json_sorts_keys() {
    let v = serde_json::json!({"b": 1, "a": {"d": [2, {"z": 0, "y": 1}], "c": "x"}});
    assert_eq!(
        canonical_json(&v),
        r#"{"a":{"c":"x","d":[2,{"y":1,"z":0}]},"b":1}"#
    );
}

#[test]
fn heads_parse_as_printed() {
    let h: Head = format!("#12 {}", "ab".repeat(32)).parse().unwrap();
    assert_eq!(h.seq, 12);
    let h2: Head = format!("12:{}", "AB".repeat(32)).parse().unwrap();
    assert_eq!(h, h2);
    assert!("12".parse::<Head>().is_err());
    assert!("0:00".parse::<Head>().is_err());
}

#[tokio::test]
async fn appended_entries_chain_and_verify() {
    let (db, _dir) = db().await;
    let empty = verify(&db, None).await.unwrap();
    assert!(empty.intact && empty.entries == 0 && empty.head.is_none());
    fill(&db, 5).await;
    let r = verify(&db, None).await.unwrap();
    assert!(r.intact, "{r:?}");
    assert_eq!(r.entries, 5);
    let rows = last_entries(&db, 10).await.unwrap();
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0].prev_hash, GENESIS);
    for w in rows.windows(2) {
        assert_eq!(w[1].prev_hash, w[0].hash);
        assert_eq!(w[1].seq, w[0].seq + 1);
    }
    assert_eq!(r.head.as_ref().unwrap().hash, rows[4].hash);
    assert_eq!(rows[2].details, r#"{"allowed_from":["clerk2@dev.gov.vn"]}"#);
}

#[tokio::test]
async fn a_changed_field_names_the_entry() {
    let (db, _dir) = db().await;
    fill(&db, 5).await;
    sql(
        &db,
        "UPDATE audit_log SET actor = 'cli:mallory' WHERE seq = 3",
    )
    .await;
    let b = bad(&db).await;
    assert_eq!((b.seq, &b.problem), (3, &Problem::FieldsChanged));
    let r = verify(&db, None).await.unwrap();
    assert_eq!(r.entries, 2);
    assert_eq!(r.head.unwrap().seq, 2);
}

#[tokio::test]
async fn a_changed_hash_or_prev_hash_is_told_apart() {
    let (db, _dir) = db().await;
    fill(&db, 5).await;
    sql(
        &db,
        &format!(
            "UPDATE audit_log SET hash = '{}' WHERE seq = 2",
            "f".repeat(64)
        ),
    )
    .await;
    let b = bad(&db).await;
    assert_eq!((b.seq, &b.problem), (2, &Problem::HashChanged));

    let (db, _dir) = self::db().await;
    fill(&db, 5).await;
    sql(
        &db,
        &format!(
            "UPDATE audit_log SET prev_hash = '{}' WHERE seq = 4",
            "e".repeat(64)
        ),
    )
    .await;
    let b = bad(&db).await;
    assert_eq!((b.seq, &b.problem), (4, &Problem::PrevHashChanged));
}

#[tokio::test]
async fn a_removed_entry_is_a_gap() {
    let (db, _dir) = db().await;
    fill(&db, 6).await;
    sql(&db, "DELETE FROM audit_log WHERE seq IN (3, 4)").await;
    let b = bad(&db).await;
    assert_eq!(
        (b.seq, &b.problem),
        (3, &Problem::Missing { from: 3, to: 4 })
    );
    assert!(b.message.contains("#3..#4"), "{}", b.message);

    // Renumbering to hide the gap breaks the link instead.
    sql(&db, "UPDATE audit_log SET seq = seq - 2 WHERE seq > 4").await;
    let b = bad(&db).await;
    assert_eq!(b.seq, 3);
    assert_eq!(b.problem, Problem::BrokenLink);

    // The first entry removed.
    let (db, _dir) = self::db().await;
    fill(&db, 2).await;
    sql(&db, "DELETE FROM audit_log WHERE seq = 1").await;
    let b = bad(&db).await;
    assert_eq!(
        (b.seq, &b.problem),
        (1, &Problem::Missing { from: 1, to: 1 })
    );
}

#[tokio::test]
async fn swapped_entries_are_named() {
    let (db, _dir) = db().await;
    fill(&db, 6).await;
    // Swap the numbers of #2 and #5 (every other column travels with its row).
    sql(&db, "UPDATE audit_log SET seq = -5 WHERE seq = 5").await;
    sql(&db, "UPDATE audit_log SET seq = 5 WHERE seq = 2").await;
    sql(&db, "UPDATE audit_log SET seq = 2 WHERE seq = -5").await;
    let b = bad(&db).await;
    assert_eq!((b.seq, &b.problem), (2, &Problem::Moved { holds: 5 }));
}

#[tokio::test]
async fn a_recomputed_entry_is_caught_by_its_successor_or_a_noted_head() {
    let (db, _dir) = db().await;
    fill(&db, 4).await;
    // Rewrite #2 with a consistent hash: #3 no longer links to it.
    let rows = last_entries(&db, 10).await.unwrap();
    let r2 = &rows[1];
    let forged = entry_hash(&Fields {
        actor: "cli:mallory",
        ..Fields::of(r2)
    });
    sql(
        &db,
        &format!("UPDATE audit_log SET actor = 'cli:mallory', hash = '{forged}' WHERE seq = 2"),
    )
    .await;
    let b = bad(&db).await;
    assert_eq!((b.seq, &b.problem), (2, &Problem::Rewritten));

    // Truncation: the chain alone cannot tell; the noted head can.
    let (db, _dir) = self::db().await;
    fill(&db, 4).await;
    let noted2 = verify(&db, None).await.unwrap().head.unwrap();
    sql(&db, "DELETE FROM audit_log WHERE seq >= 3").await;
    assert!(verify(&db, None).await.unwrap().intact);
    let r = verify(&db, Some(&noted2)).await.unwrap();
    let b = r.first_bad.unwrap();
    assert_eq!(
        (b.seq, b.problem),
        (4, Problem::Truncated { last: Some(2) })
    );
    // A noted head that matches.
    let (db, _dir) = self::db().await;
    fill(&db, 3).await;
    let noted = verify(&db, None).await.unwrap().head.unwrap();
    fill(&db, 2).await;
    let r = verify(&db, Some(&noted)).await.unwrap();
    assert!(r.intact && r.entries == 5, "{r:?}");
}

#[tokio::test]
async fn concurrent_appenders_keep_one_chain() {
    let (db, _dir) = db().await;
    let mut tasks = Vec::new();
    for t in 0..8 {
        let db = db.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..10 {
                let ev = Event::new(
                    "daemon",
                    Action::QueueHold,
                    format!("t{t}-{i}"),
                    serde_json::json!({}),
                );
                record(&db, &ev).await.unwrap();
            }
        }));
    }
    // A transactional appender (a change and its entry) at the same time.
    for i in 0..10 {
        let txn = begin(&db).await.unwrap();
        append(
            &txn,
            &Event::new(
                "cli:test",
                Action::TrustAdd,
                i.to_string(),
                serde_json::json!({}),
            ),
        )
        .await
        .unwrap();
        txn.commit().await.unwrap();
    }
    for t in tasks {
        t.await.unwrap();
    }
    let r = verify(&db, None).await.unwrap();
    assert!(r.intact, "{r:?}");
    assert_eq!(r.entries, 90);
}

#[tokio::test]
async fn a_rolled_back_change_leaves_no_entry() {
    let (db, _dir) = db().await;
    let txn = begin(&db).await.unwrap();
    append(
        &txn,
        &Event::new("cli:test", Action::AccountAdd, "x", serde_json::json!({})),
    )
    .await
    .unwrap();
    txn.rollback().await.unwrap();
    fill(&db, 1).await;
    let r = verify(&db, None).await.unwrap();
    assert!(r.intact);
    assert_eq!(r.entries, 1);
}

#[tokio::test]
async fn verify_streams_across_batches() {
    let (db, _dir) = db().await;
    // More than one batch, written directly (faster than one transaction each).
    let txn = begin(&db).await.unwrap();
    for i in 0..(VERIFY_BATCH + 5) {
        append(
            &txn,
            &Event::new(
                "daemon",
                Action::QueueRetry,
                i.to_string(),
                serde_json::json!({}),
            ),
        )
        .await
        .unwrap();
    }
    txn.commit().await.unwrap();
    let r = verify(&db, None).await.unwrap();
    assert!(r.intact, "{r:?}");
    assert_eq!(r.entries, VERIFY_BATCH + 5);
    // A change right after a batch boundary is still found.
    sql(
        &db,
        &format!(
            "UPDATE audit_log SET subject = 'x' WHERE seq = {}",
            VERIFY_BATCH + 1
        ),
    )
    .await;
    let b = bad(&db).await;
    assert_eq!(b.seq, VERIFY_BATCH as i64 + 1);
    assert_eq!(b.problem, Problem::FieldsChanged);
}

#[test]
fn directory_digest_changes_with_any_file() {
    let d = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(d.path().join("calendar")).unwrap();
    std::fs::write(d.path().join("a.toml"), "x = 1").unwrap();
    std::fs::write(d.path().join("calendar/2026.toml"), "y = 1").unwrap();
    let one = directory_digest(d.path()).unwrap();
    assert_eq!(one, directory_digest(d.path()).unwrap());
    std::fs::write(d.path().join("calendar/2026.toml"), "y = 2").unwrap();
    assert_ne!(one, directory_digest(d.path()).unwrap());
}
