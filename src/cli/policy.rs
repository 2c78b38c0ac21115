//! `congvan policy check|explain|calendar`: validate the policy directory, dry-run the policy
//! on a message file, and compute a working-day deadline.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use serde_json::json;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{Date, OffsetDateTime, PrimitiveDateTime, Time};

use super::{load_config, Cli, CliResult, Failure};
use crate::config::Config;
use crate::policy::calendar::VIETNAM_OFFSET;
use crate::policy::classify::{parse_iso_date, Classification, Field};
use crate::policy::file::{self, PolicyError};
use crate::policy::{self as pol, Action, Decision, Flow, Policy, Refusal};
use crate::register::numbers as records;

#[derive(Subcommand, Debug)]
pub enum PolicyCmd {
    /// Check every file of the policy directory (profiles, active.toml, calendar/YYYY.toml).
    /// Errors name the file, line, column and key; exit 1 when there is any.
    Check {
        /// The policy directory (default: policy_dir of the configuration).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// A JSON report: ok, dir, active, profiles, years, errors [{file, line, column, key, message}].
        #[arg(long)]
        json: bool,
    },
    /// Dry run of the policy in force on a message file (.eml): the classification with its
    /// sources, the rule that fired, the action and the deadline (YYYY-MM-DD). Nothing is
    /// sent or recorded.
    Explain {
        /// The message, as it would be submitted (LF line endings are accepted).
        #[arg(value_name = "FILE.eml")]
        file: PathBuf,
        /// Envelope sender (default: the header From).
        #[arg(long, value_name = "ADDR")]
        from: Option<String>,
        /// Envelope recipient, repeatable (default: the header To and Cc).
        #[arg(long = "rcpt", value_name = "ADDR")]
        rcpt: Vec<String>,
        /// Moment of acceptance: RFC 3339 (2026-02-13T15:30:00+07:00), Vietnam local time
        /// "YYYY-MM-DD HH:MM", or a date YYYY-MM-DD (09:00 local). Default: now.
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        at: Option<OffsetDateTime>,
        /// The policy directory (default: policy_dir of the configuration).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// The report as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// The deadline N working days after DATE (day 0) under the profile in force. Prints
    /// "deadline: YYYY-MM-DD", then each non-working day passed over, "YYYY-MM-DD <reason>".
    Calendar {
        /// Day 0, e.g. the signing date: YYYY-MM-DD.
        #[arg(long, value_name = "DATE", value_parser = parse_date)]
        from: Date,
        /// How many working days after DATE.
        #[arg(long, value_name = "N")]
        working_days: u32,
        /// The policy directory (default: policy_dir of the configuration).
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// {from, working_days, deadline, deadline_at, skipped: [{date, reason}]}.
        #[arg(long)]
        json: bool,
    },
}

fn parse_date(s: &str) -> Result<Date, String> {
    parse_iso_date(s).ok_or_else(|| format!("{s:?} is not a date YYYY-MM-DD"))
}

fn parse_time(s: &str) -> Result<OffsetDateTime, String> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &Rfc3339) {
        return Ok(t);
    }
    if let Some(d) = parse_iso_date(s) {
        return Ok(
            PrimitiveDateTime::new(d, Time::from_hms(9, 0, 0).unwrap_or(Time::MIDNIGHT))
                .assume_offset(VIETNAM_OFFSET),
        );
    }
    let local = s.replacen('T', " ", 1);
    PrimitiveDateTime::parse(&local, format_description!("[year]-[month]-[day] [hour]:[minute]"))
        .map(|t| t.assume_offset(VIETNAM_OFFSET))
        .map_err(|_| {
            format!("{s:?} is not a time: use 2026-02-13T15:30:00+07:00, \"2026-02-13 15:30\" (Vietnam) or 2026-02-13")
        })
}

/// The policy directory and, when it could be read, the configuration.
fn policy_dir(cli: &Cli, dir: &Option<PathBuf>) -> Result<(PathBuf, Option<Config>), Failure> {
    match dir {
        Some(d) => Ok((d.clone(), load_config(cli).ok())),
        None => {
            let cfg = load_config(cli)?;
            Ok((cfg.policy_dir.clone(), Some(cfg)))
        }
    }
}

