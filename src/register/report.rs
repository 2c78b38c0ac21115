//! `congvan report`: dispatch compliance (báo cáo tình hình gửi văn bản đúng hạn) over a
//! register, by month and by urgency, computed in the database.
//!
//! Every figure is an SQL aggregate (sea_query, the same statements on SQLite and
//! PostgreSQL); no register row is loaded into memory:
//! - the counts are one `GROUP BY accepted_date, urgency, timeliness, state` that walks the
//!   index `idx_register_report` in order (migration M0008), folded into months here;
//! - refusals by rule are one `GROUP BY rule` over `idx_register_state_rule`;
//! - each median dispatch delay (overall, per urgency, per month) is one
//!   `ORDER BY delay_ms LIMIT 2 OFFSET (n-1)/2`, where n comes from the counts; the delay
//!   indexes let the database read the values in order instead of sorting them.
//!
//! The renderings live beside it: [`render`] (text, CSV, JSON) and [`html`] (one
//! self-contained page with SVG charts drawn here, no scripts).

pub mod html;
pub mod render;
pub mod rules;

use std::collections::BTreeMap;

use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait,
};
use serde::Serialize;
use time::Date;

use super::Timeliness;
use crate::model::Direction;
use crate::model::EntryState;
use crate::policy::Urgency;
use crate::store::entity::pdf_document;
use crate::store::entity::register_entry as entry;

/// What a report covers: one register, register days `from..=to` (Asia/Ho_Chi_Minh).
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub direction: Direction,
    pub from: Date,
    pub to: Date,
}

/// Documents counted by outcome. `dispatched` = sent to at least one recipient (delivered or
/// partial, with a dispatch time); `early + on_time + late` = dispatched documents that had a
/// deadline.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub total: u64,
    pub dispatched: u64,
    pub early: u64,
    pub on_time: u64,
    pub late: u64,
    pub delivered: u64,
    pub partial: u64,
    pub pending: u64,
    pub held: u64,
    pub failed: u64,
    pub refused: u64,
    pub deleted: u64,
}

impl Counts {
    /// The share of documents sent on time: (early + on time) / dispatched, as a fraction
    /// rounded to 4 decimals; `None` when nothing was dispatched.
    pub fn on_time_share(&self) -> Option<f64> {
        (self.dispatched > 0).then(|| {
            let f = (self.early + self.on_time) as f64 / self.dispatched as f64;
            (f * 10_000.0).round() / 10_000.0
        })
    }

    fn add(&mut self, timeliness: Option<&str>, st: &str, n: u64, dispatched: u64) {
        self.total += n;
        self.dispatched += dispatched;
        match timeliness.and_then(Timeliness::parse) {
            Some(Timeliness::Early) => self.early += n,
            Some(Timeliness::OnTime) => self.on_time += n,
            Some(Timeliness::Late) => self.late += n,
            None => {}
        }
        match st.parse::<EntryState>() {
            Ok(EntryState::Delivered) => self.delivered += n,
            Ok(EntryState::Partial) => self.partial += n,
            Ok(EntryState::Pending) => self.pending += n,
            Ok(EntryState::Held) => self.held += n,
            Ok(EntryState::Failed) => self.failed += n,
            Ok(EntryState::Refused) => self.refused += n,
            Ok(EntryState::Deleted) => self.deleted += n,
            Err(_) => {}
        }
    }
}

/// An urgency level as reports name it: ASCII form, Vietnamese name, edXML rank.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Level {
    pub urgency: &'static str,
    pub name: &'static str,
    pub rank: i32,
}

impl From<Urgency> for Level {
    fn from(u: Urgency) -> Level {
        Level {
            urgency: u.ascii(),
            name: u.vietnamese(),
            rank: u.rank(),
        }
    }
}

/// One urgency level's figures (within a month, or over the period).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UrgencyRow {
    #[serde(flatten)]
    pub level: Level,
    /// (early + on time) / dispatched; `null` when nothing was dispatched.
    pub on_time_share: Option<f64>,
    #[serde(flatten)]
    pub counts: Counts,
    /// Median dispatch delay in ms; over the period only (not within a month), and `null`
    /// when nothing was dispatched.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub median_delay_ms: Option<i64>,
}

/// One month (`YYYY-MM`) of the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthRow {
    pub month: String,
    pub on_time_share: Option<f64>,
    #[serde(flatten)]
    pub counts: Counts,
    pub median_delay_ms: Option<i64>,
    /// Every urgency level, in rank order, zeros included.
    pub by_urgency: Vec<UrgencyRow>,
}

