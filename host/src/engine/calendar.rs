//! The tenant's calendar as the plugin gets it with each clock: when its
//! UTC offset changes (summer time, from the tenant's time zone) and which
//! local days nobody works (the public holidays of its region, from
//! `holiday_de`, and its own closure days). The plugin stays pure: it never
//! reads a clock, a zone database or a holiday table itself.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use holiday_de::GermanRegion;

use crate::plugin::{Calendar, OffsetChange};
use crate::store::tenants::Tenant;

/// The regions klar knows the public holidays of: the German states
/// (ISO 3166-2), with their names.
pub const REGIONS: [(&str, &str); 16] = [
    ("DE-BW", "Baden-Württemberg"),
    ("DE-BY", "Bayern"),
    ("DE-BE", "Berlin"),
    ("DE-BB", "Brandenburg"),
    ("DE-HB", "Bremen"),
    ("DE-HH", "Hamburg"),
    ("DE-HE", "Hessen"),
    ("DE-MV", "Mecklenburg-Vorpommern"),
    ("DE-NI", "Niedersachsen"),
    ("DE-NW", "Nordrhein-Westfalen"),
    ("DE-RP", "Rheinland-Pfalz"),
    ("DE-SL", "Saarland"),
    ("DE-SN", "Sachsen"),
    ("DE-ST", "Sachsen-Anhalt"),
    ("DE-SH", "Schleswig-Holstein"),
    ("DE-TH", "Thüringen"),
];

/// How far back and ahead of `now` the calendar reaches: back for deadlines
/// counted from an earlier request, ahead for the longest business-day
/// waits.
const BACK_DAYS: i64 = 400;
const AHEAD_DAYS: i64 = 3 * 366;

fn region(code: &str) -> Option<GermanRegion> {
    use GermanRegion::*;
    Some(match code {
        "DE-BW" => BadenWuerttemberg,
        "DE-BY" => Bayern,
        "DE-BE" => Berlin,
        "DE-BB" => Brandenburg,
        "DE-HB" => Bremen,
        "DE-HH" => Hamburg,
        "DE-HE" => Hessen,
        "DE-MV" => MechlenburgVorpommern,
        "DE-NI" => Niedersachsen,
        "DE-NW" => NordrheinWestfalen,
        "DE-RP" => RheinlandPfalz,
        "DE-SL" => Saarland,
        "DE-SN" => Sachsen,
        "DE-ST" => SachsenAnhalt,
        "DE-SH" => SchleswigHolstein,
        "DE-TH" => Thueringen,
        _ => return None,
    })
}

/// Why a region code cannot be a tenant's region, if it cannot.
pub fn region_problem(code: &str) -> Option<String> {
    if region(code).is_some() {
        return None;
    }
    Some(if code.starts_with("AT") || code.starts_with("CH") {
        format!(
            "region {code:?}: klar knows the public holidays of the German states only; \
             give Austria's or Switzerland's as closure days (--closure-days)"
        )
    } else {
        format!(
            "region {code:?} is not a German state: use one of {}",
            REGIONS.map(|(c, _)| c).join(", ")
        )
    })
}

/// One closure day: every year on a month and day, or one date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosureDay {
    EveryYear { month: u32, day: u32 },
    Once(NaiveDate),
}

