//! `congvan audit verify|list`: the hash-chained audit log.

use clap::Subcommand;

use super::{load_config, open_db, print_table, Cli, CliResult, Failure};
use crate::audit::{self, Head};

const VERIFY_ABOUT: &str = "\
Checks the hash chain of the audit log (table audit_log): that the entries are numbered 1, 2, 3, \
… without gaps, that each carries the hash of the one before it, and that each one's hash matches \
its fields. Exit 0 when intact, printing the number of entries and the head \
(`intact: N entries, head #N <hash>`); exit 1 naming the first bad entry and what is wrong with \
it (changed, removed, swapped or reordered).

What the chain alone cannot show: removing the newest entries (truncation) leaves a shorter chain \
that checks, and anyone who can write the database can rewrite the log with recomputed hashes (the \
hash has no secret). Note the printed head somewhere the database's writers cannot change (a \
ticket, the paper register, another machine) and pass it later with --head: every entry up to it \
is then proven unchanged, and truncation below it is detected.";

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Check the audit log's hash chain; exit 1 and the first bad entry when broken.
    #[command(long_about = VERIFY_ABOUT)]
    Verify {
        /// A head noted earlier, `SEQ:HASH` (or `#SEQ HASH` as printed): exit 1 when that
        /// entry is gone or has another hash.
        #[arg(long, value_name = "SEQ:HASH")]
        head: Option<String>,
        /// One JSON object: intact, entries, head, first_bad.
        #[arg(long)]
        json: bool,
    },
    /// Show the newest entries, oldest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 50)]
        last: u64,
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(cli: &Cli, cmd: &AuditCmd) -> CliResult {
    // Parse arguments before touching the database, so bad usage is exit 2.
    let noted = match cmd {
        AuditCmd::Verify {
            head: Some(text), ..
        } => Some(
            text.parse::<Head>()
                .map_err(|e| Failure::usage(format!("--head: {e}")))?,
        ),
        _ => None,
    };
    let cfg = load_config(cli)?;
    let db = open_db(&cfg).await?;
    match cmd {
        AuditCmd::Verify { json, .. } => {
            let report = audit::verify(&db, noted.as_ref())
                .await
                .map_err(|e| Failure::refused(format!("cannot read the audit log: {e}")))?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            }
            match &report.first_bad {
                None => {
                    if !*json {
                        match &report.head {
                            Some(h) => println!("intact: {} entries, head {h}", report.entries),
                            None => println!("intact: 0 entries (the audit log is empty)"),
                        }
                        if let Some(n) = &report.noted_head {
                            println!("noted head #{} found unchanged", n.seq);
                        }
                    }
                    Ok(())
                }
                Some(bad) => {
                    if !*json {
                        println!("broken at entry #{}: {}", bad.seq, bad.message);
                        match &report.head {
                            Some(h) => println!(
                                "entries #1..#{} before it check ({} entries, last {h})",
                                h.seq, report.entries
                            ),
                            None => println!("no entry before it checks"),
                        }
                    }
                    Err(Failure::refused(format!(
                        "the audit log is broken at entry #{}",
                        bad.seq
                    )))
                }
            }
        }
        AuditCmd::List { last, json } => {
            let rows = audit::last_entries(&db, *last)
                .await
                .map_err(Failure::refused)?;
            if *json {
                let v: Vec<serde_json::Value> = rows
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "seq": m.seq,
                            "at": crate::util::rfc3339_ms(m.at),
                            "actor": m.actor,
                            "action": m.action,
                            "subject": m.subject,
                            "details": serde_json::from_str::<serde_json::Value>(&m.details)
                                .unwrap_or(serde_json::Value::String(m.details.clone())),
                            "prev_hash": m.prev_hash,
                            "hash": m.hash,
                        })
                    })
                    .collect();
                println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
            } else {
                let table: Vec<Vec<String>> = rows
                    .iter()
                    .map(|m| {
                        vec![
                            m.seq.to_string(),
                            crate::util::rfc3339_ms(m.at),
                            m.actor.clone(),
                            m.action.clone(),
                            m.subject.clone(),
                            m.details.clone(),
                        ]
                    })
                    .collect();
                print_table(
                    &["SEQ", "AT", "ACTOR", "ACTION", "SUBJECT", "DETAILS"],
                    &table,
                );
                println!(
                    "{} entr{}",
                    rows.len(),
                    if rows.len() == 1 { "y" } else { "ies" }
                );
            }
            Ok(())
        }
    }
}
