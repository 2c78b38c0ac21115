//! Document numbers (số văn bản), e.g. `Số: 05/QĐ-UBND`: the number, zero-padded below 10,
//! a `/`, then the notation (ký hiệu) groups joined by `-`. Normative documents also carry
//! the year between them (`30/2020/NĐ-CP`), which the policy may allow.
//!
//! This file owns the form check and the key used for uniqueness per office per year.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// A number that passed the form check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocumentNumber {
    /// As written, normalised (NFC, no `Số:` prefix, no spaces around `/` and `-`).
    pub text: String,
    pub number: u32,
    /// The year segment of `30/2020/NĐ-CP`, when present.
    pub year: Option<i32>,
    /// Notation groups, e.g. `["QĐ", "UBND"]`.
    pub notation: Vec<String>,
}

/// Why a number is not of the form `05/QĐ-UBND`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NumberFormError {
    #[error("the document number is empty")]
    Empty,
    #[error("`{0}` has no `/` between the number and the notation (e.g. 05/QĐ-UBND)")]
    NoSlash(String),
    #[error("`{0}` does not start with a number")]
    NotANumber(String),
    #[error("document numbers start at 01, not `{0}`")]
    Zero(String),
    #[error("`{written}` must be zero-padded below 10: `{padded}`")]
    NotPadded { written: String, padded: String },
    #[error("`{0}` has a leading zero (only numbers below 10 are padded)")]
    LeadingZero(String),
    #[error("`{0}` is not a year (the middle part of 30/2020/NĐ-CP)")]
    BadYear(String),
    #[error("a year segment (`{0}`) is not allowed by the policy")]
    YearNotAllowed(String),
    #[error(
        "notation group `{group}` in `{number}` must be letters and digits, starting with a letter"
    )]
    BadGroup { number: String, group: String },
}

impl fmt::Display for DocumentNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Cleans what a clerk typed: NFC, an optional `Số:` / `So:` prefix removed, spaces around
/// `/` and `-` removed. The form is not checked here.
pub fn normalise(raw: &str) -> String {
    let s: String = raw.trim().nfc().collect();
    let rest = strip_label(&s);
    rest.trim()
        .split('/')
        .map(|part| part.split('-').map(str::trim).collect::<Vec<_>>().join("-"))
        .collect::<Vec<_>>()
        .join("/")
}

/// `Số:` / `SỐ ` / `So:` before the number: the label of the field on the paper form.
fn strip_label(s: &str) -> &str {
    let mut it = s.char_indices();
    let first_two: String = it.by_ref().take(2).map(|(_, c)| c).collect();
    if super::levels::fold(&first_two) != "so" {
        return s;
    }
    match it.next() {
        Some((i, c)) if c == ':' || c.is_whitespace() => s.get(i + c.len_utf8()..).unwrap_or(s),
        _ => s,
    }
}

/// Checks the form of an already [`normalise`]d number.
pub fn check_form(text: &str, allow_year: bool) -> Result<DocumentNumber, NumberFormError> {
    if text.is_empty() {
        return Err(NumberFormError::Empty);
    }
    let parts: Vec<&str> = text.split('/').collect();
    let (num, year, notation) = match parts.as_slice() {
        [n, notation] => (*n, None, *notation),
        [n, y, notation] => (*n, Some(*y), *notation),
        [_] => return Err(NumberFormError::NoSlash(text.into())),
        _ => {
            return Err(NumberFormError::BadGroup {
                number: text.into(),
                group: parts.get(1..).map(|p| p.join("/")).unwrap_or_default(),
            })
        }
    };
    if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) || num.len() > 7 {
        return Err(NumberFormError::NotANumber(text.into()));
    }
    let value: u32 = num
        .parse()
        .map_err(|_| NumberFormError::NotANumber(text.into()))?;
    if value == 0 {
        return Err(NumberFormError::Zero(num.into()));
    }
    if value < 10 && num.len() != 2 {
        return Err(NumberFormError::NotPadded {
            written: text.into(),
            padded: format!("{value:02}/{}", parts.get(1..).unwrap_or(&[]).join("/")),
        });
    }
    if value >= 10 && num.starts_with('0') {
        return Err(NumberFormError::LeadingZero(text.into()));
    }
    let year = match year {
        None => None,
        Some(y) if !allow_year => return Err(NumberFormError::YearNotAllowed(y.into())),
        Some(y) => {
            let ok = y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit());
            let year: i32 = y
                .parse()
                .ok()
                .filter(|v| ok && (1945..=2999).contains(v))
                .ok_or_else(|| NumberFormError::BadYear(y.into()))?;
            Some(year)
        }
    };
    let mut groups = Vec::new();
    for group in notation.split('-') {
        let mut chars = group.chars();
        let good = chars.next().is_some_and(char::is_alphabetic)
            && chars.all(|c| c.is_alphanumeric() && !c.is_whitespace());
        if !good {
            return Err(NumberFormError::BadGroup {
                number: text.into(),
                group: group.into(),
            });
        }
        groups.push(group.to_string());
    }
    Ok(DocumentNumber {
        text: text.into(),
        number: value,
        year,
        notation: groups,
    })
}

