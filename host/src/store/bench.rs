//! The SQL of the store's benchmarks: a tenant of generated contacts with
//! due cases, made in bulk, and the baselines `klar bench sweep` and
//! `klar bench import` are measured against (SQLite rewriting every case
//! row once in one statement; SQLite alone writing the same rows as the
//! sweep or the import into klar's own tables).

use std::path::Path;

use super::sql::params;

use super::{Error, Result, Store, Tx};

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
    // PostgreSQL has `generate_series` and no `printf`.
    let contacts = if tx.sql().is_postgres() {
        "INSERT INTO contacts (tenant, id, first_name, last_name, email, phone, owner, source, language, created_at)
         SELECT ?3, 'C' || lpad(i::text, 7, '0'), 'Jürgen', 'Müller', 'kontakt' || i || '@example.de',
                CASE WHEN i % 2 = 0 THEN '+49 30 ' || lpad(i::text, 7, '0') END,
                CASE i % 3 WHEN 0 THEN 'jk' WHEN 1 THEN 'mb' ELSE 'sr' END, 'import', 'de', ?2
         FROM generate_series(1, CAST(?1 AS BIGINT)) AS n(i)"
    } else {
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO contacts (tenant, id, first_name, last_name, email, phone, owner, source, language, created_at)
         SELECT ?3, printf('C%07d', i), 'Jürgen', 'Müller', printf('kontakt%d@example.de', i),
                CASE WHEN i % 2 = 0 THEN printf('+49 30 %07d', i) END,
                CASE i % 3 WHEN 0 THEN 'jk' WHEN 1 THEN 'mb' ELSE 'sr' END, 'import', 'de', ?2
         FROM n"
    };
    tx.sql()
        .execute(contacts, params![cases, created, tenant])?;
    tx.sql().execute(
        "INSERT INTO cases (tenant, contact, purpose, state, band, body, due_at, updated_at)
         SELECT ?4, id, ?1, 'unclarified', 'to-clarify', ?2, ?3, ?3 FROM contacts WHERE tenant = ?4",
        params![purpose, body, created, tenant],
    )?;
    Ok(())
}

/// The second baseline of `klar bench import`: SQLite alone writing the
/// rows of `staged` (the database `sqlite3 .import` made of the generated
/// CSV, its rows in table `t`) into the tenant's contacts as one import,
/// and opening their cases, in one transaction. It writes the same tables,
/// indexes and triggers as `klar import`, but parses, checks and audits
/// nothing: what this schema costs by itself. Returns the contacts added
/// and the cases opened.
///
/// The column names are those of `app::demo::write_contacts_csv`.
pub fn import_floor(
    store: &mut Store,
    tenant: &str,
    staged: &Path,
    now: i64,
) -> Result<(usize, usize)> {
    attached(store, (staged, "staged"), |store| {
        store.transaction(|tx| import_staged(tx, tenant, now))
    })
}

fn import_staged(tx: &Tx<'_>, tenant: &str, now: i64) -> Result<(usize, usize)> {
    let n = super::imports::begin(tx, tenant)?;
    let added = tx.sql().execute(
        "INSERT INTO contacts (tenant, id, first_name, last_name, email, phone, owner, source,
                               language, created_at, attributes, imported_in, import_pos)
         SELECT ?1, external_id, first_name, last_name, NULLIF(email, ''), NULLIF(phone, ''),
                owner, source, language, unixepoch(created_at),
                CASE WHEN company = '' THEN '{}' ELSE json_object('company', company) END,
                ?2, rowid - 1
         FROM staged.t WHERE true
         ON CONFLICT (tenant, id) DO NOTHING",
        params![tenant, n],
    )?;
    let opened = super::imports::open_cases(tx, tenant, n, now)?;
    Ok((added, opened))
}

