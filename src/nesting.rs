//! Depth limits for the nested structures of a message (SPEC "Robustness": `[limits]
//! max_mime_depth`, default 50).
//!
//! A stack overflow is not a panic: it aborts the whole daemon and cannot be caught, so no
//! message may reach a recursive walk (ours, or mail-parser's `Drop` of a nested `Message`)
//! without its depth being known first. [`check`] measures the MIME nesting of a message
//! without recursion and stops as soon as the limit is passed; [`parse`] is the only way the
//! gateway hands a whole message to mail-parser.
//!
//! [`check`] follows mail-parser 0.11's own reading step for step, with mail-parser's own
//! stream primitives (header parsing, boundary search, transfer decoding), so the depth it
//! finds is at least the depth of the tree mail-parser would build (one more for an attached
//! message with an empty body, which mail-parser leaves as a leaf: the safe side; see
//! fuzz/README.md), whatever the shape: multipart,
//! `message/rfc822`, `message/global`, parts of a `multipart/digest` without a Content-Type,
//! and base64 or quoted-printable `message/*` parts, which mail-parser decodes and parses
//! again (up to three encodings deep). Depth is the number of containers (multiparts and
//! attached messages) around the innermost part: a plain message is 0, a `multipart/mixed`
//! with a text part is 1.
//!
//! Every recursive walker also has its own bound, [`MAX_DEPTH_CEILING`] or lower, so a walker
//! used on its own (CLI, fuzzing) stays safe; the configured limit may not exceed it.

use mail_parser::parsers::MessageStream;
use mail_parser::{GetHeader, HeaderName, HeaderValue, Message, MessageParser, PartType};

/// `[limits] max_mime_depth` when the configuration does not set it.
pub const DEFAULT_MAX_DEPTH: usize = 50;

/// The largest `max_mime_depth` the configuration accepts, and the bound every recursive
/// walker keeps by itself (a few kilobytes of stack per level at most: far below the 2 MiB of
/// a worker thread).
pub const MAX_DEPTH_CEILING: usize = 100;

/// How many times mail-parser 0.11 decodes a base64/quoted-printable `message/*` part and
/// parses the result (its `MAX_NESTED_ENCODED`).
const ENCODED_LEVELS: usize = 3;

/// A message whose MIME parts are nested deeper than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("MIME parts are nested more than {limit} levels deep")]
pub struct TooDeep {
    pub limit: usize,
}

/// The kind of entity, as far as nesting goes (mail-parser's `MimeType`, reduced).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// An attached message (or the message itself).
    Message,
    /// `multipart/digest`: a part without Content-Type is a message.
    Digest,
    /// Any other multipart.
    Multipart,
    /// Anything else.
    Leaf,
}

/// One open container.
struct Level {
    kind: Kind,
    boundary: Option<Vec<u8>>,
}

/// The MIME nesting depth of `raw`, or [`TooDeep`] as soon as it passes `limit`. Linear in
/// the size of the message (plus what mail-parser itself decodes), no recursion beyond the
/// three levels of encoded messages.
pub fn check(raw: &[u8], limit: usize) -> Result<usize, TooDeep> {
    scan(raw, ENCODED_LEVELS, 0, limit, &MessageParser::new())
}

