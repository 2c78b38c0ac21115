//! The Vietnamese lunisolar calendar (âm lịch), for the holidays that Labour Code 2019 Art. 112
//! fixes by lunar date: Tết Nguyên Đán (1/1) and Giỗ Tổ Hùng Vương (10/3).
//!
//! This module owns solar ⇄ lunar date conversion and nothing else; which days are holidays is
//! [`super::calendar`]'s business.
//!
//! Method: Hồ Ngọc Đức's astronomical algorithm ("Thuật toán tính âm lịch"), written here from
//! its published description, not from any existing code:
//! * new moons from the truncated series in Jean Meeus' astronomical formulae (lunation `k`
//!   counted from the new moon of 1900-01-01), corrected from dynamical to universal time;
//! * the Sun's true longitude from the low-precision solar theory (mean longitude plus the
//!   equation of centre);
//! * the rules of the calendar itself, all judged on civil dates in **UTC+7**: a month begins on
//!   the day of a new moon; month 11 is the month containing the December solstice; when 13
//!   months separate two months 11, the first month after month 11 in which the Sun enters no
//!   new 30° sector (no "trung khí") is the leap month and repeats the number of the month
//!   before it.
//!
//! The time zone is the only difference from the Chinese calendar (UTC+8): when a new moon or a
//! principal term falls between 16:00 and 17:00 UTC the two calendars start a month (or place a
//! leap month) a day or a month apart. Examples: Tết 1985, 2007, 2030 and 2053.
//!
//! The series are good to a few minutes for roughly 1800–2199; outside that the results are
//! still defined but increasingly unreliable. All arithmetic is on Julian day numbers.

use time::Date;

/// Vietnam's civil time, hours east of UTC.
const TIME_ZONE_HOURS: f64 = 7.0;
/// Mean synodic month, days.
const SYNODIC_MONTH: f64 = 29.530_588_853;
/// Julian date of the mean new moon of lunation 0 (1900-01-01, about 13:51 UT).
const LUNATION_EPOCH: f64 = 2_415_021.076_998_695;

/// A date in the Vietnamese lunar calendar.
///
/// `year` is the Gregorian year in which this lunar year's month 1 begins, so months 11 and 12
/// (tháng Một, tháng Chạp) of lunar year `y` mostly fall in January–February of solar `y + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LunarDate {
    /// 1–30.
    pub day: u8,
    /// 1–12; a leap month repeats the number of the month before it.
    pub month: u8,
    pub year: i32,
    /// True in a leap month (tháng nhuận).
    pub leap: bool,
}

/// Converts a Gregorian date to its lunar date (UTC+7).
pub fn solar_to_lunar(date: Date) -> LunarDate {
    let jdn = i64::from(date.to_julian_day());
    let k = lunation_containing(jdn);
    let mut anchor_year = date.year();
    if k < month11(anchor_year) {
        anchor_year -= 1;
    }
    let sui = Sui::new(anchor_year);
    let offset = k - sui.month11;
    let (month, leap) = sui.label(offset);
    let year = if offset < sui.month1_offset() {
        anchor_year
    } else {
        anchor_year + 1
    };
    LunarDate {
        // A lunar month is 29 or 30 days, so both fit in u8.
        day: (jdn - new_moon_day(k) + 1) as u8,
        month,
        year,
        leap,
    }
}

/// Converts a lunar date to its Gregorian date (UTC+7).
///
/// `None` when the date does not exist: a leap month that year does not have, day 30 of a
/// 29-day month, or a day or month out of range.
pub fn lunar_to_solar(day: u8, month: u8, year: i32, leap: bool) -> Option<Date> {
    if !(1..=12).contains(&month) || !(1..=30).contains(&day) || !(-9999..=9999).contains(&year) {
        return None;
    }
    // Months 11 and 12 of lunar year `year` follow the month 11 of solar `year`; months 1–10
    // follow the month 11 of the year before.
    let anchor_year = if month >= 11 { year } else { year - 1 };
    let sui = Sui::new(anchor_year);
    let plain = i64::from((month + 1) % 12);
    let offset = match sui.leap {
        None if leap => return None,
        None => plain,
        Some(l) if leap => {
            if month_number(l - 1) != month {
                return None;
            }
            l
        }
        Some(l) if plain >= l => plain + 1,
        Some(_) => plain,
    };
    let start = new_moon_day(sui.month11 + offset);
    let length = new_moon_day(sui.month11 + offset + 1) - start;
    if i64::from(day) > length {
        return None;
    }
    let jdn = i32::try_from(start + i64::from(day) - 1).ok()?;
    Date::from_julian_day(jdn).ok()
}

