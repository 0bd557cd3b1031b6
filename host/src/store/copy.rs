//! `klar store copy`: everything in one store into another, empty one, of
//! either backend (a SQLite file to PostgreSQL when a company outgrows one
//! server, and back).
//!
//! The copy runs in one transaction on the target: a failure leaves it
//! empty. The source is read in one transaction too, so that it may go on
//! serving meanwhile and the copy is still one moment's state. Rows keep
//! their keys and values exactly, so the audit chains verify on the copy as
//! they did on the source; both are checked.

use std::collections::BTreeMap;

use super::sql::{self, Value, params_from_iter};
use super::{Store, StoreError, audit};

/// The tables, parents before children. `case_counts` is not copied: the
/// cases' insert trigger counts them again on the target, and the copy
/// checks that the counts agree.
pub const TABLES: &[&str] = &[
    "tenants",
    "purposes",
    "policy_versions",
    "consent_texts",
    "templates",
    "imports",
    "contacts",
    "cases",
    "response_tokens",
    "evidence",
    "audit_log",
    "outbox",
    "tombstones",
    "idempotency",
    "api_keys",
    "webhooks",
    "accounts",
    "signup_links",
    "sessions",
    "sign_in_failures",
    "band_days",
    "funnel_days",
];

/// Tables the copy derives instead of copying.
pub const DERIVED: &[&str] = &["case_counts"];

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error(
        "the target is not empty: its table {table} has {rows} row(s); copy only into a new store"
    )]
    NotEmpty { table: &'static str, rows: i64 },
    #[error(
        "the source's audit chain of {tenant} does not verify: {problem}; repair it before copying"
    )]
    SourceChain { tenant: String, problem: String },
    #[error("the copy's audit chain of {tenant} does not verify: {problem}")]
    TargetChain { tenant: String, problem: String },
    #[error("the copy's {table} has {copied} row(s), the source's {source_rows}")]
    Count {
        table: &'static str,
        copied: i64,
        source_rows: i64,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<super::Error> for CopyError {
    fn from(err: super::Error) -> CopyError {
        CopyError::Store(err.into())
    }
}

impl From<sql::Error> for CopyError {
    fn from(err: sql::Error) -> CopyError {
        CopyError::Store(err.into())
    }
}

/// What was copied: rows per table, and the tenants whose chains verified
/// on both sides.
#[derive(Debug, Default)]
pub struct Copied {
    pub rows: BTreeMap<&'static str, i64>,
    pub chains: Vec<String>,
}

/// What to copy: everything, or one tenant's rows (for a dry run of a
/// policy on a scratch file, which needs no other tenant).
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    All,
    Tenant(&'a str),
}

impl Scope<'_> {
    /// The condition that picks the scope's rows of `table` (every table
    /// but `tenants` is keyed by tenant first).
    fn filter(self, table: &str) -> String {
        match self {
            Scope::All => String::new(),
            Scope::Tenant(_) if table == "tenants" => " WHERE id = ?1".to_owned(),
            Scope::Tenant(_) => " WHERE tenant = ?1".to_owned(),
        }
    }
}

fn count(db: &sql::Db, table: &str) -> Result<i64, sql::Error> {
    count_in(db, table, Scope::All)
}

fn count_in(db: &sql::Db, table: &str, scope: Scope<'_>) -> Result<i64, sql::Error> {
    let sql = format!("SELECT COUNT(*) FROM {table}{}", scope.filter(table));
    match scope {
        Scope::All => db.query_row(&sql, (), |r| r.get(0)),
        Scope::Tenant(tenant) => db.query_row(&sql, [tenant], |r| r.get(0)),
    }
}

/// Copies every row of `from` into `to`, which must be empty.
pub fn copy(from: &mut Store, to: &mut Store) -> Result<Copied, CopyError> {
    copy_scope(from, to, Scope::All)
}