/// mail-parser's `MessageParser::parse_` with the tree left out: the same decisions, in the
/// same order, tracking only how many containers are open. `base` is the depth of the entity
/// `raw` is the content of.
fn scan(
    raw: &[u8],
    encoded_levels: usize,
    base: usize,
    limit: usize,
    parser: &MessageParser,
) -> Result<usize, TooDeep> {
    let mut stream = MessageStream::new(raw);
    let mut state = Level {
        kind: Kind::Message,
        boundary: None,
    };
    // `true` where mail-parser pushes a message (a container of its own), `false` for a
    // multipart.
    let mut stack: Vec<(Level, bool)> = Vec::new();
    let mut deepest = base;
    let mut headers = Vec::new();
    let too_deep = TooDeep { limit };

    'outer: loop {
        headers.clear();
        if !stream.parse_headers(parser, &mut headers) {
            break;
        }
        let content_type = headers
            .header_value(&HeaderName::ContentType)
            .and_then(|c| c.as_content_type());
        let (is_multipart, mut kind) = match content_type {
            Some(ct) => match ct.ctype() {
                "multipart" if ct.subtype() == Some("digest") => (true, Kind::Digest),
                "multipart" => (true, Kind::Multipart),
                "message" if matches!(ct.subtype(), Some("rfc822") | Some("global")) => {
                    (false, Kind::Message)
                }
                _ => (false, Kind::Leaf),
            },
            None if state.kind == Kind::Digest => (false, Kind::Message),
            None => (false, Kind::Leaf),
        };

        if is_multipart {
            if let Some(boundary) = content_type.and_then(|c| c.attribute("boundary")) {
                if stream.seek_next_part(boundary.as_bytes()) {
                    let next = Level {
                        kind,
                        boundary: Some(boundary.as_bytes().to_vec()),
                    };
                    stack.push((std::mem::replace(&mut state, next), false));
                    deepest = deepest.max(base + stack.len());
                    if deepest > limit {
                        return Err(too_deep);
                    }
                    stream.skip_crlf();
                    continue;
                }
            }
            kind = Kind::Leaf;
        }

        #[derive(PartialEq)]
        enum Cte {
            None,
            Base64,
            QuotedPrintable,
        }
        let cte = match headers.header_value(&HeaderName::ContentTransferEncoding) {
            Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("base64") => Cte::Base64,
            Some(HeaderValue::Text(e)) if e.eq_ignore_ascii_case("quoted-printable") => {
                Cte::QuotedPrintable
            }
            _ => Cte::None,
        };

        if kind == Kind::Message && cte == Cte::None {
            let next = Level {
                kind: Kind::Message,
                boundary: state.boundary.take(),
            };
            stack.push((std::mem::replace(&mut state, next), true));
            deepest = deepest.max(base + stack.len());
            if deepest > limit {
                return Err(too_deep);
            }
            continue;
        }

        let boundary = state.boundary.clone().unwrap_or_default();
        let (offset_end, bytes) = match cte {
            Cte::Base64 => stream.decode_base64_mime(&boundary),
            Cte::QuotedPrintable => stream.decode_quoted_printable_mime(&boundary),
            Cte::None => stream.mime_part(&boundary),
        };
        if offset_end == usize::MAX {
            // mail-parser recovers the part as text (so not a message) up to the next
            // boundary, if there is one.
            let (_, found) = stream.seek_part_end(state.boundary.as_deref());
            if !found {
                state.boundary = None;
            }
        } else if kind == Kind::Message && encoded_levels > 0 {
            // An encoded message: mail-parser decodes it and parses the result again.
            let inner = scan(
                &bytes,
                encoded_levels - 1,
                base + stack.len() + 1,
                limit,
                parser,
            )?;
            deepest = deepest.max(inner).max(base + stack.len() + 1);
            if deepest > limit {
                return Err(too_deep);
            }
        }
        drop(bytes);

        if state.boundary.is_some() {
            'inner: loop {
                if state.kind == Kind::Message {
                    // The end of an attached message: back to its parent.
                    match stack.pop() {
                        Some((mut parent, true)) => {
                            parent.boundary = state.boundary.take();
                            state = parent;
                        }
                        _ => break 'outer,
                    }
                }
                if stream.is_multipart_end() {
                    if let Some((parent, _)) = stack.pop() {
                        state = parent;
                        if let Some(b) = &state.boundary {
                            if stream.seek_next_part_offset(b).is_some() {
                                continue 'inner;
                            }
                        }
                    }
                    break 'outer;
                } else {
                    break 'inner;
                }
            }
        } else if stream.remaining() == 0 {
            break 'outer;
        }
    }
    Ok(deepest)
}

/// Parses a whole message with mail-parser once its nesting is known to be within `limit`
/// (at most [`MAX_DEPTH_CEILING`] is used). `Ok(None)`: mail-parser found no message.
pub fn parse(raw: &[u8], limit: usize) -> Result<Option<Message<'_>>, TooDeep> {
    let limit = limit.min(MAX_DEPTH_CEILING);
    check(raw, limit)?;
    let Some(message) = MessageParser::new().parse(raw) else {
        return Ok(None);
    };
    // Belt and braces: should mail-parser ever read deeper than `check` did, the tree is
    // taken apart without recursion instead of being dropped.
    if tree_depth(&message) > limit {
        dismantle(message);
        return Err(TooDeep { limit });
    }
    Ok(Some(message))
}

