//! `congvan register list|show|export`: the outgoing register (sổ đăng ký văn bản đi), the incoming
//! register (sổ đăng ký văn bản đến) and each document's handover book (sổ bàn giao).

use std::io::Write;

use clap::{Subcommand, ValueEnum};
use futures_util::StreamExt;

use super::{cut, load_config, open_db, print_table, Cli, CliResult, Failure};
use crate::queue::Direction;
use crate::register::query::{self, EntryView, Filter, RecipientView};
use crate::util::printable;

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DirectionArg {
    /// Outgoing documents (văn bản đi).
    Out,
    /// Incoming documents (văn bản đến).
    In,
}

#[derive(Subcommand, Debug)]
pub enum RegisterCmd {
    /// List a register, newest first.
    List {
        #[arg(long, value_enum)]
        direction: DirectionArg,
        /// First register day (YYYY-MM-DD, Asia/Ho_Chi_Minh), included.
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        from: Option<time::Date>,
        /// Last register day (YYYY-MM-DD, Asia/Ho_Chi_Minh), included.
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        to: Option<time::Date>,
        /// Only this document number (e.g. 05/QĐ-UBND; compared as the uniqueness rule does).
        #[arg(long, value_name = "N")]
        number: Option<String>,
        /// Only entries in this state: pending, held, delivered, partial, failed, refused, deleted.
        #[arg(long)]
        state: Option<String>,
        /// At most this many entries, newest first (the table's default: 100).
        #[arg(long, conflicts_with = "all")]
        limit: Option<u64>,
        /// Every matching entry (the default with --json).
        #[arg(long)]
        all: bool,
        /// A JSON array of every matching entry (or the newest --limit N), streamed.
        #[arg(long)]
        json: bool,
        /// Every column, whole ids, nothing cut (the default table fits 120 columns).
        #[arg(long, conflicts_with = "json")]
        wide: bool,
    },
    /// Print a register in the layout of the paper book (Decree 30/2020 Appendix IV), as a
    /// printable HTML page or CSV.
    #[command(after_long_help = EXPORT_HELP)]
    Export {
        #[arg(long, value_enum)]
        direction: DirectionArg,
        /// First register day (YYYY-MM-DD, Asia/Ho_Chi_Minh), included (default: the first
        /// day of the month of --to, or of the current month).
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        from: Option<time::Date>,
        /// Last register day, included (default: the last day of the month of --from, or of
        /// the current month).
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        to: Option<time::Date>,
        #[arg(long, value_enum, default_value = "html")]
        format: ExportFormat,
        /// List refused documents too (left out by default: they were never issued or received).
        #[arg(long)]
        include_refused: bool,
        /// Write to FILE instead of standard output.
        #[arg(long, short, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
    },
    /// Show one entry with its recipients (the handover book).
    Show {
        id: String,
        #[arg(long)]
        json: bool,
        /// Write the archived copy of the document as sent (its .eml bytes) to standard
        /// output instead, from its file or, with PostgreSQL, from the database.
        #[arg(long, conflicts_with = "json")]
        copy: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// One self-contained page (no scripts, no network) that prints on A4 landscape, one
    /// month per page.
    Html,
    /// RFC 4180 CSV, UTF-8 with a byte-order mark, CRLF line ends, a header row.
    Csv,
}

const EXPORT_HELP: &str = "\
Columns of the outgoing book (sổ đăng ký văn bản đi), --direction out:
  (1) Số, ký hiệu văn bản         the document number (05/QĐ-UBND), when the message gave one
  (2) Ngày tháng văn bản          the signing date, dd/mm/yyyy, when the message gave one
  (3) Tên loại và trích yếu       the Subject
  (4) Người ký                    the signers of the PDF parts (not the office's seal); else empty
  (5) Nơi nhận văn bản            the recipients, one per line
  (6) Đơn vị, người nhận bản lưu  empty: filled by hand
  (7) Số lượng bản                the number of electronic copies sent (one per recipient)
  (8) Ngày chuyển                 when the last recipient took it (dd/mm/yyyy HH:MM, +07:00)
  (9) Ký nhận                     empty: the receipt signature, by hand
  (10) Độ khẩn, (11) Độ mật       the level (Khẩn, Thượng khẩn, Hỏa tốc...); empty for Thường
  (12) Ghi chú                    not yet sent, held, failed, partly sent, sent late

Columns of the incoming book (sổ đăng ký văn bản đến), --direction in:
  (1) Ngày đến                    when the gateway received it (dd/mm/yyyy HH:MM, +07:00)
  (2) Số đến                      the running number in the year, in reception order (derived:
                                  the register keeps no incoming number; refused mail is not counted)
  (3) Tác giả                     the sender (the From address)
  (4) Số, ký hiệu văn bản, (5) Ngày tháng văn bản, (6) Tên loại và trích yếu: as above
  (7) Đơn vị hoặc người nhận      the office mailboxes it was delivered to
  (8) Ký nhận                     empty: by hand
  (9) Độ khẩn, (10) Độ mật        as above
  (11) Ghi chú                    the S/MIME and PDF signature results, the state when not delivered

Refused documents are left out (never issued or received); --include-refused lists them with
the rule in the notes. HTML: a section per month of the range, each starting a new A4
landscape page, headed with the office (the configuration's hostname), the book's title,
the month and the time the page was made. CSV: the same columns; a field that starts with
= + - or @ gets a leading ' so that a spreadsheet does not take it for a formula.";

fn parse_date(s: &str) -> Result<time::Date, String> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, fmt).map_err(|_| format!("{s:?} is not a date of the form YYYY-MM-DD"))
}

const STATES: [&str; 7] = [
    "pending",
    "held",
    "delivered",
    "partial",
    "failed",
    "refused",
    "deleted",
];

pub async fn run(cli: &Cli, cmd: &RegisterCmd) -> CliResult {
    match cmd {
        RegisterCmd::List {
            direction,
            from,
            to,
            number,
            state,
            limit,
            all,
            json,
            wide,
        } => {
            if let Some(s) = state {
                if !STATES.contains(&s.as_str()) {
                    return Err(Failure::usage(format!(
                        "--state {s}: expected one of {}",
                        STATES.join(", ")
                    )));
                }
            }
            if let (Some(f), Some(t)) = (from, to) {
                if f > t {
                    return Err(Failure::usage(format!("--from {f} is after --to {t}")));
                }
            }
            let filter = Filter {
                direction: match direction {
                    DirectionArg::Out => Direction::Out,
                    DirectionArg::In => Direction::In,
                },
                from: *from,
                to: *to,
                number: number.clone(),
                state: state.clone(),
            };
            let cfg = load_config(cli)?;
            let db = open_db(&cfg).await?;
            // A script reading JSON gets the whole register unless it asks for less; a person
            // at a terminal gets the newest hundred and the count.
            let limit = match (*all, *limit, *json) {
                (true, _, _) => None,
                (false, Some(n), _) => Some(n),
                (false, None, true) => None,
                (false, None, false) => Some(100),
            };
            list(&db, &filter, limit, *json, *wide).await
        }
        RegisterCmd::Export {
            direction,
            from,
            to,
            format,
            include_refused,
            output,
        } => {
            let (from, to) = export_range(*from, *to)?;
            let req = crate::register::export::Request {
                direction: match direction {
                    DirectionArg::Out => Direction::Out,
                    DirectionArg::In => Direction::In,
                },
                from,
                to,
                include_refused: *include_refused,
            };
            let cfg = load_config(cli)?;
            let db = open_db(&cfg).await?;
            export(&cfg, &db, &req, *format, output.as_deref()).await
        }
        RegisterCmd::Show { id, json, copy } => {
            let cfg = load_config(cli)?;
            let db = open_db(&cfg).await?;
            let id = &whole_entry_id(&db, id).await?;
            let Some((entry, rcpts)) = query::show(&db, id).await.map_err(Failure::refused)? else {
                return Err(Failure::refused(format!("no register entry {id}")));
            };
            if *copy {
                return write_copy(&db, id, entry.archive_path.as_deref()).await;
            }
            let pdfs = crate::register::pdf::parts_of(&db, id)
                .await
                .map_err(Failure::refused)?;
            show(
                EntryView::from(entry),
                rcpts.into_iter().map(RecipientView::from).collect(),
                pdfs,
                *json,
            )
        }
    }
}

/// `register show ID --copy`: the archived copy's bytes on standard output.
async fn write_copy(
    db: &sea_orm::DatabaseConnection,
    id: &str,
    place: Option<&str>,
) -> Result<(), Failure> {
    use std::io::Write;
    let bytes = match place {
        None => {
            return Err(Failure::refused(format!(
                "register entry {id} has no archived copy (not delivered, not an outgoing document, or past [register] archive_days)"
            )))
        }
        Some(crate::register::archive::IN_DATABASE) => {
            crate::register::archive::content_in_database(db, id)
                .await
                .map_err(Failure::refused)?
                .ok_or_else(|| {
                    Failure::refused(format!("the archived copy of {id} is missing from the database"))
                })?
        }
        Some(path) => std::fs::read(path)
            .map_err(|e| Failure::refused(format!("archived copy {path} unreadable: {e}")))?,
    };
    let mut out = std::io::stdout().lock();
    out.write_all(&bytes)
        .and_then(|()| out.flush())
        .map_err(io_failure)
}

/// The first and last day of a month.
fn month_of(d: time::Date) -> (time::Date, time::Date) {
    let first = d.replace_day(1).unwrap_or(d);
    let last = first
        .replace_day(d.month().length(d.year()))
        .unwrap_or(first);
    (first, last)
}

/// The export's range: what was given, the rest from the month of the given end (or this month).
fn export_range(
    from: Option<time::Date>,
    to: Option<time::Date>,
) -> Result<(time::Date, time::Date), Failure> {
    let today = crate::policy::calendar::vietnam_date(time::OffsetDateTime::now_utc());
    let (from, to) = match (from, to) {
        (Some(f), Some(t)) => (f, t),
        (Some(f), None) => (f, month_of(f).1),
        (None, Some(t)) => (month_of(t).0, t),
        (None, None) => month_of(today),
    };
    if from > to {
        return Err(Failure::usage(format!("--from {from} is after --to {to}")));
    }
    Ok((from, to))
}

async fn export(
    cfg: &crate::config::Config,
    db: &sea_orm::DatabaseConnection,
    req: &crate::register::export::Request,
    format: ExportFormat,
    output: Option<&std::path::Path>,
) -> CliResult {
    use crate::register::export::{self, CsvBook, ExportError, HtmlBook};
    let heading = export::Heading {
        office: cfg.hostname.clone(),
        made_at: time::OffsetDateTime::now_utc(),
    };
    let write = async |w: &mut dyn Write| -> Result<(), ExportError> {
        let mut w = std::io::BufWriter::new(w);
        match format {
            ExportFormat::Csv => {
                CsvBook::begin(req.direction, &mut w)?;
                export::each_line(db, req, |l| CsvBook::line(&l, &mut w)).await?;
            }
            ExportFormat::Html => {
                let mut book = HtmlBook::begin(req, &heading, &mut w)?;
                export::each_line(db, req, |l| book.line(&l, &mut w)).await?;
                book.finish(&mut w)?;
            }
        }
        w.flush()?;
        Ok(())
    };
    match output {
        // Written beside the target and renamed: an export that fails leaves no half file.
        Some(path) => {
            let tmp = path.with_extension("part");
            let mut file = super::as_invoker(|| std::fs::File::create(&tmp))
                .map_err(|e| Failure::refused(format!("cannot write {}: {e}", tmp.display())))?;
            if let Err(e) = write(&mut file).await {
                std::fs::remove_file(&tmp).ok();
                return Err(Failure::refused(e));
            }
            std::fs::rename(&tmp, path)
                .map_err(|e| Failure::refused(format!("cannot write {}: {e}", path.display())))
        }
        None => write(&mut std::io::stdout().lock())
            .await
            .map_err(Failure::refused),
    }
}

fn io_failure(e: std::io::Error) -> Failure {
    Failure::refused(format!("cannot write the listing: {e}"))
}

/// Streams the entries to standard output: a year of rows never sits in memory at once.
/// The register id an argument names: a whole id, or the start of one (as listings show).
async fn whole_entry_id(db: &sea_orm::DatabaseConnection, given: &str) -> Result<String, Failure> {
    use crate::store::entity::register_entry as entry;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QuerySelect};
    let Some(prefix) = crate::queue::admin::short_id(given) else {
        return Ok(given.to_string());
    };
    let ids: Vec<String> = entry::Entity::find()
        .select_only()
        .column(entry::Column::Id)
        .filter(entry::Column::Id.starts_with(prefix))
        .limit(2)
        .into_tuple()
        .all(db)
        .await
        .map_err(Failure::refused)?;
    crate::queue::admin::whole_id(given, ids).map_err(Failure::refused)
}

