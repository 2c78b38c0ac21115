//! `congvan queue list|show|hold|release|retry|delete`.

use clap::Subcommand;
use sea_orm::DatabaseConnection;

use super::{load_config, open_db, print_table, print_table_within, Cli, CliResult, Failure};
use crate::config::Config;
use crate::queue::admin;
use crate::util::printable;

#[derive(Subcommand, Debug)]
pub enum QueueCmd {
    /// List waiting, deferred, held and in-delivery messages.
    ///
    /// The table fits 120 columns: each id's first 12 characters (every command that takes
    /// an id takes that), the document number and subject, the level, the state (with the
    /// node delivering it), the deadline and the reason; subject and reason are cut with
    /// "…" to fit. --wide shows whole ids, direction, sender and recipients, uncut.
    List {
        /// A JSON array: id, direction, state, sender, recipients, urgency, deadline, reason,
        /// subject, number...
        #[arg(long)]
        json: bool,
        /// Every column, whole ids, nothing cut.
        #[arg(long, conflicts_with = "json")]
        wide: bool,
    },
    /// Show one message with its recipients and their last replies.
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Hold a message: it is not delivered until released. Also one left "delivering" by a
    /// daemon that stopped; one that a running daemon is delivering is refused (exit 1).
    Hold {
        id: String,
        /// Why (shown in `queue list`).
        #[arg(long, default_value = "held by administrator")]
        reason: String,
    },
    /// Release a held message for delivery now (a poison message gets two more attempts).
    Release { id: String },
    /// Retry a deferred message now.
    Retry { id: String },
    /// Delete a message from the queue without notifying its sender (any state but one a
    /// running daemon is delivering).
    Delete { id: String },
}

pub async fn run(cli: &Cli, cmd: &QueueCmd) -> CliResult {
    let cfg = load_config(cli)?;
    let db = open_db(&cfg).await?;
    let actor = crate::audit::cli_actor();
    match cmd {
        QueueCmd::List { json, wide } => list(&db, *json, *wide).await,
        QueueCmd::Show { id, json } => show(&db, &whole(&db, id).await?, *json).await,
        QueueCmd::Hold { id, reason } => {
            hold(&db, &actor, &cfg, &whole(&db, id).await?, reason).await
        }
        QueueCmd::Release { id } => release(&db, &actor, &whole(&db, id).await?).await,
        QueueCmd::Retry { id } => retry(&db, &actor, &cfg, &whole(&db, id).await?).await,
        QueueCmd::Delete { id } => delete(&db, &actor, &cfg, &whole(&db, id).await?).await,
    }
}

/// `queue list`.
/// The queue id an argument names (a whole id, or the start of one).
async fn whole(db: &DatabaseConnection, given: &str) -> Result<String, Failure> {
    admin::resolve_id(db, given).await.map_err(Failure::refused)
}

async fn list(db: &DatabaseConnection, json: bool, wide: bool) -> CliResult {
    let list = admin::list(db).await.map_err(Failure::refused)?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return Ok(());
    }
    let state = |e: &admin::QueueEntry| match &e.node {
        Some(node) => format!("{} ({node})", e.state),
        None => e.state.to_string(),
    };
    let level = |e: &admin::QueueEntry| {
        let u = crate::policy::Urgency::parse(&e.urgency).unwrap_or_default();
        format!("{} ({})", u.vietnamese(), u.ascii())
    };
    let number = |e: &admin::QueueEntry| e.number.clone().unwrap_or_else(|| "-".into());
    let deadline = |e: &admin::QueueEntry| e.deadline.clone().unwrap_or_else(|| "-".into());
    let reason = |e: &admin::QueueEntry| e.reason.clone().unwrap_or_default();
    if wide {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|e| {
                vec![
                    e.id.clone(),
                    e.direction.to_string(),
                    number(e),
                    e.subject.clone(),
                    level(e),
                    state(e),
                    deadline(e),
                    if e.sender.is_empty() {
                        "<>".into()
                    } else {
                        e.sender.clone()
                    },
                    e.recipients.join(","),
                    reason(e),
                ]
            })
            .collect();
        print_table(
            &[
                "ID",
                "DIR",
                "NUMBER",
                "SUBJECT",
                "URGENCY",
                "STATE",
                "DEADLINE",
                "SENDER",
                "RECIPIENTS",
                "REASON",
            ],
            &rows,
        );
    } else {
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|e| {
                vec![
                    e.id.chars().take(admin::SHORT_ID).collect(),
                    number(e),
                    e.subject.clone(),
                    level(e),
                    state(e),
                    deadline(e),
                    reason(e),
                ]
            })
            .collect();
        print_table_within(
            &[
                "ID", "NUMBER", "SUBJECT", "URGENCY", "STATE", "DEADLINE", "REASON",
            ],
            &rows,
            super::LISTING_WIDTH,
            &[6, 2, 1],
        );
    }
    println!("{} message(s) in the queue", list.len());
    Ok(())
}

