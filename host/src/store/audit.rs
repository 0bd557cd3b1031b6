//! The audit log: append-only and hash-chained per tenant.
//!
//! Row `seq` of a tenant stores `hash = sha256(fields of the row, prev_hash)`,
//! where `prev_hash` is the hash of row `seq - 1` (or [`GENESIS`] for the first).
//! Changing a row breaks its hash; deleting or inserting one breaks the
//! numbering or the next row's `prev_hash`. [`verify`] names each such row.
//!
//! What the chain alone cannot show: rows cut off at the end, or rows appended
//! by someone who recomputes the hashes. Guarding against that needs the head
//! of the chain kept outside the database (e.g. in an exported evidence bundle).

use super::sql::{OptionalExtension, params};

use super::{Conn, Error, Result, Tx};
use sha2::{Digest, Sha256};

/// The `prev_hash` of a tenant's first row.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One thing that happened, as the audit log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub at: i64,
    pub contact: Option<String>,
    pub purpose: Option<String>,
    /// e.g. "state-change", "decision", "policy-set".
    pub kind: String,
    /// JSON with the details: old and new state, who, why, the trace.
    pub detail: String,
    /// The policy version that decided, if a policy did.
    pub policy_sha256: Option<String>,
}

impl Entry {
    /// A row about the tenant as a whole (keys, webhooks, deliveries).
    pub fn tenant(at: i64, kind: &str, detail: &serde_json::Value) -> Entry {
        Entry {
            at,
            contact: None,
            purpose: None,
            kind: kind.to_owned(),
            detail: detail.to_string(),
            policy_sha256: None,
        }
    }

    /// A row about one of the tenant's purposes (its description, its text).
    pub fn purpose(at: i64, purpose: &str, kind: &str, detail: &serde_json::Value) -> Entry {
        Entry {
            purpose: Some(purpose.to_owned()),
            ..Entry::tenant(at, kind, detail)
        }
    }
}

/// A stored row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub seq: i64,
    pub entry: Entry,
    pub prev_hash: String,
    pub hash: String,
}

/// Something `verify` found wrong, with the row it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The row's content no longer matches its hash: it was changed.
    Changed { seq: i64 },
    /// Rows with these numbers are gone.
    Missing { from: i64, to: i64 },
    /// The row does not follow the one before it: a row was inserted or
    /// replaced before it.
    BrokenLink { seq: i64 },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::Changed { seq } => write!(f, "row {seq} was changed after it was written"),
            Problem::Missing { from, to } if from == to => write!(f, "row {from} was deleted"),
            Problem::Missing { from, to } => write!(f, "rows {from} to {to} were deleted"),
            Problem::BrokenLink { seq } => write!(
                f,
                "row {seq} does not follow the row before it (a row was inserted or replaced)"
            ),
        }
    }
}

/// Each field length-prefixed, so that no two different rows hash alike.
pub fn row_hash(tenant: &str, seq: i64, e: &Entry, prev_hash: &str) -> String {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    };
    field(tenant.as_bytes());
    field(&seq.to_be_bytes());
    field(&e.at.to_be_bytes());
    field(e.contact.as_deref().unwrap_or("\u{0}").as_bytes());
    field(e.purpose.as_deref().unwrap_or("\u{0}").as_bytes());
    field(e.kind.as_bytes());
    field(e.detail.as_bytes());
    field(e.policy_sha256.as_deref().unwrap_or("\u{0}").as_bytes());
    field(prev_hash.as_bytes());
    crate::hex(&h.finalize())
}

