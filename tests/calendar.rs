//! Deadlines on a real company's calendar, through the real binary: a
//! tenant in Baden-Württemberg, closed on 24 and 31 December, whose policy
//! counts business days, stepped for two simulated years. No deadline falls
//! on a weekend, a public holiday of the state or a closure day, and each
//! keeps its local time of day across every change of summer time.

mod support;

use chrono::{DateTime, Datelike, NaiveDate, Timelike, Utc, Weekday};
use chrono_tz::Europe::Berlin;
use support::*;

const START: &str = "2026-12-01T08:00:00Z";

/// Business days, short reminders, and a restart after a week without an
/// answer: many deadlines, each one counted on the calendar.
const POLICY: &str = r#"
fn business_days_only() { true }
fn reminder_days(contact) { [1, 3] }
fn answer_days(contact) { 2 }
fn on_no_response(contact, case) { #{ action: "restart", after_days: 6 } }
"#;

/// The public holidays of Baden-Württemberg in 2026–2028 and the company's
/// closure days, written out here (not taken from klar) to check it.
fn closed(day: NaiveDate) -> bool {
    let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).expect("a date");
    let holidays = [
        d(2026, 12, 25),
        d(2026, 12, 26),
        d(2027, 1, 1),
        d(2027, 1, 6),
        d(2027, 3, 26),
        d(2027, 3, 29),
        d(2027, 5, 1),
        d(2027, 5, 6),
        d(2027, 5, 17),
        d(2027, 5, 27),
        d(2027, 10, 3),
        d(2027, 11, 1),
        d(2027, 12, 25),
        d(2027, 12, 26),
        d(2028, 1, 1),
        d(2028, 1, 6),
        d(2028, 4, 14),
        d(2028, 4, 17),
        d(2028, 5, 1),
        d(2028, 5, 25),
        d(2028, 6, 5),
        d(2028, 6, 15),
        d(2028, 10, 3),
        d(2028, 11, 1),
        d(2028, 12, 25),
        d(2028, 12, 26),
    ];
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
        || holidays.contains(&day)
        || (day.month() == 12 && [24, 31].contains(&day.day()))
}

#[test]
fn two_years_of_deadlines_in_baden_wuerttemberg_fall_on_working_days_at_the_same_local_time() {
    let ws = Workspace::new(&[("policy.rhai", POLICY)]);
    ws.ok(&[
        "tenant",
        "add",
        "acme",
        "--name",
        "Müller GmbH",
        "--timezone",
        "Europe/Berlin",
        "--policy",
        "policy.rhai",
        "--now",
        START,
    ]);
    ws.ok(&[
        "tenant",
        "set",
        "acme",
        "--region",
        "DE-BW",
        "--closure-days",
        "12-24,12-31",
        "--now",
        START,
    ]);
    let mut csv =
        String::from("external_id,first_name,last_name,email,phone,owner,source,created_at\n");
    for i in 0..6 {
        csv += &format!("C{i},Kontakt,{i},c{i}@example.de,,jk,web,2026-11-01\n");
    }
    ws.write("contacts.csv", &csv);
    ws.ok(&["import", "acme", "contacts.csv", "--now", START]);

    // Tick whenever something is due, for two years: each tick at a due
    // time, so every deadline is set from the one before.
    let end: DateTime<Utc> = "2028-12-01T00:00:00Z".parse().expect("a time");
    let mut now: DateTime<Utc> = START.parse().expect("a time");
    let mut seen = std::collections::BTreeSet::new();
    let mut ticks = 0;
    while now < end {
        ws.ok(&["tick", "--now", &now.to_rfc3339()]);
        ticks += 1;
        let sql = ws.sql();
        let mut stmt = sql
            .prepare("SELECT due_at FROM cases WHERE tenant = 'acme' AND due_at IS NOT NULL")
            .expect("prepares");
        let due: Vec<i64> = stmt
            .query_map((), |r| r.get(0))
            .expect("queries")
            .map(|d| d.expect("a row"))
            .collect();
        assert!(!due.is_empty(), "something is always due");
        seen.extend(due.iter().copied());
        let next = due.iter().copied().min().expect("a due time");
        now = DateTime::from_timestamp(next.max(now.timestamp() + 60), 0).expect("a time");
    }
    assert!(ticks > 100, "{ticks} ticks");

    let mut summer = 0;
    for at in &seen {
        let local = DateTime::from_timestamp(*at, 0)
            .expect("a time")
            .with_timezone(&Berlin);
        assert!(
            !closed(local.date_naive()),
            "a deadline on a closed day: {local}"
        );
        assert_eq!(
            (local.hour(), local.minute()),
            (9, 0),
            "a deadline that lost its local time: {local}"
        );
        if local.format("%Z").to_string() == "CEST" {
            summer += 1;
        }
    }
    assert!(seen.len() > 150, "{} deadlines", seen.len());
    assert!(
        summer > 20 && summer < seen.len(),
        "deadlines in summer and winter time"
    );
}
