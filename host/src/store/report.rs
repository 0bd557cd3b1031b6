//! Read-only views for the team: the status cockpit and case lists.

use std::collections::BTreeMap;

use super::sql::{OptionalExtension, params};

use super::{Conn, Result};

use crate::plugin::{Band, Case, State};

/// The cockpit of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub tenant: String,
    /// Cases per band: usable, to-clarify, removed.
    pub bands: BTreeMap<String, i64>,
    /// Cases per state (all eleven, zeros included).
    pub states: BTreeMap<String, i64>,
    /// Cases whose next step is due but has not run.
    pub overdue: i64,
    /// Cases waiting for a person, per person.
    pub awaiting_decision_by_owner: BTreeMap<String, i64>,
    /// Cases with a deadline in the next 7 days.
    pub due_next_7_days: i64,
    pub cleanup_pending: i64,
    /// Cases whose last step failed.
    pub needs_attention: i64,
    /// The first of them (up to 20), with the error, for a person to look at.
    pub attention: Vec<Attention>,
    /// Outbox actions whose delivery (webhook or mail) klar gave up on.
    pub delivery_parked: i64,
}

/// A case whose last step failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attention {
    pub contact: String,
    pub purpose: String,
    pub error: String,
}

pub fn status(conn: &Conn, tenant: &str, now: i64) -> Result<Status> {
    let mut states: BTreeMap<String, i64> = State::ALL
        .iter()
        .map(|s| (s.as_str().to_owned(), 0))
        .collect();
    let mut bands: BTreeMap<String, i64> = Band::ALL
        .iter()
        .map(|b| (b.as_str().to_owned(), 0))
        .collect();
    {
        // Kept by triggers on `cases` (migration 011): no scan.
        let mut stmt = conn.sql().prepare_cached(
            "SELECT state, band, n FROM case_counts WHERE tenant = ?1 AND n <> 0",
        )?;
        let rows = stmt.query_map([tenant], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, i64>(2)?,
            ))
        })?;
        for row in rows {
            let (state, band, n) = row?;
            *states.entry(state).or_default() += n;
            *bands.entry(band).or_default() += n;
        }
    }
    let overdue = due_between(conn, tenant, i64::MIN, now)?;
    let due_next_7_days = due_between(conn, tenant, now, now + 7 * 86_400)?;
    let needs_attention = conn.sql().query_row(
        "SELECT COUNT(*) FROM cases WHERE tenant = ?1 AND needs_attention IS NOT NULL",
        [tenant],
        |r| r.get(0),
    )?;
    let attention = {
        let mut stmt = conn.sql().prepare(
            "SELECT contact, purpose, needs_attention FROM cases
             WHERE tenant = ?1 AND needs_attention IS NOT NULL ORDER BY contact, purpose LIMIT 20",
        )?;
        let rows = stmt.query_map([tenant], |r| {
            Ok(Attention {
                contact: r.get(0)?,
                purpose: r.get(1)?,
                error: r.get(2)?,
            })
        })?;
        rows.collect::<crate::store::sql::Result<Vec<_>>>()?
    };
    let mut awaiting = BTreeMap::new();
    {
        // From the index of assignments; the unassigned are the rest.
        let mut stmt = conn.sql().prepare(
            "SELECT json_extract(body, '$.assigned_to'), COUNT(*) FROM cases
             WHERE tenant = ?1 AND json_extract(body, '$.assigned_to') IS NOT NULL
               AND state = 'awaiting-decision'
             GROUP BY 1",
        )?;
        let rows = stmt.query_map([tenant], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (owner, n) = row?;
            awaiting.insert(owner, n);
        }
        let assigned: i64 = awaiting.values().sum();
        let waiting = states.get("awaiting-decision").copied().unwrap_or(0);
        if waiting > assigned {
            awaiting.insert("(nobody)".to_owned(), waiting - assigned);
        }
    }
    Ok(Status {
        tenant: tenant.to_owned(),
        cleanup_pending: states.get("cleanup-pending").copied().unwrap_or(0),
        bands,
        states,
        overdue,
        awaiting_decision_by_owner: awaiting,
        due_next_7_days,
        needs_attention,
        attention,
        delivery_parked: super::webhooks::parked(conn, tenant)?,
    })
}

