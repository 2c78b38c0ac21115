//! `congvan check` (as `postfix check`), and the same checks when `serve` starts (SPEC
//! "Operating it"): the configuration's files, the policy, the TLS certificate and key, the
//! data directory, the database, and each local domain's seal, read as the user that runs
//! it. Each problem says what is wrong and what to do. Problems that stop all mail are
//! fatal: `serve` exits on them before it reports READY; a seal that cannot sign holds only
//! its domain's documents.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::Config;

/// How much of the mail a problem stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// No mail can flow (configuration, policy, TLS, data directory, database).
    Fatal,
    /// A domain's documents are held (its seal cannot sign now).
    Seal,
    /// Mail flows, but something needs attention soon.
    Warning,
}

/// One problem: what area, what is wrong, what to do.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    pub area: &'static str,
    pub severity: Severity,
    pub message: String,
    pub fix: String,
}

/// What the checks found: the problems, and what was checked and found good.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub problems: Vec<Problem>,
    pub ok: Vec<String>,
}

impl Report {
    fn problem(
        &mut self,
        area: &'static str,
        severity: Severity,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.problems.push(Problem {
            area,
            severity,
            message: message.into(),
            fix: fix.into(),
        });
    }

    pub fn fatal(&self) -> impl Iterator<Item = &Problem> {
        self.problems
            .iter()
            .filter(|p| p.severity == Severity::Fatal)
    }
}

/// What the caller wants checked beyond the files: `serve` tests the seals itself, with the
/// daemon's own cache.
#[derive(Debug, Clone, Copy)]
pub struct Scope {
    pub seals: bool,
    /// A SQLite database file that does not exist yet is a problem (for `check`: a typo in
    /// `database_url` would otherwise create a new, empty database).
    pub database_must_exist: bool,
}

/// Runs every check of `scope` on `config` (already parsed: a configuration that does not
/// parse is reported by the caller).
pub async fn run(config: &Config, scope: Scope) -> Report {
    let mut r = Report::default();
    check_policy(config, &mut r);
    check_tls(config, &mut r);
    check_files(config, &mut r);
    check_data_dir(config, &mut r);
    let db = check_database(config, scope, &mut r).await;
    if let (Some(db), true) = (db, scope.seals) {
        check_seals(config, &db, &mut r).await;
    }
    r
}

fn check_policy(config: &Config, r: &mut Report) {
    match crate::policy::SharedPolicy::load(&config.policy_dir) {
        Ok(p) => r.ok.push(format!(
            "policy: profile {} from {}",
            p.get().profile,
            config.policy_dir.display()
        )),
        Err(errors) => {
            for e in &errors.0 {
                r.problem(
                    "policy",
                    Severity::Fatal,
                    e.to_string(),
                    format!(
                        "correct the file named; congvan policy check --dir {} lists every error",
                        config.policy_dir.display()
                    ),
                );
            }
        }
    }
}

fn check_tls(config: &Config, r: &mut Report) {
    let Some(tls) = &config.tls else {
        return;
    };
    if let Err(e) = crate::smtp::tls::load_server_config(&tls.cert, &tls.key) {
        r.problem(
            "tls",
            Severity::Fatal,
            e,
            format!(
                "give [tls] cert (the chain, PEM) and key (its private key, PEM) that this user can read: ls -l {} {}",
                tls.cert.display(),
                tls.key.display()
            ),
        );
        return;
    }
    match tls_not_after(&tls.cert) {
        Some(not_after) => {
            let now = time::OffsetDateTime::now_utc();
            let days = (not_after - now).whole_days();
            if not_after <= now {
                r.problem(
                    "tls",
                    Severity::Fatal,
                    format!(
                        "the TLS certificate {} expired on {}",
                        tls.cert.display(),
                        not_after.date()
                    ),
                    "renew it, then send the daemon SIGHUP or restart it",
                );
            } else if days < 30 {
                r.problem(
                    "tls",
                    Severity::Warning,
                    format!(
                        "the TLS certificate {} expires in {days} days ({})",
                        tls.cert.display(),
                        not_after.date()
                    ),
                    "renew it before then",
                );
            } else {
                r.ok.push(format!(
                    "tls: {} valid until {}",
                    tls.cert.display(),
                    not_after.date()
                ));
            }
        }
        None => r.ok.push(format!("tls: {}", tls.cert.display())),
    }
}

/// The first certificate's notAfter in a PEM file.
fn tls_not_after(path: &Path) -> Option<time::OffsetDateTime> {
    let pem = std::fs::read(path).ok()?;
    let der = rustls_pemfile::certs(&mut pem.as_slice()).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der).ok()?;
    Some(cert.validity().not_after.to_datetime())
}

/// Files the configuration names besides TLS: CA and credentials files of the next hops.
fn check_files(config: &Config, r: &mut Report) {
    let named = [
        ("[outbound] ca_file", config.outbound.ca_file.as_ref()),
        (
            "[outbound] credentials_file",
            config.outbound.credentials_file.as_ref(),
        ),
        ("[inbound] ca_file", config.inbound.ca_file.as_ref()),
        (
            "[inbound] credentials_file",
            config.inbound.credentials_file.as_ref(),
        ),
    ];
    for (key, path) in named {
        if let Some(path) = path {
            if let Err(e) = std::fs::File::open(path) {
                r.problem(
                    "config",
                    Severity::Fatal,
                    format!("{key} {}: {e}", path.display()),
                    "correct the path, or let this user read the file",
                );
            }
        }
    }
}

