//! The working-day calendar: which days a government office works, for dispatch deadlines.
//!
//! It owns the rules that turn a date into "working" or "not working, because …":
//! * weekly rest days (Saturday and Sunday unless the policy says otherwise);
//! * the public holidays of Labour Code 2019 Art. 112(1), computed for any year (the lunar ones
//!   through [`super::lunar`]): Tết Dương lịch 1/1; Tết Nguyên Đán, five days; 30/4; 1/5;
//!   Quốc khánh 2/9 plus one adjacent day; Giỗ Tổ Hùng Vương 10/3 lunar;
//! * Art. 111(3): a holiday that falls on a weekly rest day is taken on the next working day;
//! * what the government announces each year, read from `policies/calendar/YYYY.toml`: the exact
//!   Tết days off, the day adjacent to 2/9, extra days off and the Saturdays worked in exchange.
//!   Announcements are data; nothing year-specific is written in this code.
//!
//! Time zone: Asia/Ho_Chi_Minh, UTC+7 all year (no daylight saving since 1975), so a fixed
//! offset needs no time-zone database.
//!
//! Deadlines (SPEC "Policies"): the signing date is day 0 and the deadline is the end of the
//! Nth working day after it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use time::macros::{format_description, offset, time};
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset, Weekday};
use toml::Spanned;

use super::lunar;

/// Asia/Ho_Chi_Minh.
pub const VIETNAM_OFFSET: UtcOffset = offset!(+7);

/// The civil date in Vietnam at instant `at` (e.g. the day a message was accepted).
pub fn vietnam_date(at: OffsetDateTime) -> Date {
    at.to_offset(VIETNAM_OFFSET).date()
}

// ---------------------------------------------------------------------------------------------
// Rules (part of the policy file)
// ---------------------------------------------------------------------------------------------

/// The calendar part of a policy file. Every field has a default, so an empty table is valid:
///
/// ```toml
/// rest_days = ["saturday", "sunday"]
/// saturday_morning = false
/// holiday_on_rest_day_moves = true
/// time_zone = "Asia/Ho_Chi_Minh"
/// working_hours = { start = "07:30", end = "17:00" }
/// tet_offsets = { first = -1, last = 3 }
/// national_day_adjacent = "auto"      # or "before" (1/9), "after" (3/9)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CalendarRules {
    /// Weekly rest days (English day names, any case).
    #[serde(deserialize_with = "deserialize_weekdays")]
    pub rest_days: Vec<Weekday>,
    /// The office receives documents on Saturday mornings. Recorded only: Saturday stays a
    /// rest day for deadlines, because the Labour Code's week and the government's announced
    /// swaps are built on it.
    pub saturday_morning: bool,
    /// Labour Code 2019 Art. 111(3): a holiday on a weekly rest day is taken on the next
    /// working day.
    pub holiday_on_rest_day_moves: bool,
    /// Always Asia/Ho_Chi_Minh; present so that a policy that says otherwise is an error.
    pub time_zone: TimeZone,
    pub working_hours: WorkingHours,
    /// The computed Tết days, as offsets from Tết day 1 (mùng 1). The law says five days and
    /// Art. 112(3) leaves their placement to the Prime Minister each year; the default, the
    /// last day of the old year and mùng 1–4, is the placement announced for 2026 (16–20
    /// February). A year file's `[tet]` replaces the computed span.
    pub tet_offsets: TetOffsets,
    /// Which day next to 2 September is the second Quốc khánh day when the year file does not
    /// say.
    pub national_day_adjacent: AdjacentDay,
}

impl Default for CalendarRules {
    fn default() -> Self {
        CalendarRules {
            rest_days: vec![Weekday::Saturday, Weekday::Sunday],
            saturday_morning: false,
            holiday_on_rest_day_moves: true,
            time_zone: TimeZone,
            working_hours: WorkingHours::default(),
            tet_offsets: TetOffsets::default(),
            national_day_adjacent: AdjacentDay::Auto,
        }
    }
}

impl CalendarRules {
    /// Whether `day` is a weekly rest day.
    pub fn is_rest_day(&self, day: Weekday) -> bool {
        self.rest_days.contains(&day)
    }
}

/// The only time zone: Asia/Ho_Chi_Minh (also accepted: "Asia/Saigon", "UTC+7", "+07:00").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TimeZone;

impl TryFrom<String> for TimeZone {
    type Error = String;
    fn try_from(name: String) -> Result<Self, String> {
        match name.trim() {
            "Asia/Ho_Chi_Minh" | "Asia/Saigon" | "UTC+7" | "UTC+07:00" | "+07:00" => Ok(TimeZone),
            other => Err(format!(
                "time zone {other:?} is not supported: the calendar is fixed to Asia/Ho_Chi_Minh (UTC+7)"
            )),
        }
    }
}

/// Office hours, local time, written `"HH:MM"`. Only same-working-day rules use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawWorkingHours")]
pub struct WorkingHours {
    pub start: Time,
    pub end: Time,
}