/// Refused documents for one rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleCount {
    pub rule: String,
    /// The rule's Vietnamese text, as its refusals give it (see [`rules`]).
    pub name: Option<String>,
    pub count: u64,
}

impl RuleCount {
    /// `Văn bản mật không được gửi qua thư điện tử (secrecy.mat)`, or the code alone.
    pub fn label(&self) -> String {
        match &self.name {
            Some(n) => format!("{n} ({})", self.rule),
            None => self.rule.clone(),
        }
    }
}

/// The totals over the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Totals {
    pub on_time_share: Option<f64>,
    #[serde(flatten)]
    pub counts: Counts,
    pub median_delay_ms: Option<i64>,
}

/// A dispatch compliance report. Serialised as-is for `--format json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `out` or `in`.
    pub direction: Direction,
    /// First and last register day, `YYYY-MM-DD`, both included.
    pub from: String,
    pub to: String,
    /// The share of dispatched documents sent on time over the period: (early + on time) /
    /// dispatched, 0..1, `null` when nothing was dispatched. The figure reported upward.
    pub on_time_share: Option<f64>,
    pub totals: Totals,
    /// Every month from the first to the last that has documents (gaps as zeros).
    pub months: Vec<MonthRow>,
    /// Every urgency level, in rank order, with its median over the period.
    pub urgencies: Vec<UrgencyRow>,
    /// Refused documents by rule, most frequent first.
    pub refusals: Vec<RuleCount>,
    /// Incoming register only: the signature results of the documents received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signatures: Option<Signatures>,
}

/// How many incoming documents had each signature result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Signatures {
    /// S/MIME: `pass`, `fail`, `none`, `neutral`, `temperror`, `permerror` (always all six,
    /// in that order), then any other value the register holds; rows without a result
    /// count as `none`.
    pub smime: Vec<ResultCount>,
    /// PDF parts (`pdf_document`): `pass` (every signature valid), `fail` (one or more
    /// invalid), `none` (no signature).
    pub pdf: Vec<ResultCount>,
}

/// Documents (or PDF parts) with one signature result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResultCount {
    pub result: String,
    pub count: u64,
}

fn base(p: &Period, from: Date, to: Date) -> sea_orm::Select<entry::Entity> {
    entry::Entity::find()
        .filter(entry::Column::Direction.eq(p.direction))
        .filter(entry::Column::AcceptedDate.between(from.to_string(), to.to_string()))
}

/// The counts, grouped in the order of `idx_register_report` so the database aggregates
/// while it walks the index: (day, urgency, timeliness, state) → (documents, dispatched).
type CountRow = (String, i32, Option<String>, String, i64, i64);

async fn count_rows(db: &impl ConnectionTrait, p: &Period) -> Result<Vec<CountRow>, DbErr> {
    base(p, p.from, p.to)
        .select_only()
        .column(entry::Column::AcceptedDate)
        .column(entry::Column::Urgency)
        .column(entry::Column::Timeliness)
        .column(entry::Column::State)
        .column_as(Expr::cust("COUNT(*)"), "n")
        .column_as(Expr::cust("COUNT(delay_ms)"), "dispatched")
        .group_by(entry::Column::AcceptedDate)
        .group_by(entry::Column::Urgency)
        .group_by(entry::Column::Timeliness)
        .group_by(entry::Column::State)
        .into_tuple()
        .all(db)
        .await
}

async fn refusals(db: &impl ConnectionTrait, p: &Period) -> Result<Vec<RuleCount>, DbErr> {
    let rows: Vec<(Option<String>, i64)> = base(p, p.from, p.to)
        .select_only()
        .column(entry::Column::Rule)
        .column_as(Expr::cust("COUNT(*)"), "n")
        .filter(entry::Column::State.eq(EntryState::Refused))
        .group_by(entry::Column::Rule)
        .into_tuple()
        .all(db)
        .await?;
    let mut out: Vec<RuleCount> = rows
        .into_iter()
        .map(|(rule, n)| RuleCount {
            rule: rule.unwrap_or_else(|| "(none)".into()),
            name: None,
            count: n.max(0) as u64,
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.rule.cmp(&b.rule)));
    Ok(out)
}

