//! Classification: what a message says about itself (urgency, secrecy, document number,
//! signing date, resend), and where it says it. The sources and their order come from the
//! policy (`[classification]`): `X-Congvan-*` headers, the edXML part, and bracketed subject
//! tags such as `[HỎA TỐC]`.
//!
//! For urgency and secrecy every source counts and the stricter level wins; a disagreement is
//! recorded in [`Classification::conflicts`] for the log. For the number and the signing date
//! the first source (in policy order) that gives one wins. A value that cannot be read (an
//! unknown urgency word, a date that is not a date) is a [`Problem`]: the decision refuses the
//! message rather than guess.
//!
//! Nothing here logs: a classified message may be a refused confidential one, whose content
//! must not reach the logs. Callers log what they may.

use std::fmt;

use time::{Date, Month};
use unicode_normalization::UnicodeNormalization;

use super::edxml::{self, EdxmlError, EdxmlFields};
use super::file::{ClassificationRules, SourceKind};
use super::levels::{fold, Secrecy, Urgency};
use super::number;
use super::subject_number::SubjectDate;

/// What classification found in a message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classification {
    pub urgency: Urgency,
    pub secrecy: Secrecy,
    /// The document number, normalised (form not yet checked: that is the decision's job).
    pub number: Option<String>,
    pub signed_date: Option<Date>,
    /// The message says it resends an already issued number.
    pub resend: bool,
    /// Attachments other than the edXML part.
    pub attachments: usize,
    /// Every value found, with its source, in the order found.
    pub findings: Vec<Finding>,
    /// Sources that disagreed, and which value applies (for the log and `policy explain`).
    pub conflicts: Vec<String>,
    /// Values that could not be read.
    pub problems: Vec<Problem>,
    /// Values found but not taken, and why (a Subject's `ngày 31/02/2026`): unlike a
    /// problem, they do not refuse the message.
    pub ignored: Vec<Problem>,
}

/// A classification field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Urgency,
    Secrecy,
    Number,
    SignedDate,
    Resend,
    /// The edXML part as a whole (unreadable).
    Edxml,
}

impl Field {
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Urgency => "urgency",
            Field::Secrecy => "secrecy",
            Field::Number => "number",
            Field::SignedDate => "signed_date",
            Field::Resend => "resend",
            Field::Edxml => "edxml",
        }
    }
}

/// Where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A header, by the name the policy gives it.
    Header(String),
    /// A subject tag, as written (with its brackets, NFC).
    SubjectTag(String),
    /// An element of the edXML part, e.g. `OtherInfo/Priority`.
    Edxml(&'static str),
    /// The number and date written in the Subject (`[classification] subject_number`): the
    /// matched text only, NFC (`Số 26/CT-UBND ngày 13/02/2026`).
    SubjectNumber(String),
}

impl Source {
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::Header(_) => SourceKind::Header,
            Source::SubjectTag(_) | Source::SubjectNumber(_) => SourceKind::Subject,
            Source::Edxml(_) => SourceKind::Edxml,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Header(name) => write!(f, "header {name}"),
            Source::SubjectTag(tag) => write!(f, "subject tag \"{tag}\""),
            Source::Edxml(path) => write!(f, "edXML {path}"),
            Source::SubjectNumber(text) => write!(f, "Subject \"{text}\""),
        }
    }
}

/// One value found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub field: Field,
    /// Human-readable value, e.g. `Hỏa tốc (hoa-toc)` or `26/CT-UBND`.
    pub value: String,
    pub source: Source,
}

/// A value that could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub field: Field,
    pub source: Source,
    /// What is wrong; never echoes the message's text beyond the offending field name.
    pub message: String,
}

/// What the classifier reads from a message, already decoded.
#[derive(Debug, Default)]
pub struct MessageFacts<'a> {
    /// (name, RFC 2047-decoded NFC value), in order.
    pub headers: &'a [(String, String)],
    pub subject: &'a str,
    /// The edXML part, when there is one.
    pub edxml: Option<Result<EdxmlFields, EdxmlError>>,
    pub attachments: usize,
}

/// Classifies a whole message (bytes as received, CRLF). Parses the header section and the
/// MIME structure in memory; writes nothing.
pub fn classify_message(rules: &ClassificationRules, raw: &[u8]) -> Classification {
    classify_read_message(rules, &crate::mime::read_headers(raw), raw)
}