/// Usable cases by legal basis: `consent`, then each basis other than
/// consent (`contract`, `legitimate-interest`, `existing-customer`,
/// `legal-obligation`, `other` for one a person recorded), the zeros
/// included. Only the other-basis cases are read.
pub fn bases(conn: &Conn, tenant: &str) -> Result<Vec<(String, i64)>> {
    let consented: i64 = conn
        .sql()
        .prepare_cached(
            "SELECT CAST(COALESCE(SUM(n), 0) AS BIGINT) FROM case_counts
             WHERE tenant = ?1 AND state = 'consented'",
        )?
        .query_row([tenant], |r| r.get(0))?;
    let mut out: Vec<(String, i64)> = std::iter::once(("consent".to_owned(), consented))
        .chain(
            crate::plugin::BasisKind::ALL
                .iter()
                .map(|k| (k.as_str().to_owned(), 0)),
        )
        .collect();
    // A basis stored before contract 0.6.0 is its reason text alone: a
    // person's, so `other`.
    let mut stmt = conn.sql().prepare_cached(
        "SELECT COALESCE(json_extract(body, '$.basis.kind'), 'other'), COUNT(*) FROM cases
         WHERE tenant = ?1 AND state = 'other-basis' GROUP BY 1",
    )?;
    let rows = stmt.query_map([tenant], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (kind, n) = row?;
        match out.iter_mut().find(|(k, _)| *k == kind) {
            Some(slot) => slot.1 += n,
            None => out.push((kind, n)),
        }
    }
    Ok(out)
}

/// One line of a case list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseLine {
    pub tenant: String,
    pub contact: String,
    pub purpose: String,
    pub state: String,
    pub band: String,
    pub reminders_sent: u32,
    pub next_due_at: Option<String>,
    pub owner: String,
    pub assigned_to: Option<String>,
    pub legal_hold: bool,
    pub needs_attention: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub state: Option<State>,
    pub band: Option<Band>,
    pub owner: Option<String>,
    pub overdue: bool,
    /// Only this contact's cases.
    pub contact: Option<String>,
    /// Only cases after this (contact, purpose), in that order: a page cursor.
    pub after: Option<(String, String)>,
    pub limit: Option<usize>,
}

pub fn cases(conn: &Conn, tenant: &str, filter: &CaseFilter, now: i64) -> Result<Vec<CaseLine>> {
    use crate::store::sql::Value as Sql;
    // Only the filters given become terms, so that one contact's cases and
    // a page after a cursor are index seeks (plans do not depend on bound
    // values: `?7 IS NULL OR c.contact = ?7` read every case of the tenant).
    let mut conditions = vec!["c.tenant = ?1".to_owned()];
    let mut values: Vec<Sql> = vec![Sql::Text(tenant.to_owned())];
    let mut bind = |value: Sql| {
        values.push(value);
        format!("?{}", values.len())
    };
    if let Some(state) = filter.state {
        conditions.push(format!(
            "c.state = {}",
            bind(Sql::Text(state.as_str().into()))
        ));
    }
    if let Some(band) = filter.band {
        conditions.push(format!(
            "c.band = {}",
            bind(Sql::Text(band.as_str().into()))
        ));
    }
    if let Some(owner) = &filter.owner {
        conditions.push(format!("k.owner = {}", bind(Sql::Text(owner.clone()))));
    }
    if filter.overdue {
        conditions.push(format!(
            "c.due_at IS NOT NULL AND c.due_at < {}",
            bind(Sql::Integer(now))
        ));
    }
    if let Some(contact) = &filter.contact {
        conditions.push(format!("c.contact = {}", bind(Sql::Text(contact.clone()))));
    }
    if let Some((contact, purpose)) = &filter.after {
        let (c, p) = (
            bind(Sql::Text(contact.clone())),
            bind(Sql::Text(purpose.clone())),
        );
        conditions.push(format!("(c.contact, c.purpose) > ({c}, {p})"));
    }
    let limit = bind(Sql::Integer(
        filter
            .limit
            .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX)),
    ));
    let mut stmt = conn.sql().prepare_cached(&format!(
        "SELECT c.contact, c.purpose, c.state, c.band, c.body, c.needs_attention, k.owner
         FROM cases c JOIN contacts k ON k.tenant = c.tenant AND k.id = c.contact
         WHERE {}
         ORDER BY c.contact, c.purpose
         LIMIT {limit}",
        conditions.join(" AND ")
    ))?;
    let rows = stmt.query_map(crate::store::sql::params_from_iter(values.iter()), |r| {
        let body: String = r.get(4)?;
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            body,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, String>(6)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (contact, purpose, state, band, body, needs_attention, owner) = row?;
        let case: Option<Case> = serde_json::from_str(&body).ok();
        out.push(CaseLine {
            tenant: tenant.to_owned(),
            contact,
            purpose,
            state,
            band,
            reminders_sent: case.as_ref().map_or(0, Case::reminders_sent),
            next_due_at: case.as_ref().and_then(|c| c.due_at).map(|t| t.to_rfc3339()),
            owner,
            assigned_to: case.as_ref().and_then(|c| c.assigned_to.clone()),
            legal_hold: case.as_ref().is_some_and(|c| c.legal_hold),
            needs_attention,
        });
    }
    Ok(out)
}

