//! The document number and signing date written in a Subject, as a clerk using an ordinary
//! mail program gives them (`[classification] subject_number = true`):
//! `Số 26/CT-UBND ngày 13/02/2026 về việc ...`, also `Số: 26/CT-UBND`, `so 26/CT-UBND`,
//! `SỐ 26/CT-UBND, ngày 13-2-2026`, in NFC or NFD.
//!
//! A hand-written scan, not a regular expression: the label `Số` (any case, with or without
//! diacritics, but not `sơ` as in "hồ sơ") starting a word, `:` or spaces, then a token that
//! starts with a digit and passes the number's form check; then, right after it, an optional
//! `ngày D/M/YYYY` (separators `/`, `-` or `.`, the same twice). The Subject is outside input:
//! only its first [`MAX_SCAN`] characters are looked at and a token longer than
//! [`MAX_TOKEN`] characters is not a number.

use time::{Date, Month};
use unicode_normalization::UnicodeNormalization;

use super::number;

/// How many characters of the Subject are scanned.
pub const MAX_SCAN: usize = 512;
/// The longest number token taken (`30/2020/NĐ-CP` is 13).
pub const MAX_TOKEN: usize = 64;

/// What the Subject says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectNumber {
    /// The number, normalised as a header's would be (`26/CT-UBND`).
    pub number: String,
    /// The text matched, NFC (`Số 26/CT-UBND ngày 13/02/2026`): what `policy explain` shows,
    /// never the rest of the Subject.
    pub matched: String,
    /// The signing date: none written, a date, or the text that is not one.
    pub date: SubjectDate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubjectDate {
    None,
    Date(Date),
    /// `ngày` followed by something that is not a date (`31/02/2026`): not taken.
    Invalid(String),
}

/// One character of the Subject: as written (NFC) and its comparison form (lower case, no
/// diacritics, `đ` as `d`), with whether it carries the horn of `ơ`/`ư`.
#[derive(Clone, Copy)]
struct Ch {
    c: char,
    base: char,
    horn: bool,
}

fn chars(subject: &str) -> Vec<Ch> {
    subject
        .nfc()
        .take(MAX_SCAN)
        .map(|c| {
            let mut d = std::iter::once(c).nfd();
            let first = d.next().unwrap_or(c);
            let horn = d.any(|m| m == '\u{031B}');
            let base = match first {
                'đ' | 'Đ' => 'd',
                f => f.to_lowercase().next().unwrap_or(f),
            };
            Ch { c, base, horn }
        })
        .collect()
}

fn text(cs: &[Ch]) -> String {
    cs.iter().map(|x| x.c).collect()
}

/// Does `cs[i..]` start with the word `word` (compared on the base form), at a word start?
fn word_at(cs: &[Ch], i: usize, word: &str) -> bool {
    if i > 0 && cs[i - 1].c.is_alphanumeric() {
        return false;
    }
    let w: Vec<char> = word.chars().collect();
    cs.len() >= i + w.len()
        && cs[i..i + w.len()]
            .iter()
            .zip(&w)
            .all(|(x, c)| x.base == *c && !x.horn)
        && cs.get(i + w.len()).is_none_or(|x| !x.c.is_alphanumeric())
}

/// Skips spaces and, once, `sep` characters; returns the new index.
fn skip(cs: &[Ch], mut i: usize, seps: &[char]) -> usize {
    while cs.get(i).is_some_and(|x| x.c.is_whitespace()) {
        i += 1;
    }
    if cs.get(i).is_some_and(|x| seps.contains(&x.c)) {
        i += 1;
    }
    while cs.get(i).is_some_and(|x| x.c.is_whitespace()) {
        i += 1;
    }
    i
}

/// A run of digits at `i`, at most `max` of them: (value, end).
fn digits(cs: &[Ch], i: usize, max: usize) -> Option<(u32, usize)> {
    let mut j = i;
    let mut v = 0u32;
    while j < cs.len() && cs[j].c.is_ascii_digit() {
        if j - i == max {
            return None;
        }
        v = v * 10 + cs[j].c.to_digit(10)?;
        j += 1;
    }
    (j > i).then_some((v, j))
}

/// `D/M/YYYY` at `i` (or with `-` or `.`): the date or why not, and the end.
fn date_at(cs: &[Ch], i: usize) -> Option<(Result<Date, ()>, usize)> {
    let (d, j) = digits(cs, i, 2)?;
    let sep = cs.get(j)?.c;
    if !matches!(sep, '/' | '-' | '.') {
        return None;
    }
    let (m, k) = digits(cs, j + 1, 2)?;
    if cs.get(k)?.c != sep {
        return None;
    }
    let (y, end) = digits(cs, k + 1, 4)?;
    if end - (k + 1) != 4 || cs.get(end).is_some_and(|x| x.c.is_alphanumeric()) {
        return None;
    }
    let date = u8::try_from(m)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .and_then(|month| Date::from_calendar_date(y as i32, month, d as u8).ok())
        .ok_or(());
    Some((date, end))
}

/// The first `Số N/NOTATION [ngày D/M/YYYY]` in the Subject whose number has the form of a
/// document number.
pub fn find(subject: &str) -> Option<SubjectNumber> {
    let cs = chars(subject);
    let mut i = 0;
    while i < cs.len() {
        if let Some(found) = at(&cs, i) {
            return Some(found);
        }
        i += 1;
    }
    None
}