/// [`classify_message`] for a message whose header section the caller has already read
/// (end of DATA reads it once for every check).
pub fn classify_read_message(
    rules: &ClassificationRules,
    info: &crate::mime::HeaderInfo,
    raw: &[u8],
) -> Classification {
    // Nesting deeper than any walker accepts leaves only the header fields to classify by
    // (the session refuses such a message before it gets here).
    let parsed = crate::nesting::parse(raw, crate::nesting::MAX_DEPTH_CEILING)
        .ok()
        .flatten();
    let (edxml, attachments) = match &parsed {
        Some(m) => {
            let found = if rules.sources.contains(&SourceKind::Edxml) {
                edxml::find(m)
            } else {
                None
            };
            let edxml_index = found.as_ref().map(|(i, _)| *i);
            let attachments = m
                .attachments
                .iter()
                .filter(|id| Some(**id as usize) != edxml_index)
                .count();
            (found.map(|(_, f)| f), attachments)
        }
        None => (None, 0),
    };
    classify(
        rules,
        &MessageFacts {
            headers: &info.fields,
            subject: &info.subject,
            edxml,
            attachments,
        },
    )
}

/// Classifies from already-extracted facts.
pub fn classify(rules: &ClassificationRules, facts: &MessageFacts<'_>) -> Classification {
    let mut c = Classification {
        attachments: facts.attachments,
        ..Classification::default()
    };
    let mut urgency: Vec<(Urgency, Source)> = Vec::new();
    let mut secrecy: Vec<(Secrecy, Source)> = Vec::new();
    let mut numbers: Vec<(String, Source)> = Vec::new();
    let mut dates: Vec<(Date, Source)> = Vec::new();
    let names = &rules.headers;

    // Resend is a statement about the envelope of the document, not a level: always read.
    for (name, value) in facts.headers {
        if name.eq_ignore_ascii_case(names.resend.as_str()) && !value.trim().is_empty() {
            let yes = is_yes(value);
            c.resend |= yes;
            c.findings.push(Finding {
                field: Field::Resend,
                value: if yes { "yes" } else { "no" }.into(),
                source: Source::Header(names.resend.0.clone()),
            });
        }
    }

    for kind in &rules.sources {
        match kind {
            SourceKind::Header => {
                for (name, value) in facts.headers {
                    let value = value.trim();
                    if value.is_empty() {
                        continue;
                    }
                    let source = || Source::Header(name.clone());
                    if name.eq_ignore_ascii_case(names.urgency.as_str()) {
                        match Urgency::parse(value) {
                            Some(u) => urgency.push((u, source())),
                            None => c.problems.push(Problem {
                                field: Field::Urgency,
                                source: source(),
                                message: format!(
                                    "{name} is not an urgency (thuong, khan, thuong-khan, hoa-toc, hoa-toc-hen-gio)"
                                ),
                            }),
                        }
                    } else if name.eq_ignore_ascii_case(names.secrecy.as_str()) {
                        match Secrecy::parse(value) {
                            Some(s) => secrecy.push((s, source())),
                            None => c.problems.push(Problem {
                                field: Field::Secrecy,
                                source: source(),
                                message: format!(
                                    "{name} is not a secrecy level (thuong, mat, toi-mat, tuyet-mat)"
                                ),
                            }),
                        }
                    } else if name.eq_ignore_ascii_case(names.number.as_str()) {
                        numbers.push((number::normalise(value), source()));
                    } else if name.eq_ignore_ascii_case(names.signed_date.as_str()) {
                        match parse_iso_date(value) {
                            Some(d) => dates.push((d, source())),
                            None => c.problems.push(Problem {
                                field: Field::SignedDate,
                                source: source(),
                                message: format!("{name} is not a date YYYY-MM-DD"),
                            }),
                        }
                    }
                }
            }
            SourceKind::Edxml => match &facts.edxml {
                None => {}
                Some(Err(e)) => c.problems.push(Problem {
                    field: Field::Edxml,
                    source: Source::Edxml("part"),
                    message: e.to_string(),
                }),
                Some(Ok(f)) => read_edxml(f, &mut c, &mut urgency, &mut numbers, &mut dates),
            },
            SourceKind::Subject => {
                let t = &rules.subject_tags;
                for tag in subject_tags(facts.subject) {
                    for (key, text) in tag_candidates(&tag) {
                        // Only the matched text is shown (and may reach the log), never the
                        // rest of a combined tag.
                        let shown =
                            || Source::SubjectTag(format!("[{}]", text.nfc().collect::<String>()));
                        if let Some((_, _, u)) = t.urgency.iter().find(|(_, k, _)| *k == key) {
                            urgency.push((*u, shown()));
                        }
                        if let Some((_, _, s)) = t.secrecy.iter().find(|(_, k, _)| *k == key) {
                            secrecy.push((*s, shown()));
                        }
                    }
                }
            }
        }
    }

    // After every listed source, so that a header or the edXML part wins over the Subject.
    if rules.subject_number {
        if let Some(found) = super::subject_number::find(facts.subject) {
            let source = Source::SubjectNumber(found.matched.clone());
            numbers.push((found.number, source.clone()));
            match found.date {
                SubjectDate::None => {}
                SubjectDate::Date(d) => dates.push((d, source)),
                SubjectDate::Invalid(text) => c.ignored.push(Problem {
                    field: Field::SignedDate,
                    source,
                    message: format!(
                        "\"{text}\" is not a date (day/month/year): the signing date is not taken from the Subject"
                    ),
                }),
            }
        }
    }

    for (u, source) in &urgency {
        c.findings.push(Finding {
            field: Field::Urgency,
            value: u.to_string(),
            source: source.clone(),
        });
    }
    for (s, source) in &secrecy {
        c.findings.push(Finding {
            field: Field::Secrecy,
            value: s.to_string(),
            source: source.clone(),
        });
    }
    for (n, source) in &numbers {
        c.findings.push(Finding {
            field: Field::Number,
            value: n.clone(),
            source: source.clone(),
        });
    }
    for (d, source) in &dates {
        c.findings.push(Finding {
            field: Field::SignedDate,
            value: d.to_string(),
            source: source.clone(),
        });
    }

    c.urgency = stricter("urgency", &urgency, &mut c.conflicts);
    c.secrecy = stricter("secrecy", &secrecy, &mut c.conflicts);
    c.number = first("number", &numbers, |n| number::key(n), &mut c.conflicts);
    c.signed_date = first("signing date", &dates, |d| *d, &mut c.conflicts);
    c
}

