//! Read-only views for the team: the status cockpit and case lists.

use std::collections::BTreeMap;

use rusqlite::params;

use super::{Conn, Result};

use crate::plugin::{Band, Case, State};

/// The cockpit of one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub tenant: String,
    /// Cases per band: usable, to-clarify, removed.
    pub bands: BTreeMap<String, i64>,
    /// Cases per state (all ten, zeros included).
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
        let mut stmt = conn.sql().prepare(
            "SELECT state, band, COUNT(*) FROM cases WHERE tenant = ?1 GROUP BY state, band",
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
    let count = |sql: &str| -> rusqlite::Result<i64> {
        conn.sql()
            .query_row(sql, params![tenant, now], |r| r.get(0))
    };
    let overdue = count(
        "SELECT COUNT(*) FROM cases WHERE tenant = ?1 AND due_at IS NOT NULL AND due_at < ?2",
    )?;
    let due_next_7_days = count(
        "SELECT COUNT(*) FROM cases WHERE tenant = ?1 AND due_at IS NOT NULL AND due_at >= ?2 AND due_at < ?2 + 7 * 86400",
    )?;
    let needs_attention = count(
        "SELECT COUNT(*) FROM cases WHERE tenant = ?1 AND needs_attention IS NOT NULL AND ?2 = ?2",
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
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut awaiting = BTreeMap::new();
    {
        let mut stmt = conn.sql().prepare(
            "SELECT COALESCE(json_extract(body, '$.assigned_to'), '(nobody)'), COUNT(*) FROM cases
             WHERE tenant = ?1 AND state = 'awaiting-decision' GROUP BY 1",
        )?;
        let rows = stmt.query_map([tenant], |r| {
            Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (owner, n) = row?;
            awaiting.insert(owner, n);
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
    let mut stmt = conn.sql().prepare(
        "SELECT c.contact, c.purpose, c.state, c.band, c.body, c.needs_attention, k.owner
         FROM cases c JOIN contacts k ON k.tenant = c.tenant AND k.id = c.contact
         WHERE c.tenant = ?1
           AND (?2 IS NULL OR c.state = ?2)
           AND (?3 IS NULL OR c.band = ?3)
           AND (?4 IS NULL OR k.owner = ?4)
           AND (?5 = 0 OR (c.due_at IS NOT NULL AND c.due_at < ?6))
           AND (?7 IS NULL OR c.contact = ?7)
           AND (?8 IS NULL OR (c.contact, c.purpose) > (?8, ?9))
         ORDER BY c.contact, c.purpose
         LIMIT ?10",
    )?;
    let (after_contact, after_purpose) = filter.after.clone().unzip();
    let limit = filter
        .limit
        .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    let rows = stmt.query_map(
        params![
            tenant,
            filter.state.map(State::as_str),
            filter.band.map(Band::as_str),
            filter.owner,
            filter.overdue,
            now,
            filter.contact,
            after_contact,
            after_purpose,
            limit
        ],
        |r| {
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
        },
    )?;
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
