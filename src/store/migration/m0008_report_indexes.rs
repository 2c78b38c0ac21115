//! Migration `m0008_report_indexes`. Frozen: once released, a migration is never edited (a
//! change is a new migration), and it calls no product code that could change under it.

use super::*;
use sea_orm_migration::prelude::*;

pub(super) struct M0008ReportIndexes;

impl MigrationName for M0008ReportIndexes {
    fn name(&self) -> &str {
        "m0008_report_indexes"
    }
}

/// Indexes for `congvan report` (issue 6), so a year of register rows is aggregated from
/// index entries alone, never by scanning the table:
/// - the counts: `GROUP BY accepted_date, urgency, timeliness, state` walks
///   `(direction, accepted_date, urgency, timeliness, state, delay_ms)` in order (a streaming
///   aggregate on SQLite, no sort);
/// - the medians (`ORDER BY delay_ms LIMIT 2 OFFSET n`, overall, per month, per urgency) read
///   `(direction, delay_ms, accepted_date)` and `(direction, urgency, delay_ms,
///   accepted_date)` in delay order, testing the day in the index, without sorting;
/// - refusals by rule, and pending or held documents: `(direction, state, accepted_date, rule)`.
///
/// And one for `register list --number N`: without statistics SQLite prefers walking
/// `(direction, accepted_at)` for the newest-first order and tests every row's number;
/// `(direction, number_key, accepted_at)` matches both the filter and the order, so it wins.
#[async_trait::async_trait]
impl MigrationTrait for M0008ReportIndexes {
    async fn up(&self, m: &SchemaManager) -> Result<(), DbErr> {
        use RegisterEntry as E;
        for (name, cols) in [
            (
                "idx_register_report",
                vec![
                    E::Direction,
                    E::AcceptedDate,
                    E::Urgency,
                    E::Timeliness,
                    E::State,
                    E::DelayMs,
                ],
            ),
            (
                "idx_register_delay",
                vec![E::Direction, E::DelayMs, E::AcceptedDate],
            ),
            (
                "idx_register_urgency_delay",
                vec![E::Direction, E::Urgency, E::DelayMs, E::AcceptedDate],
            ),
            (
                "idx_register_state_rule",
                vec![E::Direction, E::State, E::AcceptedDate, E::Rule],
            ),
            (
                "idx_register_dir_number_at",
                vec![E::Direction, E::NumberKey, E::AcceptedAt],
            ),
        ] {
            let mut idx = Index::create();
            idx.name(name).table(E::Table).if_not_exists();
            for c in cols {
                idx.col(c);
            }
            m.create_index(idx.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, m: &SchemaManager) -> Result<(), DbErr> {
        for name in [
            "idx_register_report",
            "idx_register_delay",
            "idx_register_urgency_delay",
            "idx_register_state_rule",
            "idx_register_dir_number_at",
        ] {
            m.drop_index(Index::drop().name(name).if_exists().to_owned())
                .await?;
        }
        Ok(())
    }
}