fn read_edxml(
    f: &EdxmlFields,
    c: &mut Classification,
    urgency: &mut Vec<(Urgency, Source)>,
    numbers: &mut Vec<(String, Source)>,
    dates: &mut Vec<(Date, Source)>,
) {
    if let Some(p) = &f.priority {
        let source = Source::Edxml("OtherInfo/Priority");
        // edXML Priority is a digit 0-4; nothing else is accepted from it.
        match p.trim() {
            d @ ("0" | "1" | "2" | "3" | "4") => {
                urgency.push((Urgency::parse(d).unwrap_or_default(), source))
            }
            _ => c.problems.push(Problem {
                field: Field::Urgency,
                source,
                message: "edXML Priority is not 0-4".into(),
            }),
        }
    }
    match (&f.code_number, &f.code_notation) {
        (Some(n), Some(notation)) => numbers.push((
            number::from_edxml(n, notation),
            Source::Edxml("Code/CodeNumber+CodeNotation"),
        )),
        (None, None) => {}
        _ => c.problems.push(Problem {
            field: Field::Number,
            source: Source::Edxml("Code"),
            message: "edXML Code has only one of CodeNumber and CodeNotation".into(),
        }),
    }
    if let Some(d) = &f.promulgation_date {
        let source = Source::Edxml("PromulgationInfo/PromulgationDate");
        match parse_edxml_date(d) {
            Some(d) => dates.push((d, source)),
            None => c.problems.push(Problem {
                field: Field::SignedDate,
                source,
                message: "edXML PromulgationDate is not a date".into(),
            }),
        }
    }
}

/// The strictest level found; a disagreement is described in `conflicts`.
fn stricter<T: Copy + Ord + Default + fmt::Display>(
    what: &str,
    found: &[(T, Source)],
    conflicts: &mut Vec<String>,
) -> T {
    let Some(max) = found.iter().map(|(v, _)| *v).max() else {
        return T::default();
    };
    if found.iter().any(|(v, _)| *v != max) {
        let said: Vec<String> = found.iter().map(|(v, s)| format!("{s} says {v}")).collect();
        conflicts.push(format!(
            "{what}: {}; the stricter {max} applies",
            said.join(", ")
        ));
    }
    max
}