/// The default table's columns, 120 in all: date, number, subject, level, result, id.
const NARROW: [usize; 6] = [10, 12, 25, 25, 26, 12];

/// What became of an entry, in few words: its state, with the timeliness of a sent
/// document, the rule that refused one, or the signature result of an incoming one.
fn result_of(row: &crate::store::entity::register_entry::Model) -> String {
    let state = row.state.as_str();
    match (row.direction, row.state) {
        (_, crate::model::EntryState::Refused) => {
            format!("{state} {}", row.rule.as_deref().unwrap_or("-"))
        }
        (crate::model::Direction::In, _) => format!(
            "{state} smime={}",
            row.smime_result.as_deref().unwrap_or("-")
        ),
        (crate::model::Direction::Out, _) => match row.timeliness.as_deref() {
            Some(t) => format!("{state} {t}"),
            None => state.to_string(),
        },
    }
}

async fn list(
    db: &sea_orm::DatabaseConnection,
    filter: &Filter,
    limit: Option<u64>,
    json: bool,
    wide: bool,
) -> CliResult {
    let mut rows = query::stream(db, filter, limit)
        .await
        .map_err(Failure::refused)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut shown = 0u64;
    if json {
        out.write_all(b"[").map_err(io_failure)?;
    } else if wide {
        writeln!(
            out,
            "{:<32}  {:<16}  {:<14}  {:<25}  {:<30}  {:<28}  {:<28}  SUBJECT",
            "ID", "ACCEPTED (+07)", "NUMBER", "URGENCY", "RESULT", "FROM", "RECIPIENTS"
        )
        .map_err(io_failure)?;
    } else {
        let w = NARROW;
        writeln!(
            out,
            "{:<a$}  {:<b$}  {:<c$}  {:<d$}  {:<e$}  ID",
            "ACCEPTED",
            "NUMBER",
            "SUBJECT",
            "URGENCY",
            "RESULT",
            a = w[0],
            b = w[1],
            c = w[2],
            d = w[3],
            e = w[4]
        )
        .map_err(io_failure)?;
    }
    while let Some(row) = rows.next().await {
        let row = row.map_err(Failure::refused)?;
        if json {
            if shown > 0 {
                out.write_all(b",").map_err(io_failure)?;
            }
            out.write_all(b"\n").map_err(io_failure)?;
            serde_json::to_writer(&mut out, &EntryView::from(row))
                .map_err(|e| Failure::refused(format!("cannot write the listing: {e}")))?;
        } else {
            // The table straight from the row: no RFC 3339 round trip.
            let from = if row.header_from.is_empty() {
                &row.sender
            } else {
                &row.header_from
            };
            let level = level_name(crate::policy::Urgency::from_rank(row.urgency));
            let number = printable(row.number.as_deref().unwrap_or("-")).into_owned();
            let result = result_of(&row);
            if wide {
                writeln!(
                    out,
                    "{:<32}  {:<16}  {:<14}  {:<25}  {:<30}  {:<28}  {:<28}  {}",
                    row.id,
                    local_time_ms(row.accepted_at),
                    number,
                    level,
                    printable(&result),
                    printable(from),
                    printable(
                        &serde_json::from_str::<Vec<String>>(&row.recipients)
                            .unwrap_or_default()
                            .join(",")
                    ),
                    printable(&row.subject)
                )
                .map_err(io_failure)?;
            } else {
                let w = NARROW;
                writeln!(
                    out,
                    "{:<a$}  {:<b$}  {:<c$}  {:<d$}  {:<e$}  {}",
                    &local_time_ms(row.accepted_at)[..10],
                    cut(&number, w[1]),
                    cut(&printable(&row.subject), w[2]),
                    level,
                    cut(&printable(&result), w[4]),
                    &row.id[..row.id.len().min(w[5])],
                    a = w[0],
                    b = w[1],
                    c = w[2],
                    d = w[3],
                    e = w[4]
                )
                .map_err(io_failure)?;
            }
        }
        shown += 1;
    }
    drop(rows);
    if json {
        out.write_all(b"\n]\n").map_err(io_failure)?;
    }
    out.flush().map_err(io_failure)?;
    drop(out);
    // The count goes to the terminal's reader: after the table, or on standard error so the
    // JSON stays a plain array, and only when the limit cut the listing short.
    let summary = match limit {
        Some(l) if shown == l => {
            let total = query::count(db, filter).await.map_err(Failure::refused)?;
            Some(format!(
                "{shown} of {total} entries, newest first (--limit N or --all for more)"
            ))
        }
        _ => (!json).then(|| format!("{shown} entries")),
    };
    match (summary, json) {
        (Some(s), false) => println!("{s}"),
        (Some(s), true) => eprintln!("congvan register list: {s}"),
        (None, _) => {}
    }
    Ok(())
}

