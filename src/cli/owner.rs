//! The command line, run as root on a data directory that belongs to another user (the
//! daemon's, `congvan`), acts as that user (SPEC "Operating it"): the database, key files
//! and everything else it creates belong to the daemon, so the install steps work as
//! written. Only the effective ids change: files the administrator names on the command line
//! (a PKCS#12 file in /root, a password file, a report to write) are still read and written
//! as root, through [`as_invoker`].

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::OnceLock;

use super::Failure;

/// The owner the command acts as, once it switched.
static SWITCHED: OnceLock<(u32, u32)> = OnceLock::new();

/// Switches the effective user and group to the owner of `data_dir` when running as root
/// and the directory belongs to someone else. Does nothing otherwise (also when the
/// directory does not exist yet).
pub fn act_as_owner_of(data_dir: &Path) -> Result<(), Failure> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || SWITCHED.get().is_some() {
        return Ok(());
    }
    let Ok(meta) = std::fs::metadata(data_dir) else {
        return Ok(());
    };
    let (uid, gid) = (meta.uid(), meta.gid());
    if uid == 0 {
        return Ok(());
    }
    let failed = |what: &str| {
        Failure::refused(format!(
            "cannot act as the owner of {} (uid {uid}, gid {gid}): {what}: {}",
            data_dir.display(),
            std::io::Error::last_os_error()
        ))
    };
    // SAFETY: plain system calls with ids read from the file system; the group first, while
    // still root. glibc applies them to every thread of the process.
    unsafe {
        let groups = [gid];
        if libc::setgroups(1, groups.as_ptr()) != 0 {
            return Err(failed("setgroups"));
        }
        if libc::setegid(gid) != 0 {
            return Err(failed("setegid"));
        }
        if libc::seteuid(uid) != 0 {
            return Err(failed("seteuid"));
        }
    }
    let _ = SWITCHED.set((uid, gid));
    tracing::debug!(uid, gid, "acting as the data directory's owner");
    Ok(())
}

/// Runs `f` as the user who ran the command (root), when the command switched to the data
/// directory's owner: for the files the administrator names.
pub fn as_invoker<T>(f: impl FnOnce() -> T) -> T {
    let Some(&(uid, gid)) = SWITCHED.get() else {
        return f();
    };
    // SAFETY: the real user is root, so the effective ids can go back and forth.
    unsafe {
        libc::seteuid(0);
        libc::setegid(0);
    }
    let out = f();
    // SAFETY: as above, back to the owner (group first, while root).
    unsafe {
        libc::setegid(gid);
        libc::seteuid(uid);
    }
    out
}
