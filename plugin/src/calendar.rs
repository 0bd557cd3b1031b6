//! Day arithmetic for deadlines on the tenant's local calendar: calendar
//! days, or business days (Monday to Friday, not a public holiday of the
//! tenant's region, not one of its closure days). The host gives the
//! calendar with the clock (`Clock::calendar`): the changes of the tenant's
//! UTC offset, so that a deadline keeps its local time of day across a
//! summer-time change, and the closed days. Nothing here reads a clock or a
//! file.

use chrono::{Datelike, Duration, Months, NaiveDate, NaiveDateTime, Weekday};

use crate::hooks::{Period, Unit};
use crate::model::{Clock, Timestamp};

/// The longest a count of business days looks ahead, in calendar days: a
/// calendar that closed every day must not loop for ever.
const MAX_SPAN_DAYS: u32 = 20 * 366;

/// A clock's view of the tenant's local time and working days.
pub struct Local<'a> {
    clock: &'a Clock,
}

impl<'a> Local<'a> {
    pub fn new(clock: &'a Clock) -> Local<'a> {
        Local { clock }
    }

    /// The tenant's UTC offset in minutes at `at`: the last change at or
    /// before it, else the offset at `now`.
    fn offset_at(&self, at: Timestamp) -> i32 {
        let changes = &self.clock.calendar.offsets;
        let passed = changes.partition_point(|c| c.starts <= at);
        match passed {
            0 => self.clock.utc_offset_minutes,
            n => changes[n - 1].minutes,
        }
    }

    fn to_local(&self, at: Timestamp) -> NaiveDateTime {
        at.naive_utc() + Duration::minutes(i64::from(self.offset_at(at)))
    }

    /// The instant of a local time: the earlier one where clocks went back;
    /// where they went forward and the time does not exist, the same time
    /// after the change (02:30 becomes 03:30).
    fn instant_of(&self, local: NaiveDateTime) -> Timestamp {
        let mut offsets: Vec<i32> = self
            .clock
            .calendar
            .offsets
            .iter()
            .map(|c| c.minutes)
            .chain([self.clock.utc_offset_minutes])
            .collect();
        offsets.sort_unstable_by(|a, b| b.cmp(a));
        offsets.dedup();
        // Largest offset first: the earliest instant that shows this time.
        for &minutes in &offsets {
            let at = (local - Duration::minutes(i64::from(minutes))).and_utc();
            if self.offset_at(at) == minutes {
                return at;
            }
        }
        // In a gap: take the offset in force a day before.
        let before = self.offset_at((local - Duration::days(1)).and_utc());
        (local - Duration::minutes(i64::from(before))).and_utc()
    }

    /// Whether people work on this local date.
    pub fn is_working_day(&self, day: NaiveDate) -> bool {
        !matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
            && self.clock.calendar.closed_days.binary_search(&day).is_err()
    }

    /// `from` plus `days`, at the same local time of day. With
    /// `business_days`, only working days count and the result always falls
    /// on one; a result of 0 business days moves a time on a closed day to
    /// the next working day.
    pub fn add_days(&self, from: Timestamp, days: u32, business_days: bool) -> Timestamp {
        let local = self.to_local(from);
        let (mut day, time) = (local.date(), local.time());
        if business_days {
            let mut left = days;
            let mut span = 0;
            while !self.is_working_day(day) && span < MAX_SPAN_DAYS {
                day = day.succ_opt().unwrap_or(day);
                span += 1;
            }
            while left > 0 && span < MAX_SPAN_DAYS {
                day = day.succ_opt().unwrap_or(day);
                span += 1;
                if self.is_working_day(day) {
                    left -= 1;
                }
            }
        } else {
            day = day
                .checked_add_signed(Duration::days(i64::from(days)))
                .unwrap_or(day);
        }
        self.instant_of(day.and_time(time))
    }
}

impl Local<'_> {
    /// `from` plus a calendar period at the same local time of day: months
    /// and years on the calendar (a year from 29 February ends on 28
    /// February); from the end of the year, the period starts at midnight
    /// after 31 December of `from`'s local year.
    pub fn add_period(&self, from: Timestamp, period: Period) -> Timestamp {
        let local = self.to_local(from);
        let start = if period.from_year_end {
            NaiveDate::from_ymd_opt(local.year() + 1, 1, 1)
                .map_or(local, |d| d.and_time(chrono::NaiveTime::MIN))
        } else {
            local
        };
        let end = match period.unit {
            Unit::Days => start.checked_add_signed(Duration::days(i64::from(period.amount))),
            Unit::Months => start.checked_add_months(Months::new(period.amount)),
            Unit::Years => start.checked_add_months(Months::new(period.amount.saturating_mul(12))),
        };
        self.instant_of(end.unwrap_or(start))
    }
}