/// The median of the `n` dispatch delays of the documents in `from..=to` (of one urgency
/// level when given): the middle value, or the mean of the two middle values (rounded down).
async fn median(
    db: &impl ConnectionTrait,
    p: &Period,
    from: Date,
    to: Date,
    urgency: Option<Urgency>,
    n: u64,
) -> Result<Option<i64>, DbErr> {
    if n == 0 {
        return Ok(None);
    }
    let mut q = base(p, from, to)
        .select_only()
        .column(entry::Column::DelayMs)
        .filter(entry::Column::DelayMs.is_not_null());
    if let Some(u) = urgency {
        q = q.filter(entry::Column::Urgency.eq(u.rank()));
    }
    let take = if n.is_multiple_of(2) { 2 } else { 1 };
    let values: Vec<i64> = q
        .order_by_asc(entry::Column::DelayMs)
        .offset((n - 1) / 2)
        .limit(take)
        .into_tuple()
        .all(db)
        .await?;
    Ok(match values.as_slice() {
        [a] => Some(*a),
        [a, b] => Some(((*a as i128 + *b as i128) / 2) as i64),
        _ => None,
    })
}

fn month_of(day: &str) -> String {
    day.get(..7).unwrap_or(day).to_string()
}

/// First and last day of `month` (`YYYY-MM`), clamped to the period.
fn month_bounds(month: &str, p: &Period) -> Option<(Date, Date)> {
    let (y, m) = month.split_once('-')?;
    let month = time::Month::try_from(m.parse::<u8>().ok()?).ok()?;
    let first = Date::from_calendar_date(y.parse().ok()?, month, 1).ok()?;
    let last = Date::from_calendar_date(first.year(), month, month.length(first.year())).ok()?;
    Some((first.max(p.from), last.min(p.to)))
}

