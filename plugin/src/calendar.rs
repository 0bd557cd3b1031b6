//! Day arithmetic for deadlines: calendar days, or business days (Monday to
//! Friday) counted on the tenant's local calendar.
//!
//! Public holidays are not known here; a deadline may fall on one.

use chrono::{Datelike, Duration, Weekday};

use crate::model::Timestamp;

/// `from` plus `days`. With `business_days`, only Monday to Friday count and the
/// result always falls on one, keeping the time of day; a result of 0 business
/// days moves a weekend time to the next Monday.
pub fn add_days(
    from: Timestamp,
    days: u32,
    business_days: bool,
    utc_offset_minutes: i32,
) -> Timestamp {
    if !business_days {
        return from + Duration::days(i64::from(days));
    }
    let offset = Duration::minutes(i64::from(utc_offset_minutes));
    let mut local = from + offset;
    let mut left = days;
    while is_weekend(local) {
        local += Duration::days(1);
    }
    // Whole weeks first, so that long waits do not loop day by day.
    let weeks = left / 5;
    local += Duration::weeks(i64::from(weeks));
    left -= weeks * 5;
    while left > 0 {
        local += Duration::days(1);
        if !is_weekend(local) {
            left -= 1;
        }
    }
    local - offset
}

fn is_weekend(t: Timestamp) -> bool {
    matches!(t.weekday(), Weekday::Sat | Weekday::Sun)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn at(y: i32, m: u32, d: u32, h: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("valid date")
    }

    #[test]
    fn calendar_days_ignore_weekends() {
        // Monday 2026-11-30 + 5 days = Saturday.
        assert_eq!(
            add_days(at(2026, 11, 30, 9), 5, false, 0),
            at(2026, 12, 5, 9)
        );
    }

    #[test]
    fn business_days_skip_weekends() {
        // Friday + 1 business day = Monday.
        assert_eq!(add_days(at(2026, 12, 4, 9), 1, true, 0), at(2026, 12, 7, 9));
        // Monday + 5 business days = next Monday.
        assert_eq!(
            add_days(at(2026, 11, 30, 9), 5, true, 0),
            at(2026, 12, 7, 9)
        );
        // Wednesday + 7 business days = Friday of the next week.
        assert_eq!(
            add_days(at(2026, 12, 2, 9), 7, true, 0),
            at(2026, 12, 11, 9)
        );
    }

    #[test]
    fn a_weekend_start_counts_from_monday() {
        // Saturday + 0 business days = Monday; + 1 = Tuesday.
        assert_eq!(add_days(at(2026, 12, 5, 9), 0, true, 0), at(2026, 12, 7, 9));
        assert_eq!(add_days(at(2026, 12, 5, 9), 1, true, 0), at(2026, 12, 8, 9));
    }

    #[test]
    fn the_local_day_decides() {
        // Friday 23:30 UTC is Saturday 00:30 in Berlin (UTC+1): + 1 business day is
        // Tuesday 00:30 local, Monday 23:30 UTC.
        assert_eq!(
            add_days(
                Utc.with_ymd_and_hms(2026, 12, 4, 23, 30, 0).unwrap(),
                1,
                true,
                60
            ),
            Utc.with_ymd_and_hms(2026, 12, 7, 23, 30, 0).unwrap()
        );
    }
}