fn at(cs: &[Ch], start: usize) -> Option<SubjectNumber> {
    if !word_at(cs, start, "so") {
        return None;
    }
    let t = skip(cs, start + 2, &[':', '.']);
    if !cs.get(t)?.c.is_ascii_digit() {
        return None;
    }
    let mut end = t;
    while end < cs.len() && (cs[end].c.is_alphanumeric() || matches!(cs[end].c, '/' | '-')) {
        end += 1;
        if end - t > MAX_TOKEN {
            return None;
        }
    }
    // A sentence may end right after the number: `Số 26/CT-UBND.` has no `.` in it.
    while end > t && cs[end - 1].c == '-' {
        end -= 1;
    }
    let token = text(&cs[t..end]);
    let normalised = number::normalise(&token);
    number::check_form(&normalised, true).ok()?;
    let mut matched_end = end;
    let mut date = SubjectDate::None;
    let n = skip(cs, end, &[',', ';']);
    if word_at(cs, n, "ngay") {
        let d = skip(cs, n + 4, &[':']);
        match date_at(cs, d) {
            Some((Ok(v), e)) => {
                date = SubjectDate::Date(v);
                matched_end = e;
            }
            Some((Err(()), e)) => {
                date = SubjectDate::Invalid(text(&cs[d..e]));
                matched_end = e;
            }
            None => {}
        }
    }
    Some(SubjectNumber {
        number: normalised,
        matched: text(&cs[start..matched_end]),
        date,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn nfd(s: &str) -> String {
        s.nfd().collect()
    }

    #[test]
    fn spellings_of_number_and_date() {
        let d = SubjectDate::Date(date!(2026 - 02 - 13));
        let rows: Vec<(String, Option<(&str, SubjectDate)>)> = vec![
            (
                "Số 26/CT-UBND ngày 13/02/2026 về việc phòng chống lụt bão".into(),
                Some(("26/CT-UBND", d.clone())),
            ),
            (
                "Số: 26/CT-UBND ngày 13/02/2026".into(),
                Some(("26/CT-UBND", d.clone())),
            ),
            (
                "so 26/CT-UBND ngay 13/2/2026 ve viec".into(),
                Some(("26/CT-UBND", d.clone())),
            ),
            (
                "SỐ 26/CT-UBND, ngày 13-02-2026".into(),
                Some(("26/CT-UBND", d.clone())),
            ),
            (
                "Công văn số 26/CT-UBND ngày 13.02.2026".into(),
                Some(("26/CT-UBND", d.clone())),
            ),
            (
                "Fwd: [KHẨN] Số:26/CT-UBND ngày: 13/02/2026".into(),
                Some(("26/CT-UBND", d.clone())),
            ),
            (
                nfd("Số 26/CT-UBND ngày 13/02/2026 về việc"),
                Some(("26/CT-UBND", d.clone())),
            ),
            (
                nfd("Số 05/QĐ-UBND về việc"),
                Some(("05/QĐ-UBND", SubjectDate::None)),
            ),
            (
                "Số 30/2020/NĐ-CP ngày 05/03/2020".into(),
                Some(("30/2020/NĐ-CP", SubjectDate::Date(date!(2020 - 03 - 05)))),
            ),
            (
                "Số 26/CT-UBND.".into(),
                Some(("26/CT-UBND", SubjectDate::None)),
            ),
            (
                "Số 26/CT-UBND ngày 31/02/2026".into(),
                Some(("26/CT-UBND", SubjectDate::Invalid("31/02/2026".into()))),
            ),
            (
                "Số 26/CT-UBND ngày 13/13/2026".into(),
                Some(("26/CT-UBND", SubjectDate::Invalid("13/13/2026".into()))),
            ),
            // The date must follow the number: a later one is not its signing date.
            (
                "Số 26/CT-UBND về cuộc họp ngày 13/02/2026".into(),
                Some(("26/CT-UBND", SubjectDate::None)),
            ),
            // Not numbers: "hồ sơ", no notation, no label, a word ending in "so", bad form.
            ("Hồ sơ 12/UBND-VP".into(), None),
            ("Số 26 về việc".into(), None),
            ("26/CT-UBND ngày 13/02/2026".into(), None),
            ("Picasso 26/CT-UBND".into(), None),
            ("Số 5/CT-UBND".into(), None),
            ("Số 12/2026".into(), None),
            ("Sổ tay 26/CT".into(), None),
            ("".into(), None),
        ];
        for (subject, want) in rows {
            let got = find(&subject).map(|s| (s.number, s.date));
            let want = want.map(|(n, d)| (n.to_string(), d));
            assert_eq!(got, want, "{subject:?}");
        }
    }

    #[test]
    fn matched_text_is_only_the_number_and_date() {
        let s = find("Báo cáo mật: Số 26/CT-UBND ngày 13/02/2026 về việc X").unwrap();
        assert_eq!(s.matched, "Số 26/CT-UBND ngày 13/02/2026");
        let s = find(&nfd("số 07/TB-VP về việc")).unwrap();
        assert_eq!(s.matched, "số 07/TB-VP");
    }

    #[test]
    fn long_subjects_are_cut() {
        let far = format!("{}Số 26/CT-UBND", "x ".repeat(MAX_SCAN));
        assert_eq!(find(&far), None);
        let long = format!("Số 26/CT-{}", "A".repeat(MAX_TOKEN + 10));
        assert_eq!(find(&long), None);
        let digits = format!("Số 26/CT-UBND ngày {}/02/2026", "1".repeat(40));
        assert_eq!(find(&digits).unwrap().date, SubjectDate::None);
    }
}