/// `queue show`.
async fn show(db: &DatabaseConnection, id: &str, json: bool) -> CliResult {
    let d = admin::show(db, id).await.map_err(Failure::refused)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
    } else {
        print_detail(&d);
    }
    Ok(())
}

/// `queue show` as text: the message, its S/MIME result and each recipient's last reply.
fn print_detail(d: &admin::QueueDetail) {
    let e = &d.entry;
    println!("id:          {}", e.id);
    println!("direction:   {}", e.direction);
    println!("state:       {}", e.state);
    if let Some(r) = &e.reason {
        println!("reason:      {}", printable(r));
    }
    println!(
        "sender:      {}",
        if e.sender.is_empty() {
            "<>".into()
        } else {
            printable(&e.sender)
        }
    );
    println!("from:        {}", printable(&d.header_from));
    println!("subject:     {}", printable(&e.subject));
    let u = crate::policy::Urgency::parse(&e.urgency).unwrap_or_default();
    let s = crate::policy::Secrecy::parse(&d.secrecy).unwrap_or_default();
    println!("urgency:     {} ({})", u.vietnamese(), u.ascii());
    println!("secrecy:     {} ({})", s.vietnamese(), s.ascii());
    println!("deadline:    {}", e.deadline.as_deref().unwrap_or("-"));
    println!("size:        {} bytes", e.size);
    println!(
        "received:    {} via {} from {}",
        e.received_at, d.listener, d.client_ip
    );
    if let Some(a) = &d.account {
        println!("account:     {}", printable(a));
    }
    println!("attempts:    {}", e.attempts);
    if d.unfinished_attempts > 0 {
        println!(
            "unfinished:  {} attempt(s) stopped with the daemon (two make a message poison)",
            d.unfinished_attempts
        );
    }
    if let Some(by) = &d.claimed_by {
        println!(
            "claimed by:  {} (lease until {})",
            printable(by),
            d.lease_until.as_deref().unwrap_or("-")
        );
    }
    if let Some(r) = &d.smime_result {
        println!(
            "s/mime:      {}{}{}",
            printable(r),
            d.smime_signer
                .as_ref()
                .map(|s| format!(" signer {}", printable(s)))
                .unwrap_or_default(),
            d.smime_reason
                .as_ref()
                .map(|s| format!(" ({})", printable(s)))
                .unwrap_or_default()
        );
    }
    println!("recipients:");
    for r in &d.recipient_details {
        println!(
            "  {} [{}] {}{}",
            printable(&r.address),
            r.route,
            r.state,
            r.last_reply
                .as_ref()
                .map(|x| format!(": {}", printable(x)))
                .unwrap_or_default()
        );
    }
}

/// `queue hold`.
async fn hold(
    db: &DatabaseConnection,
    actor: &str,
    cfg: &Config,
    id: &str,
    reason: &str,
) -> CliResult {
    admin::hold(db, actor, id, reason, &admin::Takeover::from_config(cfg))
        .await
        .map_err(Failure::refused)?;
    println!("{id} held");
    Ok(())
}

/// `queue release`.
async fn release(db: &DatabaseConnection, actor: &str, id: &str) -> CliResult {
    admin::release(db, actor, id)
        .await
        .map_err(Failure::refused)?;
    println!("{id} released");
    Ok(())
}

/// `queue retry`.
async fn retry(db: &DatabaseConnection, actor: &str, cfg: &Config, id: &str) -> CliResult {
    admin::retry(db, actor, id, &admin::Takeover::from_config(cfg))
        .await
        .map_err(Failure::refused)?;
    println!("{id} scheduled for delivery now");
    Ok(())
}

/// `queue delete`.
async fn delete(db: &DatabaseConnection, actor: &str, cfg: &Config, id: &str) -> CliResult {
    admin::delete(
        db,
        actor,
        &cfg.spool_dir(),
        id,
        &admin::Takeover::from_config(cfg),
    )
    .await
    .map_err(Failure::refused)?;
    println!("{id} deleted");
    Ok(())
}
