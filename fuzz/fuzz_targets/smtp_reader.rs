//! The strict SMTP reader (src/smtp/reader.rs) as a session drives it: command lines read in
//! uneven chunks and parsed (smtp-proto, then congvan's path checks); after `DATA`, the DATA
//! reader up to `<CRLF>.<CRLF>`; `STARTTLS` drops what was pipelined. Checks the reader's
//! promises: a line is CRLF-terminated with no other CR or LF and within the limit; accepted
//! DATA has only CRLF line endings; the DATA state machine gives the same result whether the
//! bytes come at once or one by one.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use congvan::address;
use congvan::smtp::reader::{DataDecoder, DataOutcome, DataPace, Line, SmtpReader, BUDGET_UNIT};
use congvan_fuzz::{block_on, ChunkReader};
use libfuzzer_sys::fuzz_target;
use smtp_proto::Request;

const MAX_LINE: usize = 1000;
const MAX_DATA: usize = 32 * 1024;

fn only_crlf(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, &b)| match b {
        b'\r' => bytes.get(i + 1) == Some(&b'\n'),
        b'\n' => i > 0 && bytes[i - 1] == b'\r',
        _ => true,
    })
}

fn command(line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    match Request::parse(&mut line.iter()) {
        Ok(Request::Mail { from }) => {
            let _ = address::raw_path_of(&text);
            let _ = address::domain_of(from.address.trim());
        }
        Ok(Request::Rcpt { to }) => {
            if let Some(p) = address::raw_path_of(&text) {
                let _ = address::check_forward_path(p);
            }
            if let Some(d) = address::domain_of(to.address.trim()) {
                let _ = address::domain_matches_suffix(&d, "gov.vn");
            }
        }
        _ => {}
    }
}

fn session(data: &[u8]) {
    let budget = Arc::new(tokio::sync::Semaphore::new(2));
    block_on(async {
        let mut r = ChunkReader::new(data);
        let mut reader = SmtpReader::new();
        let idle = Duration::from_secs(60);
        loop {
            let deadline = tokio::time::Instant::now() + idle;
            match reader.read_line(&mut r, MAX_LINE, deadline).await {
                Ok(Line::Ok(line)) => {
                    assert!(line.ends_with(b"\r\n"), "line without CRLF: {line:?}");
                    assert!(line.len() <= MAX_LINE, "line over the limit");
                    let body = &line[..line.len() - 2];
                    assert!(!body.contains(&b'\r') && !body.contains(&b'\n'));
                    command(&line);
                    let verb = body.to_ascii_uppercase();
                    if verb == b"DATA" {
                        match reader
                            .read_data(
                                &mut r,
                                MAX_DATA,
                                DataPace::new(idle, idle, 0),
                                std::slice::from_ref(&budget),
                            )
                            .await
                        {
                            Ok(Some((DataOutcome::Ok(msg), hold))) => {
                                assert!(msg.len() <= MAX_DATA);
                                assert!(only_crlf(&msg), "bare CR or LF in accepted DATA");
                                assert!(msg.is_empty() || msg.ends_with(b"\r\n"));
                                let held: usize = hold.iter().map(|h| h.num_permits()).sum();
                                assert!(held * BUDGET_UNIT >= msg.len());
                            }
                            Ok(Some(_)) => {}
                            Ok(None) | Err(_) => break,
                        }
                    } else if verb == b"STARTTLS" {
                        reader.discard();
                    }
                }
                Ok(Line::Nul) => {}
                Ok(Line::BareLf | Line::TooLong | Line::Eof) | Err(_) => break,
            }
        }
    });
}

/// The DATA state machine fed all at once and byte by byte must agree.
fn data_decoder(data: &[u8]) {
    let mut whole = DataDecoder::new(MAX_DATA);
    let (used_whole, done_whole) = whole.feed(data);
    let mut single = DataDecoder::new(MAX_DATA);
    let mut used_single = 0;
    let mut done_single = false;
    for b in data {
        let (n, done) = single.feed(std::slice::from_ref(b));
        used_single += n;
        if done {
            done_single = true;
            break;
        }
    }
    assert_eq!(done_whole, done_single);
    assert_eq!(used_whole, used_single);
    let (a, b) = (whole.finish(), single.finish());
    assert_eq!(a, b);
    if let DataOutcome::Ok(msg) = a {
        if done_whole {
            assert!(only_crlf(&msg), "bare CR or LF in accepted DATA");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    session(data);
    data_decoder(data);
});