impl Default for WorkingHours {
    fn default() -> Self {
        WorkingHours {
            start: time!(07:30),
            end: time!(17:00),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkingHours {
    start: String,
    end: String,
}

impl TryFrom<RawWorkingHours> for WorkingHours {
    type Error = String;
    fn try_from(raw: RawWorkingHours) -> Result<Self, String> {
        let start = parse_hh_mm(&raw.start)?;
        let end = parse_hh_mm(&raw.end)?;
        if start >= end {
            return Err(format!(
                "working hours end ({}) must be after start ({})",
                raw.end, raw.start
            ));
        }
        Ok(WorkingHours { start, end })
    }
}

fn parse_hh_mm(text: &str) -> Result<Time, String> {
    let bad = || format!("{text:?} is not a time of day HH:MM");
    let (h, m) = text.trim().split_once(':').ok_or_else(bad)?;
    if m.len() != 2 || h.is_empty() || h.len() > 2 {
        return Err(bad());
    }
    let h: u8 = h.parse().map_err(|_| bad())?;
    let m: u8 = m.parse().map_err(|_| bad())?;
    Time::from_hms(h, m, 0).map_err(|_| bad())
}

/// First and last computed Tết day, as offsets from mùng 1 (`-1` is the last day of the old
/// lunar year). Inclusive; each within ±10 days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawTetOffsets")]
pub struct TetOffsets {
    pub first: i8,
    pub last: i8,
}

impl Default for TetOffsets {
    fn default() -> Self {
        TetOffsets { first: -1, last: 3 }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTetOffsets {
    first: i8,
    last: i8,
}

impl TryFrom<RawTetOffsets> for TetOffsets {
    type Error = String;
    fn try_from(raw: RawTetOffsets) -> Result<Self, String> {
        if !(-10..=10).contains(&raw.first) || !(-10..=10).contains(&raw.last) {
            return Err("Tết offsets must be within -10..=10 days of mùng 1".into());
        }
        if raw.first > raw.last {
            return Err(format!(
                "Tết offsets: first ({}) is after last ({})",
                raw.first, raw.last
            ));
        }
        Ok(TetOffsets {
            first: raw.first,
            last: raw.last,
        })
    }
}

/// The second Quốc khánh day. Art. 112(1)(đ) says "2 September and one adjacent day, before
/// or after"; Art. 112(3) has the Prime Minister choose each year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AdjacentDay {
    /// The choice the announcements have followed: the adjacent day that is a working day and
    /// joins the holiday to a weekend (Monday 1/9 or Friday 3/9); otherwise whichever of 1/9 and
    /// 3/9 is a working day, 1/9 first. This gives the announced days for 2021–2025
    /// (3/9, 1/9, 1/9, 3/9, 1/9).
    #[default]
    Auto,
    /// Always 1 September.
    Before,
    /// Always 3 September.
    After,
}

fn deserialize_weekdays<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Weekday>, D::Error> {
    let names = Vec::<String>::deserialize(d)?;
    let mut days = Vec::with_capacity(names.len());
    for name in names {
        let day = match name.trim().to_ascii_lowercase().as_str() {
            "monday" => Weekday::Monday,
            "tuesday" => Weekday::Tuesday,
            "wednesday" => Weekday::Wednesday,
            "thursday" => Weekday::Thursday,
            "friday" => Weekday::Friday,
            "saturday" => Weekday::Saturday,
            "sunday" => Weekday::Sunday,
            _ => {
                return Err(de::Error::custom(format!(
                    "{name:?} is not a day of the week (monday … sunday)"
                )))
            }
        };
        if !days.contains(&day) {
            days.push(day);
        }
    }
    if days.len() == 7 {
        return Err(de::Error::custom(
            "every day of the week cannot be a rest day",
        ));
    }
    Ok(days)
}

// ---------------------------------------------------------------------------------------------
// Year files
// ---------------------------------------------------------------------------------------------

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
fn check_reason(reason: &str) -> Result<(), String> {
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

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(super) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The dotted key of the line holding byte `offset` (e.g. `day_off[1].date`), when the line is
/// a `key = value` line or a table header. Good enough for error messages in our flat format.
pub(super) fn key_at(text: &str, offset: usize) -> Option<String> {
    let (target, _) = line_column(text, offset);
    let mut table: Option<String> = None;
    let mut array_counts: HashMap<String, usize> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
            let name = name.trim().to_string();
            let count = array_counts.entry(name.clone()).or_insert(0);
            table = Some(format!("{name}[{count}]"));
            *count += 1;
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            table = Some(name.trim().to_string());
        }
        if n + 1 == target {
            let key = line
                .split_once('=')
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && !k.starts_with('#') && !k.starts_with('['));
            return match (table, key) {
                (Some(t), Some(k)) => Some(format!("{t}.{k}")),
                (None, Some(k)) => Some(k.to_string()),
                (t, None) => t,
            };
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Why the calendar could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    #[error("cannot read calendar directory {}: {source}", path.display())]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read calendar file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: calendar files must be named YYYY.toml", path.display())]
    FileName { path: PathBuf },
    /// Not valid TOML, or not the year-file format.
    #[error("{}: {message}", location(path, *line, *column, key.as_deref()))]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: Option<String>,
        message: String,
    },
    /// Well-formed but wrong: a date outside the year, a Tết span without Tết, a duplicate.
    #[error("{}: {message}", location(path, *line, *column, Some(key)))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: String,
        message: String,
    },
    #[error("announcements for {year} given twice")]
    DuplicateYear { year: i32 },
    #[error("calendar rules: {0}")]
    Rules(String),
}

pub(super) fn location(
    path: &Path,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<&str>,
) -> String {
    let mut s = path.display().to_string();
    if let Some(line) = line {
        s.push_str(&format!(":{line}"));
        if let Some(column) = column {
            s.push_str(&format!(":{column}"));
        }
    }
    if let Some(key) = key {
        s.push_str(&format!(" (key `{key}`)"));
    }
    s
}

// ---------------------------------------------------------------------------------------------
// The calendar
// ---------------------------------------------------------------------------------------------

/// A deadline and the non-working days that pushed it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deadline {
    pub date: Date,
    /// Every non-working day passed over, weekends included, in date order, with its reason.
    pub skipped: Vec<(Date, String)>,
}

/// Working days for any date: rules + computed holidays + announced years.
///
/// Each year's holidays are computed on first use and cached; the calendar is `Sync` and meant
/// to be shared (`Arc`).
#[derive(Debug)]
pub struct WorkingCalendar {
    rules: CalendarRules,
    overrides: BTreeMap<i32, YearOverrides>,
    cache: Mutex<HashMap<i32, Arc<YearDays>>>,
}

impl Clone for WorkingCalendar {
    fn clone(&self) -> Self {
        WorkingCalendar {
            rules: self.rules.clone(),
            overrides: self.overrides.clone(),
            cache: Mutex::new(HashMap::new()),
        }
    }
}

/// One year's non-working days other than plain weekly rest.
#[derive(Debug, Default)]
struct YearDays {
    /// Holidays, compensatory days and announced days off, with their reasons.
    off: BTreeMap<Date, String>,
    /// Announced working days (swapped rest days).
    working: BTreeSet<Date>,
}

impl WorkingCalendar {
    /// Builds the calendar from `rules` and every `YYYY.toml` in `dir`. Other files (a
    /// README, editor backups) are ignored; a `.toml` file with another name is an error, so a
    /// misnamed year cannot be silently skipped.
    pub fn load(rules: CalendarRules, dir: &Path) -> Result<Self, CalendarError> {
        let read_dir = |source| CalendarError::ReadDir {
            path: dir.to_path_buf(),
            source,
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(read_dir)? {
            let path = entry.map_err(read_dir)?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("toml") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut years = Vec::with_capacity(paths.len());
        for path in paths {
            let year = path
                .file_stem()
                .and_then(|s| s.to_str())
                .filter(|s| s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|s| s.parse::<i32>().ok())
                .ok_or_else(|| CalendarError::FileName { path: path.clone() })?;
            let text =
                std::fs::read_to_string(&path).map_err(|source| CalendarError::ReadFile {
                    path: path.clone(),
                    source,
                })?;
            years.push(YearOverrides::parse(year, &text, &path)?);
        }
        Self::new(rules, years)
    }

    /// Builds the calendar from already-parsed data.
    pub fn new(
        rules: CalendarRules,
        years: impl IntoIterator<Item = YearOverrides>,
    ) -> Result<Self, CalendarError> {
        let mut days = rules.rest_days.clone();
        days.sort_by_key(|d| d.number_from_monday());
        days.dedup();
        if days.len() >= 7 {
            return Err(CalendarError::Rules(
                "every day of the week is a rest day".into(),
            ));
        }
        if rules.working_hours.start >= rules.working_hours.end {
            return Err(CalendarError::Rules(
                "working hours end before they start".into(),
            ));
        }
        let mut overrides = BTreeMap::new();
        for y in years {
            let year = y.year;
            if overrides.insert(year, y).is_some() {
                return Err(CalendarError::DuplicateYear { year });
            }
        }
        Ok(WorkingCalendar {
            rules,
            overrides,
            cache: Mutex::new(HashMap::new()),
        })
    }

    pub fn rules(&self) -> &CalendarRules {
        &self.rules
    }

    /// Whether the office receives documents on Saturday mornings (recorded, not used here).
    pub fn saturday_morning(&self) -> bool {
        self.rules.saturday_morning
    }

    pub fn is_working_day(&self, date: Date) -> bool {
        self.why_not_working(date).is_none()
    }

    /// Why `date` is not a working day, or `None` if it is one.
    pub fn why_not_working(&self, date: Date) -> Option<String> {
        let this = self.year_days(date.year());
        if this.working.contains(&date) {
            return None;
        }
        if let Some(reason) = this.off.get(&date) {
            return Some(reason.clone());
        }
        // A compensatory day can spill into the first weeks of the next year.
        if date.ordinal() <= 31 {
            if let Some(reason) = self.year_days(date.year() - 1).off.get(&date) {
                return Some(reason.clone());
            }
        }
        if self.rules.is_rest_day(date.weekday()) {
            return Some(weekday_name(date.weekday()).to_string());
        }
        None
    }

    /// The first working day strictly after `date` (saturating at `Date::MAX`).
    pub fn next_working_day(&self, date: Date) -> Date {
        let mut day = date;
        while let Some(next) = day.next_day() {
            day = next;
            if self.is_working_day(day) {
                break;
            }
        }
        day
    }

    /// The deadline `n` working days after `signing_date`, which is day 0. With `n = 0` it is
    /// the signing date itself if that is a working day, else the next working day.
    ///
    /// `skipped` lists the non-working days passed over on the way: those after the signing
    /// date, plus the signing date itself when `n = 0` moved the deadline off it. (Dates
    /// saturate at the end of `time::Date`'s range.)
    pub fn add_working_days(&self, signing_date: Date, n: u32) -> Deadline {
        let mut day = signing_date;
        let mut skipped = Vec::new();
        if n == 0 {
            while let Some(reason) = self.why_not_working(day) {
                skipped.push((day, reason));
                match day.next_day() {
                    Some(next) => day = next,
                    None => break,
                }
            }
            return Deadline { date: day, skipped };
        }
        let mut counted = 0;
        while counted < n {
            match day.next_day() {
                Some(next) => day = next,
                None => break,
            }
            match self.why_not_working(day) {
                None => counted += 1,
                Some(reason) => skipped.push((day, reason)),
            }
        }
        Deadline { date: day, skipped }
    }

    /// The close of business on `date`, UTC+7.
    pub fn end_of_working_day(&self, date: Date) -> OffsetDateTime {
        PrimitiveDateTime::new(date, self.rules.working_hours.end).assume_offset(VIETNAM_OFFSET)
    }

    /// The day an urgent document accepted at `accepted_at` must leave by (at its
    /// [`end_of_working_day`](Self::end_of_working_day)): the same day when accepted on a
    /// working day before closing time (early arrivals included), otherwise the next working
    /// day.
    pub fn same_working_day_deadline(&self, accepted_at: OffsetDateTime) -> Date {
        let local = accepted_at.to_offset(VIETNAM_OFFSET);
        let day = local.date();
        if self.is_working_day(day) && local.time() < self.rules.working_hours.end {
            day
        } else {
            self.next_working_day(day)
        }
    }

    /// The year's days off other than plain weekly rest — holidays, compensatory days,
    /// announced days off — in date order (announced working days removed).
    pub fn holidays(&self, year: i32) -> Vec<(Date, String)> {
        let days = self.year_days(year);
        days.off
            .iter()
            .filter(|(d, _)| !days.working.contains(d))
            .map(|(d, r)| (*d, r.clone()))
            .collect()
    }

    fn year_days(&self, year: i32) -> Arc<YearDays> {
        let cached = self
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&year)
            .cloned();
        if let Some(days) = cached {
            return days;
        }
        let days = Arc::new(self.compute_year(year));
        self.cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(year, Arc::clone(&days));
        days
    }

    fn compute_year(&self, year: i32) -> YearDays {
        let empty = YearOverrides::empty(year);
        let announced = self.overrides.get(&year).unwrap_or(&empty);
        let ymd = |m: Month, d: u8| Date::from_calendar_date(year, m, d).ok();

        // (date, holiday, moves to the next working day if it falls on a rest day)
        let mut holidays: Vec<(Date, Holiday, bool)> = Vec::new();
        let mut fixed = |date: Option<Date>, h: Holiday| {
            if let Some(date) = date {
                holidays.push((date, h, true));
            }
        };
        fixed(ymd(Month::January, 1), Holiday::NewYear);
        fixed(
            lunar::lunar_to_solar(10, 3, year, false),
            Holiday::HungKings,
        );
        fixed(ymd(Month::April, 30), Holiday::Reunification);
        fixed(ymd(Month::May, 1), Holiday::Labour);
        fixed(ymd(Month::September, 2), Holiday::NationalDay);
        fixed(
            announced
                .national_day_adjacent
                .or_else(|| self.national_day_adjacent(year)),
            Holiday::NationalDay,
        );
        match announced.tet {
            // As announced: exact days, weekends already accounted for.
            Some((first, last)) => {
                let mut day = first;
                while day <= last {
                    holidays.push((day, Holiday::Tet, false));
                    match day.next_day() {
                        Some(next) => day = next,
                        None => break,
                    }
                }
            }
            None => {
                if let Some(mung1) = lunar::lunar_to_solar(1, 1, year, false) {
                    let TetOffsets { first, last } = self.rules.tet_offsets;
                    for offset in first..=last {
                        if let Some(day) = mung1.checked_add(Duration::days(offset.into())) {
                            holidays.push((day, Holiday::Tet, true));
                        }
                    }
                }
            }
        }
        holidays.sort_by_key(|h| h.0);

        let working: BTreeSet<Date> = announced.working_days.iter().map(|(d, _)| *d).collect();
        let mut off: BTreeMap<Date, String> = BTreeMap::new();
        for (date, holiday, _) in &holidays {
            off.entry(*date)
                .and_modify(|r| {
                    if !r.contains(holiday.name()) {
                        r.push_str(" + ");
                        r.push_str(holiday.name());
                    }
                })
                .or_insert_with(|| holiday.name().to_string());
        }

        if self.rules.holiday_on_rest_day_moves {
            let is_rest = |d: Date| self.rules.is_rest_day(d.weekday()) && !working.contains(&d);
            for (date, holiday, moves) in &holidays {
                if !moves || !is_rest(*date) {
                    continue;
                }
                // The next day that would otherwise be worked: not a rest day, another holiday
                // or compensatory day, nor a make-up day. An announced day off is not skipped:
                // announcements list the compensatory days the law gives ("nghỉ bù thứ Hai"),
                // and the same day must not be counted twice.
                let mut day = *date;
                while let Some(next) = day.next_day() {
                    day = next;
                    if !is_rest(day) && !off.contains_key(&day) && !working.contains(&day) {
                        off.insert(
                            day,
                            format!(
                                "Nghỉ bù {} (compensatory day for {date})",
                                holiday.short_name()
                            ),
                        );
                        break;
                    }
                }
            }
        }

        // The announcement's own words win over the computed reason.
        for (date, reason) in &announced.days_off {
            off.insert(*date, reason.clone());
        }
        YearDays { off, working }
    }

    /// The second Quốc khánh day by [`AdjacentDay`], from the weekly rest days only.
    fn national_day_adjacent(&self, year: i32) -> Option<Date> {
        let sep = |d: u8| Date::from_calendar_date(year, Month::September, d).ok();
        let (before, after) = (sep(1)?, sep(3)?);
        match self.rules.national_day_adjacent {
            AdjacentDay::Before => Some(before),
            AdjacentDay::After => Some(after),
            AdjacentDay::Auto => {
                let rest = |d: Date| self.rules.is_rest_day(d.weekday());
                let joins_weekend = |d: Date, far: Option<Date>| !rest(d) && far.is_some_and(rest);
                Some(if joins_weekend(before, before.previous_day()) {
                    before
                } else if joins_weekend(after, after.next_day()) {
                    after
                } else if !rest(before) || rest(after) {
                    before
                } else {
                    after
                })
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holiday {
    NewYear,
    Tet,
    HungKings,
    Reunification,
    Labour,
    NationalDay,
}

impl Holiday {
    fn name(self) -> &'static str {
        match self {
            Holiday::NewYear => "Tết Dương lịch (New Year's Day)",
            Holiday::Tet => "Tết Nguyên Đán (Lunar New Year)",
            Holiday::HungKings => "Giỗ Tổ Hùng Vương (Hung Kings' Commemoration)",
            Holiday::Reunification => "Ngày Chiến thắng 30/4 (Reunification Day)",
            Holiday::Labour => "Ngày Quốc tế Lao động 1/5 (International Workers' Day)",
            Holiday::NationalDay => "Quốc khánh (National Day)",
        }
    }

    fn short_name(self) -> &'static str {
        match self {
            Holiday::NewYear => "Tết Dương lịch",
            Holiday::Tet => "Tết Nguyên Đán",
            Holiday::HungKings => "Giỗ Tổ Hùng Vương",
            Holiday::Reunification => "Ngày Chiến thắng",
            Holiday::Labour => "Quốc tế Lao động",
            Holiday::NationalDay => "Quốc khánh",
        }
    }
}

fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Monday => "Thứ Hai (Monday)",
        Weekday::Tuesday => "Thứ Ba (Tuesday)",
        Weekday::Wednesday => "Thứ Tư (Wednesday)",
        Weekday::Thursday => "Thứ Năm (Thursday)",
        Weekday::Friday => "Thứ Sáu (Friday)",
        Weekday::Saturday => "Thứ Bảy (Saturday)",
        Weekday::Sunday => "Chủ nhật (Sunday)",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{date, datetime};

    const FILE_2025: &str = include_str!("../../../policies/calendar/2025.toml");
    const FILE_2026: &str = include_str!("../../../policies/calendar/2026.toml");

    fn year_file(year: i32, text: &str) -> YearOverrides {
        YearOverrides::parse(year, text, Path::new(&format!("{year}.toml"))).unwrap()
    }

    /// Default rules with the shipped 2025 and 2026 files.
    fn shipped() -> WorkingCalendar {
        WorkingCalendar::new(
            CalendarRules::default(),
            [year_file(2025, FILE_2025), year_file(2026, FILE_2026)],
        )
        .unwrap()
    }

    /// Default rules, no announcements: the law alone.
    fn computed() -> WorkingCalendar {
        WorkingCalendar::new(CalendarRules::default(), []).unwrap()
    }

    fn days(deadline: &Deadline) -> Vec<Date> {
        deadline.skipped.iter().map(|(d, _)| *d).collect()
    }

    fn range(first: Date, last: Date) -> Vec<Date> {
        let mut out = vec![first];
        while *out.last().unwrap() < last {
            out.push(out.last().unwrap().next_day().unwrap());
        }
        out
    }

    // --- DOMAIN.md vectors ---

    #[test]
    fn domain_document_signed_before_tet_2026() {
        let cal = shipped();
        let deadline = cal.add_working_days(date!(2026 - 02 - 13), 3);
        assert_eq!(deadline.date, date!(2026 - 02 - 25));
        assert_eq!(
            days(&deadline),
            range(date!(2026 - 02 - 14), date!(2026 - 02 - 22))
        );
        assert!(deadline
            .skipped
            .iter()
            .all(|(_, r)| r.contains("Tết Nguyên Đán")));
        assert_eq!(
            cal.next_working_day(date!(2026 - 02 - 13)),
            date!(2026 - 02 - 23)
        );
        assert_eq!(
            cal.end_of_working_day(deadline.date),
            datetime!(2026 - 02 - 25 17:00 +07:00)
        );
        // Without the file the computed Tết (16–20 February) gives the same answer.
        assert_eq!(
            computed().add_working_days(date!(2026 - 02 - 13), 3).date,
            date!(2026 - 02 - 25)
        );
    }

    #[test]
    fn domain_tet_days_computed() {
        let cal = computed();
        for tet in [
            date!(2024 - 02 - 10),
            date!(2025 - 01 - 29),
            date!(2026 - 02 - 17),
            date!(2027 - 02 - 06),
        ] {
            assert_eq!(
                cal.why_not_working(tet).as_deref(),
                Some("Tết Nguyên Đán (Lunar New Year)"),
                "{tet}"
            );
            // Default span: the last day of the old year and mùng 1–4.
            let eve = tet.previous_day().unwrap();
            assert!(cal.why_not_working(eve).unwrap().contains("Tết Nguyên Đán"));
            let fourth = tet + Duration::days(3);
            assert!(cal
                .why_not_working(fourth)
                .unwrap()
                .contains("Tết Nguyên Đán"));
        }
    }

    #[test]
    fn domain_hung_kings_days() {
        let cal = computed();
        for hung in [
            date!(2024 - 04 - 18),
            date!(2025 - 04 - 07),
            date!(2026 - 04 - 26),
            date!(2027 - 04 - 16),
        ] {
            assert_eq!(
                cal.why_not_working(hung).as_deref(),
                Some("Giỗ Tổ Hùng Vương (Hung Kings' Commemoration)"),
                "{hung}"
            );
        }
        // 2026-04-26 is a Sunday: Monday 27 April is off instead.
        assert_eq!(
            cal.why_not_working(date!(2026 - 04 - 27)).as_deref(),
            Some("Nghỉ bù Giỗ Tổ Hùng Vương (compensatory day for 2026-04-26)")
        );
        assert!(cal.is_working_day(date!(2026 - 04 - 28)));
    }

    // --- deadlines ---

    #[test]
    fn deadline_across_30_4_and_1_5() {
        // 2025, announced: 30/4–4/5 off (2/5 swapped with Saturday 26/4).
        let cal = shipped();
        let d = cal.add_working_days(date!(2025 - 04 - 29), 3);
        assert_eq!(d.date, date!(2025 - 05 - 07));
        assert_eq!(
            days(&d),
            range(date!(2025 - 04 - 30), date!(2025 - 05 - 04))
        );
        assert!(d.skipped[0].1.contains("30/4"));
        assert!(d.skipped[1].1.contains("1/5"));
        assert!(d.skipped[2].1.contains("26/04/2025"));
        assert!(cal.is_working_day(date!(2025 - 04 - 26)));
        // Signed on the make-up Saturday: it counts as a working day and is day 0.
        assert_eq!(
            cal.add_working_days(date!(2025 - 04 - 26), 1).date,
            date!(2025 - 04 - 28)
        );
        // 2026, computed only: Thursday 30/4 and Friday 1/5, then the weekend.
        let d = computed().add_working_days(date!(2026 - 04 - 29), 3);
        assert_eq!(d.date, date!(2026 - 05 - 06));
        assert_eq!(
            days(&d),
            range(date!(2026 - 04 - 30), date!(2026 - 05 - 03))
        );
    }

    #[test]
    fn deadline_across_national_day() {
        // 2025, announced: Saturday 30/8 to Tuesday 2/9.
        let d = shipped().add_working_days(date!(2025 - 08 - 29), 3);
        assert_eq!(d.date, date!(2025 - 09 - 05));
        assert_eq!(
            days(&d),
            range(date!(2025 - 08 - 30), date!(2025 - 09 - 02))
        );
        assert!(d.skipped[2].1.starts_with("Quốc khánh"));
        // 2026: 2/9 is a Wednesday and nothing is announced; "auto" adds Tuesday 1/9.
        let d = shipped().add_working_days(date!(2026 - 08 - 31), 1);
        assert_eq!(d.date, date!(2026 - 09 - 03));
        assert_eq!(days(&d), vec![date!(2026 - 09 - 01), date!(2026 - 09 - 02)]);
    }

    #[test]
    fn deadline_across_swapped_saturday() {
        let cal = shipped();
        assert!(cal.is_working_day(date!(2026 - 01 - 10)));
        assert!(!cal.is_working_day(date!(2026 - 01 - 02)));
        let d = cal.add_working_days(date!(2026 - 01 - 08), 3);
        // Friday 9 (1), Saturday 10 (2, worked), Sunday skipped, Monday 12 (3).
        assert_eq!(d.date, date!(2026 - 01 - 12));
        assert_eq!(
            d.skipped,
            vec![(date!(2026 - 01 - 11), "Chủ nhật (Sunday)".into())]
        );
    }

    #[test]
    fn deadline_across_year_boundary() {
        let d = shipped().add_working_days(date!(2025 - 12 - 31), 3);
        assert_eq!(d.date, date!(2026 - 01 - 07));
        assert_eq!(
            d.skipped,
            vec![
                (
                    date!(2026 - 01 - 01),
                    "Tết Dương lịch (New Year's Day)".into()
                ),
                (
                    date!(2026 - 01 - 02),
                    "Nghỉ hoán đổi, làm bù thứ Bảy 10/01/2026 (bridge day after New Year)".into()
                ),
                (date!(2026 - 01 - 03), "Thứ Bảy (Saturday)".into()),
                (date!(2026 - 01 - 04), "Chủ nhật (Sunday)".into()),
            ]
        );
    }

    #[test]
    fn deadline_in_a_year_without_a_file() {
        // 2031: Tết (mùng 1) is Thursday 23 January; the default span 22–26 January ends on a
        // weekend, so Monday 27 and Tuesday 28 are compensatory days.
        let cal = shipped();
        let d = cal.add_working_days(date!(2031 - 01 - 21), 3);
        assert_eq!(d.date, date!(2031 - 01 - 31));
        assert_eq!(
            days(&d),
            range(date!(2031 - 01 - 22), date!(2031 - 01 - 28))
        );
        assert_eq!(
            d.skipped[5].1,
            "Nghỉ bù Tết Nguyên Đán (compensatory day for 2031-01-25)"
        );
        assert_eq!(
            d.skipped[6].1,
            "Nghỉ bù Tết Nguyên Đán (compensatory day for 2031-01-26)"
        );
        // Giỗ Tổ 2031 is in the regular month 3 (2031 also has a leap month 3).
        assert!(!cal.is_working_day(date!(2031 - 04 - 01)));
        // 2/9/2031 is a Tuesday: the adjacent day is Monday 1/9, joining the weekend.
        assert!(!cal.is_working_day(date!(2031 - 09 - 01)));
        assert!(cal.is_working_day(date!(2031 - 09 - 03)));
    }

    #[test]
    fn zero_working_days() {
        let cal = shipped();
        let d = cal.add_working_days(date!(2026 - 02 - 13), 0);
        assert_eq!(
            d,
            Deadline {
                date: date!(2026 - 02 - 13),
                skipped: vec![]
            }
        );
        let d = cal.add_working_days(date!(2026 - 02 - 21), 0);
        assert_eq!(d.date, date!(2026 - 02 - 23));
        assert_eq!(days(&d), vec![date!(2026 - 02 - 21), date!(2026 - 02 - 22)]);
    }

    #[test]
    fn signed_on_a_non_working_day() {
        // Signed on Saturday 14 February 2026 (day 0): the count starts after it.
        let d = shipped().add_working_days(date!(2026 - 02 - 14), 1);
        assert_eq!(d.date, date!(2026 - 02 - 23));
        assert_eq!(
            days(&d),
            range(date!(2026 - 02 - 15), date!(2026 - 02 - 22))
        );
    }

    #[test]
    fn next_working_day_is_strictly_after() {
        let cal = shipped();
        assert_eq!(
            cal.next_working_day(date!(2026 - 03 - 02)),
            date!(2026 - 03 - 03)
        );
        assert_eq!(
            cal.next_working_day(date!(2026 - 03 - 06)),
            date!(2026 - 03 - 09)
        );
        assert_eq!(cal.next_working_day(Date::MAX), Date::MAX);
    }

    #[test]
    fn same_working_day_rule() {
        let cal = shipped();
        // During working hours of a working day: that day.
        assert_eq!(
            cal.same_working_day_deadline(datetime!(2026 - 02 - 13 10:00 +07:00)),
            date!(2026 - 02 - 13)
        );
        // Before opening also leaves the same day.
        assert_eq!(
            cal.same_working_day_deadline(datetime!(2026 - 02 - 13 06:00 +07:00)),
            date!(2026 - 02 - 13)
        );
        // At or after the close: the next working day, here after Tết.
        assert_eq!(
            cal.same_working_day_deadline(datetime!(2026 - 02 - 13 17:00 +07:00)),
            date!(2026 - 02 - 23)
        );
        // Instants are judged in UTC+7: 09:59 UTC is 16:59 in Hà Nội, 10:00 UTC is 17:00.
        assert_eq!(
            cal.same_working_day_deadline(datetime!(2026 - 02 - 13 09:59 UTC)),
            date!(2026 - 02 - 13)
        );
        assert_eq!(
            cal.same_working_day_deadline(datetime!(2026 - 02 - 13 10:00 UTC)),
            date!(2026 - 02 - 23)
        );
        // 20:00 UTC on Sunday is 03:00 Monday in Hà Nội: Monday.
        assert_eq!(
            cal.same_working_day_deadline(datetime!(2026 - 03 - 01 20:00 UTC)),
            date!(2026 - 03 - 02)
        );
        // A non-working day: the next working day.
        assert_eq!(
            cal.same_working_day_deadline(datetime!(2026 - 03 - 07 09:00 +07:00)),
            date!(2026 - 03 - 09)
        );
        assert_eq!(
            vietnam_date(datetime!(2026 - 03 - 01 20:00 UTC)),
            date!(2026 - 03 - 02)
        );
    }

    // --- computed holidays ---

    #[test]
    fn art_112_holidays_of_2027() {
        let got = computed().holidays(2027);
        let want = [
            (date!(2027 - 01 - 01), "Tết Dương lịch"),
            (date!(2027 - 02 - 05), "Tết Nguyên Đán"),
            (date!(2027 - 02 - 06), "Tết Nguyên Đán"), // Saturday, mùng 1
            (date!(2027 - 02 - 07), "Tết Nguyên Đán"), // Sunday
            (date!(2027 - 02 - 08), "Tết Nguyên Đán"),
            (date!(2027 - 02 - 09), "Tết Nguyên Đán"),
            (
                date!(2027 - 02 - 10),
                "Nghỉ bù Tết Nguyên Đán (compensatory day for 2027-02-06)",
            ),
            (
                date!(2027 - 02 - 11),
                "Nghỉ bù Tết Nguyên Đán (compensatory day for 2027-02-07)",
            ),
            (date!(2027 - 04 - 16), "Giỗ Tổ Hùng Vương"),
            (date!(2027 - 04 - 30), "Ngày Chiến thắng"),
            (date!(2027 - 05 - 01), "Ngày Quốc tế Lao động"), // Saturday
            (
                date!(2027 - 05 - 03),
                "Nghỉ bù Quốc tế Lao động (compensatory day for 2027-05-01)",
            ),
            (date!(2027 - 09 - 02), "Quốc khánh"), // Thursday
            (date!(2027 - 09 - 03), "Quốc khánh"), // Friday: joins the weekend
        ];
        assert_eq!(got.len(), want.len(), "{got:#?}");
        for ((date, reason), (want_date, want_reason)) in got.iter().zip(want) {
            assert_eq!(*date, want_date);
            assert!(reason.starts_with(want_reason), "{date}: {reason}");
        }
    }

    #[test]
    fn national_day_auto_matches_announced_years() {
        let cal = computed();
        for (year, adjacent) in [
            (2021, date!(2021 - 09 - 03)),
            (2022, date!(2022 - 09 - 01)),
            (2023, date!(2023 - 09 - 01)),
            (2024, date!(2024 - 09 - 03)),
            (2025, date!(2025 - 09 - 01)),
        ] {
            assert_eq!(cal.national_day_adjacent(year), Some(adjacent), "{year}");
        }
        // 2023: 2/9 was a Saturday, so Monday 4/9 was off too (announced 1–4 September).
        assert_eq!(
            cal.add_working_days(date!(2023 - 08 - 31), 1).date,
            date!(2023 - 09 - 05)
        );
        let before = CalendarRules {
            national_day_adjacent: AdjacentDay::Before,
            ..CalendarRules::default()
        };
        let cal = WorkingCalendar::new(before, []).unwrap();
        assert_eq!(cal.national_day_adjacent(2024), Some(date!(2024 - 09 - 01)));
        // 1/9/2024 was a Sunday: with "before" it moves to Tuesday 3/9.
        assert!(cal
            .why_not_working(date!(2024 - 09 - 03))
            .unwrap()
            .starts_with("Nghỉ bù"));
    }

    #[test]
    fn two_holidays_on_one_weekend_move_to_successive_days() {
        // 2028: 1/1 is a Saturday; 2/9 Saturday with 1/9 Friday.
        let cal = computed();
        assert!(cal
            .why_not_working(date!(2028 - 01 - 03))
            .unwrap()
            .starts_with("Nghỉ bù Tết Dương lịch"));
        assert!(cal.is_working_day(date!(2028 - 01 - 04)));
        assert!(!cal.is_working_day(date!(2028 - 09 - 01)));
        assert!(cal
            .why_not_working(date!(2028 - 09 - 04))
            .unwrap()
            .starts_with("Nghỉ bù Quốc khánh"));
    }

    #[test]
    fn announced_compensatory_days_are_not_counted_twice() {
        // 2022: 30/4 and 1/5 fell on Saturday and Sunday; the announcement gave Monday 2/5
        // and Tuesday 3/5, which is what the law computes.
        let mut y = YearOverrides::empty(2022);
        y.days_off = vec![
            (date!(2022 - 05 - 02), "Nghỉ bù 30/4".into()),
            (date!(2022 - 05 - 03), "Nghỉ bù 1/5".into()),
        ];
        let cal = WorkingCalendar::new(CalendarRules::default(), [y]).unwrap();
        assert_eq!(
            cal.why_not_working(date!(2022 - 05 - 02)).as_deref(),
            Some("Nghỉ bù 30/4")
        );
        assert_eq!(
            cal.why_not_working(date!(2022 - 05 - 03)).as_deref(),
            Some("Nghỉ bù 1/5")
        );
        assert!(cal.is_working_day(date!(2022 - 05 - 04)));
        assert_eq!(
            cal.add_working_days(date!(2022 - 04 - 29), 1).date,
            computed().add_working_days(date!(2022 - 04 - 29), 1).date
        );
    }

    #[test]
    fn rules_change_the_computation() {
        // No compensation.
        let rules = CalendarRules {
            holiday_on_rest_day_moves: false,
            ..CalendarRules::default()
        };
        let cal = WorkingCalendar::new(rules, []).unwrap();
        assert!(cal.is_working_day(date!(2026 - 04 - 27)));
        // Tết as two days before and three after mùng 1 (2025: 27–31 January).
        let rules = CalendarRules {
            tet_offsets: TetOffsets { first: -2, last: 2 },
            ..CalendarRules::default()
        };
        let cal = WorkingCalendar::new(rules, []).unwrap();
        let tet: Vec<Date> = cal
            .holidays(2025)
            .iter()
            .map(|h| h.0)
            .filter(|d| d.month() == Month::January && d.day() > 1)
            .collect();
        assert_eq!(tet, range(date!(2025 - 01 - 27), date!(2025 - 01 - 31)));
        // Sunday-only rest: Saturday works.
        let rules = CalendarRules {
            rest_days: vec![Weekday::Sunday],
            ..CalendarRules::default()
        };
        let cal = WorkingCalendar::new(rules, []).unwrap();
        assert!(cal.is_working_day(date!(2026 - 03 - 07)));
        assert_eq!(
            cal.why_not_working(date!(2026 - 03 - 08)).as_deref(),
            Some("Chủ nhật (Sunday)")
        );
    }

    #[test]
    fn builtin_reasons_are_nfc() {
        let cal = shipped();
        let mut reasons: Vec<String> = (2024..=2032)
            .flat_map(|y| cal.holidays(y))
            .map(|h| h.1)
            .collect();
        reasons.extend(
            [
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
                Weekday::Saturday,
                Weekday::Sunday,
            ]
            .map(|d| weekday_name(d).to_string()),
        );
        for r in reasons {
            assert!(check_reason(&r).is_ok(), "{r}");
        }
    }

    // --- rules and files ---

    #[test]
    fn rules_from_toml() {
        let rules: CalendarRules = toml::from_str("").unwrap();
        assert_eq!(rules, CalendarRules::default());
        let rules: CalendarRules = toml::from_str(
            r#"
            rest_days = ["Sunday"]
            saturday_morning = true
            holiday_on_rest_day_moves = false
            time_zone = "Asia/Ho_Chi_Minh"
            working_hours = { start = "7:00", end = "16:30" }
            tet_offsets = { first = -2, last = 2 }
            national_day_adjacent = "after"
            "#,
        )
        .unwrap();
        assert_eq!(rules.rest_days, vec![Weekday::Sunday]);
        assert!(rules.saturday_morning);
        assert_eq!(rules.working_hours.start, time!(07:00));
        assert_eq!(rules.working_hours.end, time!(16:30));
        assert_eq!(rules.tet_offsets, TetOffsets { first: -2, last: 2 });
        assert_eq!(rules.national_day_adjacent, AdjacentDay::After);
        let cal = WorkingCalendar::new(rules, []).unwrap();
        assert!(cal.saturday_morning());
        assert_eq!(
            cal.end_of_working_day(date!(2026 - 03 - 02)),
            datetime!(2026 - 03 - 02 16:30 +07:00)
        );
    }

    #[test]
    fn bad_rules_are_rejected_with_their_line() {
        for (text, needle) in [
            (
                "working_hours = { start = \"07:30\", end = \"25:00\" }",
                "HH:MM",
            ),
            (
                "working_hours = { start = \"17:00\", end = \"07:30\" }",
                "after start",
            ),
            ("time_zone = \"Asia/Bangkok\"", "Asia/Ho_Chi_Minh"),
            ("rest_days = [\"funday\"]", "day of the week"),
            ("tet_offsets = { first = 3, last = -1 }", "after last"),
            ("national_day_adjacent = \"sometimes\"", "unknown variant"),
            ("\nweekend = [\"sunday\"]", "unknown field"),
        ] {
            let err = toml::from_str::<CalendarRules>(text).unwrap_err();
            assert!(err.to_string().contains(needle), "{text}: {err}");
            assert!(err.span().is_some(), "{text}");
        }
        let all = CalendarRules {
            rest_days: vec![
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
                Weekday::Saturday,
                Weekday::Sunday,
            ],
            ..CalendarRules::default()
        };
        assert!(matches!(
            WorkingCalendar::new(all, []),
            Err(CalendarError::Rules(_))
        ));
    }

    #[test]
    fn shipped_files_parse_to_the_announcements() {
        let y = year_file(2026, FILE_2026);
        assert_eq!(y.tet, Some((date!(2026 - 02 - 14), date!(2026 - 02 - 22))));
        assert_eq!(y.days_off.len(), 1);
        assert_eq!(y.days_off[0].0, date!(2026 - 01 - 02));
        assert_eq!(y.working_days.len(), 1);
        assert_eq!(y.working_days[0].0, date!(2026 - 01 - 10));
        assert_eq!(y.national_day_adjacent, None);
        let y = year_file(2025, FILE_2025);
        assert_eq!(y.tet, Some((date!(2025 - 01 - 25), date!(2025 - 02 - 02))));
        assert_eq!(y.national_day_adjacent, Some(date!(2025 - 09 - 01)));
        assert_eq!(y.days_off[0].0, date!(2025 - 05 - 02));
        assert_eq!(y.working_days[0].0, date!(2025 - 04 - 26));
    }

    #[test]
    fn string_dates_are_accepted() {
        let y = year_file(
            2027,
            "[[day_off]]\ndate = \"2027-12-31\"\nreason = \"Nghỉ\"\n[tet]\nfirst = \"2027-02-05\"\nlast = 2027-02-09\n",
        );
        assert_eq!(y.days_off, vec![(date!(2027 - 12 - 31), "Nghỉ".into())]);
        assert_eq!(y.tet, Some((date!(2027 - 02 - 05), date!(2027 - 02 - 09))));
    }

    fn parse_err(year: i32, text: &str) -> CalendarError {
        YearOverrides::parse(year, text, Path::new("policies/calendar/x.toml")).unwrap_err()
    }

    #[test]
    fn year_file_errors_name_line_and_key() {
        // (text, line, key, message fragment)
        let cases: &[(&str, usize, &str, &str)] = &[
            ("year = 2026\n\n[[day_off]]\ndate = 2026-01-02\nreson = \"x\"\n", 5, "day_off[0].reson", "unknown field"),
            ("[[day_off]]\ndate = 2026-01-02\nreason = \"a\"\n[[day_off]]\ndate = 2026-13-02\nreason = \"b\"\n", 5, "day_off[1].date", ""),
            ("[tet]\nfirst = 2026-02-14\nlast = \"22/02/2026\"\n", 3, "tet.last", "not a date"),
            ("[[working_day]]\ndate = 2026-01-10T08:00:00\n", 2, "working_day[0].date", "without a time"),
        ];
        for &(text, line, key, fragment) in cases {
            match parse_err(2026, text) {
                CalendarError::Parse {
                    line: l,
                    key: k,
                    message,
                    ..
                } => {
                    assert_eq!(l, Some(line), "{text}: {message}");
                    assert_eq!(k.as_deref(), Some(key), "{text}: {message}");
                    assert!(message.contains(fragment), "{text}: {message}");
                }
                other => panic!("{text}: {other}"),
            }
        }
        let invalid: &[(&str, usize, &str, &str)] = &[
            ("year = 2025\n", 1, "year", "file is for 2026"),
            ("[[day_off]]\ndate = 2025-12-31\nreason = \"x\"\n", 2, "day_off[0].date", "not in 2026"),
            ("[[day_off]]\ndate = 2026-01-02\n", 2, "day_off[0].reason", "needs a reason"),
            ("[tet]\nfirst = 2026-01-14\nlast = 2026-01-22\n", 2, "tet", "does not contain Tết day 1 (2026-02-17)"),
            ("[tet]\nfirst = 2026-02-14\nlast = 2026-03-22\n", 3, "tet.last", "typo"),
            ("national_day_adjacent = 2026-09-04\n", 1, "national_day_adjacent", "next to 2 September"),
            ("[[day_off]]\ndate = 2026-01-02\nreason = \"x\"\n[[working_day]]\ndate = 2026-01-02\n", 5, "working_day[0].date", "already listed as day_off[0]"),
            ("[[day_off]]\ndate = 2026-01-02\nreason = \"Nghi\u{300} bu\u{300}\"\n", 3, "day_off[0].reason", "NFC"),
        ];
        for &(text, line, key, fragment) in invalid {
            match parse_err(2026, text) {
                CalendarError::Invalid {
                    line: l,
                    key: k,
                    message,
                    ..
                } => {
                    assert_eq!(l, Some(line), "{text}: {message}");
                    assert_eq!(k, key, "{text}: {message}");
                    assert!(message.contains(fragment), "{text}: {message}");
                }
                other => panic!("{text}: {other}"),
            }
        }
        // The message names file, line, column and key.
        let shown = parse_err(
            2026,
            "year = 2026\n\n[[day_off]]\ndate = 2026-01-02\nreson = \"x\"\n",
        )
        .to_string();
        assert!(
            shown.starts_with(
                "policies/calendar/x.toml:5:1 (key `day_off[0].reson`): unknown field"
            ),
            "{shown}"
        );
    }

    /// A scratch directory in a fresh temp dir (removed when the `tempfile::TempDir` drops).
    struct TempDir(PathBuf, #[allow(dead_code)] tempfile::TempDir);
    impl TempDir {
        fn new(name: &str) -> Self {
            let t = tempfile::Builder::new()
                .prefix(&format!("congvan-calendar-{name}-"))
                .tempdir()
                .unwrap();
            TempDir(t.path().to_path_buf(), t)
        }
        fn write(&self, name: &str, text: &str) {
            std::fs::write(self.0.join(name), text).unwrap();
        }
    }

    #[test]
    fn load_reads_year_files_from_a_directory() {
        let dir = TempDir::new("load");
        dir.write("2025.toml", FILE_2025);
        dir.write("2026.toml", FILE_2026);
        dir.write("README.md", "not a calendar");
        let cal = WorkingCalendar::load(CalendarRules::default(), &dir.0).unwrap();
        assert_eq!(
            cal.add_working_days(date!(2026 - 02 - 13), 3).date,
            date!(2026 - 02 - 25)
        );
        assert!(cal.is_working_day(date!(2025 - 04 - 26)));
        assert!(cal.is_working_day(date!(2026 - 01 - 10)));

        dir.write(
            "2027.toml",
            "[[day_off]]\ndate = 2027-05-01\nreason = \"x\"\nbad = 1\n",
        );
        match WorkingCalendar::load(CalendarRules::default(), &dir.0) {
            Err(CalendarError::Parse {
                path, line, key, ..
            }) => {
                assert!(path.ends_with("2027.toml"));
                assert_eq!(line, Some(4));
                assert_eq!(key.as_deref(), Some("day_off[0].bad"));
            }
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(dir.0.join("2027.toml")).unwrap();
        dir.write("calendar-2027.toml", "");
        assert!(matches!(
            WorkingCalendar::load(CalendarRules::default(), &dir.0),
            Err(CalendarError::FileName { .. })
        ));
        assert!(matches!(
            WorkingCalendar::load(CalendarRules::default(), &dir.0.join("missing")),
            Err(CalendarError::ReadDir { .. })
        ));
    }

    #[test]
    fn duplicate_years_are_rejected() {
        let r = WorkingCalendar::new(
            CalendarRules::default(),
            [YearOverrides::empty(2026), YearOverrides::empty(2026)],
        );
        assert!(matches!(
            r,
            Err(CalendarError::DuplicateYear { year: 2026 })
        ));
    }

    #[test]
    fn calendar_is_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<WorkingCalendar>();
        let cal = shipped();
        let copy = cal.clone();
        assert_eq!(copy.holidays(2026), cal.holidays(2026));
    }
}
