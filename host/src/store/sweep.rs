//! The contacts a candidate policy is tried on before it becomes active: all
//! of a tenant's live contacts up to a limit; above it a deterministic sample
//! of at least that many, plus the first contact of every distinct source,
//! owner and language, so that a branch on one of those values is reached
//! even when the sample's stride would skip it. Each contact comes with one
//! case per purpose of the tenant: the stored case, or a new one where the
//! contact has none yet. Erased contacts are left out (no hook runs for them
//! again).

use super::sql::params;

use super::{Conn, Result};

use super::contacts::{COLUMNS, read};
use super::tenants;
use crate::plugin::{Case, Contact};

/// What a sweep runs on.
#[derive(Debug, Default)]
pub struct Population {
    /// The tenant's live contacts, all of them.
    pub total: usize,
    /// The contacts chosen, in id order, each with its cases.
    pub contacts: Vec<(Contact, Vec<Case>)>,
}

/// Up to `limit` contacts of `tenant` (all of them when there are no more),
/// else every k-th contact in id order (k = total / limit, so at least `limit`)
/// and the first of each source, owner and language.
pub fn population(conn: &Conn, tenant: &str, limit: usize) -> Result<Population> {
    let total: i64 = conn
        .sql()
        .prepare_cached("SELECT COUNT(*) FROM contacts WHERE tenant = ?1 AND erased_at IS NULL")?
        .query_row([tenant], |r| r.get(0))?;
    let total = usize::try_from(total).unwrap_or(0);
    let stride = (total / limit.max(1)).max(1);
    let stride = i64::try_from(stride).unwrap_or(i64::MAX);
    let mut stmt = conn.sql().prepare(&format!(
        "WITH live AS (
             SELECT id, source, owner, language, ROW_NUMBER() OVER (ORDER BY id) - 1 AS n
             FROM contacts WHERE tenant = ?1 AND erased_at IS NULL
         ),
         chosen AS (
             SELECT id FROM live WHERE n % ?2 = 0
             UNION SELECT MIN(id) FROM live GROUP BY source
             UNION SELECT MIN(id) FROM live GROUP BY owner
             UNION SELECT MIN(id) FROM live GROUP BY language
         )
         SELECT {COLUMNS} FROM contacts k JOIN chosen ON chosen.id = k.id
         WHERE k.tenant = ?1 ORDER BY k.id"
    ))?;
    let chosen: Vec<Contact> = stmt
        .query_map(params![tenant, stride], |r| read(r, 0))?
        .collect::<crate::store::sql::Result<_>>()?;
    let purposes: Vec<String> = tenants::purposes(conn, tenant)?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    let mut cases_of = conn.sql().prepare_cached(
        "SELECT purpose, body FROM cases WHERE tenant = ?1 AND contact = ?2 ORDER BY purpose",
    )?;
    let mut contacts = Vec::with_capacity(chosen.len());
    for contact in chosen {
        let stored: Vec<(String, String)> = cases_of
            .query_map(params![tenant, contact.id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<crate::store::sql::Result<_>>()?;
        let mut cases = Vec::with_capacity(purposes.len());
        for purpose in &purposes {
            let case = match stored.iter().find(|(p, _)| p == purpose) {
                Some((_, body)) => serde_json::from_str(body).map_err(|e| {
                    crate::store::sql::Error::conversion(
                        1,
                        format!(
                            "the stored case {}/{purpose} of {tenant} is not readable: {e}",
                            contact.id
                        ),
                    )
                })?,
                None => Case::new(purpose.clone()),
            };
            cases.push(case);
        }
        contacts.push((contact, cases));
    }
    Ok(Population { total, contacts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::contacts;
    use crate::store::testing;

    fn contact(id: &str, source: &str, owner: &str) -> Contact {
        Contact {
            id: id.to_owned(),
            first_name: "A".to_owned(),
            last_name: "B".to_owned(),
            email: None,
            phone: None,
            owner: owner.to_owned(),
            source: source.to_owned(),
            language: "de".to_owned(),
            created_at: chrono::DateTime::default(),
            attributes: Default::default(),
        }
    }

    #[test]
    fn a_large_tenant_is_sampled_with_every_source_and_owner() {
        for mut store in testing::both() {
            store
                .transaction(|tx| -> Result<()> {
                    tenants::add(tx, "acme", "ACME", "UTC", "de", 1).map_err(|e| match e {
                        tenants::TenantError::Sql(e) => e,
                        other => panic!("{other}"),
                    })?;
                    for n in 0..95 {
                        // One contact from a purchased list, in the middle, that
                        // the stride of 9 would skip.
                        let source = if n == 50 { "purchased-list" } else { "web" };
                        let owner = if n == 77 { "mb" } else { "jk" };
                        contacts::upsert(
                            tx,
                            "acme",
                            &contact(&format!("C{n:03}"), source, owner),
                            1,
                        )?;
                    }
                    contacts::open_cases(tx, "acme", "C000", 1)?;
                    let mut consented = Case::new(tenants::DEFAULT_PURPOSE);
                    consented.state = crate::plugin::State::Consented;
                    tx.sql().execute(
                        "UPDATE cases SET body = ?1 WHERE tenant = 'acme' AND contact = 'C000'",
                        [serde_json::to_string(&consented).unwrap_or_default()],
                    )?;
                    Ok(())
                })
                .expect("fills");

            let all = population(store.connection(), "acme", 100).expect("reads");
            assert_eq!((all.total, all.contacts.len()), (95, 95));

            let sample = population(store.connection(), "acme", 10).expect("reads");
            assert_eq!(sample.total, 95);
            let ids: Vec<&str> = sample.contacts.iter().map(|(c, _)| c.id.as_str()).collect();
            // Every 9th (95 / 10) from C000, at least 10 of them, plus C050 and C077.
            assert!(ids.len() >= 10, "{ids:?}");
            for id in ["C000", "C009", "C090", "C050", "C077"] {
                assert!(ids.contains(&id), "{id} in {ids:?}");
            }
            assert!(!ids.contains(&"C001"), "{ids:?}");
            // The stored case where there is one, a new one elsewhere.
            for (contact, cases) in &sample.contacts {
                let purposes: Vec<&str> = cases.iter().map(|c| c.purpose.as_str()).collect();
                assert_eq!(purposes, [tenants::DEFAULT_PURPOSE]);
                let expected = if contact.id == "C000" {
                    crate::plugin::State::Consented
                } else {
                    crate::plugin::State::Unclarified
                };
                assert_eq!(cases[0].state, expected, "{}", contact.id);
            }
        }
    }
}