/// The months from month 11 of one solar year (offset 0) up to, not including, month 11 of the
/// next: a "tuế" of 12 or 13 lunations.
struct Sui {
    /// Lunation index of month 11.
    month11: i64,
    /// Offset of the leap month, when there are 13 months.
    leap: Option<i64>,
}

impl Sui {
    fn new(solar_year: i32) -> Self {
        let start = month11(solar_year);
        let next = month11(solar_year + 1);
        let leap = (next - start == 13).then(|| {
            // The month with no principal term: the Sun's 30° sector is the same at its first
            // day and at the first day of the month after. Twelve terms for thirteen months
            // guarantee one (pigeonhole), so the fallback is never taken.
            (1..=12)
                .find(|&j| {
                    sun_sector(new_moon_day(start + j)) == sun_sector(new_moon_day(start + j + 1))
                })
                .unwrap_or(12)
        });
        Self {
            month11: start,
            leap,
        }
    }

    /// Month number and leap flag of the month at `offset` from month 11.
    fn label(&self, offset: i64) -> (u8, bool) {
        match self.leap {
            Some(l) if offset >= l => (month_number(offset - 1), offset == l),
            _ => (month_number(offset), false),
        }
    }

    /// Offset of month 1: 2, or 3 when month 11 or 12 is doubled by a leap month.
    fn month1_offset(&self) -> i64 {
        match self.leap {
            Some(l) if l <= 2 => 3,
            _ => 2,
        }
    }
}

/// Number of the month `offset` places after month 11, counting no leap month.
fn month_number(offset: i64) -> u8 {
    ((offset + 10).rem_euclid(12) + 1) as u8
}

/// Lunation index of month 11 of solar `year`: the month that contains the December solstice,
/// i.e. the last month to start while the Sun's longitude is still below 270°.
fn month11(year: i32) -> i64 {
    let k = lunation_containing(julian_day_number(year, 12, 31));
    if sun_sector(new_moon_day(k)) >= 9 {
        k - 1
    } else {
        k
    }
}

/// Index of the lunation whose first day is on or before `jdn` and whose successor's is after.
fn lunation_containing(jdn: i64) -> i64 {
    let mut k = ((jdn as f64 - LUNATION_EPOCH) / SYNODIC_MONTH).floor() as i64;
    while new_moon_day(k) > jdn {
        k -= 1;
    }
    while new_moon_day(k + 1) <= jdn {
        k += 1;
    }
    k
}

/// Julian day number of the UTC+7 civil date of new moon `k`.
fn new_moon_day(k: i64) -> i64 {
    (new_moon(k) + 0.5 + TIME_ZONE_HOURS / 24.0).floor() as i64
}

/// Julian date (UT) of new moon number `k` after the new moon of 1900-01-01.
fn new_moon(k: i64) -> f64 {
    let k = k as f64;
    let t = k / 1236.85; // Julian centuries since 1900-01-00.5
    let t2 = t * t;
    let t3 = t2 * t;
    let sin_deg = |x: f64| x.to_radians().sin();

    // Mean phase, with the small long-period term.
    let mean = 2_415_020.759_33 + 29.530_588_68 * k + 0.000_117_8 * t2 - 0.000_000_155 * t3
        + 0.000_33 * sin_deg(166.56 + 132.87 * t - 0.009_173 * t2);
    // Sun's mean anomaly, Moon's mean anomaly, Moon's argument of latitude.
    let m = 359.2242 + 29.105_356_08 * k - 0.000_033_3 * t2 - 0.000_003_47 * t3;
    let mp = 306.0253 + 385.816_918_06 * k + 0.010_730_6 * t2 + 0.000_012_36 * t3;
    let f = 21.2964 + 390.670_506_46 * k - 0.001_652_8 * t2 - 0.000_002_39 * t3;
    let correction = (0.1734 - 0.000_393 * t) * sin_deg(m) + 0.0021 * sin_deg(2.0 * m)
        - 0.4068 * sin_deg(mp)
        + 0.0161 * sin_deg(2.0 * mp)
        - 0.0004 * sin_deg(3.0 * mp)
        + 0.0104 * sin_deg(2.0 * f)
        - 0.0051 * sin_deg(m + mp)
        - 0.0074 * sin_deg(m - mp)
        + 0.0004 * sin_deg(2.0 * f + m)
        - 0.0004 * sin_deg(2.0 * f - m)
        - 0.0006 * sin_deg(2.0 * f + mp)
        + 0.0010 * sin_deg(2.0 * f - mp)
        + 0.0005 * sin_deg(2.0 * mp + m);
    // ΔT = TT − UT, in days (polynomial fits before and after about 1800).
    let delta_t = if t < -11.0 {
        0.001 + 0.000_839 * t + 0.000_226_1 * t2 - 0.000_008_45 * t3 - 0.000_000_081 * t * t3
    } else {
        -0.000_278 + 0.000_265 * t + 0.000_262 * t2
    };
    mean + correction - delta_t
}