/// `from` plus a calendar period (see [`Local::add_period`]).
pub fn add_period(from: Timestamp, period: Period, clock: &Clock) -> Timestamp {
    Local::new(clock).add_period(from, period)
}

/// `from` plus `days` on the clock's calendar (see [`Local::add_days`]).
pub fn add_days(from: Timestamp, days: u32, business_days: bool, clock: &Clock) -> Timestamp {
    Local::new(clock).add_days(from, days, business_days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Calendar, OffsetChange};
    use chrono::{TimeZone, Utc};

    fn at(y: i32, m: u32, d: u32, h: u32) -> Timestamp {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0)
            .single()
            .expect("valid date")
    }

    fn utc() -> Clock {
        Clock::utc(at(2026, 11, 30, 9))
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("valid date")
    }

    /// Berlin around 2027: winter (+60) now, summer (+120) from 28 March
    /// 01:00 UTC, winter again from 31 October 01:00 UTC; closed on the
    /// holidays of Baden-Württemberg at Christmas and Easter 2026/27 and on
    /// 24 and 31 December.
    fn berlin() -> Clock {
        Clock {
            now: at(2026, 12, 1, 8),
            utc_offset_minutes: 60,
            calendar: Calendar {
                offsets: vec![
                    OffsetChange {
                        starts: at(2026, 10, 25, 1),
                        minutes: 60,
                    },
                    OffsetChange {
                        starts: at(2027, 3, 28, 1),
                        minutes: 120,
                    },
                    OffsetChange {
                        starts: at(2027, 10, 31, 1),
                        minutes: 60,
                    },
                ],
                closed_days: vec![
                    date(2026, 12, 24),
                    date(2026, 12, 25),
                    date(2026, 12, 26),
                    date(2026, 12, 31),
                    date(2027, 1, 1),
                    date(2027, 1, 6),
                    date(2027, 3, 26),
                    date(2027, 3, 29),
                ],
            },
        }
    }

    #[test]
    fn calendar_days_ignore_weekends() {
        // Monday 2026-11-30 + 5 days = Saturday.
        assert_eq!(
            add_days(at(2026, 11, 30, 9), 5, false, &utc()),
            at(2026, 12, 5, 9)
        );
    }

    #[test]
    fn business_days_skip_weekends() {
        let c = utc();
        // Friday + 1 business day = Monday.
        assert_eq!(
            add_days(at(2026, 12, 4, 9), 1, true, &c),
            at(2026, 12, 7, 9)
        );
        // Monday + 5 business days = next Monday.
        assert_eq!(
            add_days(at(2026, 11, 30, 9), 5, true, &c),
            at(2026, 12, 7, 9)
        );
        // Wednesday + 7 business days = Friday of the next week.
        assert_eq!(
            add_days(at(2026, 12, 2, 9), 7, true, &c),
            at(2026, 12, 11, 9)
        );
    }

    #[test]
    fn a_weekend_start_counts_from_monday() {
        let c = utc();
        assert_eq!(
            add_days(at(2026, 12, 5, 9), 0, true, &c),
            at(2026, 12, 7, 9)
        );
        assert_eq!(
            add_days(at(2026, 12, 5, 9), 1, true, &c),
            at(2026, 12, 8, 9)
        );
    }

    #[test]
    fn the_local_day_decides() {
        // Friday 23:30 UTC is Saturday 00:30 in Berlin: + 1 business day is
        // Tuesday 00:30 local, Monday 23:30 UTC.
        let c = Clock {
            utc_offset_minutes: 60,
            ..utc()
        };
        assert_eq!(
            add_days(
                Utc.with_ymd_and_hms(2026, 12, 4, 23, 30, 0).unwrap(),
                1,
                true,
                &c
            ),
            Utc.with_ymd_and_hms(2026, 12, 7, 23, 30, 0).unwrap()
        );
    }

    #[test]
    fn holidays_and_closure_days_do_not_count() {
        let c = berlin();
        // Tuesday 22 December 09:00 local + 2 business days: Wednesday 23,
        // then 24 (closed), 25, 26 (holidays), 27 (Sunday): Monday 28.
        assert_eq!(
            add_days(at(2026, 12, 22, 8), 2, true, &c),
            at(2026, 12, 28, 8)
        );
        // A deadline of 0 days on Christmas Eve moves to the 28th.
        assert_eq!(
            add_days(at(2026, 12, 24, 8), 0, true, &c),
            at(2026, 12, 28, 8)
        );
        // Across New Year: Wednesday 30 December + 1 = Saturday 2 January?
        // No: 31 closed, 1 January a holiday, then the weekend: Monday 4.
        assert_eq!(
            add_days(at(2026, 12, 30, 8), 1, true, &c),
            at(2027, 1, 4, 8)
        );
    }

    #[test]
    fn a_deadline_keeps_its_local_time_across_summer_time() {
        let c = berlin();
        // Thursday 25 March 2027, 09:00 CET (08:00 UTC) + 2 business days:
        // 26 (Good Friday), 29 (Easter Monday) closed: Tuesday 30 March,
        // 09:00 CEST = 07:00 UTC.
        assert_eq!(
            add_days(at(2027, 3, 25, 8), 2, true, &c),
            at(2027, 3, 31, 7)
        );
        // 14 calendar days from 09:00 CEST on 20 October: 3 November 09:00 CET.
        assert_eq!(
            add_days(at(2027, 10, 20, 7), 14, false, &c),
            at(2027, 11, 3, 8)
        );
    }

    #[test]
    fn a_time_the_clocks_skip_comes_after_the_change() {
        let c = berlin();
        // 02:30 local on 27 March 2027 (CET, 01:30 UTC) + 1 calendar day:
        // 02:30 on the 28th does not exist; it becomes 03:30 CEST (01:30 UTC).
        let from = Utc.with_ymd_and_hms(2027, 3, 27, 1, 30, 0).unwrap();
        assert_eq!(
            add_days(from, 1, false, &c),
            Utc.with_ymd_and_hms(2027, 3, 28, 1, 30, 0).unwrap()
        );
    }

    #[test]
    fn periods_count_on_the_calendar_and_may_start_at_the_year_end() {
        let c = berlin();
        let years = |n, from_year_end| Period {
            amount: n,
            unit: Unit::Years,
            from_year_end,
        };
        // Two years from 29 February 2028: 28 February 2030, not a day early.
        let leap = Utc.with_ymd_and_hms(2028, 2, 29, 8, 0, 0).unwrap();
        assert_eq!(add_period(leap, years(2, false), &c), at(2030, 2, 28, 8));
        // 18 months from 30 November 2026: 30 May 2028 at the same local
        // time (this test's calendar has no changes after October 2027).
        let months = Period {
            amount: 18,
            unit: Unit::Months,
            from_year_end: false,
        };
        assert_eq!(
            add_period(at(2026, 11, 30, 8), months, &c),
            at(2028, 5, 30, 8)
        );
        // Three years from the end of 2026 (§ 199 BGB): midnight after
        // 31 December 2029, local time.
        assert_eq!(
            add_period(at(2026, 6, 15, 8), years(3, true), &c),
            Utc.with_ymd_and_hms(2029, 12, 31, 23, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_calendar_that_never_opens_still_ends() {
        let mut c = utc();
        c.calendar.closed_days = (0..800)
            .map(|d| date(2026, 11, 30) + Duration::days(d))
            .collect();
        let got = add_days(at(2026, 11, 30, 9), 5, true, &c);
        assert!(got > at(2027, 1, 1, 0));
    }
}