/// Whether the tenant's snapshot of `day` (the tenant's local date,
/// `YYYY-MM-DD`) was taken.
pub fn day_recorded(conn: &Conn, tenant: &str, day: &str) -> Result<bool> {
    let known: i64 = conn.sql().query_row(
        "SELECT COUNT(*) FROM band_days WHERE tenant = ?1 AND day = ?2",
        params![tenant, day],
        |r| r.get(0),
    )?;
    Ok(known > 0)
}

/// Writes the tenant's snapshot of `day` unless it has one: the band counts
/// (the overview's trend) and `waves`, the funnel [`funnel`] computed
/// beforehand (it reads every link; the caller reads it outside the write
/// transaction, so that nobody waits for it).
pub fn record_day(tx: &super::Tx<'_>, tenant: &str, day: &str, waves: &[Wave]) -> Result<()> {
    let inserted = tx.sql().execute(
        "INSERT INTO band_days (tenant, day, usable, to_clarify, removed)
         SELECT ?1, ?2,
                COALESCE(SUM(CASE WHEN band = 'usable' THEN n END), 0),
                COALESCE(SUM(CASE WHEN band = 'to-clarify' THEN n END), 0),
                COALESCE(SUM(CASE WHEN band = 'removed' THEN n END), 0)
         FROM case_counts WHERE tenant = ?1
         ON CONFLICT DO NOTHING",
        params![tenant, day],
    )?;
    if inserted == 0 {
        return Ok(());
    }
    let waves = serde_json::to_string(waves).unwrap_or_else(|_| "[]".to_owned());
    tx.sql().execute(
        "INSERT INTO funnel_days (tenant, day, waves) VALUES (?1, ?2, ?3)
         ON CONFLICT (tenant, day) DO UPDATE SET waves = excluded.waves",
        params![tenant, day, waves],
    )?;
    Ok(())
}

/// The funnel as the latest daily snapshot has it: its day, and the waves.
pub fn latest_funnel(conn: &Conn, tenant: &str) -> Result<Option<(String, Vec<Wave>)>> {
    let row: Option<(String, String)> = conn
        .sql()
        .query_row(
            "SELECT day, waves FROM funnel_days WHERE tenant = ?1 ORDER BY day DESC LIMIT 1",
            [tenant],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(row.map(|(day, waves)| (day, serde_json::from_str(&waves).unwrap_or_default())))
}

/// One day of the trend: usable, to clarify, removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BandDay {
    pub day: String,
    pub usable: i64,
    pub to_clarify: i64,
    pub removed: i64,
}

