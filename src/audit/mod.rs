//! The audit log (nhật ký kiểm tra): every security-relevant event — identities, trust
//! anchors, CRLs, accounts, policy loads, refused confidential documents, queue holds and
//! releases — as one entry of the append-only, hash-chained table `audit_log`.
//!
//! Each entry is numbered (`seq` 1, 2, 3, … assigned here, not by the database) and carries
//! the hash of the entry before it (`prev_hash`; entry 1 carries [`GENESIS`]) and its own
//! `hash`: hex SHA-256 over a domain tag and the length-prefixed fields seq, at, actor,
//! action, subject, details and prev_hash (see [`entry_hash`]). [`verify`] walks the table
//! in order, a batch at a time, and names the first entry that was changed, removed or
//! moved.
//!
//! What the chain proves, and what it does not:
//! - It detects any change to an entry in place, a removed entry in the middle, and entries
//!   swapped or reordered, as long as whoever did it did not also recompute the hashes.
//! - It cannot detect, on its own, the removal of the newest entries (truncation), nor a
//!   rewrite of the log from some entry onwards with recomputed hashes: there is no secret in
//!   the hash, so anyone who can write the table can forge a consistent chain. Against that,
//!   note the head (`audit verify` prints `#seq hash`) somewhere the database's writers cannot
//!   reach — a ticket, the paper register, another machine — and check it later with
//!   `audit verify --head SEQ:HASH`: everything up to that entry is then proven unchanged.
//!
//! Appending: the daemon and CLI processes append concurrently. An append reads the last
//! entry and inserts `seq + 1` in one transaction that holds the log's write lock — `BEGIN
//! IMMEDIATE` on SQLite, `LOCK TABLE … SHARE ROW EXCLUSIVE` (reads stay allowed) on
//! PostgreSQL — so two appenders never pick the same number; a change the CLI makes to the
//! database is written in the same transaction as its entry ([`begin`] + [`append`]), so no
//! change happens without its entry. [`record`] appends alone and retries a few times on a
//! busy database or a duplicate number.

mod chain;
#[cfg(test)]
mod tests;
mod verify;

use std::path::Path;

pub use chain::{
    append, begin, canonical_json, entry_hash, record, record_or_log, Fields, GENESIS,
};
pub use verify::{last_entries, verify, BadEntry, Head, Problem, Report};

/// The actor of events the daemon does on its own (start-up, SIGHUP, refusals).
pub const DAEMON: &str = "daemon";

/// What happened, as written in the `action` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Action {
    IdentityImport,
    IdentityDisable,
    IdentityEnable,
    /// The office's seal image set or removed (`cert import --seal-image`, `cert seal-image`).
    IdentitySealImage,
    /// A token identity could not sign (token missing, refused, module error): once per
    /// outage, when its first document is held.
    IdentityTokenFailed,
    /// The token refused the PIN or is locked: once per outage.
    IdentityPinRefused,
    /// The token signs again; the documents held for it are released.
    IdentityTokenRecovered,
    TrustAdd,
    TrustRemove,
    CrlAdd,
    AccountAdd,
    AccountDisable,
    AccountEnable,
    AccountPasswd,
    /// The policy in force when the daemon started.
    PolicyLoad,
    /// SIGHUP: a new policy is in force.
    PolicyReload,
    /// SIGHUP: the new policy did not check; the old one stays in force.
    PolicyReloadFailed,
    /// A document refused at end of DATA by a secrecy rule (văn bản mật).
    DocumentRefusedConfidential,
    /// A document refused at end of DATA by another policy rule.
    DocumentRefused,
    QueueHold,
    /// Details say `"quarantine": true` when it releases a quarantined incoming message.
    QueueRelease,
    QueueRetry,
    QueueDelete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::IdentityImport => "identity.import",
            Action::IdentityDisable => "identity.disable",
            Action::IdentityEnable => "identity.enable",
            Action::IdentitySealImage => "identity.seal_image",
            Action::IdentityTokenFailed => "identity.token_failed",
            Action::IdentityPinRefused => "identity.pin_refused",
            Action::IdentityTokenRecovered => "identity.token_recovered",
            Action::TrustAdd => "trust.add",
            Action::TrustRemove => "trust.remove",
            Action::CrlAdd => "crl.add",
            Action::AccountAdd => "account.add",
            Action::AccountDisable => "account.disable",
            Action::AccountEnable => "account.enable",
            Action::AccountPasswd => "account.passwd",
            Action::PolicyLoad => "policy.load",
            Action::PolicyReload => "policy.reload",
            Action::PolicyReloadFailed => "policy.reload_failed",
            Action::DocumentRefusedConfidential => "document.refused_confidential",
            Action::DocumentRefused => "document.refused",
            Action::QueueHold => "queue.hold",
            Action::QueueRelease => "queue.release",
            Action::QueueRetry => "queue.retry",
            Action::QueueDelete => "queue.delete",
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One event to append. `details` is metadata only: never a password, a key, a subject or a
/// body.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub actor: &'a str,
    pub action: Action,
    pub subject: String,
    pub details: serde_json::Value,
}

impl<'a> Event<'a> {
    pub fn new(
        actor: &'a str,
        action: Action,
        subject: impl Into<String>,
        details: serde_json::Value,
    ) -> Event<'a> {
        Event {
            actor,
            action,
            subject: subject.into(),
            details,
        }
    }
}

/// `cli:<unix user>` for commands run from a shell; `cli:root(sudo:alice)` under sudo.
pub fn cli_actor() -> String {
    let user = unix_user_name();
    match std::env::var("SUDO_USER") {
        Ok(s) if !s.is_empty() && user == "root" => format!("cli:root(sudo:{s})"),
        _ => format!("cli:{user}"),
    }
}

fn unix_user_name() -> String {
    // SAFETY: getuid cannot fail; getpwuid_r writes into our zeroed struct and buffer and
    // sets `result` to null when there is no entry; pw_name points into `buf`.
    unsafe {
        let uid = libc::getuid();
        let mut pwd: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut result);
        if rc == 0 && !result.is_null() && !pwd.pw_name.is_null() {
            let name = std::ffi::CStr::from_ptr(pwd.pw_name).to_string_lossy();
            if !name.is_empty() {
                return name.into_owned();
            }
        }
        format!("uid{uid}")
    }
}

/// Hex SHA-256 over a directory tree: each regular file's path (relative, `/`-separated) and
/// contents, length-prefixed, in path order. Says which policy files were in force.
pub fn directory_digest(dir: &Path) -> std::io::Result<String> {
    fn walk(
        base: &Path,
        dir: &Path,
        out: &mut Vec<(String, std::path::PathBuf)>,
    ) -> std::io::Result<()> {
        for e in std::fs::read_dir(dir)? {
            let e = e?;
            let path = e.path();
            let ft = e.file_type()?;
            if ft.is_dir() {
                walk(base, &path, out)?;
            } else if path.is_file() {
                let rel = path
                    .strip_prefix(base)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join("/");
                out.push((rel, path));
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files)?;
    files.sort();
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for (rel, path) in files {
        let bytes = std::fs::read(&path)?;
        ctx.update(&(rel.len() as u64).to_be_bytes());
        ctx.update(rel.as_bytes());
        ctx.update(&(bytes.len() as u64).to_be_bytes());
        ctx.update(&bytes);
    }
    Ok(hex::encode(ctx.finish().as_ref()))
}