fn load_policy(dir: &Path) -> Result<Policy, Failure> {
    file::load(dir).map_err(|errs| {
        for e in &errs.0 {
            eprintln!("{e}");
        }
        Failure::refused(format!(
            "the policy in {} has {} error(s)",
            dir.display(),
            errs.0.len()
        ))
    })
}

pub async fn run(cli: &Cli, cmd: &PolicyCmd) -> CliResult {
    match cmd {
        PolicyCmd::Check { dir, json } => {
            let (dir, _) = policy_dir(cli, dir)?;
            check(&dir, *json)
        }
        PolicyCmd::Calendar {
            from,
            working_days,
            dir,
            json,
        } => {
            let (dir, _) = policy_dir(cli, dir)?;
            let policy = load_policy(&dir)?;
            calendar(&policy, *from, *working_days, *json);
            Ok(())
        }
        PolicyCmd::Explain {
            file,
            from,
            rcpt,
            at,
            dir,
            json,
        } => {
            let (dir, cfg) = policy_dir(cli, dir)?;
            let policy = load_policy(&dir)?;
            let raw = super::as_invoker(|| std::fs::read(file))
                .map_err(|e| Failure::refused(format!("cannot read {}: {e}", file.display())))?;
            let at = at.unwrap_or_else(OffsetDateTime::now_utc);
            let report = explain(&policy, cfg.as_ref(), &raw, from.as_deref(), rcpt, at).await?;
            if *json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report.to_json()).unwrap_or_default()
                );
            } else {
                print!("{}", report.to_text());
            }
            Ok(())
        }
    }
}