/// The recorded days from `since` (`YYYY-MM-DD`) on, oldest first.
pub fn band_days(conn: &Conn, tenant: &str, since: &str) -> Result<Vec<BandDay>> {
    let mut stmt = conn.sql().prepare(
        "SELECT day, usable, to_clarify, removed FROM band_days
         WHERE tenant = ?1 AND day >= ?2 ORDER BY day",
    )?;
    let rows = stmt.query_map(params![tenant, since], |r| {
        Ok(BandDay {
            day: r.get(0)?,
            usable: r.get(1)?,
            to_clarify: r.get(2)?,
            removed: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<Vec<_>>>()?)
}

/// One request wave (the ISO week of the cases' first request) and how far
/// its cases got.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Wave {
    /// e.g. `2026-W49`.
    pub week: String,
    pub sent: i64,
    pub bounced: i64,
    pub opened: i64,
    pub agreed: i64,
    pub refused: i64,
    pub reminded_once: i64,
    pub reminded_twice: i64,
    pub handed_to_person: i64,
    pub decided: i64,
    pub cleaned_up: i64,
}

/// The funnel's waves: a wave is the ISO week of a contact's first request.
const FUNNEL: &str = "WITH t AS (
            SELECT contact, purpose,
                   MIN(CASE WHEN attempt = 1 THEN created_at END) AS first,
                   MAX(attempt) AS attempts,
                   MAX(opened_at IS NOT NULL) AS opened,
                   MAX(bounced_at IS NOT NULL) AS bounced,
                   MAX(answer IS 'accept') AS agreed,
                   MAX(answer IS 'refuse') AS refused
            FROM response_tokens WHERE tenant = ?1 GROUP BY contact, purpose
         )
         SELECT strftime('%G-W%V', t.first, 'unixepoch') AS wave, COUNT(*),
                SUM(t.bounced), SUM(t.opened), SUM(t.agreed), SUM(t.refused),
                SUM(t.attempts >= 2), SUM(t.attempts >= 3),
                SUM(EXISTS (SELECT 1 FROM audit_log a
                            WHERE a.tenant = ?1 AND a.contact = t.contact AND a.purpose = t.purpose
                              AND a.kind = 'state-change'
                              AND a.detail LIKE '%\"to\":\"awaiting-decision\"%')),
                SUM(EXISTS (SELECT 1 FROM audit_log a
                            WHERE a.tenant = ?1 AND a.contact = t.contact AND a.purpose = t.purpose
                              AND a.kind = 'state-change'
                              AND a.detail LIKE '%\"from\":\"awaiting-decision\"%')),
                SUM(c.state = 'purged')
         FROM t JOIN cases c ON c.tenant = ?1 AND c.contact = t.contact AND c.purpose = t.purpose
         WHERE t.first IS NOT NULL
         GROUP BY wave ORDER BY wave DESC LIMIT ?2";

/// PostgreSQL has no `strftime`, and no `MAX`/`SUM` of booleans.
const FUNNEL_PG: &str = "WITH t AS (
            SELECT contact, purpose,
                   MIN(CASE WHEN attempt = 1 THEN created_at END) AS first,
                   MAX(attempt) AS attempts,
                   MAX(CASE WHEN opened_at IS NOT NULL THEN 1 ELSE 0 END) AS opened,
                   MAX(CASE WHEN bounced_at IS NOT NULL THEN 1 ELSE 0 END) AS bounced,
                   MAX(CASE WHEN answer = 'accept' THEN 1 ELSE 0 END) AS agreed,
                   MAX(CASE WHEN answer = 'refuse' THEN 1 ELSE 0 END) AS refused
            FROM response_tokens WHERE tenant = ?1 GROUP BY contact, purpose
         )
         SELECT to_char(to_timestamp(t.first) AT TIME ZONE 'UTC', 'IYYY-\"W\"IW') AS wave, COUNT(*),
                SUM(t.bounced), SUM(t.opened), SUM(t.agreed), SUM(t.refused),
                COUNT(*) FILTER (WHERE t.attempts >= 2), COUNT(*) FILTER (WHERE t.attempts >= 3),
                COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM audit_log a
                            WHERE a.tenant = ?1 AND a.contact = t.contact AND a.purpose = t.purpose
                              AND a.kind = 'state-change'
                              AND a.detail LIKE '%\"to\":\"awaiting-decision\"%')),
                COUNT(*) FILTER (WHERE EXISTS (SELECT 1 FROM audit_log a
                            WHERE a.tenant = ?1 AND a.contact = t.contact AND a.purpose = t.purpose
                              AND a.kind = 'state-change'
                              AND a.detail LIKE '%\"from\":\"awaiting-decision\"%')),
                COUNT(*) FILTER (WHERE c.state = 'purged')
         FROM t JOIN cases c ON c.tenant = ?1 AND c.contact = t.contact AND c.purpose = t.purpose
         WHERE t.first IS NOT NULL
         GROUP BY wave ORDER BY wave DESC LIMIT ?2";

