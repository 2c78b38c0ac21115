//! What the government announces each year, read from `policies/calendar/YYYY.toml`: exact Tết
//! days off, the day next to 2/9, extra days off and the rest days worked in exchange.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use time::macros::format_description;
use time::{Date, Duration, Month};
use toml::Spanned;

use super::error::{key_at, line_column};
use super::CalendarError;
use crate::policy::lunar;

/// What the government announced for one year, from `policies/calendar/YYYY.toml`.
///
/// File format (every key optional; top-level keys before the tables, as TOML requires; dates
/// as TOML dates `2026-01-02` or strings `"2026-01-02"`; every date inside the file's year):
///
/// ```toml
/// year = 2026                          # if present, must match the file name
/// source = "Công văn 12729/VPCP-KGVX"  # where the announcement came from
/// national_day_adjacent = 2026-09-01   # the second Quốc khánh day: 1 or 3 September
///
/// [tet]                                # exact Tết days off, inclusive, weekends included;
/// first = 2026-02-14                   # replaces the computed span and its compensatory
/// last = 2026-02-22                    # days; must contain mùng 1
///
/// [[day_off]]                          # an announced day off: a bridge day, or a
///                                      # compensatory day (counted once with the law's)
/// date = 2026-01-02
/// reason = "…"                         # required: shown in deadline reports
///
/// [[working_day]]                      # a rest day worked in exchange
/// date = 2026-01-10
/// reason = "…"                         # optional
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YearOverrides {
    pub year: i32,
    pub source: Option<String>,
    /// Exact Tết days off, inclusive.
    pub tet: Option<(Date, Date)>,
    pub national_day_adjacent: Option<Date>,
    pub days_off: Vec<(Date, String)>,
    pub working_days: Vec<(Date, Option<String>)>,
}

impl YearOverrides {
    /// Nothing announced for `year`.
    pub fn empty(year: i32) -> Self {
        YearOverrides {
            year,
            source: None,
            tet: None,
            national_day_adjacent: None,
            days_off: Vec::new(),
            working_days: Vec::new(),
        }
    }

    /// Parses and checks the year file `path` (used in error messages) for `year`.
    pub fn parse(year: i32, text: &str, path: &Path) -> Result<Self, CalendarError> {
        let raw: RawYearFile = toml::from_str(text).map_err(|e| {
            let span = e.span();
            let (line, column) = span.as_ref().map(|s| line_column(text, s.start)).unzip();
            CalendarError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                key: span.and_then(|s| key_at(text, s.start)),
                message: e.message().trim().to_string(),
            }
        })?;
        let invalid = |span: std::ops::Range<usize>, key: String, message: String| {
            let (line, column) = line_column(text, span.start);
            CalendarError::Invalid {
                path: path.to_path_buf(),
                line: Some(line),
                column: Some(column),
                key,
                message,
            }
        };
        let in_year = |d: &Spanned<DayField>, key: String| {
            if d.get_ref().0.year() == year {
                Ok(d.get_ref().0)
            } else {
                Err(invalid(
                    d.span(),
                    key,
                    format!("{} is not in {year}", d.get_ref().0),
                ))
            }
        };

        if let Some(y) = &raw.year {
            if *y.get_ref() != year {
                return Err(invalid(
                    y.span(),
                    "year".into(),
                    format!("says {} but the file is for {year}", y.get_ref()),
                ));
            }
        }

        let tet = match &raw.tet {
            None => None,
            Some(t) => {
                let first = in_year(&t.first, "tet.first".into())?;
                let last = in_year(&t.last, "tet.last".into())?;
                if first > last {
                    return Err(invalid(
                        t.last.span(),
                        "tet.last".into(),
                        format!("{last} is before tet.first {first}"),
                    ));
                }
                if last - first >= Duration::days(MAX_TET_SPAN_DAYS) {
                    return Err(invalid(
                        t.last.span(),
                        "tet.last".into(),
                        format!(
                            "a Tết span of more than {MAX_TET_SPAN_DAYS} days is surely a typo"
                        ),
                    ));
                }
                if let Some(mung1) = lunar::lunar_to_solar(1, 1, year, false) {
                    if mung1 < first || mung1 > last {
                        return Err(invalid(
                            t.first.span(),
                            "tet".into(),
                            format!("{first}..{last} does not contain Tết day 1 ({mung1})"),
                        ));
                    }
                }
                Some((first, last))
            }
        };