/// The months from `first` to `last` (`YYYY-MM`), both included.
fn months_between(first: &str, last: &str) -> Vec<String> {
    let parse = |s: &str| -> Option<(i32, u8)> {
        let (y, m) = s.split_once('-')?;
        Some((y.parse().ok()?, m.parse().ok()?))
    };
    let (Some(mut cur), Some(end)) = (parse(first), parse(last)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    while cur <= end {
        out.push(format!("{:04}-{:02}", cur.0, cur.1));
        cur = if cur.1 >= 12 {
            (cur.0 + 1, 1)
        } else {
            (cur.0, cur.1 + 1)
        };
    }
    out
}

/// Computes the report for `p`.
pub async fn compute(db: &impl ConnectionTrait, p: &Period) -> Result<Report, DbErr> {
    let rows = count_rows(db, p).await?;
    let mut by_month: BTreeMap<String, [Counts; 5]> = BTreeMap::new();
    for (day, rank, timeliness, st, n, dispatched) in &rows {
        let u = Urgency::from_rank(*rank).rank() as usize;
        by_month.entry(month_of(day)).or_default()[u].add(
            timeliness.as_deref(),
            st,
            (*n).max(0) as u64,
            (*dispatched).max(0) as u64,
        );
    }
    let months = match (by_month.keys().next(), by_month.keys().next_back()) {
        (Some(first), Some(last)) => months_between(first, last),
        _ => Vec::new(),
    };
    let mut totals = Counts::default();
    let mut per_urgency = [Counts::default(); 5];
    let mut month_rows = Vec::with_capacity(months.len());
    for month in months {
        let levels = by_month.get(&month).copied().unwrap_or_default();
        let mut counts = Counts::default();
        for (i, c) in levels.iter().enumerate() {
            sum_into(&mut counts, c);
            sum_into(&mut per_urgency[i], c);
        }
        sum_into(&mut totals, &counts);
        let median_delay_ms = match month_bounds(&month, p) {
            Some((from, to)) => median(db, p, from, to, None, counts.dispatched).await?,
            None => None,
        };
        month_rows.push(MonthRow {
            month,
            on_time_share: counts.on_time_share(),
            counts,
            median_delay_ms,
            by_urgency: Urgency::ALL
                .into_iter()
                .map(|u| UrgencyRow {
                    level: u.into(),
                    on_time_share: levels[u.rank() as usize].on_time_share(),
                    counts: levels[u.rank() as usize],
                    median_delay_ms: None,
                })
                .collect(),
        });
    }
    let mut urgencies = Vec::with_capacity(5);
    for u in Urgency::ALL {
        let counts = per_urgency[u.rank() as usize];
        urgencies.push(UrgencyRow {
            level: u.into(),
            on_time_share: counts.on_time_share(),
            counts,
            median_delay_ms: median(db, p, p.from, p.to, Some(u), counts.dispatched).await?,
        });
    }
    let signatures = match p.direction {
        Direction::In => Some(signatures(db, p).await?),
        Direction::Out => None,
    };
    Ok(Report {
        direction: p.direction,
        from: p.from.to_string(),
        to: p.to.to_string(),
        on_time_share: totals.on_time_share(),
        totals: Totals {
            on_time_share: totals.on_time_share(),
            counts: totals,
            median_delay_ms: median(db, p, p.from, p.to, None, totals.dispatched).await?,
        },
        months: month_rows,
        urgencies,
        refusals: refusals(db, p).await?,
        signatures,
    })
}

/// The S/MIME results of the incoming documents (one `GROUP BY smime_result`) and the PDF
/// parts' results (one aggregate over `pdf_document`, reading the stored signature list:
/// an empty list is `none`, any `"result":"fail` is `fail`, otherwise `pass`).
async fn signatures(db: &impl ConnectionTrait, p: &Period) -> Result<Signatures, DbErr> {
    let rows: Vec<(Option<String>, i64)> = base(p, p.from, p.to)
        .select_only()
        .column(entry::Column::SmimeResult)
        .column_as(Expr::cust("COUNT(*)"), "n")
        .group_by(entry::Column::SmimeResult)
        .into_tuple()
        .all(db)
        .await?;
    let mut smime: Vec<ResultCount> = ["pass", "fail", "none", "neutral", "temperror", "permerror"]
        .into_iter()
        .map(|r| ResultCount {
            result: r.into(),
            count: 0,
        })
        .collect();
    for (result, n) in rows {
        let result = result.unwrap_or_else(|| "none".into());
        let n = n.max(0) as u64;
        match smime.iter_mut().find(|x| x.result == result) {
            Some(x) => x.count += n,
            None => smime.push(ResultCount { result, count: n }),
        }
    }

    let in_period = base(p, p.from, p.to)
        .select_only()
        .column(entry::Column::Id)
        .into_query();
    let outcome = Expr::cust(
        "CASE WHEN signatures = '[]' OR signatures = '' THEN 'none' \
         WHEN signatures LIKE '%\"result\":\"fail%' THEN 'fail' ELSE 'pass' END",
    );
    let rows: Vec<(String, i64)> = pdf_document::Entity::find()
        .select_only()
        .column_as(outcome.clone(), "outcome")
        .column_as(Expr::cust("COUNT(*)"), "n")
        .filter(pdf_document::Column::Direction.eq(p.direction))
        .filter(pdf_document::Column::EntryId.in_subquery(in_period))
        .group_by(outcome)
        .into_tuple()
        .all(db)
        .await?;
    let pdf = ["pass", "fail", "none"]
        .into_iter()
        .map(|r| ResultCount {
            result: r.into(),
            count: rows
                .iter()
                .filter(|(o, _)| o == r)
                .map(|(_, n)| (*n).max(0) as u64)
                .sum(),
        })
        .collect();
    Ok(Signatures { smime, pdf })
}

fn sum_into(a: &mut Counts, b: &Counts) {
    a.total += b.total;
    a.dispatched += b.dispatched;
    a.early += b.early;
    a.on_time += b.on_time;
    a.late += b.late;
    a.delivered += b.delivered;
    a.partial += b.partial;
    a.pending += b.pending;
    a.held += b.held;
    a.failed += b.failed;
    a.refused += b.refused;
    a.deleted += b.deleted;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn months_fill_gaps_across_years() {
        assert_eq!(
            months_between("2025-11", "2026-02"),
            ["2025-11", "2025-12", "2026-01", "2026-02"]
        );
        assert_eq!(months_between("2026-03", "2026-03"), ["2026-03"]);
    }

    #[test]
    fn month_bounds_are_clamped_to_the_period() {
        let p = Period {
            direction: Direction::Out,
            from: date!(2026 - 01 - 15),
            to: date!(2026 - 02 - 10),
        };
        assert_eq!(
            month_bounds("2026-01", &p),
            Some((date!(2026 - 01 - 15), date!(2026 - 01 - 31)))
        );
        assert_eq!(
            month_bounds("2026-02", &p),
            Some((date!(2026 - 02 - 01), date!(2026 - 02 - 10)))
        );
    }
}