/// The funnel of the last `limit` waves, newest first.
pub fn funnel(conn: &Conn, tenant: &str, limit: i64) -> Result<Vec<Wave>> {
    let mut stmt = conn.sql().prepare(if conn.sql().is_postgres() {
        FUNNEL_PG
    } else {
        FUNNEL
    })?;
    let rows = stmt.query_map(params![tenant, limit], |r| {
        Ok(Wave {
            week: r.get(0)?,
            sent: r.get(1)?,
            bounced: r.get(2)?,
            opened: r.get(3)?,
            agreed: r.get(4)?,
            refused: r.get(5)?,
            reminded_once: r.get(6)?,
            reminded_twice: r.get(7)?,
            handed_to_person: r.get(8)?,
            decided: r.get(9)?,
            cleaned_up: r.get(10)?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<Vec<_>>>()?)
}

/// What the next cleanups will erase: pending cleanups by the ISO week they
/// may run, those on legal hold counted apart (they will not run), and of the
/// rest those still waiting for an approval.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CleanupWeek {
    /// The ISO week the grace period ends, e.g. `2026-W50`; empty for
    /// cleanups with no date (held, or past their date and waiting).
    pub week: String,
    /// Cases whose cleanup may run then (those on hold subtracted).
    pub cases: i64,
    /// Cases on legal hold, subtracted from `cases`.
    pub on_hold: i64,
    /// Of `cases`, those still waiting for an approval.
    pub awaiting_approval: i64,
}

pub fn cleanup_preview(conn: &Conn, tenant: &str) -> Result<Vec<CleanupWeek>> {
    // Every column comes from the index `cases_cleanup`: no case is read.
    // PostgreSQL has no `strftime`, reads JSON true as 'true' (not 1), and
    // sees no output alias in an ORDER BY expression.
    let mut stmt = conn.sql().prepare(if conn.sql().is_postgres() {
        "SELECT week, n, on_hold, awaiting_approval FROM (
             SELECT COALESCE(to_char(to_timestamp(due_at) AT TIME ZONE 'UTC', 'IYYY-\"W\"IW'), '') AS week,
                    COUNT(*) FILTER (WHERE (body::jsonb ->> 'legal_hold') IS DISTINCT FROM 'true') AS n,
                    COUNT(*) FILTER (WHERE (body::jsonb ->> 'legal_hold') = 'true') AS on_hold,
                    COUNT(*) FILTER (WHERE (body::jsonb ->> 'legal_hold') IS DISTINCT FROM 'true'
                        AND (body::jsonb -> 'cleanup' ->> 'requires_approval') = 'true'
                        AND (body::jsonb -> 'cleanup' ->> 'approved_by') IS NULL) AS awaiting_approval
             FROM cases
             WHERE tenant = ?1 AND state = 'cleanup-pending'
             GROUP BY 1
         ) w
         ORDER BY week = '', week LIMIT 12"
    } else {
        "SELECT COALESCE(strftime('%G-W%V', due_at, 'unixepoch'), '') AS week,
                SUM(NOT COALESCE(json_extract(body, '$.legal_hold'), 0)),
                SUM(COALESCE(json_extract(body, '$.legal_hold'), 0)),
                SUM(NOT COALESCE(json_extract(body, '$.legal_hold'), 0)
                    AND COALESCE(json_extract(body, '$.cleanup.requires_approval'), 0)
                    AND json_extract(body, '$.cleanup.approved_by') IS NULL)
         FROM cases INDEXED BY cases_cleanup
         WHERE tenant = ?1 AND state = 'cleanup-pending'
         GROUP BY week ORDER BY week = '', week LIMIT 12"
    })?;
    let rows = stmt.query_map([tenant], |r| {
        Ok(CleanupWeek {
            week: r.get(0)?,
            cases: r.get(1)?,
            on_hold: r.get(2)?,
            awaiting_approval: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<crate::store::sql::Result<Vec<_>>>()?)
}

/// The cockpit's queue: which cases, in what order.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    pub state: Option<State>,
    pub band: Option<Band>,
    /// The contact's owner in the CRM.
    pub owner: Option<String>,
    /// Whom the case waits for (`(nobody)` for none).
    pub assigned: Option<String>,
    pub purpose: Option<String>,
    pub source: Option<String>,
    pub overdue: bool,
    /// Due within the next 7 days (not overdue).
    pub due_soon: bool,
    /// Due later than 7 days from now.
    pub on_time: bool,
    /// Only cases whose last step failed.
    pub failed: bool,
    /// Only cases with a delivery klar gave up on.
    pub parked: bool,
    /// Only cases of one request wave (`2026-W49`)…
    pub wave: Option<String>,
    /// …that reached this stage of the funnel.
    pub stage: Option<Stage>,
    /// Part of a name, an e-mail address or a contact id.
    pub search: Option<String>,
    /// Only what this account must act on: cases assigned to it, decisions
    /// waiting for it as the contact's owner, and (with `true`, an approver)
    /// cleanups that wait for a second person it can be.
    pub mine: Option<(String, bool)>,
    pub offset: usize,
    pub limit: usize,
}

/// A stage of the request funnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Sent,
    Bounced,
    Opened,
    Agreed,
    Refused,
    RemindedOnce,
    RemindedTwice,
    Handed,
    Decided,
    Cleaned,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::Sent,
        Stage::Bounced,
        Stage::Opened,
        Stage::Agreed,
        Stage::Refused,
        Stage::RemindedOnce,
        Stage::RemindedTwice,
        Stage::Handed,
        Stage::Decided,
        Stage::Cleaned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Sent => "sent",
            Stage::Bounced => "bounced",
            Stage::Opened => "opened",
            Stage::Agreed => "agreed",
            Stage::Refused => "refused",
            Stage::RemindedOnce => "reminded_once",
            Stage::RemindedTwice => "reminded_twice",
            Stage::Handed => "handed",
            Stage::Decided => "decided",
            Stage::Cleaned => "cleaned",
        }
    }

    pub fn parse(text: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The SQL condition on a case `c` (fixed text, no input in it).
    fn condition(self) -> &'static str {
        match self {
            Stage::Sent => "1 = 1",
            Stage::Bounced => {
                "EXISTS (SELECT 1 FROM response_tokens r WHERE r.tenant = c.tenant AND r.contact = c.contact AND r.purpose = c.purpose AND r.bounced_at IS NOT NULL)"
            }
            Stage::Opened => {
                "EXISTS (SELECT 1 FROM response_tokens r WHERE r.tenant = c.tenant AND r.contact = c.contact AND r.purpose = c.purpose AND r.opened_at IS NOT NULL)"
            }
            Stage::Agreed => {
                "EXISTS (SELECT 1 FROM response_tokens r WHERE r.tenant = c.tenant AND r.contact = c.contact AND r.purpose = c.purpose AND r.answer = 'accept')"
            }
            Stage::Refused => {
                "EXISTS (SELECT 1 FROM response_tokens r WHERE r.tenant = c.tenant AND r.contact = c.contact AND r.purpose = c.purpose AND r.answer = 'refuse')"
            }
            Stage::RemindedOnce => {
                "EXISTS (SELECT 1 FROM response_tokens r WHERE r.tenant = c.tenant AND r.contact = c.contact AND r.purpose = c.purpose AND r.attempt >= 2)"
            }
            Stage::RemindedTwice => {
                "EXISTS (SELECT 1 FROM response_tokens r WHERE r.tenant = c.tenant AND r.contact = c.contact AND r.purpose = c.purpose AND r.attempt >= 3)"
            }
            Stage::Handed => {
                "EXISTS (SELECT 1 FROM audit_log a WHERE a.tenant = c.tenant AND a.contact = c.contact AND a.purpose = c.purpose AND a.kind = 'state-change' AND a.detail LIKE '%\"to\":\"awaiting-decision\"%')"
            }
            Stage::Decided => {
                "EXISTS (SELECT 1 FROM audit_log a WHERE a.tenant = c.tenant AND a.contact = c.contact AND a.purpose = c.purpose AND a.kind = 'state-change' AND a.detail LIKE '%\"from\":\"awaiting-decision\"%')"
            }
            Stage::Cleaned => "c.state = 'purged'",
        }
    }
}