/// Appends an entry for `tenant` inside the caller's transaction.
pub fn append(tx: &Tx<'_>, tenant: &str, entry: Entry) -> Result<Row> {
    let cached = tx
        .audit_head
        .borrow_mut()
        .take()
        .filter(|(t, _, _)| t == tenant)
        .map(|(_, seq, hash)| (seq, hash));
    let last = match cached {
        Some(head) => Some(head),
        None => {
            tx.serialise_tenant(tenant)?;
            head(tx, tenant)?
        }
    };
    let (seq, prev_hash) = match last {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    let hash = row_hash(tenant, seq, &entry, &prev_hash);
    tx.sql().prepare_cached("INSERT INTO audit_log (tenant, seq, at, contact, purpose, kind, detail, policy_sha256, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?
        .execute(params![
            tenant,
            seq,
            entry.at,
            entry.contact,
            entry.purpose,
            entry.kind,
            entry.detail,
            entry.policy_sha256,
            prev_hash,
            hash
        ],
    )?;
    *tx.audit_head.borrow_mut() = Some((tenant.to_owned(), seq, hash.clone()));
    Ok(Row {
        seq,
        entry,
        prev_hash,
        hash,
    })
}

/// A tenant's rows in order, optionally only those of one contact.
/// The newest row's `seq` and `hash`, if the tenant has rows.
pub fn head(conn: &Conn, tenant: &str) -> Result<Option<(i64, String)>> {
    conn.sql()
        .prepare_cached(
            "SELECT seq, hash FROM audit_log WHERE tenant = ?1 ORDER BY seq DESC LIMIT 1",
        )?
        .query_row([tenant], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(Error::from)
}

/// One row of a tenant's chain.
pub fn row(conn: &Conn, tenant: &str, seq: i64) -> Result<Option<Row>> {
    conn.sql()
        .prepare_cached(
            "SELECT seq, at, contact, purpose, kind, detail, policy_sha256, prev_hash, hash
             FROM audit_log WHERE tenant = ?1 AND seq = ?2",
        )?
        .query_row(params![tenant, seq], read_row)
        .optional()
        .map_err(Error::from)
}

fn read_row(r: &crate::store::sql::Row<'_>) -> crate::store::sql::Result<Row> {
    Ok(Row {
        seq: r.get(0)?,
        entry: Entry {
            at: r.get(1)?,
            contact: r.get(2)?,
            purpose: r.get(3)?,
            kind: r.get(4)?,
            detail: r.get(5)?,
            policy_sha256: r.get(6)?,
        },
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
    })
}

pub fn rows(conn: &Conn, tenant: &str, contact: Option<&str>) -> Result<Vec<Row>> {
    // Two statements, not one with `?2 IS NULL OR contact = ?2`: a plan
    // cannot depend on the bound value (the store's connections keep plans
    // stable), and that one read the tenant's whole log for one contact.
    let rows = match contact {
        None => conn
            .sql()
            .prepare_cached(
                "SELECT seq, at, contact, purpose, kind, detail, policy_sha256, prev_hash, hash
                 FROM audit_log WHERE tenant = ?1 ORDER BY seq",
            )?
            .query_map([tenant], read_row)?
            .collect::<crate::store::sql::Result<_>>(),
        Some(contact) => conn
            .sql()
            .prepare_cached(
                "SELECT seq, at, contact, purpose, kind, detail, policy_sha256, prev_hash, hash
                 FROM audit_log INDEXED BY audit_by_case
                 WHERE tenant = ?1 AND contact = ?2 ORDER BY seq",
            )?
            .query_map(params![tenant, contact], read_row)?
            .collect::<crate::store::sql::Result<_>>(),
    };
    rows.map_err(Error::from)
}

/// Walks a tenant's chain and lists every problem, in order.
pub fn verify(conn: &Conn, tenant: &str) -> Result<Vec<Problem>> {
    let mut problems = Vec::new();
    let mut expected_seq = 1;
    let mut prev_hash = GENESIS.to_owned();
    for row in rows(conn, tenant, None)? {
        if row.seq > expected_seq {
            problems.push(Problem::Missing {
                from: expected_seq,
                to: row.seq - 1,
            });
        } else if row.prev_hash != prev_hash {
            problems.push(Problem::BrokenLink { seq: row.seq });
        }
        if row_hash(tenant, row.seq, &row.entry, &row.prev_hash) != row.hash {
            problems.push(Problem::Changed { seq: row.seq });
        }
        expected_seq = row.seq + 1;
        prev_hash = row.hash;
    }
    Ok(problems)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::store::testing::{self, TestStore};

    fn entry(n: i64) -> Entry {
        Entry {
            at: 1_764_500_000 + n,
            contact: Some(format!("C{n:05}")),
            purpose: Some("contact-data".to_owned()),
            kind: "state-change".to_owned(),
            detail: format!(r#"{{"from":"unclarified","to":"requested","n":{n}}}"#),
            policy_sha256: Some("ab".repeat(32)),
        }
    }

    /// A store on each backend with `n` rows in two tenants' chains.
    fn stores_with_rows(n: i64) -> [TestStore; 2] {
        let mut stores = testing::both();
        for store in &mut stores {
            store
                .transaction(|tx| {
                    for i in 1..=n {
                        append(tx, "acme", entry(i))?;
                        append(tx, "other", entry(i))?;
                    }
                    Ok::<_, crate::store::Error>(())
                })
                .expect("appends");
        }
        stores
    }

    #[test]
    fn an_untouched_chain_verifies() {
        for store in stores_with_rows(5) {
            assert_eq!(verify(store.connection(), "acme").expect("verifies"), []);
            let rows = rows(store.connection(), "acme", None).expect("rows");
            assert_eq!(rows[0].prev_hash, GENESIS);
            assert_eq!(rows[1].prev_hash, rows[0].hash);
        }
    }

    #[test]
    fn a_changed_row_is_named() {
        for store in stores_with_rows(5) {
            store
                .connection()
                .sql()
                .execute(
                    "UPDATE audit_log SET detail = '{\"to\":\"consented\"}' WHERE tenant = 'acme' AND seq = 3",
                    (),
                )
                .expect("tamper");
            let problems = verify(store.connection(), "acme").expect("verifies");
            assert_eq!(problems, [Problem::Changed { seq: 3 }]);
            assert_eq!(
                problems[0].to_string(),
                "row 3 was changed after it was written"
            );
            assert_eq!(verify(store.connection(), "other").expect("verifies"), []);
        }
    }

    #[test]
    fn a_deleted_row_is_named() {
        for store in stores_with_rows(5) {
            store
                .connection()
                .sql()
                .execute(
                    "DELETE FROM audit_log WHERE tenant = 'acme' AND seq = 2",
                    (),
                )
                .expect("tamper");
            let problems = verify(store.connection(), "acme").expect("verifies");
            assert_eq!(problems, [Problem::Missing { from: 2, to: 2 }]);
            assert_eq!(problems[0].to_string(), "row 2 was deleted");
        }
    }

    #[test]
    fn a_replaced_row_is_named_even_with_a_recomputed_hash() {
        for store in stores_with_rows(5) {
            let conn = store.connection();
            conn.sql()
                .execute(
                    "DELETE FROM audit_log WHERE tenant = 'acme' AND seq = 4",
                    (),
                )
                .expect("delete");
            // A forger rewrites row 4 with a valid hash of its own content, chained
            // to a made-up predecessor.
            let forged = entry(99);
            let prev = "f".repeat(64);
            let hash = row_hash("acme", 4, &forged, &prev);
            conn.sql().execute(
                "INSERT INTO audit_log (tenant, seq, at, contact, purpose, kind, detail, policy_sha256, prev_hash, hash)
                 VALUES ('acme', 4, ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![forged.at, forged.contact, forged.purpose, forged.kind, forged.detail, forged.policy_sha256, prev, hash],
            )
            .expect("insert");
            let problems = verify(conn, "acme").expect("verifies");
            assert_eq!(
                problems,
                [
                    Problem::BrokenLink { seq: 4 },
                    Problem::BrokenLink { seq: 5 }
                ]
            );
        }
    }

    #[test]
    fn writers_at_once_keep_one_unbroken_chain() {
        // Four klar instances, each with its own connection, append to one
        // tenant's chain at the same time.
        for store in testing::both() {
            let location = store.location.clone();
            std::thread::scope(|scope| {
                for writer in 0..4 {
                    let location = location.clone();
                    scope.spawn(move || {
                        let mut store = Store::open(location).expect("opens");
                        for n in 0..25 {
                            store
                                .write(|tx| append(tx, "acme", entry(writer * 100 + n)))
                                .expect("appends");
                        }
                    });
                }
            });
            let rows = rows(store.connection(), "acme", None).expect("rows");
            assert_eq!(rows.len(), 100, "{}", store.backend);
            let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
            assert_eq!(seqs, (1..=100).collect::<Vec<_>>(), "{}", store.backend);
            assert_eq!(
                verify(store.connection(), "acme").expect("verifies"),
                [],
                "{}",
                store.backend
            );
        }
    }
}
