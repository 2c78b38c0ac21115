//! Schema migrations: the same statements for SQLite and PostgreSQL, one file per migration
//! (`m0001_queue.rs` ...), each frozen once released.

mod m0001_queue;
mod m0002_policy;
mod m0003_pki;
mod m0004_deadlines;
mod m0005_verification;
mod m0006_register;
mod m0007_audit;
mod m0008_report_indexes;
mod m0009_delay_notice;
mod m0010_delivery_lease;
mod m0011_pdf_document;
mod m0012_seal_image;
mod m0013_token_key;
mod m0014_message_id;
mod m0015_message_content;
mod m0016_leader_archive;

use sea_orm_migration::prelude::*;

use m0001_queue::*;
use m0002_policy::*;
use m0003_pki::*;
use m0004_deadlines::*;
use m0005_verification::*;
use m0006_register::*;
use m0007_audit::*;
use m0008_report_indexes::*;
use m0009_delay_notice::*;
use m0010_delivery_lease::*;
use m0011_pdf_document::*;
use m0012_seal_image::*;
use m0013_token_key::*;
use m0014_message_id::*;
use m0015_message_content::*;
use m0016_leader_archive::*;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(M0001Queue),
            Box::new(M0002Policy),
            Box::new(M0003Pki),
            Box::new(M0004Deadlines),
            Box::new(M0005Verification),
            Box::new(M0006Register),
            Box::new(M0007Audit),
            Box::new(M0008ReportIndexes),
            Box::new(M0009DelayNotice),
            Box::new(M0010DeliveryLease),
            Box::new(M0011PdfDocument),
            Box::new(M0012SealImage),
            Box::new(M0013TokenKey),
            Box::new(M0014MessageId),
            Box::new(M0015MessageContent),
            Box::new(M0016LeaderArchive),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnectionTrait;

    #[tokio::test]
    async fn earlier_refusals_become_refused_register_rows() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/t.db?mode=rwc", dir.path().display());
        let db = sea_orm::Database::connect(&url).await.unwrap();
        Migrator::up(&db, Some(5)).await.unwrap();
        // 2026-11-21 17:30 UTC is 22 November in Hanoi.
        db.execute_unprepared(
            "INSERT INTO refusal (at, listener, client_ip, account, sender, recipients, urgency, \
             secrecy, number, rule) VALUES (1795282200000, 'submission', '10.0.0.9', 'vanthu', \
             'vanthu@dev.gov.vn', '[\"a@hanoi.gov.vn\"]', 'thuong-khan', 'toi-mat', \
             '07/BC-UBND', 'secrecy.toi-mat'), (1795282200001, 'inbound', '10.0.0.7', NULL, \
             'vanthu@hanoi.gov.vn', '[]', 'thuong', 'thuong', NULL, 'incoming.fail')",
        )
        .await
        .unwrap();
        Migrator::up(&db, None).await.unwrap();
        use sea_orm::EntityTrait;
        let rows = crate::store::entity::register_entry::Entity::find()
            .all(&db)
            .await
            .unwrap();
        assert_eq!(rows.len(), 2);
        let inbound = rows.iter().find(|r| r.listener == "inbound").unwrap();
        assert_eq!(inbound.direction, "in", "a refusal on the inbound listener");
        let r = rows.iter().find(|r| r.listener == "submission").unwrap();
        assert_eq!(r.direction, "out");
        assert_eq!(r.state, "refused");
        assert_eq!(r.rule.as_deref(), Some("secrecy.toi-mat"));
        assert_eq!(r.urgency, crate::policy::Urgency::ThuongKhan.rank());
        assert_eq!(r.secrecy, crate::policy::Secrecy::ToiMat.rank());
        assert_eq!(r.accepted_date, "2026-11-22");
        assert_eq!(r.number_key.as_deref(), Some("07/BC-UBND"));
        assert!(db
            .execute_unprepared("SELECT 1 FROM refusal")
            .await
            .is_err());
        db.close().await.ok();
    }
}
