//! The public holidays of Labour Code 2019 Art. 112(1) for any year (lunar ones through
//! [`crate::policy::lunar`]), moved off weekly rest days (Art. 111(3)), merged with what the
//! year's announcement says.

use std::collections::{BTreeMap, BTreeSet};

use time::{Date, Duration, Month};

use super::{AdjacentDay, TetOffsets, WorkingCalendar, YearDays, YearOverrides};
use crate::policy::lunar;

impl WorkingCalendar {
    pub(super) fn compute_year(&self, year: i32) -> YearDays {
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
    pub(super) fn national_day_adjacent(&self, year: i32) -> Option<Date> {
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
