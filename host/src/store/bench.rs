//! The SQL of `klar bench sweep`: a tenant of generated contacts with due
//! cases, made in bulk, and the baseline the sweep is measured against
//! (SQLite rewriting every case row once, in one statement).

use rusqlite::params;

use super::{Error, Result, Tx};

/// `cases` contacts `C0000001`… with one due `unclarified` case each (the
/// case's JSON `body`), all created at `created`.
pub fn due_cases(
    tx: &Tx<'_>,
    tenant: &str,
    cases: i64,
    purpose: &str,
    body: &str,
    created: i64,
) -> Result<()> {
    tx.sql().execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO contacts (tenant, id, first_name, last_name, email, phone, owner, source, language, created_at)
         SELECT ?3, printf('C%07d', i), 'Jürgen', 'Müller', printf('kontakt%d@example.de', i),
                CASE WHEN i % 2 = 0 THEN printf('+49 30 %07d', i) END,
                CASE i % 3 WHEN 0 THEN 'jk' WHEN 1 THEN 'mb' ELSE 'sr' END, 'import', 'de', ?2
         FROM n",
        params![cases, created, tenant],
    )?;
    tx.sql().execute(
        "INSERT INTO cases (tenant, contact, purpose, state, band, body, due_at, updated_at)
         SELECT ?4, id, ?1, 'unclarified', 'to-clarify', ?2, ?3, ?3 FROM contacts WHERE tenant = ?4",
        params![purpose, body, created, tenant],
    )?;
    Ok(())
}

/// The baseline: every case row of the tenant rewritten once.
pub fn touch_every_case(tx: &Tx<'_>, tenant: &str) -> Result<usize> {
    tx.sql()
        .execute(
            "UPDATE cases SET updated_at = updated_at + 1 WHERE tenant = ?1",
            [tenant],
        )
        .map_err(Error::from)
}