/// The Sun's 30° sector (0 = 0°–30°, …, 9 = 270°–300°) at 00:00 UTC+7 of day `jdn`.
fn sun_sector(jdn: i64) -> i64 {
    let jd = jdn as f64 - 0.5 - TIME_ZONE_HOURS / 24.0;
    (sun_longitude(jd) / 30.0).floor() as i64
}

/// The Sun's true geometric longitude in degrees, 0–360, at Julian date `jd` (UT).
fn sun_longitude(jd: f64) -> f64 {
    let t = (jd - 2_451_545.0) / 36_525.0; // Julian centuries since J2000.0
    let t2 = t * t;
    let sin_deg = |x: f64| x.to_radians().sin();
    let mean_anomaly = 357.529_10 + 35_999.050_30 * t - 0.000_155_9 * t2 - 0.000_000_48 * t * t2;
    let mean_longitude = 280.466_45 + 36_000.769_83 * t + 0.000_303_2 * t2;
    let centre = (1.914_600 - 0.004_817 * t - 0.000_014 * t2) * sin_deg(mean_anomaly)
        + (0.019_993 - 0.000_101 * t) * sin_deg(2.0 * mean_anomaly)
        + 0.000_290 * sin_deg(3.0 * mean_anomaly);
    (mean_longitude + centre).rem_euclid(360.0)
}

