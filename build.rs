//! Records the commit the binary is built from, for `congvan --version`: `git describe`
//! of the source tree when it is a git checkout (with `-dirty` for uncommitted changes),
//! else `CONGVAN_COMMIT` from the environment (a package build from a tarball), else
//! "unknown".

use std::process::Command;

fn main() {
    let from_git = Command::new("git")
        .args(["describe", "--always", "--dirty", "--abbrev=12"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty());
    let commit = from_git
        .or_else(|| std::env::var("CONGVAN_COMMIT").ok())
        .unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CONGVAN_COMMIT={commit}");
    println!("cargo:rerun-if-env-changed=CONGVAN_COMMIT");
    // A new commit or checkout changes HEAD or the branch it names.
    if let Ok(o) = Command::new("git")
        .args(["rev-parse", "--git-dir", "--symbolic-full-name", "HEAD"])
        .output()
    {
        let text = String::from_utf8_lossy(&o.stdout);
        let mut lines = text.lines();
        if let (Some(dir), Some(head)) = (lines.next(), lines.next()) {
            println!("cargo:rerun-if-changed={dir}/HEAD");
            println!("cargo:rerun-if-changed={dir}/{head}");
            println!("cargo:rerun-if-changed={dir}/packed-refs");
        }
    }
}