/// Copies the rows of `scope` from `from` into `to`, which must be empty.
pub fn copy_scope(from: &mut Store, to: &mut Store, scope: Scope<'_>) -> Result<Copied, CopyError> {
    for &table in TABLES.iter().chain(DERIVED) {
        let rows = count(to.conn.sql(), table)?;
        if rows > 0 {
            return Err(CopyError::NotEmpty { table, rows });
        }
    }
    let ids: Vec<String> = match scope {
        Scope::All => from
            .conn
            .sql()
            .prepare("SELECT id FROM tenants ORDER BY id")?
            .query_map((), |r| r.get(0))?
            .collect::<Result<_, _>>()?,
        Scope::Tenant(tenant) => vec![tenant.to_owned()],
    };
    for tenant in &ids {
        if let Some(problem) = audit::verify(from.connection(), tenant)?.into_iter().next() {
            return Err(CopyError::SourceChain {
                tenant: tenant.clone(),
                problem: problem.to_string(),
            });
        }
    }
    let mut copied = Copied::default();
    let source = from.conn.sql();
    let read = source.begin(false)?;
    if source.is_postgres() {
        // One moment's state of a store that others go on writing.
        source.execute_batch("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
    }
    let target = to.conn.sql();
    let write = target.begin(true)?;
    for &table in TABLES {
        let n = copy_table(source, target, table, scope)?;
        copied.rows.insert(table, n);
    }
    if target.is_postgres() {
        // The numbers PostgreSQL hands out next follow the copied ones.
        target.execute_batch(
            "SELECT setval(pg_get_serial_sequence('evidence', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM evidence;
             SELECT setval(pg_get_serial_sequence('audit_log', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM audit_log;
             SELECT setval('response_token_rows',
                           COALESCE(MAX(CAST(substr(id, 2) AS BIGINT)), 0) + 1, false)
               FROM response_tokens WHERE id >= 'r' AND id < 's' AND length(id) = 16;",
        )?;
    }
    let counts = |db: &sql::Db| -> Result<Vec<(String, String, String, i64)>, sql::Error> {
        let mut stmt = db.prepare(&format!(
            "SELECT tenant, state, band, n FROM case_counts{} ORDER BY tenant, state, band",
            match scope {
                Scope::All => " WHERE n <> 0",
                Scope::Tenant(_) => " WHERE n <> 0 AND tenant = ?1",
            }
        ))?;
        let row = |r: &sql::Row<'_>| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?));
        match scope {
            Scope::All => stmt.query_map((), row)?.collect(),
            Scope::Tenant(tenant) => stmt.query_map([tenant], row)?.collect(),
        }
    };
    if counts(source)? != counts(target)? {
        return Err(CopyError::Count {
            table: "case_counts",
            copied: count(target, "case_counts")?,
            source_rows: count_in(source, "case_counts", scope)?,
        });
    }
    write.commit()?;
    drop(read);
    for &table in TABLES {
        let (copied_rows, source_rows) = (count(target, table)?, copied.rows[table]);
        if copied_rows != source_rows {
            return Err(CopyError::Count {
                table,
                copied: copied_rows,
                source_rows,
            });
        }
    }
    for tenant in ids {
        if let Some(problem) = audit::verify(to.connection(), &tenant)?.into_iter().next() {
            return Err(CopyError::TargetChain {
                tenant,
                problem: problem.to_string(),
            });
        }
        copied.chains.push(tenant);
    }
    Ok(copied)
}

/// Copies one table's rows in `scope`; returns how many.
fn copy_table(
    source: &sql::Db,
    target: &sql::Db,
    table: &str,
    scope: Scope<'_>,
) -> Result<i64, sql::Error> {
    let mut select = source.prepare(&format!("SELECT * FROM {table}{}", scope.filter(table)))?;
    let mut columns = select.column_names();
    // A SQLite link token's row number is the number in its id (see
    // `tokens::issue`); the next one is counted from the highest.
    let row_numbers = table == "response_tokens" && !target.is_postgres();
    if row_numbers {
        columns.push("rowid".to_owned());
    }
    let placeholders: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
    let mut insert = target.prepare(&format!(
        "INSERT INTO {table} ({}) VALUES ({})",
        columns.join(", "),
        placeholders.join(", ")
    ))?;
    let width = select.column_names().len();
    let id_column = columns.iter().position(|c| c == "id");
    let mut rows = match scope {
        Scope::All => select.query(())?,
        Scope::Tenant(tenant) => select.query([tenant])?,
    };
    let mut n = 0;
    let mut later = Vec::new();
    while let Some(row) = rows.next()? {
        let mut values: Vec<Value> = (0..width).map(|i| row.get(i)).collect::<Result<_, _>>()?;
        if row_numbers {
            let number = id_column
                .and_then(|i| match &values[i] {
                    Value::Text(id) if id.len() == 16 && id.starts_with('r') => {
                        id[1..].parse().ok()
                    }
                    _ => None,
                })
                .map_or(Value::Null, Value::Integer);
            if number == Value::Null {
                // Older tokens (hex ids) get row numbers after all others.
                values.push(Value::Null);
                later.push(values);
                continue;
            }
            values.push(number);
        }
        insert.execute(params_from_iter(values.iter()))?;
        n += 1;
    }
    for values in later {
        insert.execute(params_from_iter(values.iter()))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{tenants, testing};

    #[test]
    fn one_tenant_is_copied_alone_and_its_chain_verifies() {
        for mut from in testing::both() {
            from.transaction(|tx| {
                tenants::add(tx, "acme", "ACME", "UTC", "de", 1)?;
                tenants::add(tx, "other", "Other", "UTC", "de", 1)?;
                tenants::set_policy(tx, "acme", "fn answer_days(c) { 7 }", "jd", "first", 2)
            })
            .expect("two tenants");
            let mut to = testing::sqlite();
            let copied = copy_scope(&mut from, &mut to, Scope::Tenant("acme")).expect("copies");
            assert_eq!(copied.chains, ["acme"], "{}", from.backend);
            let tenants: Vec<String> = to
                .conn
                .sql()
                .prepare("SELECT id FROM tenants")
                .expect("prepares")
                .query_map((), |r| r.get(0))
                .expect("runs")
                .collect::<Result<_, _>>()
                .expect("reads");
            assert_eq!(tenants, ["acme"], "{}", from.backend);
            assert_eq!(copied.rows["policy_versions"], 1, "{}", from.backend);
            assert_eq!(
                count(to.conn.sql(), "audit_log").expect("counts"),
                count_in(from.conn.sql(), "audit_log", Scope::Tenant("acme")).expect("counts"),
                "{}",
                from.backend
            );
            // A second copy into the same file is refused.
            let err =
                copy_scope(&mut from, &mut to, Scope::Tenant("other")).expect_err("not empty");
            assert!(
                matches!(
                    err,
                    CopyError::NotEmpty {
                        table: "tenants",
                        rows: 1
                    }
                ),
                "{err}"
            );
        }
    }
}
