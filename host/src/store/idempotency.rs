//! Idempotency keys of the API: the first answer to a request, kept so that a
//! retry with the same key gets that answer instead of applying the event
//! again. The key is read and written in the transaction of the steps it
//! guards (see `app::events`).

use super::sql::{OptionalExtension, params};

use super::{Conn, Error, Result, Tx};

/// The request a key was first used for, and the answer it got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answered {
    pub request: String,
    pub status: u16,
    pub response: String,
}

/// The first answer to `key`, read in the transaction that will apply the
/// request if there is none. Requests with the same key wait here for each
/// other: on SQLite the write lock does that already; on PostgreSQL, where
/// two klar instances may take the same retried request at once, a
/// transaction-scoped advisory lock on the key does, so that the second
/// reads the first's answer instead of applying the event again.
pub fn get_for_update(tx: &Tx<'_>, tenant: &str, key: &str) -> Result<Option<Answered>> {
    if tx.sql().is_postgres() {
        tx.sql()
            .prepare_cached("SELECT pg_advisory_xact_lock(?1, hashtext(?2 || '/' || ?3))")?
            .query_row(params![super::IDEMPOTENCY_LOCK, tenant, key], |_| Ok(()))?;
    }
    get(tx, tenant, key)
}

pub fn get(conn: &Conn, tenant: &str, key: &str) -> Result<Option<Answered>> {
    conn.sql()
        .prepare_cached(
            "SELECT request, status, response FROM idempotency WHERE tenant = ?1 AND key = ?2",
        )?
        .query_row(params![tenant, key], |r| {
            Ok(Answered {
                request: r.get(0)?,
                status: r.get(1)?,
                response: r.get(2)?,
            })
        })
        .optional()
        .map_err(Error::from)
}

pub fn put(tx: &Tx<'_>, tenant: &str, key: &str, answered: &Answered, now: i64) -> Result<()> {
    tx.sql()
        .prepare_cached(
            "INSERT INTO idempotency (tenant, key, request, status, response, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            tenant,
            key,
            answered.request,
            answered.status,
            answered.response,
            now
        ])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Store, tenants, testing};

    #[test]
    fn a_retry_at_another_instance_waits_for_the_first_and_reads_its_answer() {
        for mut store in testing::both() {
            store
                .transaction(|tx| tenants::add(tx, "acme", "ACME", "UTC", "de", 1))
                .expect("a tenant");
            let answered = Answered {
                request: "POST /events".to_owned(),
                status: 200,
                response: "{}".to_owned(),
            };
            let location = store.location.clone();
            let (locked, wait_for_lock) = std::sync::mpsc::channel();
            let (first, second) = std::thread::scope(|scope| {
                // The same request, retried at another instance.
                let retry = scope.spawn(move || {
                    let mut other = Store::open(location).expect("opens");
                    wait_for_lock.recv().expect("the first holds the key");
                    other.write(|tx| get_for_update(tx, "acme", "k1"))
                });
                let first = store.write(|tx| -> Result<Option<Answered>> {
                    let found = get_for_update(tx, "acme", "k1")?;
                    locked.send(()).expect("signals");
                    std::thread::sleep(std::time::Duration::from_millis(300));
                    assert!(!retry.is_finished(), "the retry did not wait");
                    put(tx, "acme", "k1", &answered, 2)?;
                    Ok(found)
                });
                (first, retry.join().expect("joins"))
            });
            assert_eq!(first.expect("first"), None, "{}", store.backend);
            assert_eq!(
                second.expect("second"),
                Some(answered.clone()),
                "{}",
                store.backend
            );
        }
    }
}
