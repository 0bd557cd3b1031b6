//! Cases as stored: one row per contact and purpose, the whole case as JSON
//! in `body`, with its state, band and due time in columns for the queries.

use super::sql::{OptionalExtension, params};

use super::{Conn, Error, Result, Tx};

use super::StoreError;
use super::contacts;
use crate::plugin::{Case, Contact, State};

pub(crate) fn parse(body: &str) -> Result<Case, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::from(crate::store::sql::Error::conversion(0, e)))
}

/// One case of a contact, if it has one for `purpose`.
pub fn get(
    conn: &Conn,
    tenant: &str,
    contact: &str,
    purpose: &str,
) -> Result<Option<Case>, StoreError> {
    let body: Option<String> = conn
        .sql()
        .prepare_cached(
            "SELECT body FROM cases WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3",
        )?
        .query_row(params![tenant, contact, purpose], |r| r.get(0))
        .optional()?;
    body.as_deref().map(parse).transpose()
}

/// Every case of a contact, by purpose.
pub fn of_contact(conn: &Conn, tenant: &str, contact: &str) -> Result<Vec<Case>, StoreError> {
    let mut stmt = conn.sql().prepare_cached(
        "SELECT body FROM cases WHERE tenant = ?1 AND contact = ?2 ORDER BY purpose",
    )?;
    let bodies = stmt
        .query_map(params![tenant, contact], |r| r.get::<_, String>(0))?
        .collect::<crate::store::sql::Result<Vec<_>>>()?;
    bodies.iter().map(|b| parse(b)).collect()
}

/// Writes a case after a step and clears a failure mark, if the stored case
/// is still in the state `before` the step saw: false (and nothing written)
/// if another writer moved it meanwhile, so that a step never overwrites a
/// newer state. A change of state is counted in `case_counts` at commit.
pub fn write(
    tx: &Tx<'_>,
    tenant: &str,
    contact: &str,
    (before, case): (State, &Case),
    now: i64,
) -> Result<bool, StoreError> {
    write_body(tx, tenant, contact, (before, case), &body(case), now)
}

/// A case as its row stores it.
pub fn body(case: &Case) -> String {
    serde_json::to_string(case).unwrap_or_default()
}

/// [`write`], with the case's JSON ([`body`]) made beforehand (on another
/// thread, by a sweep).
pub fn write_body(
    tx: &Tx<'_>,
    tenant: &str,
    contact: &str,
    (before, case): (State, &Case),
    body: &str,
    now: i64,
) -> Result<bool, StoreError> {
    // The state guard is written `(state = ?9) IS TRUE` so that it cannot
    // be an index condition: with the statistics of a fresh import (none
    // yet), PostgreSQL costed the index on (tenant, state) the same as the
    // primary key and took it, scanning every case in that state for each
    // write (5 ms a write at 20,000 cases, growing with the tenant; seen with
    // auto_explain). The primary key finds the one row either way.
    let written = tx.sql().prepare_cached(
        "UPDATE cases SET state = ?4, band = ?5, body = ?6, due_at = ?7, updated_at = ?8, needs_attention = NULL
         WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3 AND (state = ?9) IS TRUE",
    )?
    .execute(params![
        tenant,
        contact,
        case.purpose,
        case.state.as_str(),
        case.state.band().as_str(),
        body,
        case.due_at.map(|t| t.timestamp()),
        now,
        before.as_str()
    ])?;
    if written == 1 && before != case.state {
        let mut counts = tx.case_counts.borrow_mut();
        for (state, n) in [(before, -1), (case.state, 1)] {
            *counts
                .entry((tenant.to_owned(), state.as_str(), state.band().as_str()))
                .or_default() += n;
        }
    }
    Ok(written == 1)
}

/// Moves a case's next step without changing anything else (a request that
/// must wait for the contact's message spacing).
pub fn postpone(
    tx: &Tx<'_>,
    tenant: &str,
    contact: &str,
    case: &Case,
    until: i64,
) -> Result<(), StoreError> {
    let mut case = case.clone();
    case.due_at = chrono::DateTime::from_timestamp(until, 0);
    tx.sql().prepare_cached(
        "UPDATE cases SET body = ?4, due_at = ?5 WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3",
    )?
    .execute(params![
        tenant,
        contact,
        case.purpose,
        serde_json::to_string(&case).unwrap_or_default(),
        until
    ])?;
    Ok(())
}