/// The first value found, in source order; a different later value is described.
fn first<T: Clone + fmt::Display, K: PartialEq>(
    what: &str,
    found: &[(T, Source)],
    key: impl Fn(&T) -> K,
    conflicts: &mut Vec<String>,
) -> Option<T> {
    let (value, source) = found.first()?;
    for (other, other_source) in &found[1..] {
        if key(other) != key(value) {
            conflicts.push(format!(
                "{what}: {source} says {value}, {other_source} says {other}; the first source listed in the policy applies"
            ));
        }
    }
    Some(value.clone())
}

/// The text of every `[...]` group in a subject (full-width brackets too), in order.
pub fn subject_tags(subject: &str) -> Vec<String> {
    let mut tags = Vec::new();
    let mut current: Option<String> = None;
    for ch in subject.chars() {
        match ch {
            '[' | '［' | '【' => current = Some(String::new()),
            ']' | '］' | '】' => {
                if let Some(t) = current.take() {
                    tags.push(t);
                }
            }
            c => {
                if let Some(t) = current.as_mut() {
                    t.push(c);
                }
            }
        }
    }
    tags
}

/// The keys a tag's text is matched by, each with the text it came from: the whole text,
/// the level after an `Độ mật:` / `Độ khẩn:` label, and each part of a combined tag
/// (`[KHẨN, MẬT]`, `[KHẨN - MẬT]`).
fn tag_candidates(tag: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut push = |text: &str| {
        let key = tag_key(text);
        for label in ["do-mat-", "do-khan-"] {
            if let Some(rest) = key.strip_prefix(label) {
                if !out.iter().any(|(k, _)| k == rest) {
                    out.push((rest.to_string(), text.trim().to_string()));
                }
            }
        }
        if !key.is_empty() && !out.iter().any(|(k, _)| *k == key) {
            out.push((key, text.trim().to_string()));
        }
    };
    push(tag);
    let parts: Vec<&str> = tag
        .split([',', ';', '/', '|', '+', '&', '–', '—'])
        .flat_map(|p| p.split(" - "))
        .collect();
    if parts.len() > 1 {
        for p in parts {
            push(p);
        }
    }
    out
}

/// The match key of a tag: diacritics, case and Unicode form ignored, any white space (and
/// `:` or `.`) as one separator, invisible characters dropped. `Tối mật`, `TOI MAT` and the
/// NFD `Tối mật` all give `toi-mat`; `Mật` gives `mat`, never equal to it.
pub fn tag_key(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .filter(|c| {
            !matches!(
                c,
                '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
            )
        })
        .map(|c| {
            if c.is_whitespace() || c == ':' || c == '.' {
                ' '
            } else {
                c
            }
        })
        .collect();
    fold(&cleaned)
}