/// Reads `12-24` (every year) or `2026-12-28` (once).
pub fn closure_day(text: &str) -> Result<ClosureDay, String> {
    let bad = || {
        format!("closure day {text:?} is not a day: use 12-24 for every year or 2026-12-28 for one")
    };
    // Digits exactly where the form has them: `MM-DD` or `YYYY-MM-DD`.
    let shaped = |form: &str| {
        text.len() == form.len()
            && text.bytes().zip(form.bytes()).all(|(c, f)| {
                if f == b'-' {
                    c == b'-'
                } else {
                    c.is_ascii_digit()
                }
            })
    };
    let number = |range: std::ops::Range<usize>| text[range].parse::<u32>().map_err(|_| bad());
    if shaped("YYYY-MM-DD") {
        let year = i32::try_from(number(0..4)?).map_err(|_| bad())?;
        let date = NaiveDate::from_ymd_opt(year, number(5..7)?, number(8..10)?).ok_or_else(bad)?;
        return Ok(ClosureDay::Once(date));
    }
    if !shaped("MM-DD") {
        return Err(bad());
    }
    let (month, day) = (number(0..2)?, number(3..5)?);
    // 2024 is a leap year: 02-29 is a closure day in the years that have it.
    NaiveDate::from_ymd_opt(2024, month, day).ok_or_else(bad)?;
    Ok(ClosureDay::EveryYear { month, day })
}

/// The local days nobody works from `from` to `to`, sorted: public
/// holidays of the region and closure days (weekends are the plugin's).
pub fn closed_days(tenant: &Tenant, from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut days = Vec::new();
    let closures: Vec<ClosureDay> = tenant
        .closure_days
        .iter()
        .filter_map(|d| closure_day(d).ok())
        .collect();
    let holidays = tenant.region.as_deref().and_then(region);
    for year in from.year()..=to.year() {
        if let Some(region) = holidays {
            days.extend(
                region
                    .holiday_dates_in_year(year)
                    .into_iter()
                    .map(|(d, _)| d),
            );
        }
        for closure in &closures {
            match *closure {
                ClosureDay::EveryYear { month, day } => {
                    days.extend(NaiveDate::from_ymd_opt(year, month, day));
                }
                ClosureDay::Once(date) if date.year() == year => days.push(date),
                ClosureDay::Once(_) => {}
            }
        }
    }
    days.retain(|d| (from..=to).contains(d));
    days.sort_unstable();
    days.dedup();
    days
}

fn offset_minutes(tz: Tz, at: DateTime<Utc>) -> i32 {
    tz.offset_from_utc_datetime(&at.naive_utc())
        .fix()
        .local_minus_utc()
        / 60
}

