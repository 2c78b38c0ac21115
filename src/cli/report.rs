//! `congvan report`: dispatch compliance over a register, as text, CSV, JSON or HTML.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use time::Date;

use super::{load_config, open_db, Cli, CliResult, Failure};
use crate::policy::calendar::vietnam_date;
use crate::policy::classify::parse_iso_date;
use crate::queue::Direction;
use crate::register::report::{self, html, render, Period};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned tables, Vietnamese level names with their ASCII forms.
    Text,
    /// RFC 4180: one header row; rows told apart by the `kind` column.
    Csv,
    /// The structure described under `--help`.
    Json,
    /// One self-contained page with SVG charts (no network access needed).
    Html,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DirectionArg {
    /// The outgoing register (sổ văn bản đi).
    Out,
    /// The incoming register (sổ văn bản đến).
    In,
}

/// Dispatch compliance: documents sent before, on and after their deadline, by month and
/// urgency; pending, held and failed ones; refusals by rule; median dispatch delay.
#[derive(Args, Debug)]
#[command(after_long_help = JSON_SHAPE)]
pub struct ReportArgs {
    /// First register day, YYYY-MM-DD in Asia/Ho_Chi_Minh (default: 1 January of this year).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub from: Option<Date>,
    /// Last register day, included (default: today).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub to: Option<Date>,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
    #[arg(long, value_enum, default_value = "out")]
    pub direction: DirectionArg,
    /// Write the report to FILE instead of standard output.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

const JSON_SHAPE: &str = "\
JSON (--format json):
  { \"direction\": \"out\", \"from\": \"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\",
    \"totals\": {COUNTS, \"median_delay_ms\": N|null},
    \"months\": [ {\"month\": \"YYYY-MM\", COUNTS, \"median_delay_ms\": N|null,
                 \"by_urgency\": [ {\"urgency\": \"hoa-toc\", \"name\": \"Hỏa tốc\", \"rank\": 3, COUNTS} ...5 ] } ],
    \"urgencies\": [ {\"urgency\", \"name\", \"rank\", COUNTS, \"median_delay_ms\"?} ...5 ],
    \"refusals\": [ {\"rule\": \"secrecy.mat\", \"count\": N} ] }
  COUNTS = \"total\", \"dispatched\" (delivered or partial), \"early\", \"on_time\", \"late\",
           \"delivered\", \"partial\", \"pending\", \"held\", \"failed\", \"refused\", \"deleted\"
  Months run from the first to the last month with documents, gaps as zeros; delays in ms.

CSV (--format csv): columns kind, month, urgency, urgency_name, rule, COUNTS, median_delay_ms;
  kind = month_urgency | month | urgency | total | refusal.";

fn parse_date(s: &str) -> Result<Date, String> {
    parse_iso_date(s).ok_or_else(|| format!("{s:?} is not a date YYYY-MM-DD"))
}

pub async fn run(cli: &Cli, a: &ReportArgs) -> CliResult {
    let today = vietnam_date(time::OffsetDateTime::now_utc());
    let from = match a.from {
        Some(d) => d,
        None => Date::from_calendar_date(a.to.unwrap_or(today).year(), time::Month::January, 1)
            .map_err(Failure::usage)?,
    };
    let to = a.to.unwrap_or(today);
    if from > to {
        return Err(Failure::usage(format!("--from {from} is after --to {to}")));
    }
    let period = Period {
        direction: match a.direction {
            DirectionArg::Out => Direction::Out,
            DirectionArg::In => Direction::In,
        },
        from,
        to,
    };
    let cfg = load_config(cli)?;
    let db = open_db(&cfg).await?;
    let r = report::compute(&db, &period)
        .await
        .map_err(|e| Failure::refused(format!("cannot compute the report: {e}")))?;
    let format = if a.json { Format::Json } else { a.format };
    let body = match format {
        Format::Text => render::text(&r),
        Format::Csv => render::csv(&r),
        Format::Json => render::json(&r),
        Format::Html => html::page(&r),
    };
    match &a.output {
        Some(path) => super::as_invoker(|| std::fs::write(path, body))
            .map_err(|e| Failure::refused(format!("cannot write {}: {e}", path.display()))),
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(body.as_bytes())
                .and_then(|_| out.flush())
                .map_err(|e| Failure::refused(format!("cannot write the report: {e}")))
        }
    }
}