/// The key two numbers are compared by: case does not make a different number (`TTr`,
/// `TTR`).
pub fn key(text: &str) -> String {
    text.nfc().collect::<String>().to_uppercase()
}

/// edXML keeps the number and the notation apart (`CodeNumber`, `CodeNotation`); the
/// number is padded the way clerks write it, so both sources compare equal.
pub fn from_edxml(code_number: &str, code_notation: &str) -> String {
    let n = code_number.trim();
    let padded = match n.parse::<u32>() {
        Ok(v) if v < 10 && v > 0 && n.len() == 1 => format!("{v:02}"),
        _ => n.to_string(),
    };
    normalise(&format!("{padded}/{}", code_notation.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_forms() {
        for (raw, want) in [
            ("05/QĐ-UBND", "05/QĐ-UBND"),
            ("Số: 26/CT-UBND", "26/CT-UBND"),
            ("số 26 / CT - UBND", "26/CT-UBND"),
            ("12729/VPCP-KGVX", "12729/VPCP-KGVX"),
            ("30/2020/NĐ-CP", "30/2020/NĐ-CP"),
            ("01/TTr-UBND", "01/TTr-UBND"),
            ("10/BC", "10/BC"),
        ] {
            let n = normalise(raw);
            assert_eq!(n, want, "{raw}");
            assert!(check_form(&n, true).is_ok(), "{raw}");
        }
        let d = check_form("30/2020/NĐ-CP", true).unwrap();
        assert_eq!(d.number, 30);
        assert_eq!(d.year, Some(2020));
        assert_eq!(d.notation, vec!["NĐ", "CP"]);
    }

    #[test]
    fn bad_forms() {
        type Is = fn(&NumberFormError) -> bool;
        let cases: &[(&str, Is)] = &[
            ("", |e| matches!(e, NumberFormError::Empty)),
            ("5/QĐ-UBND", |e| {
                matches!(e, NumberFormError::NotPadded { .. })
            }),
            ("005/QĐ-UBND", |e| {
                matches!(e, NumberFormError::NotPadded { .. })
            }),
            ("010/QĐ-UBND", |e| {
                matches!(e, NumberFormError::LeadingZero(_))
            }),
            ("00/QĐ-UBND", |e| matches!(e, NumberFormError::Zero(_))),
            ("QĐ-UBND", |e| matches!(e, NumberFormError::NoSlash(_))),
            ("A5/QĐ-UBND", |e| {
                matches!(e, NumberFormError::NotANumber(_))
            }),
            ("05/QĐ--UBND", |e| {
                matches!(e, NumberFormError::BadGroup { .. })
            }),
            ("05/QĐ-", |e| matches!(e, NumberFormError::BadGroup { .. })),
            ("05/", |e| matches!(e, NumberFormError::BadGroup { .. })),
            ("05/1QĐ", |e| matches!(e, NumberFormError::BadGroup { .. })),
            ("05/QĐ UBND", |e| {
                matches!(e, NumberFormError::BadGroup { .. })
            }),
            ("05/20/QĐ", |e| matches!(e, NumberFormError::BadYear(_))),
            ("05/2020/2020/QĐ", |e| {
                matches!(e, NumberFormError::BadGroup { .. })
            }),
        ];
        for (text, is) in cases {
            let e = check_form(&normalise(text), true).unwrap_err();
            assert!(is(&e), "{text}: {e:?}");
        }
        assert!(matches!(
            check_form("30/2020/NĐ-CP", false),
            Err(NumberFormError::YearNotAllowed(_))
        ));
    }

    #[test]
    fn keys_and_edxml() {
        assert_eq!(key("01/TTr-UBND"), key("01/TTR-UBND"));
        let nfd: String = "05/QĐ-UBND".nfd().collect();
        assert_eq!(key(&nfd), key("05/QĐ-UBND"));
        assert_eq!(from_edxml("5", "QĐ-UBND"), "05/QĐ-UBND");
        assert_eq!(from_edxml(" 26 ", "CT-UBND"), "26/CT-UBND");
    }
}
