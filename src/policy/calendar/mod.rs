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
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use time::macros::offset;
use time::{Date, OffsetDateTime, PrimitiveDateTime, UtcOffset, Weekday};

mod error;
mod holidays;
mod overrides;
mod rules;
#[cfg(test)]
mod tests;

pub use error::CalendarError;
pub(in crate::policy) use error::{key_at, line_column, location};
pub use overrides::YearOverrides;
pub use rules::{AdjacentDay, CalendarRules, TetOffsets, TimeZone, WorkingHours};

/// Asia/Ho_Chi_Minh.
pub const VIETNAM_OFFSET: UtcOffset = offset!(+7);

/// The civil date in Vietnam at instant `at` (e.g. the day a message was accepted).
pub fn vietnam_date(at: OffsetDateTime) -> Date {
    at.to_offset(VIETNAM_OFFSET).date()
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
        let paths = crate::util::toml_files(dir).map_err(read_dir)?;
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