/// The nesting depth of a parsed message, without recursion.
pub fn tree_depth(message: &Message<'_>) -> usize {
    let mut deepest = 0;
    let mut todo: Vec<(&Message<'_>, usize, usize)> = vec![(message, 0, 0)];
    while let Some((m, id, depth)) = todo.pop() {
        let Some(part) = m.parts.get(id) else {
            continue;
        };
        match &part.body {
            PartType::Multipart(children) => {
                deepest = deepest.max(depth + 1);
                // Children come after their multipart; anything else would be a loop.
                for &c in children.iter().filter(|&&c| c as usize > id) {
                    todo.push((m, c as usize, depth + 1));
                }
            }
            PartType::Message(inner) => {
                deepest = deepest.max(depth + 1);
                todo.push((inner, 0, depth + 1));
            }
            _ => {}
        }
    }
    deepest
}

/// Drops a parsed message of any depth without recursion: attached messages are taken out
/// of their parents and dropped one by one.
pub fn dismantle(message: Message<'_>) {
    let mut todo = vec![message];
    while let Some(mut m) = todo.pop() {
        for part in m.parts.iter_mut() {
            if matches!(part.body, PartType::Message(_)) {
                if let PartType::Message(inner) = std::mem::take(&mut part.body) {
                    todo.push(inner);
                }
            }
        }
    }
}

/// Messages nested `levels` deep, for tests and for regenerating the files under
/// `tests/corpus/`: the shapes an attacker would send.
pub mod attack {
    /// The envelope of each generated message.
    fn head(from: &str, to: &str, subject: &str) -> String {
        format!(
            "From: {from}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 08:00:00 +0700\r\nMessage-ID: <nested-{subject}@attack.test>\r\nMIME-Version: 1.0\r\n"
        )
    }

    /// `message/rfc822` (or `message/global`) inside itself `levels` times: 32 bytes a level.
    pub fn nested_message(subtype: &str, levels: usize, from: &str, to: &str) -> Vec<u8> {
        let mut out = head(from, to, &format!("{subtype}-{levels}")).into_bytes();
        let level = format!("Content-Type: message/{subtype}\r\n\r\n");
        out.reserve(level.len() * levels + 64);
        for _ in 0..levels {
            out.extend_from_slice(level.as_bytes());
        }
        out.extend_from_slice(b"Subject: innermost\r\n\r\nNoi dung.\r\n");
        out
    }

    /// `multipart/mixed` inside itself `levels` times, each level closed properly.
    pub fn nested_multipart(levels: usize, from: &str, to: &str) -> Vec<u8> {
        let mut out = head(from, to, &format!("multipart-{levels}")).into_bytes();
        for i in 0..levels {
            out.extend_from_slice(
                format!("Content-Type: multipart/mixed; boundary=\"b{i}\"\r\n\r\n--b{i}\r\n")
                    .as_bytes(),
            );
        }
        out.extend_from_slice(b"Content-Type: text/plain\r\n\r\nNoi dung.\r\n");
        for i in (0..levels).rev() {
            out.extend_from_slice(format!("--b{i}--\r\n").as_bytes());
        }
        out
    }

    /// Alternating multipart and `message/rfc822`, `levels` containers in all.
    pub fn nested_mixed(levels: usize, from: &str, to: &str) -> Vec<u8> {
        let mut out = head(from, to, &format!("mixed-{levels}")).into_bytes();
        let mut open = Vec::new();
        for i in 0..levels {
            if i % 2 == 0 {
                out.extend_from_slice(
                    format!("Content-Type: multipart/mixed; boundary=\"m{i}\"\r\n\r\n--m{i}\r\n")
                        .as_bytes(),
                );
                open.push(i);
            } else {
                out.extend_from_slice(b"Content-Type: message/rfc822\r\n\r\nSubject: x\r\n");
            }
        }
        out.extend_from_slice(b"Content-Type: text/plain\r\n\r\nNoi dung.\r\n");
        for i in open.into_iter().rev() {
            out.extend_from_slice(format!("--m{i}--\r\n").as_bytes());
        }
        out
    }

    /// A base64 `message/rfc822` part whose decoded content nests `levels` messages.
    pub fn encoded_nested_message(levels: usize, from: &str, to: &str) -> Vec<u8> {
        use base64::Engine;
        let inner = nested_message("rfc822", levels, from, to);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&inner);
        let mut out = head(from, to, &format!("encoded-{levels}")).into_bytes();
        out.extend_from_slice(
            b"Content-Type: multipart/mixed; boundary=\"e\"\r\n\r\n--e\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n",
        );
        for line in encoded.as_bytes().chunks(76) {
            out.extend_from_slice(line);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"--e--\r\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::attack::*;
    use super::*;

    const FROM: &str = "a@dev.gov.vn";
    const TO: &str = "b@other.gov.vn";

    /// 10 and 1,000 times the default limit.
    const SIZES: [usize; 2] = [10 * DEFAULT_MAX_DEPTH, 1000 * DEFAULT_MAX_DEPTH];

    #[test]
    fn depth_of_ordinary_shapes() {
        assert_eq!(check(b"Subject: x\r\n\r\nhi\r\n", 50), Ok(0));
        assert_eq!(check(&nested_multipart(1, FROM, TO), 50), Ok(1));
        assert_eq!(check(&nested_message("rfc822", 3, FROM, TO), 50), Ok(3));
        assert_eq!(check(&nested_mixed(7, FROM, TO), 50), Ok(7));
        // Siblings do not add up: a digest of many messages is two deep.
        let mut digest = b"Content-Type: multipart/digest; boundary=d\r\n\r\n".to_vec();
        for i in 0..200 {
            digest.extend_from_slice(format!("--d\r\n\r\nSubject: {i}\r\n\r\nx\r\n").as_bytes());
        }
        digest.extend_from_slice(b"--d--\r\n");
        assert_eq!(check(&digest, 50), Ok(2));
        // The depth agrees with the tree mail-parser builds.
        for raw in [
            nested_multipart(30, FROM, TO),
            nested_message("global", 30, FROM, TO),
            nested_mixed(30, FROM, TO),
            encoded_nested_message(29, FROM, TO),
            digest,
        ] {
            let parsed = MessageParser::new().parse(&raw).unwrap();
            assert_eq!(check(&raw, 100), Ok(tree_depth(&parsed)));
        }
    }

    #[test]
    fn the_limit_itself_passes_one_more_does_not() {
        for make in [
            |n| nested_multipart(n, FROM, TO),
            |n| nested_message("rfc822", n, FROM, TO),
            |n| nested_message("global", n, FROM, TO),
            |n| nested_mixed(n, FROM, TO),
        ] {
            assert_eq!(check(&make(50), 50), Ok(50));
            assert_eq!(check(&make(51), 50), Err(TooDeep { limit: 50 }));
            assert!(parse(&make(50), 50).unwrap().is_some());
            assert!(parse(&make(51), 50).is_err());
        }
        assert_eq!(
            check(&encoded_nested_message(60, FROM, TO), 50),
            Err(TooDeep { limit: 50 })
        );
    }

    #[test]
    fn deep_message_rfc822_and_global_are_refused_without_recursion() {
        for n in SIZES {
            for subtype in ["rfc822", "global"] {
                let raw = nested_message(subtype, n, FROM, TO);
                assert_eq!(check(&raw, 50), Err(TooDeep { limit: 50 }), "{subtype} {n}");
                assert!(parse(&raw, 50).is_err());
            }
        }
    }

    #[test]
    fn deep_multipart_and_mixed_nesting_are_refused() {
        for n in SIZES {
            assert!(check(&nested_multipart(n, FROM, TO), 50).is_err(), "{n}");
            assert!(check(&nested_mixed(n, FROM, TO), 50).is_err(), "{n}");
            assert!(parse(&nested_multipart(n, FROM, TO), 50).is_err());
        }
    }

    #[test]
    fn deep_nesting_inside_an_encoded_message_is_found() {
        for n in SIZES {
            let raw = encoded_nested_message(n, FROM, TO);
            assert_eq!(check(&raw, 50), Err(TooDeep { limit: 50 }), "{n}");
            assert!(parse(&raw, 50).is_err());
        }
    }

    #[test]
    fn a_deep_tree_is_measured_and_dropped_without_recursion() {
        // What `parse` does should mail-parser ever read deeper than `check`: here the
        // parse itself is iterative, and only the tree's Drop would recurse.
        let raw = nested_message("rfc822", 1000 * DEFAULT_MAX_DEPTH, FROM, TO);
        let parsed = MessageParser::new().parse(&raw).unwrap();
        assert_eq!(tree_depth(&parsed), 1000 * DEFAULT_MAX_DEPTH);
        dismantle(parsed);
    }

    #[test]
    fn unterminated_and_hostile_structures_end() {
        let mut raw = b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n".to_vec();
        raw.extend_from_slice(
            &b"Content-Type: multipart/mixed; boundary=a\r\n\r\n--a\r\n".repeat(500),
        );
        assert!(check(&raw, 50).is_err());
        assert!(check(b"", 50).is_ok());
        assert!(check(b"\r\n\r\n", 50).is_ok());
        assert!(check(b"Content-Type: message/rfc822\r\n", 50).is_ok());
    }
}