/// Runs `work` with the database file `path` attached as `name`, and
/// detaches it again whatever `work` returned. (ATTACH cannot run inside a
/// transaction, so this wraps the transaction.)
fn attached<T>(
    store: &mut Store,
    (path, name): (&Path, &str),
    work: impl FnOnce(&mut Store) -> Result<T>,
) -> Result<T> {
    store.connection().sql().execute(
        "ATTACH DATABASE ?1 AS ?2",
        params![path.to_string_lossy(), name],
    )?;
    let result = work(store);
    let detached = store
        .connection()
        .sql()
        .execute("DETACH DATABASE ?1", [name]);
    let value = result?;
    detached?;
    Ok(value)
}

/// The second baseline of `klar bench sweep`: SQLite alone writing, once
/// more, the rows the measured sweep wrote into `swept` (a database file),
/// with the statements reading them from there: every case rewritten (its
/// state, body and due time, so that its indexes move as in a step), and a
/// copy of every audit row, outbox action, link token and evidence row
/// under new keys, and each contact's last message, in one transaction
/// with its commit. Run on a copy of `swept`: the copied audit rows do not
/// form a chain. This is what the schema costs for a sweep's writes when
/// nothing is computed, parsed or read case by case. Returns the cases
/// rewritten.
pub fn sweep_floor(store: &mut Store, tenant: &str, swept: &Path) -> Result<usize> {
    attached(store, (swept, "swept"), |store| {
        store.transaction(|tx| write_swept_again(tx, tenant))
    })
}

fn write_swept_again(tx: &Tx<'_>, tenant: &str) -> Result<usize> {
    let sql = tx.sql();
    // New keys start above the highest ones of the copy.
    let (audit_seq, outbox_seq, token_row): (i64, i64, i64) = sql.query_row(
        "SELECT (SELECT COALESCE(MAX(seq), 0) FROM audit_log WHERE tenant = ?1),
                (SELECT COALESCE(MAX(seq), 0) FROM outbox WHERE tenant = ?1),
                (SELECT COALESCE(MAX(rowid), 0) FROM response_tokens)",
        [tenant],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let cases = sql.execute(
        "UPDATE cases SET state = s.state, band = s.band, body = s.body || ' ',
                          due_at = s.due_at + 1, updated_at = s.updated_at + 1
         FROM swept.cases AS s
         WHERE cases.tenant = ?1 AND s.tenant = cases.tenant
           AND s.contact = cases.contact AND s.purpose = cases.purpose",
        [tenant],
    )?;
    sql.execute(
        "INSERT INTO audit_log (tenant, seq, at, contact, purpose, kind, detail,
                                policy_sha256, prev_hash, hash)
         SELECT tenant, seq + ?2, at, contact, purpose, kind, detail, policy_sha256, prev_hash, hash
         FROM swept.audit_log WHERE tenant = ?1 AND contact IS NOT NULL ORDER BY seq",
        params![tenant, audit_seq],
    )?;
    sql.execute(
        "INSERT INTO outbox (id, tenant, seq, contact, purpose, kind, payload, created_at)
         SELECT id || '-again', tenant, seq + ?2, contact, purpose, kind, payload, created_at
         FROM swept.outbox WHERE tenant = ?1 ORDER BY seq",
        params![tenant, outbox_seq],
    )?;
    sql.execute(
        "INSERT INTO response_tokens (rowid, id, hash, tenant, contact, purpose, attempt, channel,
                                      text_version, language, created_at, expires_at, message)
         SELECT rowid + ?2, printf('r%015d', rowid + ?2),
                printf('%016x', rowid + ?2) || substr(hash, 17), tenant, contact, purpose,
                attempt, channel, text_version, language, created_at, expires_at,
                printf('r%015d', rowid + ?2)
         FROM swept.response_tokens WHERE tenant = ?1 ORDER BY rowid",
        params![tenant, token_row],
    )?;
    sql.execute(
        "INSERT INTO evidence (tenant, contact, purpose, kind, at, detail, retain_until)
         SELECT tenant, contact, purpose, kind, at, detail, retain_until
         FROM swept.evidence WHERE tenant = ?1 ORDER BY id",
        [tenant],
    )?;
    sql.execute(
        "UPDATE contacts SET last_message_at = s.last_message_at + 1
         FROM swept.contacts AS s
         WHERE contacts.tenant = ?1 AND s.tenant = contacts.tenant AND s.id = contacts.id",
        [tenant],
    )?;
    Ok(cases)
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