/// Marks a case as failed with the reason; it keeps its state.
pub fn mark_failed(
    tx: &Tx<'_>,
    tenant: &str,
    contact: &str,
    purpose: &str,
    why: &str,
) -> Result<(), StoreError> {
    tx.sql().prepare_cached(
        "UPDATE cases SET needs_attention = ?4 WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3",
    )?
    .execute(params![tenant, contact, purpose, why])?;
    Ok(())
}

/// Why a case's last step failed, if it did.
pub fn attention(
    conn: &Conn,
    tenant: &str,
    contact: &str,
    purpose: &str,
) -> Result<Option<String>, StoreError> {
    Ok(conn
        .sql()
        .prepare_cached(
            "SELECT needs_attention FROM cases WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3",
        )?
        .query_row(params![tenant, contact, purpose], |r| r.get(0))
        .optional()?
        .flatten())
}

/// The cases of erased contacts that are not purged yet (a store from before
/// erasure ended every purpose): `(contact, purpose)`.
pub fn left_after_erasure(conn: &Conn, tenant: &str) -> Result<Vec<(String, String)>, StoreError> {
    let mut stmt = conn.sql().prepare_cached(
        "SELECT c.contact, c.purpose FROM contacts k INDEXED BY contacts_erased
         JOIN cases c ON c.tenant = k.tenant AND c.contact = k.id
         WHERE k.tenant = ?1 AND k.erased_at IS NOT NULL AND c.state != 'purged'
         ORDER BY c.contact, c.purpose",
    )?;
    let rows = stmt.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<crate::store::sql::Result<_>>()?)
}

/// What "may I use this contact for this purpose?" reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Use {
    pub state: String,
    pub band: String,
    pub consented_at: Option<String>,
    pub basis: Option<crate::plugin::Basis>,
    /// The contact was erased: nothing may be used, whatever the case says.
    pub erased: bool,
    /// How strict the purpose is.
    pub enforcement: super::tenants::Enforcement,
}

impl Use {
    /// Only a usable case of a person who was not erased may be used (or,
    /// for a non-restrictive purpose, one not yet clarified): the erasure
    /// check is a guardrail, whatever the case says.
    pub fn may_use(&self) -> bool {
        !self.erased && self.enforcement.allows(&self.band)
    }
}

/// A case's basis as `json_extract` gives it: the record as JSON, or the
/// bare reason text stored before contract 0.6.0.
fn stored_basis(text: &str) -> crate::plugin::Basis {
    serde_json::from_str(text).unwrap_or_else(|_| crate::plugin::Basis {
        kind: crate::plugin::BasisKind::Other,
        reason: text.to_owned(),
        decided_by: Some(String::new()),
        since: None,
        review_at: None,
        relied_on: Default::default(),
        policy_version: None,
    })
}

/// The hottest read: one row, only the columns the answer needs.
pub fn usage(conn: &Conn, tenant: &str, contact: &str, purpose: &str) -> Result<Option<Use>> {
    conn.sql().prepare_cached(
        "SELECT c.state, c.band, json_extract(c.body, '$.consented_at'), json_extract(c.body, '$.basis'),
                k.erased_at IS NOT NULL, p.enforcement
         FROM cases c JOIN contacts k ON k.tenant = c.tenant AND k.id = c.contact
              JOIN purposes p ON p.tenant = c.tenant AND p.id = c.purpose
         WHERE c.tenant = ?1 AND c.contact = ?2 AND c.purpose = ?3",
    )?
    .query_row(params![tenant, contact, purpose], |r| {
        Ok(Use {
            state: r.get(0)?,
            band: r.get(1)?,
            consented_at: r.get(2)?,
            basis: r.get::<_, Option<String>>(3)?.map(|text| stored_basis(&text)),
            erased: r.get(4)?,
            enforcement: super::tenants::Enforcement::parse(&r.get::<_, String>(5)?)
                .unwrap_or_default(),
        })
    })
    .optional()
    .map_err(Error::from)
}

