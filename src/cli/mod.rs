//! The `congvan` command line: one binary, subcommands, `--config` accepted anywhere.
//! Exit status: 0 success, 1 refused operation or failed check, 2 bad usage.

mod account;
mod audit;
mod cert;
mod owner;
mod policy;
mod queue;
mod register;
mod report;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

pub use owner::as_invoker;

use crate::config::{Config, DEFAULT_CONFIG_PATH};

#[derive(Parser, Debug)]
#[command(
    name = "congvan",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("CONGVAN_COMMIT"), ")"),
    about = "Mail gateway for official documents (công văn): signs outgoing, verifies incoming, enforces dispatch rules",
    propagate_version = true
)]
pub struct Cli {
    /// Configuration file.
    #[arg(long, global = true, value_name = "PATH", env = "CONGVAN_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the gateway daemon.
    Serve {
        /// Run on the embedded development default in ./congvan-dev (created once).
        #[arg(long)]
        dev: bool,
    },
    /// Signing identities (the office's digital seal), trust anchors and CRLs.
    #[command(subcommand)]
    Cert(cert::CertCmd),
    /// Clerks' SMTP AUTH accounts.
    #[command(subcommand)]
    Account(account::AccountCmd),
    /// Messages still in the queue.
    #[command(subcommand)]
    Queue(queue::QueueCmd),
    /// Dispatch policies: check the files, explain a message, compute deadlines.
    #[command(subcommand)]
    Policy(policy::PolicyCmd),
    /// The outgoing and incoming registers (sổ đăng ký văn bản đi / đến).
    #[command(subcommand)]
    Register(register::RegisterCmd),
    /// The tamper-evident audit log: verify its hash chain, list entries.
    #[command(subcommand)]
    Audit(audit::AuditCmd),
    /// Dispatch compliance: the share of documents sent on time, then early, on time and late
    /// documents by month and urgency; `--direction in`: signature results and reception times.
    Report(report::ReportArgs),
    /// Check the configuration, policy, TLS files, data directory, database and each local
    /// domain's seal (a test signature, through its token for a key on a token), as the user
    /// that runs it; print each problem with what to do. Exit 1 on any problem (warnings,
    /// such as a TLS certificate that expires within 30 days, do not fail).
    Check {
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Take a consistent copy of the database (SQLite; for PostgreSQL it says how to use
    /// pg_dump), the keys, the spool and the archive into a new directory, while the daemon
    /// runs. Written as the data directory's owner. docs/restore.md says how to restore.
    Backup {
        /// The directory to create (it must not exist).
        #[arg(long, value_name = "DIR")]
        to: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Print the shell completion script for SHELL (bash, zsh, fish, elvish, powershell).
    Completions { shell: clap_complete::Shell },
    /// Write the manual pages (congvan.1, congvan-cert.1, congvan-cert-import.1, ...) into DIR.
    Man {
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// A failure with its exit status and message.
#[derive(Debug)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn refused(m: impl std::fmt::Display) -> Failure {
        Failure {
            code: 1,
            message: m.to_string(),
        }
    }
    pub fn usage(m: impl std::fmt::Display) -> Failure {
        Failure {
            code: 2,
            message: m.to_string(),
        }
    }
}

pub type CliResult = Result<(), Failure>;

fn config_path(cli: &Cli) -> PathBuf {
    cli.config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

pub fn load_config(cli: &Cli) -> Result<Config, Failure> {
    Config::load(&config_path(cli)).map_err(Failure::refused)
}

/// The database of `cfg`, opened (created and migrated when needed) as the data directory's
/// owner when the command runs as root.
pub async fn open_db(cfg: &Config) -> Result<sea_orm::DatabaseConnection, Failure> {
    owner::act_as_owner_of(&cfg.data_dir)?;
    crate::store::open(&cfg.database_url())
        .await
        .map_err(Failure::refused)
}

/// The log on standard error: `CONGVAN_LOG` (an `EnvFilter`) or `verbose_default`; plain
/// text, coloured only on a terminal, or JSON lines (`[log] format = "json"`).
pub fn init_tracing(verbose_default: &str, format: crate::config::LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("CONGVAN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(verbose_default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let _ = match format {
        crate::config::LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        crate::config::LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
}

pub async fn run(cli: Cli) -> CliResult {
    match &cli.command {
        Command::Serve { dev } => serve(&cli, *dev).await,
        Command::Cert(cmd) => cert::run(&cli, cmd).await,
        Command::Account(cmd) => account::run(&cli, cmd).await,
        Command::Queue(cmd) => queue::run(&cli, cmd).await,
        Command::Policy(cmd) => policy::run(&cli, cmd).await,
        Command::Register(cmd) => register::run(&cli, cmd).await,
        Command::Audit(cmd) => audit::run(&cli, cmd).await,
        Command::Report(args) => report::run(&cli, args).await,
        Command::Check { json } => check(&cli, *json).await,
        Command::Backup { to, json } => backup(&cli, to, *json).await,
        Command::Completions { shell } => {
            use clap::CommandFactory;
            use std::io::Write;
            let mut cmd = Cli::command();
            let mut script = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "congvan", &mut script);
            // A reader that stops early (| head) is not an error.
            let _ = std::io::stdout().write_all(&script);
            Ok(())
        }
        Command::Man { dir } => man_pages(dir),
    }
}

async fn serve(cli: &Cli, dev: bool) -> CliResult {
    const LEVELS: &str = "info,sea_orm_migration=warn";
    let config = if dev {
        init_tracing(LEVELS, Default::default());
        let setup = crate::dev::prepare(std::path::Path::new("."))
            .await
            .map_err(|e| Failure::refused(format!("cannot prepare ./congvan-dev: {e:#}")))?;
        println!("{}", crate::dev::banner(&setup));
        setup.config
    } else {
        let config = load_config(cli)?;
        init_tracing(LEVELS, config.log.format);
        config
    };
    // What stops all mail stops the daemon here, before READY (the seals are tested by the
    // daemon itself once it runs: one that cannot sign holds only its domain's documents).
    let report = crate::check::run(
        &config,
        crate::check::Scope {
            seals: false,
            database_must_exist: false,
        },
    )
    .await;
    let fatal: Vec<String> = report
        .fatal()
        .map(|p| format!("{}: {} ({})", p.area, p.message, p.fix))
        .collect();
    if !fatal.is_empty() {
        for f in &fatal {
            tracing::error!(problem = %f, "cannot start");
        }
        return Err(Failure::refused(format!(
            "congvan serve: {} problem(s) stop all mail; nothing was started:\n  {}",
            fatal.len(),
            fatal.join("\n  ")
        )));
    }
    crate::server::serve(config)
        .await
        .map_err(|e| Failure::refused(format!("congvan serve: {e}")))
}

/// `congvan man --dir DIR`: one page per command and subcommand.
fn man_pages(dir: &std::path::Path) -> CliResult {
    use clap::CommandFactory;
    std::fs::create_dir_all(dir)
        .map_err(|e| Failure::refused(format!("{}: {e}", dir.display())))?;
    let mut written = 0;
    fn walk(
        cmd: &clap::Command,
        name: &str,
        dir: &std::path::Path,
        written: &mut usize,
    ) -> std::io::Result<()> {
        let cmd = cmd.clone().name(name.to_string());
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd.clone()).render(&mut page)?;
        std::fs::write(dir.join(format!("{name}.1")), page)?;
        *written += 1;
        let pages = cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help");
        for sub in pages {
            walk(sub, &format!("{name}-{}", sub.get_name()), dir, written)?;
        }
        Ok(())
    }
    let mut cmd = Cli::command();
    cmd.build();
    walk(&cmd, "congvan", dir, &mut written)
        .map_err(|e| Failure::refused(format!("{}: {e}", dir.display())))?;
    println!("{written} manual page(s) written in {}", dir.display());
    Ok(())
}

/// `congvan backup`.
async fn backup(cli: &Cli, to: &std::path::Path, as_json: bool) -> CliResult {
    let cfg = load_config(cli)?;
    let db = open_db(&cfg).await?;
    let b = crate::backup::run(&cfg, &db, to)
        .await
        .map_err(|e| Failure::refused(format!("backup: {e}")))?;
    if as_json {
        println!("{}", serde_json::to_string_pretty(&b).unwrap_or_default());
        return Ok(());
    }
    match (&b.database, &b.postgres) {
        (Some(db), _) => println!("database: {}", db.display()),
        (None, Some(cmd)) => println!(
            "database: PostgreSQL is not copied by congvan; back it up with pg_dump, e.g.\n  {cmd}"
        ),
        _ => {}
    }
    println!(
        "backup in {}: {} file(s), {} bytes (keys, spool, archive{})",
        b.dir.display(),
        b.files,
        b.bytes,
        if b.database.is_some() {
            ", database"
        } else {
            ""
        }
    );
    Ok(())
}

/// `congvan check`.
async fn check(cli: &Cli, as_json: bool) -> CliResult {
    use crate::check::Severity;
    let config = load_config(cli).map_err(|f| Failure {
        code: 1,
        message: format!(
            "check: configuration {}: {}",
            config_path(cli).display(),
            f.message
        ),
    })?;
    let report = crate::check::run(
        &config,
        crate::check::Scope {
            seals: true,
            database_must_exist: true,
        },
    )
    .await;
    let failing = report
        .problems
        .iter()
        .filter(|p| p.severity != Severity::Warning)
        .count();
    if as_json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for ok in &report.ok {
            println!("ok       {ok}");
        }
        for p in &report.problems {
            let label = match p.severity {
                Severity::Fatal => "FATAL",
                Severity::Seal => "PROBLEM",
                Severity::Warning => "warning",
            };
            println!("{label:<8} {}: {}", p.area, p.message);
            println!("         what to do: {}", p.fix);
        }
        if failing == 0 {
            println!("no problems found");
        }
    }
    if failing > 0 {
        return Err(Failure::refused(format!("check: {failing} problem(s)")));
    }
    Ok(())
}

/// Prints rows as an aligned table. Cells come from messages, peers and the database:
/// control characters are escaped (see [`crate::util::printable`]).
/// How wide listings are by default (`--wide` lifts it): a terminal of 120 columns.
pub const LISTING_WIDTH: usize = 120;

pub use crate::util::cut;

/// [`print_table`] within `max` columns: when the table is wider, the columns `shrink`
/// (in that order: the least needed first) give up characters, down to 8 each, and their
/// cells are cut with "…".
pub fn print_table_within(headers: &[&str], rows: &[Vec<String>], max: usize, shrink: &[usize]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(widths.len()) {
            widths[i] = widths[i].max(crate::util::printable(c).chars().count());
        }
    }
    let mut over =
        (widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)).saturating_sub(max);
    for &i in shrink {
        if over == 0 {
            break;
        }
        let give = widths[i].saturating_sub(8).min(over);
        widths[i] -= give;
        over -= give;
    }
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .zip(&widths)
                .map(|(c, w)| cut(&crate::util::printable(c), *w))
                .collect()
        })
        .collect();
    print_table(headers, &rows);
}

pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::util::printable(c).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows[..];
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let pad = widths[i].saturating_sub(c.chars().count());
                s.push_str(c);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        println!("{}", s.trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

/// Reads a password from a file (first line), or from the terminal without echo, or from
/// the first line of standard input when it is not a terminal.
pub fn read_password(file: Option<&PathBuf>, prompt: &str) -> Result<String, Failure> {
    read_secret(file, prompt, true)
}

/// As [`read_password`]; `confirm` asks twice on a terminal (for new passwords).
pub fn read_secret(file: Option<&PathBuf>, prompt: &str, confirm: bool) -> Result<String, Failure> {
    if let Some(f) = file {
        let pw = owner::as_invoker(|| crate::util::read_password_file(f))
            .map_err(|e| Failure::refused(format!("cannot read {}: {e}", f.display())))?;
        if pw.is_empty() {
            return Err(Failure::refused(format!(
                "{}: the first line is empty",
                f.display()
            )));
        }
        return Ok(pw);
    }
    use std::io::{BufRead, IsTerminal, Write};
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let read_line = || -> Result<String, Failure> {
        let mut s = String::new();
        stdin
            .lock()
            .read_line(&mut s)
            .map_err(|e| Failure::refused(format!("cannot read password: {e}")))?;
        Ok(s.trim_end_matches(['\r', '\n']).to_string())
    };
    let pw = if tty {
        eprint!("{prompt}");
        let _ = std::io::stderr().flush();
        let guard = EchoOff::new();
        let first = read_line()?;
        drop(guard);
        eprintln!();
        if !confirm {
            return Ok(first);
        }
        eprint!("Again: ");
        let _ = std::io::stderr().flush();
        let guard = EchoOff::new();
        let second = read_line()?;
        drop(guard);
        eprintln!();
        if first != second {
            return Err(Failure::refused("the passwords do not match"));
        }
        first
    } else {
        read_line()?
    };
    if pw.is_empty() {
        return Err(Failure::refused("the password must not be empty"));
    }
    Ok(pw)
}

/// Turns terminal echo off while it lives.
struct EchoOff(Option<libc::termios>);

impl EchoOff {
    fn new() -> EchoOff {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed, then filled, termios struct.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return EchoOff(None);
            }
            let old = t;
            t.c_lflag &= !libc::ECHO;
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return EchoOff(None);
            }
            EchoOff(Some(old))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        if let Some(old) = self.0 {
            // SAFETY: restores the attributes read in `new`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, &old);
            }
        }
    }
}