/// One line of the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueLine {
    pub contact: String,
    pub purpose: String,
    pub state: String,
    pub band: String,
    pub due_at: Option<i64>,
    pub owner: String,
    pub source: String,
    pub assigned_to: Option<String>,
    pub legal_hold: bool,
    pub needs_attention: Option<String>,
    /// None once the person is erased: nobody sees their data again.
    pub name: Option<String>,
    pub email: Option<String>,
    pub awaiting_approval: bool,
    pub requested_by: Option<String>,
}

/// The queue's lines, most urgent first (failed, then overdue and soonest
/// due), and how many lines match in all.
pub fn queue(
    conn: &Conn,
    tenant: &str,
    filter: &QueueFilter,
    now: i64,
) -> Result<(Vec<QueueLine>, i64)> {
    use crate::store::sql::Value as Sql;
    let postgres = conn.sql().is_postgres();
    let mut conditions = vec!["c.tenant = ?1".to_owned()];
    let mut values: Vec<Sql> = vec![Sql::Text(tenant.to_owned())];
    // Adds a value and returns its placeholder.
    let mut bind = |value: Sql| {
        values.push(value);
        format!("?{}", values.len())
    };
    let text = |s: &str| Sql::Text(s.to_owned());
    if let Some(state) = filter.state {
        conditions.push(format!("c.state = {}", bind(text(state.as_str()))));
    }
    if let Some(band) = filter.band {
        conditions.push(format!("c.band = {}", bind(text(band.as_str()))));
    }
    if let Some(owner) = &filter.owner {
        conditions.push(format!("k.owner = {}", bind(text(owner))));
    }
    if let Some(assigned) = &filter.assigned {
        conditions.push(format!(
            "COALESCE(json_extract(c.body, '$.assigned_to'), '(nobody)') = {}",
            bind(text(assigned))
        ));
    }
    if let Some(purpose) = &filter.purpose {
        conditions.push(format!("c.purpose = {}", bind(text(purpose))));
    }
    if let Some(source) = &filter.source {
        conditions.push(format!("k.source = {}", bind(text(source))));
    }
    if filter.overdue || filter.due_soon || filter.on_time {
        let now = bind(Sql::Integer(now));
        if filter.on_time {
            conditions.push(format!("c.due_at >= {now} + 7 * 86400"));
        }
        if filter.overdue {
            conditions.push(format!("c.due_at < {now}"));
        }
        if filter.due_soon {
            conditions.push(format!(
                "c.due_at >= {now} AND c.due_at < {now} + 7 * 86400"
            ));
        }
    }
    if filter.failed {
        conditions.push("c.needs_attention IS NOT NULL".to_owned());
    }
    if filter.parked {
        conditions.push(
            "EXISTS (SELECT 1 FROM outbox o WHERE o.tenant = c.tenant AND o.contact = c.contact
                     AND o.purpose = c.purpose AND o.parked_at IS NOT NULL AND o.acked_at IS NULL)"
                .to_owned(),
        );
    }
    if let Some(wave) = &filter.wave {
        // PostgreSQL has no `strftime`.
        let week = if postgres {
            "to_char(to_timestamp(MIN(r.created_at)) AT TIME ZONE 'UTC', 'IYYY-\"W\"IW')"
        } else {
            "strftime('%G-W%V', MIN(r.created_at), 'unixepoch')"
        };
        conditions.push(format!(
            "(SELECT {week} FROM response_tokens r
              WHERE r.tenant = c.tenant AND r.contact = c.contact AND r.purpose = c.purpose
                AND r.attempt = 1) = {}",
            bind(text(wave))
        ));
    }
    if let Some(stage) = filter.stage {
        conditions.push(stage.condition().to_owned());
    }
    if let Some(search) = filter
        .search
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let pattern = format!(
            "%{}%",
            search
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let p = bind(Sql::Text(pattern));
        conditions.push(format!(
            "k.erased_at IS NULL AND (c.contact LIKE {p} ESCAPE '\\' OR k.email LIKE {p} ESCAPE '\\'
               OR (k.first_name || ' ' || k.last_name) LIKE {p} ESCAPE '\\')"
        ));
    }
    // "Mine" drives the query: a union of index lookups (the cases assigned
    // to me, the decisions waiting for me as the contact's owner, and the
    // approvals I may give), not a test of every case.
    // PostgreSQL has no rowid: there, `m` holds the cases' keys.
    let mine = match &filter.mine {
        Some((me, approver)) if postgres => {
            let me = bind(text(me));
            let mut sql = format!(
                "WITH m(tenant, contact, purpose) AS (
                    SELECT tenant, contact, purpose FROM cases
                    WHERE tenant = ?1 AND (body::jsonb ->> 'assigned_to') = {me}
                    UNION
                    SELECT c2.tenant, c2.contact, c2.purpose FROM cases c2
                    JOIN contacts k2 ON k2.tenant = c2.tenant AND k2.id = c2.contact
                    WHERE c2.tenant = ?1 AND c2.state = 'awaiting-decision'
                      AND (c2.body::jsonb ->> 'assigned_to') IS NULL AND k2.owner = {me}"
            );
            if *approver {
                sql.push_str(&format!(
                    "
                    UNION
                    SELECT tenant, contact, purpose FROM cases
                    WHERE tenant = ?1 AND state = 'cleanup-pending'
                      AND (body::jsonb -> 'cleanup' ->> 'requires_approval') = 'true'
                      AND (body::jsonb -> 'cleanup' ->> 'approved_by') IS NULL
                      AND (body::jsonb -> 'cleanup' ->> 'requested_by') IS DISTINCT FROM {me}"
                ));
            }
            sql.push_str(")\n");
            Some(sql)
        }
        Some((me, approver)) => {
            let me = bind(text(me));
            let mut sql = format!(
                "WITH m(id) AS (
                    SELECT rowid FROM cases WHERE tenant = ?1 AND json_extract(body, '$.assigned_to') = {me}
                    UNION
                    SELECT c2.rowid FROM cases c2 INDEXED BY cases_unassigned
                    JOIN contacts k2 ON k2.tenant = c2.tenant AND k2.id = c2.contact
                    WHERE c2.tenant = ?1 AND c2.state = 'awaiting-decision'
                      AND json_extract(c2.body, '$.assigned_to') IS NULL AND k2.owner = {me}"
            );
            if *approver {
                sql.push_str(&format!(
                    "
                    UNION
                    SELECT rowid FROM cases INDEXED BY cases_cleanup
                    WHERE tenant = ?1 AND state = 'cleanup-pending'
                      AND json_extract(body, '$.cleanup.requires_approval')
                      AND json_extract(body, '$.cleanup.approved_by') IS NULL
                      AND json_extract(body, '$.cleanup.requested_by') IS NOT {me}"
                ));
            }
            sql.push_str(")\n");
            Some(sql)
        }
        None => None,
    };
    let conditions = conditions.join(" AND ");
    let (with, from) = match &mine {
        Some(with) if postgres => (
            with.as_str(),
            "FROM m JOIN cases c ON c.tenant = m.tenant AND c.contact = m.contact AND c.purpose = m.purpose
             JOIN contacts k ON k.tenant = c.tenant AND k.id = c.contact",
        ),
        Some(with) => (
            with.as_str(),
            "FROM m CROSS JOIN cases c ON c.rowid = m.id JOIN contacts k ON k.tenant = c.tenant AND k.id = c.contact",
        ),
        None => (
            "",
            "FROM cases c JOIN contacts k ON k.tenant = c.tenant AND k.id = c.contact",
        ),
    };
    let total: i64 = conn.sql().query_row(
        &format!("{with}SELECT COUNT(*) {from} WHERE {conditions}"),
        crate::store::sql::params_from_iter(values.iter()),
        |r| r.get(0),
    )?;
    values.push(Sql::Integer(
        i64::try_from(filter.limit).unwrap_or(i64::MAX),
    ));
    values.push(Sql::Integer(i64::try_from(filter.offset).unwrap_or(0)));
    let (limit, offset) = (values.len() - 1, values.len());
    let mut stmt = conn.sql().prepare(&format!(
        "{with}SELECT c.contact, c.purpose, c.state, c.band, c.due_at, k.owner, k.source, c.body,
                c.needs_attention, k.erased_at IS NULL, k.first_name || ' ' || k.last_name, k.email
         {from} WHERE {conditions}
         ORDER BY c.needs_attention IS NULL, c.due_at IS NULL, c.due_at, c.contact, c.purpose
         LIMIT ?{limit} OFFSET ?{offset}"
    ))?;
    let rows = stmt.query_map(crate::store::sql::params_from_iter(values.iter()), |r| {
        let body: String = r.get(7)?;
        let case: Option<Case> = serde_json::from_str(&body).ok();
        let alive: bool = r.get(9)?;
        let plan = case.as_ref().and_then(|c| c.cleanup.clone());
        Ok(QueueLine {
            contact: r.get(0)?,
            purpose: r.get(1)?,
            state: r.get(2)?,
            band: r.get(3)?,
            due_at: r.get(4)?,
            owner: r.get(5)?,
            source: r.get(6)?,
            assigned_to: case.as_ref().and_then(|c| c.assigned_to.clone()),
            legal_hold: case.as_ref().is_some_and(|c| c.legal_hold),
            needs_attention: r.get(8)?,
            name: if alive { Some(r.get(10)?) } else { None },
            email: if alive { r.get(11)? } else { None },
            awaiting_approval: plan
                .as_ref()
                .is_some_and(|p| p.requires_approval && p.approved_by.is_none()),
            requested_by: plan.and_then(|p| p.requested_by),
        })
    })?;
    Ok((rows.collect::<crate::store::sql::Result<Vec<_>>>()?, total))
}

