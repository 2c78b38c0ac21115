//! Small shared helpers: clocks, ids, formatting.

use std::time::{SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// RFC 5322 date-time in Vietnam's zone (UTC+7), for Received and DSN headers.
pub fn rfc5322_now() -> String {
    let offset = time::UtcOffset::from_hms(7, 0, 0).unwrap_or(time::UtcOffset::UTC);
    let t = time::OffsetDateTime::now_utc().to_offset(offset);
    t.format(&time::format_description::well_known::Rfc2822)
        .unwrap_or_default()
}

/// Queue ids: time-ordered (UUIDv7) in 32 lower-case hex digits, safe as file names.
pub fn new_queue_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// Whether a string is a queue id (so it can never name a path outside the spool).
pub fn is_queue_id(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The regular `*.toml` files directly in `dir`, sorted by path: what the policy directory
/// and the calendar directory each load. An error reading the directory or one of its entries
/// is returned as is, for the caller to name.
pub(crate) fn toml_files(dir: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut paths = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("toml") && path.is_file() {
            paths.push(path);
        }
    }
    paths.sort();
    Ok(paths)
}

/// Reads a password file: its first line, without the line ending.
pub fn read_password_file(path: &std::path::Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// Text from a message, a peer or the database made safe for a terminal: control
/// characters (escape sequences, line breaks, carriage returns) are shown as `\u{1b}` and so
/// on, so a subject or a reply cannot rewrite the screen or forge a table row.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    c.escape_unicode().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Runs its closure when dropped: a measurement that ends however the scope ends.
pub struct OnDrop<F: FnMut()>(pub F);

impl<F: FnMut()> Drop for OnDrop<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

/// `s` cut to `width` characters, its end replaced by "…" when cut.
pub fn cut(s: &str, width: usize) -> String {
    if s.chars().count() <= width {
        return s.to_string();
    }
    let mut out: String = s.chars().take(width.saturating_sub(1)).collect();
    out.push('…');
    out
}
