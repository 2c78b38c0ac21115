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

/// Dispatch compliance: the share of documents sent on time first, then documents sent
/// before, on and after their deadline, by month and urgency; pending, held and failed ones;
/// refusals by rule; median dispatch delay.
///
/// On-time share = (early + on time) / dispatched. A document is dispatched when the gateway
/// sent it to at least one recipient (register state delivered or partial, with a dispatch
/// time); pending, held, failed, refused and deleted documents are not dispatched and do not
/// count either way. Early / on time / late compare the dispatch time with the document's
/// deadline under the policy's dispatch rules.
///
/// `--direction in` reports the incoming register instead: S/MIME and PDF signature results
/// and the time from reception to delivery (median, per month).
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
On-time share (tỷ lệ gửi đúng hạn) = (early + on time) / dispatched. A document is dispatched
when the gateway sent it to at least one recipient (register state delivered or partial, with
a dispatch time); pending, held, failed, refused and deleted documents are not dispatched and
count neither way. Early / on time / late compare the dispatch time with the document's
deadline under the policy's dispatch rules. Text and HTML lead with the share (66,7 %), overall,
per month and per urgency; JSON and CSV give it as a fraction (0.6667), null / empty when
nothing was dispatched. Refusals name the rule in Vietnamese with its code.

--direction in: the incoming register, with S/MIME and PDF signature results and the time from
reception to delivery (median, per month) instead of timeliness.

JSON (--format json):
  { \"direction\": \"out\", \"from\": \"YYYY-MM-DD\", \"to\": \"YYYY-MM-DD\", \"on_time_share\": F|null,
    \"totals\": {\"on_time_share\", COUNTS, \"median_delay_ms\": N|null},
    \"months\": [ {\"month\": \"YYYY-MM\", \"on_time_share\", COUNTS, \"median_delay_ms\": N|null,
                 \"by_urgency\": [ {\"urgency\": \"hoa-toc\", \"name\": \"Hỏa tốc\", \"rank\": 3, \"on_time_share\", COUNTS} ...5 ] } ],
    \"urgencies\": [ {\"urgency\", \"name\", \"rank\", \"on_time_share\", COUNTS, \"median_delay_ms\"?} ...5 ],
    \"refusals\": [ {\"rule\": \"secrecy.mat\", \"name\": \"Văn bản mật không được gửi qua thư điện tử\"|null, \"count\": N} ],
    \"signatures\": {\"smime\": [ {\"result\": \"pass\", \"count\": N} ...], \"pdf\": [ {\"result\", \"count\"} ...3 ]} }
  \"signatures\" only with --direction in (S/MIME: pass fail none neutral temperror permerror;
  PDF files: pass fail none); there median_delay_ms is reception to delivery.
  COUNTS = \"total\", \"dispatched\" (delivered or partial), \"early\", \"on_time\", \"late\",
           \"delivered\", \"partial\", \"pending\", \"held\", \"failed\", \"refused\", \"deleted\"
  Months run from the first to the last month with documents, gaps as zeros; delays in ms.

CSV (--format csv, UTF-8 with a byte-order mark): columns kind, month, urgency, urgency_name,
  rule, rule_name, on_time_share, COUNTS, median_delay_ms;
  kind = month_urgency | month | urgency | total | refusal | smime | pdf.";

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
    let mut r = report::compute(&db, &period)
        .await
        .map_err(|e| Failure::refused(format!("cannot compute the report: {e}")))?;
    // Rules named as their refusals word them: the secrecy texts come from the policy in
    // force; when it cannot be read, from the shipped defaults (the report still runs).
    let secrecy = match crate::policy::file::load(&cfg.policy_dir) {
        Ok(p) => p.rules.secrecy.clone(),
        Err(_) => Default::default(),
    };
    for x in &mut r.refusals {
        x.name = report::rules::vietnamese(&x.rule, &secrecy);
    }
    let meta = html::Meta {
        office: cfg.hostname.clone(),
        generated_at: time::OffsetDateTime::now_utc(),
    };
    let format = if a.json { Format::Json } else { a.format };
    let body = match format {
        Format::Text => render::text(&r),
        Format::Csv => render::csv(&r),
        Format::Json => render::json(&r),
        Format::Html => html::page(&r, &meta),
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