/// The distinct values of a contacts column with an index on (tenant,
/// column), one index seek each instead of a scan of every contact.
fn distinct(conn: &Conn, tenant: &str, column: &str) -> Result<Vec<String>> {
    let sql = format!(
        "WITH RECURSIVE v(x) AS (
             SELECT (SELECT MIN({column}) FROM contacts WHERE tenant = ?1)
             UNION ALL
             SELECT (SELECT MIN({column}) FROM contacts WHERE tenant = ?1 AND {column} > v.x)
             FROM v WHERE v.x IS NOT NULL
         )
         SELECT x FROM v WHERE x IS NOT NULL LIMIT 500"
    );
    let mut stmt = conn.sql().prepare(&sql)?;
    let rows = stmt.query_map([tenant], |r| r.get(0))?;
    Ok(rows.collect::<crate::store::sql::Result<Vec<_>>>()?)
}

/// The tenant's sources (the queue's filter offers them).
pub fn sources(conn: &Conn, tenant: &str) -> Result<Vec<String>> {
    distinct(conn, tenant, "source")
}

/// Owners with contacts (the queue's filter offers them).
pub fn owners(conn: &Conn, tenant: &str) -> Result<Vec<String>> {
    distinct(conn, tenant, "owner")
}

/// Cases due later than 7 days from now (the overview's "on time"; due
/// soon and overdue are in [`Status`]).
pub fn on_time(conn: &Conn, tenant: &str, now: i64) -> Result<i64> {
    due_between(conn, tenant, now + 7 * 86_400, i64::MAX)
}

/// Cases of any state due at or after `from` and before `to`: one range of
/// `cases_tenant_state` per state. (An index on due time alone would make
/// every step of a sweep keep one more index; measured, that cost a sixth
/// of a sweep's time.)
fn due_between(conn: &Conn, tenant: &str, from: i64, to: i64) -> Result<i64> {
    let mut stmt = conn.sql().prepare_cached(
        "SELECT COUNT(*) FROM cases INDEXED BY cases_tenant_state
         WHERE tenant = ?1 AND state = ?2 AND due_at >= ?3 AND due_at < ?4",
    )?;
    let mut n = 0;
    for state in State::ALL {
        n += stmt.query_row(params![tenant, state.as_str(), from, to], |r| {
            r.get::<_, i64>(0)
        })?;
    }
    Ok(n)
}
