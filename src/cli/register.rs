//! `congvan register list|show`: the outgoing register (sổ đăng ký văn bản đi), the incoming
//! register (sổ đăng ký văn bản đến) and each document's handover book (sổ bàn giao).

use std::io::Write;

use clap::{Subcommand, ValueEnum};
use futures_util::StreamExt;

use super::{load_config, open_db, print_table, Cli, CliResult, Failure};
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
            list(&db, &filter, limit, *json).await
        }
        RegisterCmd::Show { id, json, copy } => {
            let cfg = load_config(cli)?;
            let db = open_db(&cfg).await?;
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

fn io_failure(e: std::io::Error) -> Failure {
    Failure::refused(format!("cannot write the listing: {e}"))
}

/// Streams the entries to standard output: a year of rows never sits in memory at once.
async fn list(
    db: &sea_orm::DatabaseConnection,
    filter: &Filter,
    limit: Option<u64>,
    json: bool,
) -> CliResult {
    let mut rows = query::stream(db, filter, limit)
        .await
        .map_err(Failure::refused)?;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut shown = 0u64;
    if json {
        out.write_all(b"[").map_err(io_failure)?;
    } else {
        writeln!(
            out,
            "{:<32}  {:<16}  {:<14}  {:<35}  {:<9}  {:<8}  {:<28}  SUBJECT",
            "ID", "ACCEPTED (+07)", "NUMBER", "URGENCY", "STATE", "ON TIME", "FROM"
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
            // The table straight from the row: no RFC 3339 round trip, no recipients parsed.
            let from = if row.header_from.is_empty() {
                &row.sender
            } else {
                &row.header_from
            };
            writeln!(
                out,
                "{:<32}  {:<16}  {:<14}  {:<35}  {:<9}  {:<8}  {:<28}  {}",
                row.id,
                local_time_ms(row.accepted_at),
                printable(row.number.as_deref().unwrap_or("-")),
                level_name(crate::policy::Urgency::from_rank(row.urgency)),
                row.state.as_str(),
                row.timeliness.as_deref().unwrap_or("-"),
                printable(from),
                printable(&row.subject)
            )
            .map_err(io_failure)?;
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