/// Julian day number of a proleptic Gregorian date; unlike `time::Date` it has no range limit,
/// which month 11 of the year after `Date::MAX` needs.
fn julian_day_number(year: i32, month: i64, day: i64) -> i64 {
    let a = (14 - month) / 12;
    let y = i64::from(year) + 4800 - a;
    let m = month + 12 * a - 3;
    day + (153 * m + 2) / 5 + 365 * y + y.div_euclid(4) - y.div_euclid(100) + y.div_euclid(400)
        - 32_045
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;
    use time::Duration;

    /// Tết (1/1) and Giỗ Tổ Hùng Vương (10/3, the regular month 3) for 1990–2060, plus the leap
    /// month of each lunar year (0 = none).
    ///
    /// Where this table comes from: computed independently of this module by a separate Python
    /// program (kept out of the repository) that uses the PyEphem package (VSOP87 Sun, ELP Moon;
    /// exact new-moon and solstice instants, apparent longitude of date) and the same calendar
    /// rules at UTC+7. Run at UTC+8 instead, that program reproduces the Chinese calendar of the
    /// `lunardate` package (Hong Kong Observatory tables) for every row: Tết, Hùng Vương day and
    /// leap month. The UTC+7 and UTC+8 results differ in exactly these years, each because a new
    /// moon falls between 16:00 and 17:00 UTC, i.e. before midnight in Hà Nội and after it in
    /// Beijing, so the Vietnamese month starts a day earlier:
    /// * 2007 Tết: new moon 2007-02-17 16:14 UTC (VN 17 Feb, CN 18 Feb);
    /// * 2009 Hùng Vương: new moon 2009-03-26 16:06 UTC starts month 3 (VN 4 Apr, CN 5 Apr);
    /// * 2030 Tết: new moon 2030-02-02 16:07 UTC (VN 2 Feb, CN 3 Feb);
    /// * 2037 Hùng Vương: new moon 2037-04-15 16:07 UTC (VN 24 Apr, CN 25 Apr);
    /// * 2038 Hùng Vương: new moon 2038-04-04 16:43 UTC (VN 13 Apr, CN 14 Apr);
    /// * 2053 Tết: new moon 2053-02-18 16:31 UTC (VN 18 Feb, CN 19 Feb).
    ///
    /// 1985 (VN 21 Jan, CN 20 Feb) is outside the range and tested separately.
    const REFERENCE: &[(i32, Date, Date, u8)] = &[
        (1990, date!(1990 - 01 - 27), date!(1990 - 04 - 05), 5),
        (1991, date!(1991 - 02 - 15), date!(1991 - 04 - 24), 0),
        (1992, date!(1992 - 02 - 04), date!(1992 - 04 - 12), 0),
        (1993, date!(1993 - 01 - 23), date!(1993 - 04 - 01), 3),
        (1994, date!(1994 - 02 - 10), date!(1994 - 04 - 20), 0),
        (1995, date!(1995 - 01 - 31), date!(1995 - 04 - 09), 8),
        (1996, date!(1996 - 02 - 19), date!(1996 - 04 - 27), 0),
        (1997, date!(1997 - 02 - 07), date!(1997 - 04 - 16), 0),
        (1998, date!(1998 - 01 - 28), date!(1998 - 04 - 06), 5),
        (1999, date!(1999 - 02 - 16), date!(1999 - 04 - 25), 0),
        (2000, date!(2000 - 02 - 05), date!(2000 - 04 - 14), 0),
        (2001, date!(2001 - 01 - 24), date!(2001 - 04 - 03), 4),
        (2002, date!(2002 - 02 - 12), date!(2002 - 04 - 22), 0),
        (2003, date!(2003 - 02 - 01), date!(2003 - 04 - 11), 0),
        (2004, date!(2004 - 01 - 22), date!(2004 - 04 - 28), 2),
        (2005, date!(2005 - 02 - 09), date!(2005 - 04 - 18), 0),
        (2006, date!(2006 - 01 - 29), date!(2006 - 04 - 07), 7),
        (2007, date!(2007 - 02 - 17), date!(2007 - 04 - 26), 0),
        (2008, date!(2008 - 02 - 07), date!(2008 - 04 - 15), 0),
        (2009, date!(2009 - 01 - 26), date!(2009 - 04 - 04), 5),
        (2010, date!(2010 - 02 - 14), date!(2010 - 04 - 23), 0),
        (2011, date!(2011 - 02 - 03), date!(2011 - 04 - 12), 0),
        (2012, date!(2012 - 01 - 23), date!(2012 - 03 - 31), 4),
        (2013, date!(2013 - 02 - 10), date!(2013 - 04 - 19), 0),
        (2014, date!(2014 - 01 - 31), date!(2014 - 04 - 09), 9),
        (2015, date!(2015 - 02 - 19), date!(2015 - 04 - 28), 0),
        (2016, date!(2016 - 02 - 08), date!(2016 - 04 - 16), 0),
        (2017, date!(2017 - 01 - 28), date!(2017 - 04 - 06), 6),
        (2018, date!(2018 - 02 - 16), date!(2018 - 04 - 25), 0),
        (2019, date!(2019 - 02 - 05), date!(2019 - 04 - 14), 0),
        (2020, date!(2020 - 01 - 25), date!(2020 - 04 - 02), 4),
        (2021, date!(2021 - 02 - 12), date!(2021 - 04 - 21), 0),
        (2022, date!(2022 - 02 - 01), date!(2022 - 04 - 10), 0),
        (2023, date!(2023 - 01 - 22), date!(2023 - 04 - 29), 2),
        (2024, date!(2024 - 02 - 10), date!(2024 - 04 - 18), 0),
        (2025, date!(2025 - 01 - 29), date!(2025 - 04 - 07), 6),
        (2026, date!(2026 - 02 - 17), date!(2026 - 04 - 26), 0),
        (2027, date!(2027 - 02 - 06), date!(2027 - 04 - 16), 0),
        (2028, date!(2028 - 01 - 26), date!(2028 - 04 - 04), 5),
        (2029, date!(2029 - 02 - 13), date!(2029 - 04 - 23), 0),
        (2030, date!(2030 - 02 - 02), date!(2030 - 04 - 12), 0),
        (2031, date!(2031 - 01 - 23), date!(2031 - 04 - 01), 3),
        (2032, date!(2032 - 02 - 11), date!(2032 - 04 - 19), 0),
        (2033, date!(2033 - 01 - 31), date!(2033 - 04 - 09), 11),
        (2034, date!(2034 - 02 - 19), date!(2034 - 04 - 28), 0),
        (2035, date!(2035 - 02 - 08), date!(2035 - 04 - 17), 0),
        (2036, date!(2036 - 01 - 28), date!(2036 - 04 - 06), 6),
        (2037, date!(2037 - 02 - 15), date!(2037 - 04 - 24), 0),
        (2038, date!(2038 - 02 - 04), date!(2038 - 04 - 13), 0),
        (2039, date!(2039 - 01 - 24), date!(2039 - 04 - 03), 5),
        (2040, date!(2040 - 02 - 12), date!(2040 - 04 - 20), 0),
        (2041, date!(2041 - 02 - 01), date!(2041 - 04 - 10), 0),
        (2042, date!(2042 - 01 - 22), date!(2042 - 04 - 29), 2),
        (2043, date!(2043 - 02 - 10), date!(2043 - 04 - 19), 0),
        (2044, date!(2044 - 01 - 30), date!(2044 - 04 - 07), 7),
        (2045, date!(2045 - 02 - 17), date!(2045 - 04 - 26), 0),
        (2046, date!(2046 - 02 - 06), date!(2046 - 04 - 15), 0),
        (2047, date!(2047 - 01 - 26), date!(2047 - 04 - 04), 5),
        (2048, date!(2048 - 02 - 14), date!(2048 - 04 - 22), 0),
        (2049, date!(2049 - 02 - 02), date!(2049 - 04 - 11), 0),
        (2050, date!(2050 - 01 - 23), date!(2050 - 04 - 01), 3),
        (2051, date!(2051 - 02 - 11), date!(2051 - 04 - 20), 0),
        (2052, date!(2052 - 02 - 01), date!(2052 - 04 - 09), 8),
        (2053, date!(2053 - 02 - 18), date!(2053 - 04 - 28), 0),
        (2054, date!(2054 - 02 - 08), date!(2054 - 04 - 17), 0),
        (2055, date!(2055 - 01 - 28), date!(2055 - 04 - 06), 6),
        (2056, date!(2056 - 02 - 15), date!(2056 - 04 - 24), 0),
        (2057, date!(2057 - 02 - 04), date!(2057 - 04 - 13), 0),
        (2058, date!(2058 - 01 - 24), date!(2058 - 04 - 02), 4),
        (2059, date!(2059 - 02 - 12), date!(2059 - 04 - 21), 0),
        (2060, date!(2060 - 02 - 02), date!(2060 - 04 - 10), 0),
    ];

    fn lunar(day: u8, month: u8, year: i32, leap: bool) -> LunarDate {
        LunarDate {
            day,
            month,
            year,
            leap,
        }
    }

    #[test]
    fn reference_table_covers_1990_to_2060() {
        let years: Vec<i32> = REFERENCE.iter().map(|r| r.0).collect();
        assert_eq!(years, (1990..=2060).collect::<Vec<_>>());
    }

    #[test]
    fn tet_matches_reference_every_year() {
        for &(year, tet, _, _) in REFERENCE {
            assert_eq!(lunar_to_solar(1, 1, year, false), Some(tet), "Tết {year}");
            assert_eq!(solar_to_lunar(tet), lunar(1, 1, year, false), "Tết {year}");
            // The day before is the last day of the previous lunar year's month 12.
            let eve = solar_to_lunar(tet - Duration::days(1));
            assert_eq!((eve.month, eve.year, eve.leap), (12, year - 1, false));
        }
    }

    #[test]
    fn hung_kings_day_matches_reference_every_year() {
        for &(year, _, hung, _) in REFERENCE {
            assert_eq!(
                lunar_to_solar(10, 3, year, false),
                Some(hung),
                "10/3 {year}"
            );
            assert_eq!(
                solar_to_lunar(hung),
                lunar(10, 3, year, false),
                "10/3 {year}"
            );
        }
    }

    #[test]
    fn leap_months_match_reference_every_year() {
        for &(year, _, _, leap) in REFERENCE {
            let found: Vec<u8> = (1..=12)
                .filter(|&m| lunar_to_solar(1, m, year, true).is_some())
                .collect();
            let expected: Vec<u8> = if leap == 0 { vec![] } else { vec![leap] };
            assert_eq!(found, expected, "leap month of {year}");
        }
    }

    #[test]
    fn domain_vectors() {
        for (tet, year) in [
            (date!(2024 - 02 - 10), 2024),
            (date!(2025 - 01 - 29), 2025),
            (date!(2026 - 02 - 17), 2026),
            (date!(2027 - 02 - 06), 2027),
        ] {
            assert_eq!(lunar_to_solar(1, 1, year, false), Some(tet));
        }
        for (hung, year) in [
            (date!(2024 - 04 - 18), 2024),
            (date!(2025 - 04 - 07), 2025),
            (date!(2026 - 04 - 26), 2026),
            (date!(2027 - 04 - 16), 2027),
        ] {
            assert_eq!(lunar_to_solar(10, 3, year, false), Some(hung));
        }
    }

    /// The best-known divergence from the Chinese calendar, outside the table's range.
    ///
    /// The December 1984 solstice fell at 16:23 UTC: 21 December in Hà Nội, 22 December in
    /// Beijing, which was also the day of a new moon (11:47 UTC). So Vietnam's month 11 began
    /// on 23 November 1984 and China's on 22 December; Vietnam celebrated Tết Ất Sửu on
    /// 21 January 1985 and took its leap month (2) in 1985, China celebrated on 20 February
    /// after a leap month 10 in 1984.
    #[test]
    fn vietnamese_not_chinese_in_1985() {
        assert_eq!(
            lunar_to_solar(1, 11, 1984, false),
            Some(date!(1984 - 11 - 23))
        );
        assert_eq!(lunar_to_solar(1, 10, 1984, true), None);
        assert_eq!(
            lunar_to_solar(1, 1, 1985, false),
            Some(date!(1985 - 01 - 21))
        );
        assert!(lunar_to_solar(1, 2, 1985, true).is_some());
        assert_eq!(
            solar_to_lunar(date!(1985 - 02 - 20)),
            lunar(1, 2, 1985, false)
        );
        assert_eq!(
            lunar_to_solar(1, 2, 1985, true),
            Some(date!(1985 - 03 - 21))
        );
    }

    #[test]
    fn round_trip_every_day_1990_to_2060() {
        let mut day = date!(1990 - 01 - 01);
        let mut previous = solar_to_lunar(day - Duration::days(1));
        while day <= date!(2060 - 12 - 31) {
            let l = solar_to_lunar(day);
            assert_eq!(
                lunar_to_solar(l.day, l.month, l.year, l.leap),
                Some(day),
                "{day} -> {l:?}"
            );
            // Consecutive days: either the next day of the month or day 1 of a new month.
            if l.day != 1 {
                assert_eq!(l.day, previous.day + 1, "{day}");
                assert_eq!(
                    (l.month, l.year, l.leap),
                    (previous.month, previous.year, previous.leap)
                );
            } else {
                assert!(
                    (29..=30).contains(&previous.day),
                    "{day}: month of {}",
                    previous.day
                );
            }
            previous = l;
            day += Duration::days(1);
        }
    }

    #[test]
    fn nonexistent_dates_are_none() {
        // 2026 has no leap month; 2025 has a leap month 6 but not a leap month 5.
        assert_eq!(lunar_to_solar(1, 6, 2026, true), None);
        assert_eq!(lunar_to_solar(1, 5, 2025, true), None);
        assert!(lunar_to_solar(1, 6, 2025, true).is_some());
        assert_eq!(lunar_to_solar(0, 1, 2026, false), None);
        assert_eq!(lunar_to_solar(1, 13, 2026, false), None);
        assert_eq!(lunar_to_solar(31, 1, 2026, false), None);
        // Month 12 of Ất Tỵ (2025) has 29 days: Tết 2026 is the day after the 29th.
        assert_eq!(
            lunar_to_solar(29, 12, 2025, false),
            Some(date!(2026 - 02 - 16))
        );
        assert_eq!(lunar_to_solar(30, 12, 2025, false), None);
    }

    #[test]
    fn leap_month_eleven_of_2033() {
        // The "2033 problem": the leap month falls after month 11, so month 12 of Quý Sửu and
        // Tết 2034 are pushed one month later.
        let leap11 = lunar_to_solar(1, 11, 2033, true);
        assert!(leap11.is_some());
        let plain11 = lunar_to_solar(1, 11, 2033, false);
        assert!(plain11 < leap11);
        assert!(leap11 < lunar_to_solar(1, 12, 2033, false));
        assert_eq!(
            lunar_to_solar(1, 1, 2034, false),
            Some(date!(2034 - 02 - 19))
        );
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        let _ = solar_to_lunar(Date::MIN);
        let _ = solar_to_lunar(Date::MAX);
        assert_eq!(lunar_to_solar(1, 11, i32::MAX, false), None);
        assert_eq!(lunar_to_solar(1, 1, i32::MIN, false), None);
    }

    #[test]
    fn julian_day_number_agrees_with_time() {
        for d in [
            date!(2000 - 01 - 01),
            date!(1900 - 03 - 01),
            date!(2060 - 12 - 31),
        ] {
            let n = julian_day_number(d.year(), i64::from(d.month() as u8), i64::from(d.day()));
            assert_eq!(n, i64::from(d.to_julian_day()));
        }
    }
}
