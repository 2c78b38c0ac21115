//! The strict SMTP reader: CRLF-only command lines and a DATA reader that ends only at
//! `<CRLF>.<CRLF>`. A bare CR or LF never ends a line or the data (the 2023 SMTP smuggling
//! class): in a command it closes the connection; in DATA the message is read to its real
//! end and refused.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Result of reading one command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line with its CRLF.
    Ok(Vec<u8>),
    BareLf,
    TooLong,
    Eof,
}

/// Result of reading DATA.
#[derive(Debug, PartialEq, Eq)]
pub enum DataOutcome {
    /// The message, dot-unstuffed, with CRLF line endings and the final CRLF.
    Ok(Vec<u8>),
    /// Bare CR or LF seen; read to the real end and discarded.
    BareLf,
    /// Larger than the limit; read to the real end and discarded.
    TooBig,
    /// The gateway's memory budget for messages being received was spent; read to the real
    /// end and discarded (a temporary refusal: the client tries again later).
    OverBudget,
}

/// The memory all sessions together may hold for messages being received, in units of
/// [`BUDGET_UNIT`] bytes. Each session takes units as its message grows and gives them back
/// when the message has been handled.
pub type DataBudget = std::sync::Arc<tokio::sync::Semaphore>;

/// Bytes per permit of a [`DataBudget`].
pub const BUDGET_UNIT: usize = 64 * 1024;

/// What a session holds of the budget while it keeps a message in memory.
pub type BudgetHold = Option<tokio::sync::OwnedSemaphorePermit>;

/// A buffered reader whose pending bytes can be dropped (after STARTTLS).
pub struct SmtpReader {
    buf: Vec<u8>,
    start: usize,
}

impl Default for SmtpReader {
    fn default() -> Self {
        Self::new()
    }
}

impl SmtpReader {
    pub fn new() -> Self {
        SmtpReader {
            buf: Vec::with_capacity(8192),
            start: 0,
        }
    }

    /// Whether bytes the client already sent are waiting (pipelining).
    pub fn has_pending(&self) -> bool {
        self.start < self.buf.len()
    }

    /// Drops everything buffered: pipelined bytes after STARTTLS must not be trusted.
    pub fn discard(&mut self) -> usize {
        let n = self.buf.len() - self.start;
        self.buf.clear();
        self.start = 0;
        n
    }