/// The data directory and the spool: there, and writable by this user.
fn check_data_dir(config: &Config, r: &mut Report) {
    for dir in [config.data_dir.clone(), config.spool_dir()] {
        if !dir.exists() {
            // serve creates them; the database check reports a data directory it cannot.
            continue;
        }
        match writable(&dir) {
            Ok(()) => {}
            Err(e) => r.problem(
                "data_dir",
                Severity::Fatal,
                format!("cannot write in {}: {e}", dir.display()),
                format!(
                    "the directory belongs to the user that runs congvan: chown -R congvan:congvan {}",
                    config.data_dir.display()
                ),
            ),
        }
    }
    if config.data_dir.exists() {
        r.ok.push(format!("data_dir: {} writable", config.data_dir.display()));
    }
}

fn writable(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".congvan-check-{}", std::process::id()));
    std::fs::write(&probe, b"")?;
    std::fs::remove_file(&probe)
}

/// The SQLite file a `sqlite:` URL names.
pub fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?.trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| PathBuf::from(path))
}

/// Reachable and writable: a table created and dropped in a transaction that is rolled back.
async fn check_database(
    config: &Config,
    scope: Scope,
    r: &mut Report,
) -> Option<sea_orm::DatabaseConnection> {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let url = config.database_url();
    let shown = redact(&url);
    if let Some(file) = sqlite_file(&url) {
        if scope.database_must_exist && !file.exists() {
            r.problem(
                "database",
                Severity::Fatal,
                format!("the database file {} does not exist", file.display()),
                "check database_url; a first command (cert import, account add) or serve creates it",
            );
            return None;
        }
    }
    let db = match crate::store::open(&url).await {
        Ok(db) => db,
        Err(e) => {
            r.problem(
                "database",
                Severity::Fatal,
                format!("cannot open {shown}: {e}"),
                "check database_url, that the server runs, and that this user may use the database (its file and directory, for SQLite)",
            );
            return None;
        }
    };
    let write = async {
        let txn = db.begin().await?;
        txn.execute_unprepared("CREATE TABLE congvan_check_write (x INTEGER)")
            .await?;
        txn.rollback().await
    }
    .await;
    match write {
        Ok(()) => r.ok.push(format!("database: {shown} reachable and writable")),
        Err(e) => r.problem(
            "database",
            Severity::Fatal,
            format!("cannot write to {shown}: {e}"),
            "the database (for SQLite: the file, its -wal and -shm files and their directory) must belong to the user that runs congvan",
        ),
    }
    Some(db)
}

/// A database URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// Each local domain's seal: an identity, loadable by this user, valid now, and a test
/// signature that verifies (through its token, for a key on a token).
async fn check_seals(config: &Config, db: &sea_orm::DatabaseConnection, r: &mut Report) {
    use crate::pki::store::{Seal, SealCache, SealProblem};
    let cache = SealCache::default();
    let now = time::OffsetDateTime::now_utc();
    for domain in &config.inbound.local_domains {
        let seal = match cache.for_domain(db, domain, now).await {
            Ok(s) => s,
            Err(e) => {
                r.problem(
                    "seal",
                    Severity::Fatal,
                    format!("{domain}: {e}"),
                    "see the database problem",
                );
                continue;
            }
        };
        match seal {
            Seal::None => r.problem(
                "seal",
                Severity::Seal,
                format!("{domain} has no signing identity (digital seal): its documents are refused"),
                format!("congvan cert import --p12 FILE --domain {domain} (or --pkcs11 for a token)"),
            ),
            Seal::Unusable { reason, .. } => r.problem(
                "seal",
                Severity::Seal,
                format!("{domain}: the seal cannot be used: {reason}"),
                "import a valid identity or enable one (congvan cert list); a key file must be readable by the user that runs congvan; a token must be present with its PIN in the PIN file or credential",
            ),
            Seal::Usable { identity, id, .. } => {
                let token = identity.token();
                match SealProblem::test(identity).await {
                    Ok(()) => r.ok.push(match token {
                        Some(t) => format!("seal: {domain} identity {id} signs (on the token: {t})"),
                        None => format!("seal: {domain} identity {id} signs"),
                    }),
                    Err(e) => r.problem(
                        "seal",
                        Severity::Seal,
                        format!("{domain}: identity {id} cannot sign: {e}"),
                        if token.is_some() {
                            "put the token in, unlock it, or write its PIN in the PIN file or the systemd credential"
                        } else {
                            "re-import the identity (congvan cert import)"
                        },
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_files_and_redacted_urls() {
        assert_eq!(
            sqlite_file("sqlite:///var/lib/congvan/congvan.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/congvan/congvan.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
        assert_eq!(
            redact("postgres://congvan:secret@db.local/congvan"),
            "postgres://congvan:***@db.local/congvan"
        );
        assert_eq!(redact("postgres://congvan@db/x"), "postgres://congvan@db/x");
    }
}