/// "Hỏa tốc (hoa-toc)", as SPEC.md asks human output to name levels.
fn level_name(u: crate::policy::Urgency) -> String {
    format!("{} ({})", u.vietnamese(), u.ascii())
}

/// `2026-11-22T07:05:01.123Z` → `2026-11-22 14:05` (Asia/Ho_Chi_Minh).
fn local_time(rfc3339: &str) -> String {
    time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .map(|t| local_time_ms((t.unix_timestamp_nanos() / 1_000_000) as i64))
        .unwrap_or_else(|_| rfc3339.to_string())
}

/// Unix ms → `2026-11-22 14:05` (Asia/Ho_Chi_Minh).
fn local_time_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .to_offset(crate::policy::calendar::VIETNAM_OFFSET);
    format!("{} {:02}:{:02}", t.date(), t.hour(), t.minute())
}

/// The PDF parts: name, SHA-256 before and after sealing, one line per signature.
fn print_pdfs(pdfs: &[crate::pdf::PartSealed]) {
    for p in pdfs {
        println!("pdf:           {}", printable(&p.name));
        println!("  sha-256:     {}", p.sha256_before);
        match (&p.sha256_after, &p.note) {
            (Some(after), _) => println!("  sealed:      sha-256 {after}"),
            (None, Some(note)) => println!("  {}", printable(note)),
            (None, None) => {}
        }
        for (i, s) in p.signatures.iter().enumerate() {
            println!(
                "  {}. {} serial {} {} {}",
                i + 1,
                printable(&s.signer),
                if s.serial.is_empty() { "-" } else { &s.serial },
                s.time.as_deref().unwrap_or("-"),
                printable(&s.result)
            );
        }
    }
}