/// `klar bench cockpit`: `cases` contacts `K0000001`… of 20 owners `o01`…
/// and 5 sources, one case each in a spread of states, with due dates
/// around `now`, assignments, cleanup plans, and a first request (a
/// response link) for most, in waves a week apart.
pub fn cockpit_cases(tx: &Tx<'_>, tenant: &str, cases: i64, now: i64) -> Result<()> {
    tx.sql().execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)
         INSERT INTO contacts (tenant, id, first_name, last_name, email, phone, owner, source, language, created_at)
         SELECT ?3, printf('K%07d', i), 'Jürgen', printf('Müller%d', i), printf('kontakt%d@example.de', i), NULL,
                printf('o%02d', 1 + i % 20), printf('quelle-%d', i % 5), 'de', ?2 - 120 * 86400
         FROM n",
        params![cases, now, tenant],
    )?;
    // State by i % 100: 30 consented, 10 other-basis, 20 requested, 5
    // awaiting a decision, 15 paused, 10 cleanup-pending, 10 purged.
    tx.sql().execute(
        "INSERT INTO cases (tenant, contact, purpose, state, band, body, due_at, updated_at)
         SELECT ?1, id, 'contact-data', s.state, s.band,
                json_object('purpose', 'contact-data', 'state', s.state, 'attempt', 1,
                    'assigned_to', CASE WHEN s.state = 'awaiting-decision' THEN owner END,
                    'legal_hold', json(CASE WHEN s.state = 'cleanup-pending' AND k % 7 = 0 THEN 'true' ELSE 'false' END),
                    'cleanup', CASE WHEN s.state = 'cleanup-pending' THEN json_object(
                        'mode', 'delete', 'not_before', strftime('%Y-%m-%dT%H:%M:%SZ', ?2 + (k % 28) * 86400, 'unixepoch'),
                        'reason', 'refusal', 'resume_state', 'refused', 'resume_due_at', NULL,
                        'requested_by', CASE WHEN k % 2 = 0 THEN owner END,
                        'requires_approval', json(CASE WHEN k % 30 = 0 THEN 'true' ELSE 'false' END),
                        'approved_by', NULL) END),
                CASE WHEN s.state IN ('requested', 'awaiting-decision', 'paused', 'cleanup-pending')
                     THEN ?2 + ((k * 7919) % (60 * 86400)) - 20 * 86400 END,
                ?2
         FROM (SELECT id, owner, CAST(substr(id, 2) AS INTEGER) AS k FROM contacts WHERE tenant = ?1) c
         JOIN (SELECT 0 AS lo, 30 AS hi, 'consented' AS state, 'usable' AS band
               UNION ALL SELECT 30, 40, 'other-basis', 'usable'
               UNION ALL SELECT 40, 60, 'requested', 'to-clarify'
               UNION ALL SELECT 60, 65, 'awaiting-decision', 'to-clarify'
               UNION ALL SELECT 65, 80, 'paused', 'to-clarify'
               UNION ALL SELECT 80, 90, 'cleanup-pending', 'removed'
               UNION ALL SELECT 90, 100, 'purged', 'removed') s
           ON c.k % 100 >= s.lo AND c.k % 100 < s.hi",
        params![tenant, now],
    )?;
    tx.sql().execute(
        "INSERT INTO response_tokens (id, hash, tenant, contact, purpose, attempt, channel, text_version,
                                      language, created_at, expires_at, opened_at, answer)
         SELECT printf('%016x', k), printf('%064x', k), ?1, contact, 'contact-data', 1, 'email', 1, 'de',
                ?2 - (k % 8) * 7 * 86400, ?2 + 180 * 86400,
                CASE WHEN k % 3 = 0 THEN ?2 END,
                CASE state WHEN 'consented' THEN 'accept' WHEN 'cleanup-pending' THEN 'refuse' END
         FROM (SELECT contact, state, CAST(substr(contact, 2) AS INTEGER) AS k FROM cases WHERE tenant = ?1)
         WHERE state <> 'other-basis'",
        params![tenant, now],
    )?;
    Ok(())
}