fn check(dir: &Path, json: bool) -> CliResult {
    match file::check(dir) {
        Ok(c) => {
            if json {
                let out = json!({
                    "ok": true,
                    "dir": dir.display().to_string(),
                    "active": c.policy.profile,
                    "profiles": c.profiles,
                    "years": c.years,
                    "errors": [],
                });
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                println!(
                    "ok: {} (profile in force: {}; profiles: {}; calendar years: {})",
                    dir.display(),
                    c.policy.profile,
                    c.profiles.join(", "),
                    if c.years.is_empty() {
                        "none".to_string()
                    } else {
                        c.years
                            .iter()
                            .map(|y| y.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                );
                if !c.policy.rules.description.is_empty() {
                    println!("{}: {}", c.policy.profile, c.policy.rules.description);
                }
            }
            Ok(())
        }
        Err(errs) => {
            if json {
                let list: Vec<_> = errs.0.iter().map(error_json).collect();
                let out = json!({
                    "ok": false,
                    "dir": dir.display().to_string(),
                    "errors": list,
                });
                println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            } else {
                for e in &errs.0 {
                    eprintln!("{e}");
                }
            }
            Err(Failure::refused(format!(
                "policy check failed: {} error(s) in {}",
                errs.0.len(),
                dir.display()
            )))
        }
    }
}

fn error_json(e: &PolicyError) -> serde_json::Value {
    use crate::policy::calendar::CalendarError;
    let (file, line, column, key) = match e {
        PolicyError::Parse {
            path,
            line,
            column,
            key,
            ..
        } => (Some(path), *line, *column, key.clone()),
        PolicyError::Invalid {
            path,
            line,
            column,
            key,
            ..
        } => (Some(path), *line, *column, Some(key.clone())),
        PolicyError::ReadDir { path, .. }
        | PolicyError::ReadFile { path, .. }
        | PolicyError::NoActive { path }
        | PolicyError::ProfileName { path } => (Some(path), None, None, None),
        PolicyError::Calendar(CalendarError::Parse {
            path,
            line,
            column,
            key,
            ..
        }) => (Some(path), *line, *column, key.clone()),
        PolicyError::Calendar(CalendarError::Invalid {
            path,
            line,
            column,
            key,
            ..
        }) => (Some(path), *line, *column, Some(key.clone())),
        _ => (None, None, None, None),
    };
    json!({
        "file": file.map(|p| p.display().to_string()),
        "line": line,
        "column": column,
        "key": key,
        "message": e.to_string(),
    })
}

fn calendar(policy: &Policy, from: Date, n: u32, json: bool) {
    let d = policy.calendar.add_working_days(from, n);
    if json {
        let skipped: Vec<_> = d
            .skipped
            .iter()
            .map(|(date, reason)| json!({"date": date.to_string(), "reason": reason}))
            .collect();
        let out = json!({
            "from": from.to_string(),
            "working_days": n,
            "deadline": d.date.to_string(),
            "deadline_at": policy.calendar.end_of_working_day(d.date).format(&Rfc3339).unwrap_or_default(),
            "skipped": skipped,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        println!("deadline: {}", d.date);
        for (date, reason) in &d.skipped {
            println!("{date} {reason}");
        }
    }
}

/// The envelope as `explain` sees it: each address with whether the policy lets it through.
struct Envelope {
    sender: String,
    sender_allowed: bool,
    recipients: Vec<(String, bool)>,
}

struct Report<'a> {
    policy: &'a Policy,
    at: OffsetDateTime,
    classification: Classification,
    envelope: Envelope,
    decision: Decision,
    /// Duplicate check: None when not checked (no database).
    duplicate_checked: bool,
    /// The PDF parts: what was found, and why a part carries no valid signature of a
    /// competent signer (None when it does).
    pdfs: Vec<(crate::pdf::PartSealed, Option<String>)>,
    /// The trust anchors came from the database (else none were known).
    pdf_trust_known: bool,
}

async fn explain<'a>(
    policy: &'a Policy,
    cfg: Option<&Config>,
    raw: &[u8],
    from: Option<&str>,
    rcpt: &[String],
    at: OffsetDateTime,
) -> Result<Report<'a>, Failure> {
    let data = to_crlf(raw);
    let classification = pol::classify_message(&policy.rules.classification, &data);
    let headers = crate::mime::read_headers(&data);
    let header_from = headers.from.first().cloned().unwrap_or_default();
    let sender = from.map(str::to_string).unwrap_or(header_from.clone());
    let recipients: Vec<String> = if rcpt.is_empty() {
        header_recipients(&data)
    } else {
        rcpt.to_vec()
    };
    let local = |d: &str| cfg.is_some_and(|c| c.inbound.is_local_domain(d));
    let domains = policy.domains();
    let sender_allowed =
        crate::address::domain_of(&sender).is_some_and(|d| domains.sender_allowed(&d) || local(&d));
    let recipients: Vec<(String, bool)> = recipients
        .into_iter()
        .map(|r| {
            let ok = crate::address::domain_of(&r)
                .is_some_and(|d| domains.recipient_allowed(&d) || local(&d));
            (r, ok)
        })
        .collect();
    let incoming = !recipients.is_empty()
        && recipients
            .iter()
            .all(|(r, _)| crate::address::domain_of(r).is_some_and(|d| local(&d)));
    let flow = if incoming {
        Flow::Incoming
    } else {
        Flow::Outgoing
    };
    let mut decision = pol::decide(policy, &classification, at, flow);

    if flow == Flow::Outgoing && !sender_allowed {
        decision.rule = "domains.sender".into();
        decision.action = Action::Refuse(Refusal {
            code: 553,
            status: "5.7.1".into(),
            text_en: format!("Sender domain of <{sender}> is not allowed by policy"),
            text_vi: crate::policy::rule_text::SENDER_DOMAIN.into(),
            rule: "domains.sender".into(),
            secrecy: None,
            detail: None,
        });
        decision.deadline = None;
    } else if !recipients.is_empty() && recipients.iter().all(|(_, ok)| !ok) {
        decision.rule = "domains.recipient".into();
        decision.action = Action::Refuse(Refusal {
            code: 550,
            status: "5.7.1".into(),
            text_en: "no recipient domain is allowed by policy".into(),
            text_vi: crate::policy::rule_text::RECIPIENT_DOMAIN.into(),
            rule: "domains.recipient".into(),
            secrecy: None,
            detail: None,
        });
        decision.deadline = None;
    }

    // The uniqueness rule needs the database; look only, reserve nothing.
    let mut duplicate_checked = false;
    if let (Some(cfg), Action::Accept, Some(n), Some(office)) = (
        cfg,
        &decision.action,
        classification.number.as_deref(),
        crate::address::domain_of(&header_from),
    ) {
        if flow == Flow::Outgoing && policy.rules.number.unique_per_year {
            let db = super::open_db(cfg).await?;
            let year = classification
                .signed_date
                .unwrap_or_else(|| crate::policy::calendar::vietnam_date(at))
                .year();
            let found = records::find_issued(&db, &office, year, n)
                .await
                .map_err(Failure::refused)?;
            db.close().await.ok();
            duplicate_checked = true;
            if found.is_some() && !classification.resend {
                decision.action =
                    Action::Refuse(pol::deadline::duplicate_refusal(n, &office, year));
                decision.rule = "number.duplicate".into();
                decision.deadline = None;
            }
        }
    }
    let (pdfs, pdf_trust_known) =
        explain_pdfs(policy, cfg, &data, &header_from, at, flow, &mut decision).await?;
    Ok(Report {
        policy,
        at,
        classification,
        envelope: Envelope {
            sender,
            sender_allowed,
            recipients,
        },
        decision,
        duplicate_checked,
        pdfs,
        pdf_trust_known,
    })
}

/// The PDF parts checked as at end of DATA (trust anchors and CRLs from the database when
/// there is a configuration); with `[pdf] require_signer_signature`, an outgoing document's
/// first part without a valid competent signer's signature turns the decision into the
/// `pdf.signer` refusal.
async fn explain_pdfs(
    policy: &Policy,
    cfg: Option<&Config>,
    data: &[u8],
    header_from: &str,
    at: OffsetDateTime,
    flow: Flow,
    decision: &mut Decision,
) -> Result<(Vec<(crate::pdf::PartSealed, Option<String>)>, bool), Failure> {
    let parts = crate::pdf::pdf_parts(data);
    if parts.is_empty() {
        return Ok((Vec::new(), false));
    }
    let (anchors, crls, known) = match cfg {
        Some(cfg) => {
            let db = super::open_db(cfg).await?;
            let (a, c) = crate::pki::trust::material(&db, &Default::default())
                .await
                .map_err(Failure::refused)?;
            db.close().await.ok();
            (a, c, true)
        }
        None => (Default::default(), Default::default(), false),
    };
    let authorised = policy
        .signers
        .as_ref()
        .map(|s| s.for_domain(&crate::address::domain_of(header_from).unwrap_or_default()));
    let ctx = crate::pdf::CheckContext {
        anchors: &anchors,
        crls: &crls,
        at,
        opts: crate::smime::verify::VerifyOptions {
            require_revocation_data: policy.rules.incoming.require_revocation_data,
            ..Default::default()
        },
        authorised: authorised.as_ref(),
        max_depth: cfg.map_or(50, |c| c.limits.max_mime_depth),
    };
    let mut out = Vec::with_capacity(parts.len());
    for part in parts {
        let finding = crate::pdf::check_pdf(&part.name, &part.bytes, &ctx);
        let refusal = finding.refusal();
        if let (Some((en, vi)), Flow::Outgoing, Action::Accept, true) = (
            &refusal,
            flow,
            &decision.action,
            policy.rules.pdf.require_signer_signature,
        ) {
            decision.action = Action::Refuse(pol::deadline::pdf_signer_refusal(&part.name, en, vi));
            decision.rule = "pdf.signer".into();
            decision.deadline = None;
        }
        let signatures = finding
            .outcome
            .as_ref()
            .map(|c| c.iter().map(crate::pdf::SignatureSummary::of).collect())
            .unwrap_or_default();
        out.push((
            crate::pdf::PartSealed {
                name: part.name,
                sha256_before: finding.sha256,
                sha256_after: None,
                signatures,
                note: None,
            },
            refusal.map(|(en, _)| en),
        ));
    }
    Ok((out, known))
}

/// A message file saved with LF line endings, as SMTP would carry it (CRLF).
fn to_crlf(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32);
    let mut prev = 0u8;
    for &b in raw {
        if b == b'\n' && prev != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        prev = b;
    }
    out
}

