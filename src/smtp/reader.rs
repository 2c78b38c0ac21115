//! The strict SMTP reader: CRLF-only command lines and a DATA reader that ends only at
//! `<CRLF>.<CRLF>`. A bare CR or LF never ends a line or the data (the 2023 SMTP smuggling
//! class): in a command it closes the connection; in DATA the message is read to its real
//! end and refused. A NUL byte is refused the same way in DATA; a command line holding one
//! is consumed whole and refused, the session staying in sync on its CRLF.
//!
//! Every read has a deadline, never a per-read idle time: a whole command line must arrive
//! within its deadline, and DATA within the phase's deadline and at a minimum average rate
//! ([`DataPace`]), so a client trickling a byte every few seconds is cut off.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

/// Result of reading one command line.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line with its CRLF.
    Ok(Vec<u8>),
    BareLf,
    /// A CRLF-terminated line holding a NUL byte; consumed.
    Nul,
    TooLong,
    Eof,
}

/// Which deadline a read missed; carried inside the `TimedOut` I/O error of a read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Expired {
    /// The whole command line (or AUTH response) did not arrive in time.
    #[error("command line deadline passed")]
    Command,
    /// The whole DATA phase did not end in time.
    #[error("DATA deadline passed")]
    Data,
    /// Message data arrived slower than the minimum rate.
    #[error("message data below the minimum rate")]
    DataRate,
}

impl Expired {
    /// The deadline a `TimedOut` error from this reader missed, if it is one.
    pub fn of(e: &io::Error) -> Option<Expired> {
        if e.kind() != io::ErrorKind::TimedOut {
            return None;
        }
        e.get_ref()
            .and_then(|inner| inner.downcast_ref::<Expired>())
            .copied()
    }
}

/// The deadlines of one DATA phase, as Postfix's `smtpd_min_data_rate` with
/// `smtpd_per_record_deadline`: the whole phase ends by `end`; besides, the client starts
/// with `window` of credit, each read spends the time it waited and earns
/// `bytes / min_rate` seconds, the credit never above `window`.
#[derive(Debug, Clone)]
pub struct DataPace {
    end: Instant,
    /// When the credit runs out; None without a rate check.
    credit_until: Option<Instant>,
    window: Duration,
    min_rate: u64,
}

impl DataPace {
    /// From now: the phase may last `phase`; `min_rate` bytes/s (0: no rate check) with
    /// at most `window` of credit.
    pub fn new(phase: Duration, window: Duration, min_rate: u64) -> DataPace {
        let now = Instant::now();
        DataPace {
            end: now + phase,
            credit_until: (min_rate > 0).then(|| now + window),
            window,
            min_rate,
        }
    }

    /// The next deadline and what missing it means.
    fn deadline(&self) -> (Instant, Expired) {
        match self.credit_until {
            Some(c) if c < self.end => (c, Expired::DataRate),
            _ => (self.end, Expired::Data),
        }
    }

    /// `n` bytes arrived at `now`.
    fn received(&mut self, n: usize, now: Instant) {
        if let Some(c) = self.credit_until {
            let earned = Duration::from_secs_f64(n as f64 / self.min_rate as f64);
            self.credit_until = Some((c + earned).min(now + self.window));
        }
    }
}

/// Result of reading DATA.
#[derive(Debug, PartialEq, Eq)]
pub enum DataOutcome {
    /// The message, dot-unstuffed, with CRLF line endings and the final CRLF.
    Ok(Vec<u8>),
    /// Bare CR or LF seen; read to the real end and discarded.
    BareLf,
    /// A NUL byte seen; read to the real end and discarded.
    Nul,
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

/// What a session holds of its budgets while it keeps a message in memory: one hold per
/// budget it draws on, released when dropped.
pub type BudgetHold = Vec<tokio::sync::OwnedSemaphorePermit>;

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