        let national_day_adjacent = match &raw.national_day_adjacent {
            None => None,
            Some(d) => {
                let date = in_year(d, "national_day_adjacent".into())?;
                if date.month() != Month::September || !(date.day() == 1 || date.day() == 3) {
                    return Err(invalid(
                        d.span(),
                        "national_day_adjacent".into(),
                        format!("{date} is not next to 2 September"),
                    ));
                }
                Some(date)
            }
        };

        let mut seen: BTreeMap<Date, String> = BTreeMap::new();
        let mut days_off = Vec::with_capacity(raw.day_off.len());
        for (i, entry) in raw.day_off.iter().enumerate() {
            let key = format!("day_off[{i}]");
            let date = in_year(&entry.date, format!("{key}.date"))?;
            let reason = match &entry.reason {
                Some(r) if !r.get_ref().trim().is_empty() => {
                    check_reason(r.get_ref())
                        .map_err(|m| invalid(r.span(), format!("{key}.reason"), m))?;
                    r.get_ref().trim().to_string()
                }
                _ => {
                    return Err(invalid(
                        entry.date.span(),
                        format!("{key}.reason"),
                        "a day off needs a reason; it is shown in deadline reports".into(),
                    ))
                }
            };
            if let Some(other) = seen.insert(date, key.clone()) {
                return Err(invalid(
                    entry.date.span(),
                    format!("{key}.date"),
                    format!("{date} is already listed as {other}"),
                ));
            }
            days_off.push((date, reason));
        }
        let mut working_days = Vec::with_capacity(raw.working_day.len());
        for (i, entry) in raw.working_day.iter().enumerate() {
            let key = format!("working_day[{i}]");
            let date = in_year(&entry.date, format!("{key}.date"))?;
            let reason = match &entry.reason {
                Some(r) => {
                    check_reason(r.get_ref())
                        .map_err(|m| invalid(r.span(), format!("{key}.reason"), m))?;
                    Some(r.get_ref().trim().to_string()).filter(|r| !r.is_empty())
                }
                None => None,
            };
            if let Some(other) = seen.insert(date, key.clone()) {
                return Err(invalid(
                    entry.date.span(),
                    format!("{key}.date"),
                    format!("{date} is already listed as {other}"),
                ));
            }
            working_days.push((date, reason));
        }

        Ok(YearOverrides {
            year,
            source: raw.source,
            tet,
            national_day_adjacent,
            days_off,
            working_days,
        })
    }
}

/// Longest plausible announced Tết break, to catch a mistyped month.
const MAX_TET_SPAN_DAYS: i64 = 16;

/// Reasons end up in reports and logs that compare text byte-wise, so they must be NFC. The
/// Vietnamese letters all have precomposed forms, so a combining diacritic (U+0300–U+036F)
/// means the file was saved decomposed (NFD).
pub(super) fn check_reason(reason: &str) -> Result<(), String> {
    if reason.chars().any(|c| ('\u{300}'..='\u{36f}').contains(&c)) {
        return Err("the text is in decomposed Unicode (NFD); save the file as NFC".into());
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYearFile {
    year: Option<Spanned<i32>>,
    source: Option<String>,
    national_day_adjacent: Option<Spanned<DayField>>,
    tet: Option<RawTet>,
    #[serde(default)]
    day_off: Vec<RawDay>,
    #[serde(default)]
    working_day: Vec<RawDay>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTet {
    first: Spanned<DayField>,
    last: Spanned<DayField>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDay {
    date: Spanned<DayField>,
    reason: Option<Spanned<String>>,
}

/// A date written as a TOML local date or as a `"YYYY-MM-DD"` string.
struct DayField(Date);

impl<'de> Deserialize<'de> for DayField {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DayVisitor;
        impl<'de> Visitor<'de> for DayVisitor {
            type Value = DayField;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a date YYYY-MM-DD")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DayField, E> {
                Date::parse(s.trim(), format_description!("[year]-[month]-[day]"))
                    .map(DayField)
                    .map_err(|_| E::custom(format!("{s:?} is not a date YYYY-MM-DD")))
            }
            // TOML dates reach serde as toml's private one-entry map.
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DayField, A::Error> {
                let dt =
                    toml::value::Datetime::deserialize(de::value::MapAccessDeserializer::new(map))?;
                match (dt.date, dt.time, dt.offset) {
                    (Some(d), None, None) => Month::try_from(d.month)
                        .ok()
                        .and_then(|m| Date::from_calendar_date(i32::from(d.year), m, d.day).ok())
                        .map(DayField)
                        .ok_or_else(|| de::Error::custom(format!("{dt} is not a valid date"))),
                    _ => Err(de::Error::custom(format!(
                        "{dt}: expected a date without a time of day"
                    ))),
                }
            }
        }
        deserializer.deserialize_any(DayVisitor)
    }
}
