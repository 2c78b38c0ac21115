//! Tests of the working-day calendar: the DOMAIN.md vectors, deadlines across holidays and
//! years, Art. 112 holidays, rules, and year files with their errors.

use std::path::PathBuf;

use super::overrides::check_reason;
use super::*;
use time::macros::{date, datetime, time};
use time::{Duration, Month};

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
        (
            "[[day_off]]\ndate = 2025-12-31\nreason = \"x\"\n",
            2,
            "day_off[0].date",
            "not in 2026",
        ),
        (
            "[[day_off]]\ndate = 2026-01-02\n",
            2,
            "day_off[0].reason",
            "needs a reason",
        ),
        (
            "[tet]\nfirst = 2026-01-14\nlast = 2026-01-22\n",
            2,
            "tet",
            "does not contain Tết day 1 (2026-02-17)",
        ),
        (
            "[tet]\nfirst = 2026-02-14\nlast = 2026-03-22\n",
            3,
            "tet.last",
            "typo",
        ),
        (
            "national_day_adjacent = 2026-09-04\n",
            1,
            "national_day_adjacent",
            "next to 2 September",
        ),
        (
            "[[day_off]]\ndate = 2026-01-02\nreason = \"x\"\n[[working_day]]\ndate = 2026-01-02\n",
            5,
            "working_day[0].date",
            "already listed as day_off[0]",
        ),
        (
            "[[day_off]]\ndate = 2026-01-02\nreason = \"Nghi\u{300} bu\u{300}\"\n",
            3,
            "day_off[0].reason",
            "NFC",
        ),
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
        shown.starts_with("policies/calendar/x.toml:5:1 (key `day_off[0].reson`): unknown field"),
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
