//! The calendar part of a policy file: weekly rest days, working hours, the computed Tết span,
//! the second Quốc khánh day, and the one time zone.

use serde::de::{self, Deserializer};
use serde::Deserialize;
use time::macros::time;
use time::{Time, Weekday};

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