/// One contact of a list, as [`usage_of_list`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListUse {
    pub erased: bool,
    /// The case's state and band; `None` if the contact has no case for the
    /// purpose.
    pub case: Option<(String, String)>,
}

/// CROSS JOIN keeps the list the outer loop: the planner would otherwise
/// scan the contacts and search the list (which has no index) for each, n²
/// for a campaign (minutes for 100,000 ids; a test reads the plan).
const LIST_USAGE: &str = "SELECT j.key, k.erased_at IS NOT NULL, c.state, c.band
     FROM json_each(?3) j
     CROSS JOIN contacts k
     LEFT JOIN cases c ON c.tenant = ?1 AND c.contact = j.value AND c.purpose = ?2
     WHERE k.tenant = ?1 AND k.id = j.value";

/// PostgreSQL has no `json_each`: the list's elements with their 1-based
/// position.
const LIST_USAGE_PG: &str = "SELECT j.ord - 1, k.erased_at IS NOT NULL, c.state, c.band
     FROM jsonb_array_elements_text(CAST(?3 AS TEXT)::jsonb) WITH ORDINALITY AS j(value, ord)
     CROSS JOIN contacts k
     LEFT JOIN cases c ON c.tenant = ?1 AND c.contact = j.value AND c.purpose = ?2
     WHERE k.tenant = ?1 AND k.id = j.value";

/// "May I use?" for a whole list at once, in its order: per id, `None` for
/// a contact klar does not know. One statement over the list (SQLite's
/// `json_each`), so a campaign's 100,000 ids are one pass of index lookups
/// instead of 100,000 statements.
pub fn usage_of_list(
    conn: &Conn,
    tenant: &str,
    purpose: &str,
    ids: &[String],
) -> Result<Vec<Option<ListUse>>> {
    let list = serde_json::Value::from(ids).to_string();
    let mut stmt = conn.sql().prepare(if conn.sql().is_postgres() {
        LIST_USAGE_PG
    } else {
        LIST_USAGE
    })?;
    let mut out = vec![None; ids.len()];
    let rows = stmt.query_map(params![tenant, purpose, list], |r| {
        let state: Option<String> = r.get(2)?;
        let band: Option<String> = r.get(3)?;
        Ok((
            r.get::<_, i64>(0)?,
            ListUse {
                erased: r.get(1)?,
                case: state.zip(band),
            },
        ))
    })?;
    for row in rows {
        let (at, found) = row?;
        if let Some(slot) = usize::try_from(at).ok().and_then(|i| out.get_mut(i)) {
            *slot = Some(found);
        }
    }
    Ok(out)
}

/// The due cases of a tenant, as row ids grouped by contact (a contact's
/// purposes are stepped together), each with whether it starts a contact's
/// group: 16 bytes a case, so a sweep of millions stays small in memory.
pub(crate) fn due_rows(conn: &Conn, tenant: &str, now: i64) -> Result<Vec<(DueCase, bool)>> {
    if conn.sql().is_postgres() {
        return due_keys(conn, tenant, now);
    }
    let mut stmt = conn.sql().prepare(
        "SELECT rowid, contact FROM cases INDEXED BY cases_due
         WHERE tenant = ?1 AND due_at IS NOT NULL AND due_at <= ?2 AND needs_attention IS NULL
           AND state <> 'awaiting-decision'
         ORDER BY contact, purpose",
    )?;
    let mut last: Option<String> = None;
    let mut out = Vec::new();
    let mut rows = stmt.query(params![tenant, now])?;
    while let Some(row) = rows.next()? {
        let contact: String = row.get(1)?;
        let first = last.as_deref() != Some(contact.as_str());
        if first {
            last = Some(contact);
        }
        out.push((DueCase::Row(row.get(0)?), first));
    }
    Ok(out)
}

/// A due case as [`due_rows`] found it: SQLite's row number (8 bytes, so
/// that a sweep of millions stays small), or on PostgreSQL, which has no
/// stable row number (`ctid` changes with every update), the case's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DueCase {
    Row(i64),
    /// (tenant, contact, purpose).
    Key(Box<(String, String, String)>),
}