/// `YYYY-MM-DD`, as SPEC writes `X-Congvan-Signed-Date`.
pub fn parse_iso_date(text: &str) -> Option<Date> {
    let t = text.trim();
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |s: &str| -> Option<u32> {
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    let y = num(t.get(0..4)?)?;
    let m = num(t.get(5..7)?)?;
    let d = num(t.get(8..10)?)?;
    Date::from_calendar_date(y as i32, Month::try_from(m as u8).ok()?, d as u8).ok()
}

/// edXML dates: `YYYY-MM-DD`, optionally followed by a time, or `DD/MM/YYYY`.
fn parse_edxml_date(text: &str) -> Option<Date> {
    let t = text.trim();
    if let Some(d) = t.get(..10).and_then(parse_iso_date) {
        if t.len() == 10 || t[10..].starts_with(['T', ' ']) {
            return Some(d);
        }
    }
    let mut it = t.split('/');
    let (d, m, y) = (it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || y.len() != 4 {
        return None;
    }
    parse_iso_date(&format!("{y}-{m:0>2}-{d:0>2}"))
}

fn is_yes(value: &str) -> bool {
    matches!(
        fold(value).as_str(),
        "yes" | "y" | "true" | "1" | "co" | "on"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn rules() -> ClassificationRules {
        ClassificationRules::default()
    }

    fn nfd(s: &str) -> String {
        s.nfd().collect()
    }

    fn by_subject(subject: &str) -> Classification {
        classify(
            &rules(),
            &MessageFacts {
                subject,
                ..MessageFacts::default()
            },
        )
    }

    /// The subject-tag table: (subject, urgency, secrecy).
    #[test]
    fn subject_tag_table() {
        use Secrecy as S;
        use Urgency as U;
        let rows: Vec<(String, U, S)> = vec![
            ("[KHẨN] Về việc họp".into(), U::Khan, S::Thuong),
            ("[Khẩn] Về việc họp".into(), U::Khan, S::Thuong),
            ("[khẩn] về việc họp".into(), U::Khan, S::Thuong),
            ("[KHAN] Ve viec hop".into(), U::Khan, S::Thuong),
            ("[khan] ve viec hop".into(), U::Khan, S::Thuong),
            (nfd("[KHẨN] Về việc họp"), U::Khan, S::Thuong),
            ("[THƯỢNG KHẨN] Báo cáo".into(), U::ThuongKhan, S::Thuong),
            ("[Thượng khẩn] Báo cáo".into(), U::ThuongKhan, S::Thuong),
            ("[THUONG KHAN] Bao cao".into(), U::ThuongKhan, S::Thuong),
            (nfd("[thượng khẩn] báo cáo"), U::ThuongKhan, S::Thuong),
            ("[THƯỢNG  KHẨN] two spaces".into(), U::ThuongKhan, S::Thuong),
            (
                "[THƯỢNG\u{00A0}KHẨN] no-break space".into(),
                U::ThuongKhan,
                S::Thuong,
            ),
            ("[HỎA TỐC] Công điện".into(), U::HoaToc, S::Thuong),
            ("[Hoả tốc] old-style accent".into(), U::HoaToc, S::Thuong),
            ("[HOA TOC] Cong dien".into(), U::HoaToc, S::Thuong),
            ("[hoa toc] cong dien".into(), U::HoaToc, S::Thuong),
            (nfd("[Hỏa tốc] Công điện"), U::HoaToc, S::Thuong),
            (
                "[HỎA TỐC HẸN GIỜ] Giấy mời".into(),
                U::HoaTocHenGio,
                S::Thuong,
            ),
            ("[MẬT] Báo cáo".into(), U::Thuong, S::Mat),
            ("[Mật] Báo cáo".into(), U::Thuong, S::Mat),
            ("[MAT] Bao cao".into(), U::Thuong, S::Mat),
            ("[mat] bao cao".into(), U::Thuong, S::Mat),
            (nfd("[MẬT] Báo cáo"), U::Thuong, S::Mat),
            ("[TỐI MẬT] Kế hoạch".into(), U::Thuong, S::ToiMat),
            ("[Tối mật] Kế hoạch".into(), U::Thuong, S::ToiMat),
            ("[TOI MAT] Ke hoach".into(), U::Thuong, S::ToiMat),
            (nfd("[tối mật] kế hoạch"), U::Thuong, S::ToiMat),
            ("[TUYỆT MẬT] Phương án".into(), U::Thuong, S::TuyetMat),
            ("[TUYET MAT] Phuong an".into(), U::Thuong, S::TuyetMat),
            (nfd("[Tuyệt mật] Phương án"), U::Thuong, S::TuyetMat),
            // Several tags, anywhere in the subject.
            ("[HỎA TỐC][MẬT] Công điện".into(), U::HoaToc, S::Mat),
            ("[KHẨN] [TỐI MẬT] Kế hoạch".into(), U::Khan, S::ToiMat),
            ("Về việc họp [KHẨN]".into(), U::Khan, S::Thuong),
            (
                "Fwd: [THƯỢNG KHẨN] Báo cáo".into(),
                U::ThuongKhan,
                S::Thuong,
            ),
            ("Re: Công văn số 26 [MẬT]".into(), U::Thuong, S::Mat),
            ("[KHẨN, MẬT] Báo cáo".into(), U::Khan, S::Mat),
            ("[KHẨN - TỐI MẬT] Báo cáo".into(), U::Khan, S::ToiMat),
            ("[Độ mật: MẬT] Báo cáo".into(), U::Thuong, S::Mat),
            ("[ĐỘ KHẨN: HỎA TỐC] Công điện".into(), U::HoaToc, S::Thuong),
            ("[ KHẨN ] spaces inside".into(), U::Khan, S::Thuong),
            ("［KHẨN］ full-width brackets".into(), U::Khan, S::Thuong),
            ("[KH\u{200B}ẨN] zero-width space".into(), U::Khan, S::Thuong),
            // Not tags: the words in ordinary text, or inside other words.
            ("Bảo vệ bí mật nhà nước".into(), U::Thuong, S::Thuong),
            ("Tài liệu mật và khẩn".into(), U::Thuong, S::Thuong),
            ("KHẨN: họp ngay".into(), U::Thuong, S::Thuong),
            ("(MẬT) Báo cáo".into(), U::Thuong, S::Thuong),
            ("[MẬT KHẨU] Cấp lại mật khẩu".into(), U::Thuong, S::Thuong),
            ("[KHẨN TRƯƠNG] Triển khai".into(), U::Thuong, S::Thuong),
            ("[UBND] Thông báo".into(), U::Thuong, S::Thuong),
            ("[THƯỜNG] Thông báo".into(), U::Thuong, S::Thuong),
            (
                "[MẬT Thông báo without a closing bracket".into(),
                U::Thuong,
                S::Thuong,
            ),
            ("MẬT] closing bracket only".into(), U::Thuong, S::Thuong),
            ("".into(), U::Thuong, S::Thuong),
        ];
        assert!(rows.len() >= 40);
        for (subject, u, s) in &rows {
            let c = by_subject(subject);
            assert_eq!((c.urgency, c.secrecy), (*u, *s), "{subject:?}");
        }
    }

    #[test]
    fn mat_is_never_toi_mat_and_khan_never_thuong_khan() {
        for (subject, s) in [
            ("[TỐI MẬT]", Secrecy::ToiMat),
            ("[TUYỆT MẬT]", Secrecy::TuyetMat),
            ("[MẬT]", Secrecy::Mat),
        ] {
            let c = by_subject(subject);
            assert_eq!(c.secrecy, s, "{subject}");
            // Exactly one finding: the inner MẬT of TỐI MẬT does not count on its own.
            assert_eq!(
                c.findings
                    .iter()
                    .filter(|f| f.field == Field::Secrecy)
                    .count(),
                1,
                "{subject}"
            );
            assert!(c.conflicts.is_empty(), "{subject}: {:?}", c.conflicts);
        }
        let c = by_subject("[THƯỢNG KHẨN]");
        assert_eq!(c.urgency, Urgency::ThuongKhan);
        assert_eq!(c.findings.len(), 1);
    }

    #[test]
    fn combined_tags_show_only_the_matched_part() {
        let c = by_subject("[MẬT, dự án Sông Hồng] x");
        assert_eq!(c.secrecy, Secrecy::Mat);
        assert_eq!(c.findings[0].source, Source::SubjectTag("[MẬT]".into()));
    }

    fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn headers_classify_and_conflicts_take_the_stricter() {
        let h = headers(&[
            ("X-Congvan-Urgency", "khan"),
            ("x-congvan-secrecy", "Tối mật"),
            ("X-Congvan-Number", "Số: 26/CT-UBND"),
            ("X-Congvan-Signed-Date", "2026-02-13"),
        ]);
        let c = classify(
            &rules(),
            &MessageFacts {
                headers: &h,
                subject: "[HỎA TỐC] Công điện",
                ..MessageFacts::default()
            },
        );
        assert_eq!(c.urgency, Urgency::HoaToc);
        assert_eq!(c.secrecy, Secrecy::ToiMat);
        assert_eq!(c.number.as_deref(), Some("26/CT-UBND"));
        assert_eq!(c.signed_date, Some(date!(2026 - 02 - 13)));
        assert_eq!(c.conflicts.len(), 1, "{:?}", c.conflicts);
        assert!(c.conflicts[0].contains("header X-Congvan-Urgency says Khẩn (khan)"));
        assert!(c.conflicts[0].contains("subject tag \"[HỎA TỐC]\" says Hỏa tốc (hoa-toc)"));
        assert!(c.conflicts[0].ends_with("the stricter Hỏa tốc (hoa-toc) applies"));
        let sources: Vec<String> = c.findings.iter().map(|f| f.source.to_string()).collect();
        assert!(sources.contains(&"subject tag \"[HỎA TỐC]\"".to_string()));
    }

    #[test]
    fn unreadable_values_are_problems() {
        let h = headers(&[
            ("X-Congvan-Urgency", "rất khẩn"),
            ("X-Congvan-Secrecy", "confidential"),
            ("X-Congvan-Signed-Date", "13/02/2026"),
        ]);
        let c = classify(
            &rules(),
            &MessageFacts {
                headers: &h,
                ..MessageFacts::default()
            },
        );
        let fields: Vec<Field> = c.problems.iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            vec![Field::Urgency, Field::Secrecy, Field::SignedDate]
        );
        // The problem text names the header, never its value.
        assert!(c
            .problems
            .iter()
            .all(|p| !p.message.contains("confidential")));
    }

    #[test]
    fn sources_not_listed_do_not_count() {
        let mut r = rules();
        r.sources = vec![SourceKind::Header];
        let c = classify(
            &r,
            &MessageFacts {
                subject: "[MẬT] x",
                ..MessageFacts::default()
            },
        );
        assert_eq!(c.secrecy, Secrecy::Thuong);
    }

    #[test]
    fn edxml_fields_and_first_source_wins_for_numbers() {
        let h = headers(&[
            ("X-Congvan-Number", "27/CT-UBND"),
            ("X-Congvan-Resend", "Có"),
        ]);
        let f = EdxmlFields {
            priority: Some("2".into()),
            code_number: Some("26".into()),
            code_notation: Some("CT-UBND".into()),
            promulgation_date: Some("2026-02-13T08:00:00".into()),
        };
        let c = classify(
            &rules(),
            &MessageFacts {
                headers: &h,
                edxml: Some(Ok(f.clone())),
                ..MessageFacts::default()
            },
        );
        assert_eq!(c.urgency, Urgency::ThuongKhan);
        assert_eq!(c.number.as_deref(), Some("27/CT-UBND"));
        assert_eq!(c.signed_date, Some(date!(2026 - 02 - 13)));
        assert!(c.resend);
        assert!(c.conflicts[0].starts_with("number: header X-Congvan-Number says 27/CT-UBND, edXML Code/CodeNumber+CodeNotation says 26/CT-UBND"));
        // edXML first in the policy: its number applies.
        let mut r = rules();
        r.sources = vec![SourceKind::Edxml, SourceKind::Header];
        let c = classify(
            &r,
            &MessageFacts {
                headers: &h,
                edxml: Some(Ok(f)),
                ..MessageFacts::default()
            },
        );
        assert_eq!(c.number.as_deref(), Some("26/CT-UBND"));
        // A broken edXML part is a problem.
        let c = classify(
            &rules(),
            &MessageFacts {
                edxml: Some(Err(EdxmlError::NoHeader)),
                ..MessageFacts::default()
            },
        );
        assert_eq!(c.problems[0].field, Field::Edxml);
    }

    #[test]
    fn whole_messages() {
        let msg = "From: a@dev.gov.vn\r\nSubject: =?UTF-8?B?W03huqxUXSBCw6FvIGPDoW8=?=\r\nX-Congvan-Urgency: =?UTF-8?Q?h=E1=BB=8Fa_t=E1=BB=91c?=\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nx\r\n--b\r\nContent-Type: application/pdf\r\nContent-Disposition: attachment; filename=vb.pdf\r\n\r\n%PDF\r\n--b\r\nContent-Type: text/xml\r\n\r\n<edXMLEnvelope><MessageHeader><Code><CodeNumber>5</CodeNumber><CodeNotation>QĐ-UBND</CodeNotation></Code></MessageHeader></edXMLEnvelope>\r\n--b--\r\n";
        let c = classify_message(&rules(), msg.as_bytes());
        assert_eq!(c.secrecy, Secrecy::Mat, "{c:?}");
        assert_eq!(c.urgency, Urgency::HoaToc);
        assert_eq!(c.number.as_deref(), Some("05/QĐ-UBND"));
        assert_eq!(c.attachments, 1, "the edXML part is not counted");
    }

    /// A message nested beyond every walker's bound is classified by its header fields alone
    /// (mail-parser never builds, or drops, its tree).
    #[test]
    fn deep_nesting_is_classified_by_headers_only() {
        use crate::nesting::attack::*;
        for n in [500, 50_000] {
            for body in [
                nested_message("rfc822", n, "a@dev.gov.vn", "b@x.vn"),
                nested_message("global", n, "a@dev.gov.vn", "b@x.vn"),
                nested_multipart(n, "a@dev.gov.vn", "b@x.vn"),
                encoded_nested_message(n, "a@dev.gov.vn", "b@x.vn"),
            ] {
                let mut msg =
                    b"X-Congvan-Urgency: =?UTF-8?Q?h=E1=BB=8Fa_t=E1=BB=91c?=\r\n".to_vec();
                msg.extend_from_slice(&body);
                let c = classify_message(&rules(), &msg);
                assert_eq!(c.urgency, Urgency::HoaToc, "{n}");
                assert_eq!(c.attachments, 0);
            }
        }
    }

    #[test]
    fn date_forms() {
        assert_eq!(parse_iso_date("2026-02-13"), Some(date!(2026 - 02 - 13)));
        assert_eq!(parse_iso_date("2026-2-13"), None);
        assert_eq!(parse_iso_date("2026-02-30"), None);
        assert_eq!(parse_edxml_date("13/02/2026"), Some(date!(2026 - 02 - 13)));
        assert_eq!(parse_edxml_date("3/2/2026"), Some(date!(2026 - 02 - 03)));
        assert_eq!(
            parse_edxml_date("2026-02-13 10:00"),
            Some(date!(2026 - 02 - 13))
        );
        assert_eq!(parse_edxml_date("2026-02-13x"), None);
    }

    #[test]
    fn subject_number_only_when_enabled_and_after_headers() {
        let subject = "Số 26/CT-UBND ngày 13/02/2026 về việc phòng chống lụt bão";
        let facts = |h: &'static [(String, String)]| MessageFacts {
            headers: h,
            subject,
            ..MessageFacts::default()
        };
        // Off by default: the Subject is only text.
        let c = classify(&rules(), &facts(&[]));
        assert_eq!((c.number, c.signed_date), (None, None));

        let mut r = rules();
        r.subject_number = true;
        let c = classify(&r, &facts(&[]));
        assert_eq!(c.number.as_deref(), Some("26/CT-UBND"));
        assert_eq!(c.signed_date, Some(date!(2026 - 02 - 13)));
        let src = Source::SubjectNumber("Số 26/CT-UBND ngày 13/02/2026".into());
        assert!(c.findings.iter().all(|f| f.source == src), "{c:?}");
        assert_eq!(src.to_string(), "Subject \"Số 26/CT-UBND ngày 13/02/2026\"");

        // Headers win, whatever the order of the sources; the difference is a conflict.
        let h: &'static [(String, String)] = Box::leak(
            headers(&[
                ("X-Congvan-Number", "27/CT-UBND"),
                ("X-Congvan-Signed-Date", "2026-02-14"),
            ])
            .into_boxed_slice(),
        );
        r.sources = vec![SourceKind::Subject, SourceKind::Header];
        let c = classify(&r, &facts(h));
        assert_eq!(c.number.as_deref(), Some("27/CT-UBND"));
        assert_eq!(c.signed_date, Some(date!(2026 - 02 - 14)));
        assert_eq!(c.conflicts.len(), 2, "{:?}", c.conflicts);
        assert!(
            c.conflicts[0].contains("Subject \"Số 26/CT-UBND ngày 13/02/2026\" says 26/CT-UBND")
        );
    }

    #[test]
    fn an_impossible_subject_date_is_not_taken_and_says_why() {
        let mut r = rules();
        r.subject_number = true;
        let c = classify(
            &r,
            &MessageFacts {
                subject: "Số 26/CT-UBND ngày 31/02/2026 về việc",
                ..MessageFacts::default()
            },
        );
        assert_eq!(c.number.as_deref(), Some("26/CT-UBND"));
        assert_eq!(c.signed_date, None);
        assert!(c.problems.is_empty(), "not a refusal: {:?}", c.problems);
        assert_eq!(c.ignored.len(), 1);
        assert_eq!(c.ignored[0].field, Field::SignedDate);
        assert!(c.ignored[0]
            .message
            .contains("\"31/02/2026\" is not a date"));
    }
}