/// When the zone's UTC offset changes between `from` and `to`, to the
/// second: the offset is looked at once a day, and a change found between
/// two days is narrowed down by halving.
pub fn offset_changes(tz: Tz, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<OffsetChange> {
    let mut changes = Vec::new();
    let mut at = from;
    let mut minutes = offset_minutes(tz, at);
    while at < to {
        let next = at + Duration::days(1);
        let then = offset_minutes(tz, next);
        if then != minutes {
            // Whole seconds: the last one with the old offset, the first
            // with the new.
            let (mut lo, mut hi) = (at.timestamp(), next.timestamp());
            let offset_at =
                |t: i64| offset_minutes(tz, DateTime::from_timestamp(t, 0).unwrap_or(at));
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                if offset_at(mid) == minutes {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            changes.push(OffsetChange {
                starts: DateTime::from_timestamp(hi, 0).unwrap_or(next),
                minutes: then,
            });
            minutes = then;
        }
        at = next;
    }
    changes
}

/// The tenant's calendar around `now`. It is the same all day (its window
/// is counted from the start of `now`'s UTC day), so each is worked out once
/// a day per tenant setting and kept: every event's step needs one.
pub fn calendar(tenant: &Tenant, now: DateTime<Utc>) -> Calendar {
    type Key = (String, &'static str, Option<String>, Vec<String>, NaiveDate);
    type Cache = std::collections::HashMap<Key, Calendar>;
    static CACHE: std::sync::Mutex<Option<Cache>> = std::sync::Mutex::new(None);
    let day = now.date_naive();
    let key: Key = (
        tenant.id.clone(),
        tenant.timezone.name(),
        tenant.region.clone(),
        tenant.closure_days.clone(),
        day,
    );
    if let Ok(cache) = CACHE.lock()
        && let Some(found) = cache.as_ref().and_then(|c| c.get(&key))
    {
        return found.clone();
    }
    let start = day.and_time(chrono::NaiveTime::MIN).and_utc();
    let (from, to) = (
        start - Duration::days(BACK_DAYS),
        start + Duration::days(AHEAD_DAYS + 1),
    );
    let local = |t: DateTime<Utc>| t.with_timezone(&tenant.timezone).date_naive();
    let calendar = Calendar {
        offsets: offset_changes(tenant.timezone, from, to),
        closed_days: closed_days(tenant, local(from), local(to)),
    };
    if let Ok(mut cache) = CACHE.lock() {
        let cache = cache.get_or_insert_with(Default::default);
        // Days and settings pass; a bounded cache forgets them all at once.
        if cache.len() >= 4_096 {
            cache.clear();
        }
        cache.insert(key, calendar.clone());
    }
    calendar
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(region: Option<&str>, closures: &[&str]) -> Tenant {
        Tenant {
            id: "acme".into(),
            name: "ACME".into(),
            timezone: chrono_tz::Europe::Berlin,
            locale: "de".into(),
            default_owner: None,
            legal: Default::default(),
            region: region.map(str::to_owned),
            closure_days: closures.iter().map(|c| (*c).to_owned()).collect(),
        }
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).expect("a date")
    }

    #[test]
    fn baden_wuerttemberg_with_its_closures() {
        let t = tenant(Some("DE-BW"), &["12-24", "12-31", "2027-05-07"]);
        let days = closed_days(&t, date(2026, 12, 1), date(2027, 6, 30));
        assert_eq!(
            days,
            [
                date(2026, 12, 24),
                date(2026, 12, 25),
                date(2026, 12, 26),
                date(2026, 12, 31),
                date(2027, 1, 1),
                date(2027, 1, 6),  // Heilige Drei Könige (BW)
                date(2027, 3, 26), // Karfreitag
                date(2027, 3, 29), // Ostermontag
                date(2027, 5, 1),
                date(2027, 5, 6),  // Christi Himmelfahrt
                date(2027, 5, 7),  // the company's own
                date(2027, 5, 17), // Pfingstmontag
                date(2027, 5, 27), // Fronleichnam (BW)
            ]
        );
        // Berlin has neither Epiphany nor Corpus Christi.
        let berlin = closed_days(
            &tenant(Some("DE-BE"), &[]),
            date(2027, 1, 1),
            date(2027, 6, 30),
        );
        assert!(!berlin.contains(&date(2027, 1, 6)) && !berlin.contains(&date(2027, 5, 27)));
    }

    #[test]
    fn berlin_time_changes_twice_a_year_to_the_second() {
        let from = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2027, 12, 1, 0, 0, 0).unwrap();
        let changes = offset_changes(chrono_tz::Europe::Berlin, from, to);
        assert_eq!(
            changes,
            [
                OffsetChange {
                    starts: Utc.with_ymd_and_hms(2027, 3, 28, 1, 0, 0).unwrap(),
                    minutes: 120
                },
                OffsetChange {
                    starts: Utc.with_ymd_and_hms(2027, 10, 31, 1, 0, 0).unwrap(),
                    minutes: 60
                },
            ]
        );
    }

    #[test]
    fn regions_and_closure_days_are_checked() {
        assert_eq!(region_problem("DE-BW"), None);
        assert!(region_problem("DE-XX").is_some_and(|p| p.contains("DE-BW")));
        assert!(region_problem("AT-9").is_some_and(|p| p.contains("closure days")));
        assert_eq!(
            closure_day("12-24"),
            Ok(ClosureDay::EveryYear { month: 12, day: 24 })
        );
        assert_eq!(
            closure_day("2026-12-28"),
            Ok(ClosureDay::Once(date(2026, 12, 28)))
        );
        for bad in ["12-32", "13-01", "24.12.", "1-1", "2026-02-30"] {
            assert!(closure_day(bad).is_err(), "{bad}");
        }
    }
}