/// [`due_rows`] on PostgreSQL.
fn due_keys(conn: &Conn, tenant: &str, now: i64) -> Result<Vec<(DueCase, bool)>> {
    let mut stmt = conn.sql().prepare(
        "SELECT contact, purpose FROM cases
         WHERE tenant = ?1 AND due_at IS NOT NULL AND due_at <= ?2 AND needs_attention IS NULL
           AND state <> 'awaiting-decision'
         ORDER BY contact, purpose",
    )?;
    let mut out: Vec<(DueCase, bool)> = Vec::new();
    let mut rows = stmt.query(params![tenant, now])?;
    while let Some(row) = rows.next()? {
        let contact: String = row.get(0)?;
        let purpose: String = row.get(1)?;
        let first = match out.last() {
            Some((DueCase::Key(key), _)) => key.1 != contact,
            _ => true,
        };
        out.push((
            DueCase::Key(Box::new((tenant.to_owned(), contact, purpose))),
            first,
        ));
    }
    Ok(out)
}

/// A due case and its contact with when it was last sent a message; none if
/// it is no longer due (a person acted on it meanwhile), its contact is gone,
/// or the contact was erased (nothing steps for an erased person).
pub(crate) fn load_due(
    conn: &Conn,
    due: &DueCase,
    now: i64,
) -> Result<Option<(Case, Contact, Option<i64>)>, StoreError> {
    // "Still due?" is checked here and not in SQL: a bound value compared with
    // a column of the partial index `cases_due` makes SQLite re-plan the
    // statement on every call.
    /// The body, the due time, whether it may step, the contact's last
    /// message and the contact.
    type Due = (String, Option<i64>, bool, Option<i64>, Contact);
    let read = |r: &crate::store::sql::Row<'_>| -> crate::store::sql::Result<Due> {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<i64>>(1)?,
            r.get::<_, bool>(2)?,
            r.get::<_, Option<i64>>(3)?,
            contacts::read(r, 4)?,
        ))
    };
    // One statement, found by row number (SQLite) or by key (PostgreSQL).
    let select = |found_by: &str| {
        format!(
            "SELECT c.body, c.due_at,
                    c.needs_attention IS NULL AND k.erased_at IS NULL AND c.state <> 'awaiting-decision',
                    k.last_message_at, {} FROM cases c
             JOIN contacts k ON k.tenant = c.tenant AND k.id = c.contact
             WHERE {found_by}",
            contacts::COLUMNS
        )
    };
    let row = match due {
        DueCase::Row(rowid) => conn
            .sql()
            .prepare_cached(&select("c.rowid = ?1"))?
            .query_row([rowid], read),
        DueCase::Key(key) => conn
            .sql()
            .prepare_cached(&select(
                "c.contact = ?1 AND c.purpose = ?2 AND c.tenant = ?3",
            ))?
            .query_row(params![key.1, key.2, key.0], read),
    }
    .optional()?;
    match row {
        Some((body, Some(due), true, last_message, contact)) if due <= now => {
            Ok(Some((parse(&body)?, contact, last_message)))
        }
        _ => Ok(None),
    }
}

