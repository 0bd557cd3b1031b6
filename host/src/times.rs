//! Times as klar shows them. The store keeps Unix seconds; every JSON answer
//! (CLI `--json`, the API, webhooks, evidence bundles) shows RFC 3339 in UTC,
//! and text for people shows the tenant's local time with its zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// Unix seconds as RFC 3339 in UTC (`2026-12-01T08:00:00+00:00`), the one
/// time format of klar's JSON.
pub fn rfc3339(at: i64) -> String {
    DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .to_rfc3339()
}

/// Reads a time from stored JSON: RFC 3339, or Unix seconds as an earlier
/// klar wrote them.
pub fn from_json(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    match value {
        serde_json::Value::String(text) => DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        other => other.as_i64().and_then(|t| DateTime::from_timestamp(t, 0)),
    }
}

/// A time for people: the tenant's local date and time with the zone's
/// abbreviation, e.g. `2026-12-01 09:00 CET`.
pub fn local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

/// [`local`] for Unix seconds.
pub fn local_secs(at: i64, tz: Tz) -> String {
    local(DateTime::from_timestamp(at, 0).unwrap_or_default(), tz)
}

/// Serde: a stored time in Unix seconds written as RFC 3339
/// (`#[serde(serialize_with = "crate::times::json")]`).
pub fn json<S: serde::Serializer>(at: &i64, out: S) -> Result<S::Ok, S::Error> {
    out.serialize_str(&rfc3339(*at))
}

/// [`json`] for a time that may be missing (written as `null`).
pub fn json_opt<S: serde::Serializer>(at: &Option<i64>, out: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => out.serialize_str(&rfc3339(*at)),
        None => out.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_local_time_with_the_zone_and_json_reads_utc() {
        // 2026-12-01 08:00 UTC is 09:00 in Berlin's winter and 10:00 in
        // Berlin's summer time half a year later.
        let winter = 1_796_112_000;
        assert_eq!(rfc3339(winter), "2026-12-01T08:00:00+00:00");
        assert_eq!(
            local_secs(winter, chrono_tz::Europe::Berlin),
            "2026-12-01 09:00 CET"
        );
        let summer = winter + 182 * 86_400;
        assert_eq!(
            local_secs(summer, chrono_tz::Europe::Berlin),
            "2027-06-01 10:00 CEST"
        );
    }

    #[test]
    fn stored_json_times_read_in_both_forms() {
        let t = from_json(&serde_json::json!("2026-12-01T09:00:00+01:00"));
        assert_eq!(t.map(|t| t.timestamp()), Some(1_796_112_000));
        let t = from_json(&serde_json::json!(1_796_112_000));
        assert_eq!(t.map(|t| t.timestamp()), Some(1_796_112_000));
        assert_eq!(from_json(&serde_json::json!(true)), None);
    }
}