    async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R, idle: Duration) -> io::Result<usize> {
        if self.start > 0 && self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        } else if self.start > 65536 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        // Read into a separate buffer: if this future is cancelled (shutdown), nothing half
        // filled is left behind as pending input.
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout(idle, r.read(&mut chunk)).await {
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "idle timeout")),
        }
    }

    /// Reads one command line, strictly CRLF-terminated, at most `max` bytes.
    pub async fn read_line<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        max: usize,
        idle: Duration,
    ) -> io::Result<Line> {
        let mut scanned = 0;
        loop {
            let pending = &self.buf[self.start..];
            if let Some(rel) = pending[scanned..]
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
            {
                let pos = scanned + rel;
                if pending[pos] == b'\n' {
                    return Ok(Line::BareLf);
                }
                // A CR: it must be followed by LF.
                if pos + 1 < pending.len() {
                    if pending[pos + 1] != b'\n' {
                        return Ok(Line::BareLf);
                    }
                    if pos + 2 > max {
                        return Ok(Line::TooLong);
                    }
                    let line = pending[..pos + 2].to_vec();
                    self.start += pos + 2;
                    return Ok(Line::Ok(line));
                }
                scanned = pos; // wait for the byte after CR
            } else {
                scanned = pending.len();
            }
            if scanned >= max {
                return Ok(Line::TooLong);
            }
            if self.fill(r, idle).await? == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Reads DATA up to `<CRLF>.<CRLF>` (the CRLF before the dot being the previous line's
    /// end, or DATA's start), undoing dot-stuffing. Keeps at most `max` bytes in memory.
    /// With a `budget`, the bytes kept are taken from it as they arrive; the hold returned
    /// beside the message gives them back when dropped.
    pub async fn read_data<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        max: usize,
        idle: Duration,
        budget: Option<&DataBudget>,
    ) -> io::Result<Option<(DataOutcome, BudgetHold)>> {
        let mut d = DataDecoder::new(max);
        d.budget = budget.cloned();
        loop {
            let (consumed, done) = d.feed(&self.buf[self.start..]);
            self.start += consumed;
            if done {
                let hold = d.hold.take();
                return Ok(Some((d.finish(), hold)));
            }
            if self.fill(r, idle).await? == 0 {
                return Ok(None);
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum St {
    LineStart,
    Dot,
    DotCr,
    Middle,
    Cr,
}

/// The DATA state machine, separate from I/O so it can be tested byte by byte.
pub struct DataDecoder {
    st: St,
    out: Vec<u8>,
    max: usize,
    bare: bool,
    too_big: bool,
    over_budget: bool,
    budget: Option<DataBudget>,
    /// Units of the budget taken so far.
    hold: BudgetHold,
}

impl DataDecoder {
    pub fn new(max: usize) -> Self {
        DataDecoder {
            st: St::LineStart,
            out: Vec::with_capacity(64 * 1024),
            max,
            bare: false,
            too_big: false,
            over_budget: false,
            budget: None,
            hold: None,
        }
    }

    fn keep(&self) -> bool {
        !self.bare && !self.too_big && !self.over_budget
    }

    /// Takes budget units to cover `len` bytes; false when the budget has none left.
    fn reserve(&mut self, len: usize) -> bool {
        let Some(budget) = &self.budget else {
            return true;
        };
        let held = self.hold.as_ref().map_or(0, |h| h.num_permits());
        let needed = len.div_ceil(BUDGET_UNIT);
        if needed <= held {
            return true;
        }
        let Ok(more) = budget
            .clone()
            .try_acquire_many_owned((needed - held) as u32)
        else {
            return false;
        };
        match &mut self.hold {
            Some(h) => h.merge(more),
            None => self.hold = Some(more),
        }
        true
    }

    fn push(&mut self, bytes: &[u8]) {
        if !self.keep() {
            return;
        }
        let len = self.out.len() + bytes.len();
        if len > self.max {
            self.too_big = true;
            self.out = Vec::new();
            self.hold = None;
            return;
        }
        if !self.reserve(len) {
            self.over_budget = true;
            self.out = Vec::new();
            self.hold = None;
            return;
        }
        self.out.extend_from_slice(bytes);
    }

    fn mark_bare(&mut self) {
        self.bare = true;
        self.out = Vec::new();
        self.hold = None;
    }

    /// Consumes bytes; returns how many were used and whether the end was reached.
    pub fn feed(&mut self, input: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            match self.st {
                St::Middle => {
                    // Fast path: copy up to the next CR or LF.
                    let rest = &input[i..];
                    match rest.iter().position(|&b| b == b'\r' || b == b'\n') {
                        None => {
                            self.push(rest);
                            i = input.len();
                        }
                        Some(p) => {
                            self.push(&rest[..p]);
                            i += p;
                            if input[i] == b'\r' {
                                self.st = St::Cr;
                            } else {
                                self.mark_bare();
                            }
                            i += 1;
                        }
                    }
                }
                St::LineStart => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'.' => self.st = St::Dot,
                        b'\r' => self.st = St::Cr,
                        b'\n' => {
                            self.mark_bare();
                            self.st = St::Middle;
                        }
                        _ => {
                            self.push(&[b]);
                            self.st = St::Middle;
                        }
                    }
                }
                St::Dot => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\r' => self.st = St::DotCr,
                        b'\n' => {
                            // ".\n" is not an end: only CRLF.CRLF is.
                            self.mark_bare();
                            self.st = St::Middle;
                        }
                        _ => {
                            // Dot-stuffed line: drop the leading dot.
                            self.push(&[b]);
                            self.st = St::Middle;
                        }
                    }
                }
                St::DotCr => {
                    let b = input[i];
                    i += 1;
                    if b == b'\n' {
                        return (i, true);
                    }
                    // ".\r" then something else: a bare CR.
                    self.mark_bare();
                    self.st = if b == b'\r' { St::Cr } else { St::Middle };
                }
                St::Cr => {
                    let b = input[i];
                    i += 1;
                    match b {
                        b'\n' => {
                            self.push(b"\r\n");
                            self.st = St::LineStart;
                        }
                        b'\r' => {
                            self.mark_bare();
                            self.st = St::Cr;
                        }
                        _ => {
                            self.mark_bare();
                            self.st = St::Middle;
                        }
                    }
                }
            }
        }
        (i, false)
    }

    pub fn finish(self) -> DataOutcome {
        if self.bare {
            DataOutcome::BareLf
        } else if self.too_big {
            DataOutcome::TooBig
        } else if self.over_budget {
            DataOutcome::OverBudget
        } else {
            DataOutcome::Ok(self.out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(input: &[u8]) -> (Option<DataOutcome>, usize) {
        let mut d = DataDecoder::new(1 << 20);
        let (n, done) = d.feed(input);
        (done.then(|| d.finish()), n)
    }

    /// A message of `lines` lines of 1,000 bytes, ended.
    fn message(lines: usize) -> Vec<u8> {
        let mut m = Vec::new();
        for _ in 0..lines {
            m.extend_from_slice(&[b'a'; 998]);
            m.extend_from_slice(b"\r\n");
        }
        m.extend_from_slice(b".\r\n");
        m
    }

    #[tokio::test]
    async fn the_memory_budget_is_shared_and_given_back() {
        // Three units (192 KiB) for every session together.
        let budget: DataBudget = std::sync::Arc::new(tokio::sync::Semaphore::new(3));
        let mut reader = SmtpReader::new();
        let mut first: &[u8] = &message(100);
        let (outcome, hold) = reader
            .read_data(&mut first, 1 << 20, Duration::from_secs(5), Some(&budget))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(outcome, DataOutcome::Ok(ref m) if m.len() == 100_000));
        assert_eq!(hold.as_ref().map(|h| h.num_permits()), Some(2));
        assert_eq!(budget.available_permits(), 1);
        // A second message while the first is held: over budget, read to its end.
        let mut reader = SmtpReader::new();
        let mut second: &[u8] = &[message(100), b"NOOP\r\n".to_vec()].concat();
        let (outcome, over) = reader
            .read_data(&mut second, 1 << 20, Duration::from_secs(5), Some(&budget))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome, DataOutcome::OverBudget);
        assert!(over.is_none());
        assert_eq!(
            budget.available_permits(),
            1,
            "nothing kept by the refused one"
        );
        let line = reader
            .read_line(&mut second, 512, Duration::from_secs(5))
            .await
            .unwrap();
        assert!(
            matches!(&line, Line::Ok(l) if l == b"NOOP\r\n"),
            "in sync after it"
        );
        // Once the first message has been handled, its units come back.
        drop(hold);
        assert_eq!(budget.available_permits(), 3);
    }

    fn decode_bytewise(input: &[u8]) -> Option<DataOutcome> {
        let mut d = DataDecoder::new(1 << 20);
        for b in input {
            let (_, done) = d.feed(std::slice::from_ref(b));
            if done {
                return Some(d.finish());
            }
        }
        None
    }

    #[test]
    fn plain_message() {
        let (o, n) = decode(b"Subject: x\r\n\r\nhello\r\n.\r\nQUIT\r\n");
        assert_eq!(
            o,
            Some(DataOutcome::Ok(b"Subject: x\r\n\r\nhello\r\n".to_vec()))
        );
        assert_eq!(n, 24);
    }

    #[test]
    fn empty_message() {
        assert_eq!(decode(b".\r\n").0, Some(DataOutcome::Ok(Vec::new())));
    }

    #[test]
    fn dot_unstuffing() {
        let (o, _) = decode(b"..leading\r\n...\r\n.\r\n");
        assert_eq!(o, Some(DataOutcome::Ok(b".leading\r\n..\r\n".to_vec())));
    }

    #[test]
    fn bare_lf_dot_is_not_an_end() {
        // "\n.\n" and "\n.\r\n" and "\r\n.\n" must not end DATA: the smuggling variants.
        for smuggle in [
            &b"a\n.\nMAIL FROM:<x@y>\r\n"[..],
            b"a\n.\r\nMAIL FROM:<x@y>\r\n",
            b"a\r\n.\nMAIL FROM:<x@y>\r\n",
            b"a\r.\r\nMAIL FROM:<x@y>\r\n",
        ] {
            let mut input = smuggle.to_vec();
            assert_eq!(
                decode(&input).0,
                None,
                "{:?}",
                String::from_utf8_lossy(smuggle)
            );
            input.extend_from_slice(b"more\r\n.\r\n");
            assert_eq!(decode(&input).0, Some(DataOutcome::BareLf));
            assert_eq!(decode_bytewise(&input), Some(DataOutcome::BareLf));
        }
    }

    #[test]
    fn bare_cr_refused() {
        assert_eq!(decode(b"a\rb\r\n.\r\n").0, Some(DataOutcome::BareLf));
        assert_eq!(decode(b"a\r\r\n.\r\n").0, Some(DataOutcome::BareLf));
    }

    #[test]
    fn size_limit_reads_to_end() {
        let mut d = DataDecoder::new(10);
        let (_, done) = d.feed(b"0123456789abcdef\r\n.\r\n");
        assert!(done);
        assert_eq!(d.finish(), DataOutcome::TooBig);
    }

    #[test]
    fn eight_bit_passes() {
        let msg = "Tiêu đề: Công văn\r\n\r\nNội dung\r\n".as_bytes();
        let mut input = msg.to_vec();
        input.extend_from_slice(b".\r\n");
        assert_eq!(decode_bytewise(&input), Some(DataOutcome::Ok(msg.to_vec())));
    }

    #[tokio::test]
    async fn lines() {
        let mut r = SmtpReader::new();
        let mut input: &[u8] = b"EHLO a\r\nNOOP\nX";
        let idle = Duration::from_secs(1);
        assert_eq!(
            r.read_line(&mut input, 100, idle).await.unwrap(),
            Line::Ok(b"EHLO a\r\n".to_vec())
        );
        assert_eq!(
            r.read_line(&mut input, 100, idle).await.unwrap(),
            Line::BareLf
        );
        let mut long: &[u8] = &[b'a'; 300];
        let mut r = SmtpReader::new();
        assert_eq!(
            r.read_line(&mut long, 100, idle).await.unwrap(),
            Line::TooLong
        );
        let mut cr: &[u8] = b"NOOP\rX\r\n";
        let mut r = SmtpReader::new();
        assert_eq!(r.read_line(&mut cr, 100, idle).await.unwrap(), Line::BareLf);
    }
}