/// Every case of the tenant as (contact, purpose, state).
pub fn states(conn: &Conn, tenant: &str) -> Result<Vec<(String, String, String)>> {
    let mut stmt = conn
        .sql()
        .prepare("SELECT contact, purpose, state FROM cases WHERE tenant = ?1")?;
    let rows = stmt.query_map([tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

/// Cases waiting for a person's decision, unchanged since `since`:
/// (contact, purpose, the person: the assignee, else the contact's owner).
pub fn awaiting_since(
    conn: &Conn,
    tenant: &str,
    since: i64,
) -> Result<Vec<(String, String, String)>> {
    let mut stmt = conn.sql().prepare(
        "SELECT c.contact, c.purpose, COALESCE(json_extract(c.body, '$.assigned_to'), k.owner)
         FROM cases c JOIN contacts k ON k.tenant = c.tenant AND k.id = c.contact
         WHERE c.tenant = ?1 AND c.state = 'awaiting-decision' AND c.updated_at <= ?2
         ORDER BY c.contact, c.purpose",
    )?;
    let rows = stmt.query_map(params![tenant, since], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

/// A person took up a failed case again: the scheduler steps it again.
pub fn clear_attention(
    tx: &Tx<'_>,
    tenant: &str,
    (contact, purpose): (&str, &str),
    now: i64,
) -> Result<(), StoreError> {
    tx.sql()
        .prepare_cached(
            "UPDATE cases SET needs_attention = NULL, updated_at = ?4
         WHERE tenant = ?1 AND contact = ?2 AND purpose = ?3",
        )?
        .execute(params![tenant, contact, purpose, now])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, tenants, testing};

    #[test]
    fn a_list_is_looked_up_id_by_id_never_scanned_per_contact() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path().join("klar.db")).expect("opens");
        let mut stmt = store
            .connection()
            .sql()
            .prepare(&format!("EXPLAIN QUERY PLAN {LIST_USAGE}"))
            .expect("plans");
        let plan: Vec<String> = stmt
            .query_map(
                crate::store::sql::params!["acme", "newsletter", "[]"],
                |r| r.get(3),
            )
            .expect("runs")
            .collect::<crate::store::sql::Result<_>>()
            .expect("reads");
        assert_eq!(plan.len(), 3, "{plan:?}");
        assert!(plan[0].starts_with("SCAN j"), "{plan:?}");
        assert!(
            plan[1].starts_with("SEARCH k USING") && plan[1].contains("id=?"),
            "{plan:?}"
        );
        assert!(plan[2].starts_with("SEARCH c USING"), "{plan:?}");
    }

    #[test]
    fn a_step_never_overwrites_a_case_another_writer_moved() {
        for mut store in testing::both() {
            let counts = |store: &Store| -> Vec<(String, i64)> {
                let mut stmt = store
                    .connection()
                    .sql()
                    .prepare("SELECT state, n FROM case_counts WHERE n <> 0 ORDER BY state")
                    .expect("query");
                stmt.query_map((), |r| Ok((r.get(0)?, r.get(1)?)))
                    .expect("runs")
                    .collect::<crate::store::sql::Result<_>>()
                    .expect("reads")
            };
            store
                .transaction(|tx| -> crate::store::Result<()> {
                    tenants::add(tx, "acme", "ACME", "UTC", "de", 1).map_err(|e| match e {
                        tenants::TenantError::Sql(e) => e,
                        other => panic!("{other}"),
                    })?;
                    let contact = Contact {
                        id: "C1".to_owned(),
                        first_name: "A".to_owned(),
                        last_name: "B".to_owned(),
                        email: None,
                        phone: None,
                        owner: "jk".to_owned(),
                        source: "web".to_owned(),
                        language: "de".to_owned(),
                        created_at: chrono::DateTime::default(),
                        attributes: Default::default(),
                    };
                    contacts::upsert(tx, "acme", &contact, 1)?;
                    contacts::open_cases(tx, "acme", "C1", 1)?;
                    Ok(())
                })
                .expect("fills");
            let before = get(store.connection(), "acme", "C1", tenants::DEFAULT_PURPOSE)
                .expect("reads")
                .expect("a case");
            let mut asked = before.clone();
            asked.state = State::Requested;
            let mut refused = before.clone();
            refused.state = State::Refused;
            let written = store
                .transaction(|tx| {
                    let first = write(tx, "acme", "C1", (before.state, &asked), 2)?;
                    // A second step computed from the same old state comes late.
                    let second = write(tx, "acme", "C1", (before.state, &refused), 2)?;
                    Ok::<_, StoreError>((first, second))
                })
                .expect("writes");
            assert_eq!(written, (true, false));
            let stored = get(store.connection(), "acme", "C1", tenants::DEFAULT_PURPOSE)
                .expect("reads")
                .expect("a case");
            assert_eq!(stored.state, State::Requested);
            assert_eq!(counts(&store), [("requested".to_owned(), 1)]);
        }
    }
}