fn show(
    e: EntryView,
    rcpts: Vec<RecipientView>,
    pdfs: Vec<crate::pdf::PartSealed>,
    json: bool,
) -> CliResult {
    if json {
        #[derive(serde::Serialize)]
        struct Shown {
            #[serde(flatten)]
            entry: EntryView,
            handover: Vec<RecipientView>,
            pdf: Vec<crate::pdf::PartSealed>,
        }
        let shown = Shown {
            entry: e,
            handover: rcpts,
            pdf: pdfs,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&shown).unwrap_or_default()
        );
        return Ok(());
    }
    let s = crate::policy::Secrecy::parse(&e.secrecy).unwrap_or_default();
    let register = match e.direction {
        crate::queue::Direction::In => "incoming (văn bản đến)",
        crate::queue::Direction::Out => "outgoing (văn bản đi)",
    };
    let opt = |v: &Option<String>| printable(v.as_deref().unwrap_or("-")).into_owned();
    println!("id:            {}", e.id);
    println!("register:      {register}");
    println!("number:        {}", opt(&e.number));
    println!("subject:       {}", printable(&e.subject));
    println!("state:         {}", e.state);
    if let Some(t) = e
        .timeliness
        .as_deref()
        .and_then(crate::register::Timeliness::parse)
    {
        println!("on time:       {} ({})", t.vi(), t.as_str());
    }
    if let Some(r) = &e.rule {
        println!("rule:          {}", printable(r));
    }
    if let Some(r) = &e.reason {
        println!("reason:        {}", printable(r));
    }
    println!(
        "urgency:       {}",
        level_name(crate::policy::Urgency::parse(&e.urgency).unwrap_or_default())
    );
    println!("secrecy:       {} ({})", s.vietnamese(), s.ascii());
    println!("signing date:  {}", opt(&e.signed_date));
    println!(
        "accepted:      {} via {} from {}{}",
        local_time(&e.accepted_at),
        e.listener,
        e.client_ip,
        e.account
            .as_ref()
            .map(|a| format!(", account {a}"))
            .unwrap_or_default()
    );
    println!(
        "sender:        {}",
        if e.sender.is_empty() {
            "<>".into()
        } else {
            printable(&e.sender)
        }
    );
    println!("from:          {}", printable(&e.from));
    if let Some(d) = &e.deadline {
        println!("deadline:      {}", local_time(d));
    }
    if let (Some(serial), Some(digest)) = (&e.seal_serial, &e.seal_digest) {
        println!(
            "sealed:        {} with certificate serial {serial}, content sha-256 {digest}",
            e.signed_at.as_deref().map(local_time).unwrap_or_default()
        );
    }
    if let Some(r) = &e.smime_result {
        println!(
            "s/mime:        {}{}{}",
            printable(r),
            e.smime_signer
                .as_ref()
                .map(|s| format!(" signer {}", printable(s)))
                .unwrap_or_default(),
            e.smime_reason
                .as_ref()
                .map(|s| format!(" ({})", printable(s)))
                .unwrap_or_default()
        );
    }
    if let Some(at) = &e.sent_at {
        println!(
            "sent:          {} (after {} s)",
            local_time(at),
            e.delay_seconds.unwrap_or_default()
        );
    }
    if let Some(p) = &e.archive_path {
        // A crash within a second of the delivery can lose the copy (it is flushed to disk
        // once a second): say so rather than name a file that is not there.
        if p == crate::register::archive::IN_DATABASE {
            println!(
                "archived copy: in the database (table archive_content, id {})",
                printable(&e.id)
            );
        } else {
            let missing = if std::path::Path::new(p).is_file() {
                ""
            } else {
                " (missing: not on disk)"
            };
            println!("archived copy: {}{missing}", printable(p));
        }
    }
    print_pdfs(&pdfs);
    if rcpts.is_empty() {
        println!(
            "recipients:    {} (not handed over)",
            printable(&e.recipients.join(", "))
        );
        return Ok(());
    }
    println!("handover (sổ bàn giao):");
    let rows: Vec<Vec<String>> = rcpts
        .iter()
        .map(|r| {
            vec![
                r.address.clone(),
                r.state.to_string(),
                r.at.as_deref()
                    .map(local_time)
                    .unwrap_or_else(|| "-".into()),
                r.attempts.to_string(),
                r.reply.clone().unwrap_or_else(|| "-".into()),
                r.dsn.clone().unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &["RECIPIENT", "STATE", "AT (+07)", "ATTEMPTS", "REPLY", "DSN"],
        &rows,
    );
    Ok(())
}