fn header_recipients(data: &[u8]) -> Vec<String> {
    let Some(m) = mail_parser::MessageParser::default().parse_headers(data) else {
        return Vec::new();
    };
    m.to()
        .into_iter()
        .chain(m.cc())
        .flat_map(|a| a.iter())
        .filter_map(|a| a.address())
        .map(|a| a.trim().to_ascii_lowercase())
        .collect()
}

impl Report<'_> {
    fn sources(&self, field: Field) -> Vec<String> {
        self.classification
            .findings
            .iter()
            .filter(|f| f.field == field)
            .map(|f| format!("{} from {}", f.value, f.source))
            .collect()
    }

    fn to_text(&self) -> String {
        let c = &self.classification;
        let d = &self.decision;
        let mut s = String::new();
        let mut line = |l: String| {
            s.push_str(&l);
            s.push('\n');
        };
        line(format!(
            "profile:      {} ({})",
            self.policy.profile,
            self.policy.path.display()
        ));
        line(format!(
            "accepted at:  {}",
            self.at
                .to_offset(VIETNAM_OFFSET)
                .format(&Rfc3339)
                .unwrap_or_default()
        ));
        line(format!(
            "sender:       {} ({})",
            if self.envelope.sender.is_empty() {
                "<>"
            } else {
                &self.envelope.sender
            },
            if self.envelope.sender_allowed {
                "allowed"
            } else {
                "not allowed by [domains]"
            }
        ));
        for (r, ok) in &self.envelope.recipients {
            line(format!(
                "recipient:    {r} ({})",
                if *ok {
                    "allowed"
                } else {
                    "not allowed by [domains]"
                }
            ));
        }
        line("classification:".into());
        let mut field = |name: &str, value: String, f: Field| {
            line(format!("  {name:<13} {value}"));
            let sources = self.sources(f);
            if sources.is_empty() {
                line("                  (no source)".into());
            }
            for src in sources {
                line(format!("                  {src}"));
            }
        };
        field("urgency:", c.urgency.to_string(), Field::Urgency);
        field("secrecy:", c.secrecy.to_string(), Field::Secrecy);
        field(
            "number:",
            c.number.clone().unwrap_or_else(|| "-".into()),
            Field::Number,
        );
        field(
            "signing date:",
            c.signed_date
                .map(|d| d.to_string())
                .unwrap_or_else(|| "- (the day of acceptance counts)".into()),
            Field::SignedDate,
        );
        line(format!(
            "  resend:       {}",
            if c.resend { "yes" } else { "no" }
        ));
        line(format!("  attachments:  {}", c.attachments));
        if !c.conflicts.is_empty() {
            line("conflicts:".into());
            for x in &c.conflicts {
                line(format!("  {x}"));
            }
        }
        if !c.ignored.is_empty() {
            line("not taken:".into());
            for p in &c.ignored {
                line(format!(
                    "  {} ({}): {}",
                    p.field.as_str(),
                    p.source,
                    p.message
                ));
            }
        }
        if !c.problems.is_empty() {
            line("problems:".into());
            for p in &c.problems {
                line(format!(
                    "  {} ({}): {}",
                    p.field.as_str(),
                    p.source,
                    p.message
                ));
            }
        }
        for (part, problem) in &self.pdfs {
            line(format!(
                "pdf:          {} (sha-256 {})",
                part.name, part.sha256_before
            ));
            for (i, sig) in part.signatures.iter().enumerate() {
                line(format!(
                    "  {}. {} {} serial {} {}",
                    i + 1,
                    sig.result,
                    sig.signer,
                    if sig.serial.is_empty() {
                        "-"
                    } else {
                        &sig.serial
                    },
                    sig.time.as_deref().unwrap_or("-")
                ));
            }
            line(match problem {
                None => "  a valid signature of a competent signer".into(),
                Some(p) => format!("  no valid signature of a competent signer: {p}"),
            });
        }
        if !self.pdfs.is_empty() && !self.pdf_trust_known {
            line("  (no configuration: no trust anchor is known, so no signer is trusted)".into());
        }
        let rule_detail = if d.rule.starts_with("dispatch.") && d.rule != "dispatch.late" {
            d.deadline
                .as_ref()
                .map(|dl| format!(" ({})", dl.rule))
                .unwrap_or_default()
        } else {
            String::new()
        };
        line(format!("rule:         {}{rule_detail}", d.rule));
        match &d.action {
            Action::Accept => line(format!("action:       accept, lane {}", d.lane)),
            Action::Refuse(r) => line(format!("action:       refuse: {}", r.reply_line())),
        }
        match (&d.deadline, &d.action) {
            (Some(dl), Action::Accept) => {
                line(format!("deadline:     {}", dl.date));
                line(format!(
                    "deadline at:  {}",
                    dl.at
                        .to_offset(VIETNAM_OFFSET)
                        .format(&Rfc3339)
                        .unwrap_or_default()
                ));
                line(format!(
                    "counted from: {} ({})",
                    dl.from,
                    if dl.from_signing_date {
                        "signing date"
                    } else {
                        "day of acceptance"
                    }
                ));
                if !dl.skipped.is_empty() {
                    line("skipped:".into());
                    for (date, reason) in &dl.skipped {
                        line(format!("  {date} {reason}"));
                    }
                }
                line(format!(
                    "late:         {}",
                    if d.late { "yes" } else { "no" }
                ));
            }
            _ => line("deadline:     - (not sent)".into()),
        }
        if !self.duplicate_checked && c.number.is_some() && d.refusal().is_none() {
            line("note:         number uniqueness not checked (no database)".into());
        }
        s
    }

    fn to_json(&self) -> serde_json::Value {
        let c = &self.classification;
        let d = &self.decision;
        let sources = |f: Field| -> Vec<String> {
            c.findings
                .iter()
                .filter(|x| x.field == f)
                .map(|x| x.source.to_string())
                .collect()
        };
        let deadline = d.deadline.as_ref().filter(|_| d.refusal().is_none());
        json!({
            "profile": self.policy.profile,
            "profile_file": self.policy.path.display().to_string(),
            "accepted_at": self.at.to_offset(VIETNAM_OFFSET).format(&Rfc3339).unwrap_or_default(),
            "envelope": {
                "sender": self.envelope.sender,
                "sender_allowed": self.envelope.sender_allowed,
                "recipients": self.envelope.recipients.iter().map(|(r, ok)| json!({"address": r, "allowed": ok})).collect::<Vec<_>>(),
            },
            "classification": {
                "urgency": {"level": c.urgency.ascii(), "name": c.urgency.vietnamese(), "sources": sources(Field::Urgency)},
                "secrecy": {"level": c.secrecy.ascii(), "name": c.secrecy.vietnamese(), "sources": sources(Field::Secrecy)},
                "number": {"value": c.number, "sources": sources(Field::Number)},
                "signed_date": {"value": c.signed_date.map(|x| x.to_string()), "sources": sources(Field::SignedDate)},
                "resend": c.resend,
                "attachments": c.attachments,
            },
            "findings": c.findings.iter().map(|f| json!({"field": f.field.as_str(), "value": f.value, "source": f.source.to_string()})).collect::<Vec<_>>(),
            "conflicts": c.conflicts,
            "problems": c.problems.iter().map(|p| json!({"field": p.field.as_str(), "source": p.source.to_string(), "message": p.message})).collect::<Vec<_>>(),
            "not_taken": c.ignored.iter().map(|p| json!({"field": p.field.as_str(), "source": p.source.to_string(), "message": p.message})).collect::<Vec<_>>(),
            "pdf": self.pdfs.iter().map(|(p, problem)| json!({
                "name": p.name,
                "sha256": p.sha256_before,
                "signatures": p.signatures,
                "competent_signer": problem.is_none(),
                "problem": problem,
            })).collect::<Vec<_>>(),
            "rule": d.rule,
            "action": if d.refusal().is_some() { "refuse" } else { "accept" },
            "reply": d.refusal().map(|r| r.reply_line()),
            "lane": d.lane.ascii(),
            "deadline": deadline.map(|x| x.date.to_string()),
            "deadline_at": deadline.map(|x| x.at.to_offset(VIETNAM_OFFSET).format(&Rfc3339).unwrap_or_default()),
            "deadline_rule": deadline.map(|x| x.rule.to_string()),
            "counted_from": deadline.map(|x| x.from.to_string()),
            "from_signing_date": deadline.map(|x| x.from_signing_date),
            "skipped": deadline.map(|x| x.skipped.iter().map(|(date, reason)| json!({"date": date.to_string(), "reason": reason})).collect::<Vec<_>>()),
            "late": d.late,
            "number_uniqueness_checked": self.duplicate_checked,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times() {
        assert_eq!(
            parse_time("2026-02-13T15:30:00+07:00").unwrap(),
            datetime!(2026-02-13 15:30 +07:00)
        );
        assert_eq!(
            parse_time("2026-02-13 15:30").unwrap(),
            datetime!(2026-02-13 15:30 +07:00)
        );
        assert_eq!(
            parse_time("2026-02-13").unwrap(),
            datetime!(2026-02-13 09:00 +07:00)
        );
        assert!(parse_time("13/02/2026").is_err());
    }

    #[test]
    fn lf_files_become_crlf() {
        assert_eq!(to_crlf(b"a\nb\r\nc\n"), b"a\r\nb\r\nc\r\n");
    }
}