    /// Reads what the client sent next, by `deadline` (else a `TimedOut` error carrying
    /// `expired`).
    async fn fill<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        deadline: Instant,
        expired: Expired,
    ) -> io::Result<usize> {
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
        match tokio::time::timeout_at(deadline, r.read(&mut chunk)).await {
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(n)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, expired)),
        }
    }

    /// Reads one command line, strictly CRLF-terminated, at most `max` bytes, all of it
    /// by `deadline` (else a `TimedOut` error carrying [`Expired::Command`]).
    pub async fn read_line<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        max: usize,
        deadline: Instant,
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
                    let nul = pending[..pos].contains(&0);
                    let line = pending[..pos + 2].to_vec();
                    self.start += pos + 2;
                    return Ok(if nul { Line::Nul } else { Line::Ok(line) });
                }
                scanned = pos; // wait for the byte after CR
            } else {
                scanned = pending.len();
            }
            if scanned >= max {
                return Ok(Line::TooLong);
            }
            if self.fill(r, deadline, Expired::Command).await? == 0 {
                return Ok(Line::Eof);
            }
        }
    }

    /// Reads DATA up to `<CRLF>.<CRLF>` (the CRLF before the dot being the previous line's
    /// end, or DATA's start), undoing dot-stuffing. Keeps at most `max` bytes in memory.
    /// The bytes kept are taken from every one of `budgets` as they arrive (the gateway's,
    /// and a share of it for some listeners); the hold returned beside the message gives
    /// them back when dropped. The data must keep `pace` (else a `TimedOut` error carrying
    /// [`Expired::Data`] or [`Expired::DataRate`]).
    pub async fn read_data<R: AsyncRead + Unpin>(
        &mut self,
        r: &mut R,
        max: usize,
        mut pace: DataPace,
        budgets: &[DataBudget],
    ) -> io::Result<Option<(DataOutcome, BudgetHold)>> {
        let mut d = DataDecoder::new(max);
        d.budgets = budgets.to_vec();
        loop {
            let (consumed, done) = d.feed(&self.buf[self.start..]);
            self.start += consumed;
            if done {
                let hold = std::mem::take(&mut d.hold);
                return Ok(Some((d.finish(), hold)));
            }
            let (deadline, expired) = pace.deadline();
            let n = self.fill(r, deadline, expired).await?;
            if n == 0 {
                return Ok(None);
            }
            pace.received(n, Instant::now());
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
    nul: bool,
    too_big: bool,
    over_budget: bool,
    budgets: Vec<DataBudget>,
    /// Units taken so far, one hold per budget (same order).
    hold: BudgetHold,
}

impl DataDecoder {
    pub fn new(max: usize) -> Self {
        DataDecoder {
            st: St::LineStart,
            out: Vec::with_capacity(64 * 1024),
            max,
            bare: false,
            nul: false,
            too_big: false,
            over_budget: false,
            budgets: Vec::new(),
            hold: Vec::new(),
        }
    }

    fn keep(&self) -> bool {
        !self.bare && !self.nul && !self.too_big && !self.over_budget
    }

    /// Takes units of every budget to cover `len` bytes; false when one has none left.
    fn reserve(&mut self, len: usize) -> bool {
        let needed = len.div_ceil(BUDGET_UNIT);
        for (i, budget) in self.budgets.iter().enumerate() {
            let held = self.hold.get(i).map_or(0, |h| h.num_permits());
            if needed <= held {
                continue;
            }
            let Ok(more) = budget
                .clone()
                .try_acquire_many_owned((needed - held) as u32)
            else {
                return false;
            };
            match self.hold.get_mut(i) {
                Some(h) => h.merge(more),
                None => self.hold.push(more),
            }
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
            self.hold.clear();
            return;
        }
        if !self.reserve(len) {
            self.over_budget = true;
            self.out = Vec::new();
            self.hold.clear();
            return;
        }
        self.out.extend_from_slice(bytes);
    }

    fn mark_bare(&mut self) {
        self.bare = true;
        self.out = Vec::new();
        self.hold.clear();
    }

    fn mark_nul(&mut self) {
        self.nul = true;
        self.out = Vec::new();
        self.hold.clear();
    }

    /// Consumes bytes; returns how many were used and whether the end was reached.
    pub fn feed(&mut self, input: &[u8]) -> (usize, bool) {
        let mut i = 0;
        while i < input.len() {
            match self.st {
                St::Middle => {
                    // Fast path: copy up to the next CR, LF or NUL.
                    let rest = &input[i..];
                    match rest
                        .iter()
                        .position(|&b| b == b'\r' || b == b'\n' || b == 0)
                    {
                        None => {
                            self.push(rest);
                            i = input.len();
                        }
                        Some(p) => {
                            self.push(&rest[..p]);
                            i += p;
                            match input[i] {
                                b'\r' => self.st = St::Cr,
                                b'\n' => self.mark_bare(),
                                _ => self.mark_nul(),
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
                        0 => {
                            self.mark_nul();
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
                        0 => {
                            self.mark_nul();
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
        } else if self.nul {
            DataOutcome::Nul
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

    fn pace() -> DataPace {
        DataPace::new(Duration::from_secs(5), Duration::from_secs(5), 500)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

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
            .read_data(&mut first, 1 << 20, pace(), std::slice::from_ref(&budget))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(outcome, DataOutcome::Ok(ref m) if m.len() == 100_000));
        assert_eq!(hold.len(), 1);
        assert_eq!(hold[0].num_permits(), 2);
        assert_eq!(budget.available_permits(), 1);
        // A second message while the first is held: over budget, read to its end.
        let mut reader = SmtpReader::new();
        let mut second: &[u8] = &[message(100), b"NOOP\r\n".to_vec()].concat();
        let (outcome, over) = reader
            .read_data(&mut second, 1 << 20, pace(), std::slice::from_ref(&budget))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outcome, DataOutcome::OverBudget);
        assert!(over.is_empty());
        assert_eq!(
            budget.available_permits(),
            1,
            "nothing kept by the refused one"
        );
        let line = reader.read_line(&mut second, 512, soon()).await.unwrap();
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
        let idle = soon();
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

    #[test]
    fn nul_in_data_is_refused_after_the_real_end() {
        // At a line start, after a leading dot, in mid-line, at the very end of a line.
        for body in [
            &b"\0abc\r\n"[..],
            b".\0abc\r\n",
            b"ab\0c\r\n",
            b"abc\0\r\n",
            b"Subject: x\r\n\r\n\0\r\n",
        ] {
            let mut input = body.to_vec();
            input.extend_from_slice(b"more\r\n.\r\nNOOP\r\n");
            let (o, n) = decode(&input);
            assert_eq!(o, Some(DataOutcome::Nul), "{body:?}");
            assert_eq!(&input[n..], b"NOOP\r\n", "read to the real end: {body:?}");
            assert_eq!(decode_bytewise(&input), Some(DataOutcome::Nul), "{body:?}");
        }
    }

    #[tokio::test]
    async fn nul_in_a_command_line_is_consumed_and_refused() {
        let mut r = SmtpReader::new();
        let mut input: &[u8] = b"MAIL FROM:<a@b.vn>\0 x\r\n\0\r\nNOOP\r\n";
        assert_eq!(
            r.read_line(&mut input, 100, soon()).await.unwrap(),
            Line::Nul
        );
        assert_eq!(
            r.read_line(&mut input, 100, soon()).await.unwrap(),
            Line::Nul
        );
        assert_eq!(
            r.read_line(&mut input, 100, soon()).await.unwrap(),
            Line::Ok(b"NOOP\r\n".to_vec()),
            "in sync after them"
        );
    }

    /// Writes `bytes` one at a time, `gap` apart, then waits; ignores a closed peer.
    fn trickle(
        mut w: tokio::io::DuplexStream,
        bytes: Vec<u8>,
        gap: Duration,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            for b in bytes {
                if w.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(gap).await;
            }
            tokio::time::sleep(Duration::from_secs(30)).await;
        })
    }

    #[tokio::test]
    async fn a_command_line_has_one_deadline_however_the_bytes_trickle() {
        let (mut server, client) = tokio::io::duplex(1024);
        // A byte every 50 ms: no read ever waits long, but the line takes 2.5 s.
        let writer = trickle(client, [b'x'; 50].to_vec(), Duration::from_millis(50));
        let mut r = SmtpReader::new();
        let deadline = Instant::now() + Duration::from_millis(400);
        let err = r.read_line(&mut server, 1000, deadline).await.unwrap_err();
        assert_eq!(Expired::of(&err), Some(Expired::Command), "{err}");
        writer.abort();
    }

    #[tokio::test]
    async fn data_below_the_minimum_rate_is_cut_off() {
        let (mut server, client) = tokio::io::duplex(1 << 16);
        // 10 bytes every 50 ms is 200 bytes/s, under the 1,000 asked; the phase itself
        // has a minute.
        let mut slow = Vec::new();
        for _ in 0..200 {
            slow.extend_from_slice(b"abcdefgh\r\n");
        }
        let writer = tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let mut client = client;
            for chunk in slow.chunks(10) {
                if client.write_all(chunk).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        let mut r = SmtpReader::new();
        let pace = DataPace::new(Duration::from_secs(60), Duration::from_millis(300), 1000);
        let err = r
            .read_data(&mut server, 1 << 20, pace, &[])
            .await
            .unwrap_err();
        assert_eq!(Expired::of(&err), Some(Expired::DataRate), "{err}");
        writer.abort();
    }

    #[tokio::test]
    async fn data_at_the_rate_may_outlast_the_window_but_not_the_phase() {
        // 1,000 bytes every 50 ms (20 kB/s) against 1,000 bytes/s asked: the rate credit
        // stays full for the whole second it takes, three times the 300 ms window.
        let mut msg = Vec::new();
        for _ in 0..20 {
            msg.extend_from_slice(&[b'a'; 998]);
            msg.extend_from_slice(b"\r\n");
        }
        msg.extend_from_slice(b".\r\n");
        let send = |msg: Vec<u8>, client: tokio::io::DuplexStream| {
            tokio::spawn(async move {
                use tokio::io::AsyncWriteExt;
                let mut client = client;
                for chunk in msg.chunks(1000) {
                    if client.write_all(chunk).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            })
        };
        let (mut server, client) = tokio::io::duplex(1 << 16);
        let writer = send(msg.clone(), client);
        let mut r = SmtpReader::new();
        let pace = DataPace::new(Duration::from_secs(20), Duration::from_millis(300), 1000);
        let (o, _) = r
            .read_data(&mut server, 1 << 20, pace, &[])
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(o, DataOutcome::Ok(ref m) if m.len() == 20_000));
        writer.abort();
        // The same pace against a 300 ms phase: cut off by the phase's deadline.
        let (mut server, client) = tokio::io::duplex(1 << 16);
        let writer = send(msg, client);
        let mut r = SmtpReader::new();
        let pace = DataPace::new(Duration::from_millis(300), Duration::from_millis(300), 1000);
        let err = r
            .read_data(&mut server, 1 << 20, pace, &[])
            .await
            .unwrap_err();
        assert_eq!(Expired::of(&err), Some(Expired::Data), "{err}");
        writer.abort();
    }
}
