//! Headless Chromium for the tests that render the gateway's HTML pages (the report, the
//! register export): one way to start it, with a time limit, and one rule for its absence.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CHROMIUM: &str = "/usr/bin/chromium";

/// Whether Chromium is here; in CI its absence is a failure, elsewhere the test is skipped.
pub fn available() -> bool {
    if Path::new(CHROMIUM).exists() {
        return true;
    }
    if std::env::var_os("CI").is_some() {
        panic!("{CHROMIUM} is missing (apt-get install chromium): the rendering tests cannot run in CI");
    }
    eprintln!("skipped: {CHROMIUM} is not installed (apt-get install chromium)");
    false
}

/// Renders `page` with `what` (`--screenshot=FILE` or `--print-to-pdf=FILE`) in a window of
/// `width` × `height`, within 90 s.
pub fn render(page: &Path, what: &str, profile: &Path, (width, height): (u32, u32)) {
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--force-color-profile=srgb",
            "--force-device-scale-factor=1",
            "--no-pdf-header-footer",
        ])
        .arg(format!("--window-size={width},{height}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(what)
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "chromium {what}: {status:?}");
            return;
        }
        if Instant::now() > deadline {
            child.kill().ok();
            child.wait().ok();
            panic!("chromium {what} did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
