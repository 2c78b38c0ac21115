//! Calendar year files (src/policy/calendar/): `YYYY.toml` parsed for the year it names
//! (the first four digits in the text; 2026 when there are none), built into a working
//! calendar with the default rules, and asked for its holidays and deadlines around the year.
#![no_main]

use std::path::Path;

use congvan::policy::calendar::{CalendarRules, WorkingCalendar, YearOverrides};
use congvan_fuzz::first_year;
use libfuzzer_sys::fuzz_target;
use time::{Date, Month};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let year = first_year(text).unwrap_or(2026);
    let ov = match YearOverrides::parse(year, text, Path::new("calendar/fuzz.toml")) {
        Ok(ov) => ov,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let cal = match WorkingCalendar::new(CalendarRules::default(), [ov]) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let mut days = 0;
    for (d, reason) in cal.holidays(year) {
        assert_eq!(d.year(), year, "holiday {d} ({reason}) outside {year}");
        assert!(!cal.is_working_day(d) || days > 400);
        days += 1;
    }
    for (m, d) in [
        (Month::January, 1),
        (Month::February, 10),
        (Month::December, 28),
    ] {
        let Ok(start) = Date::from_calendar_date(year, m, d) else {
            continue;
        };
        let dl = cal.add_working_days(start, 10);
        assert!(dl.date > start || dl.date == Date::MAX);
        assert!(cal.is_working_day(dl.date) || dl.date == Date::MAX);
        let _ = cal.add_working_days(start, 0);
        let _ = cal.next_working_day(start);
        let _ = cal.why_not_working(start);
    }
});
