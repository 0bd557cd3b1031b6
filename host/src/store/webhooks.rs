//! A tenant's webhook (where the outbox is POSTed) and each action's delivery
//! state. The delivering itself is [`crate::delivery::webhook`].

use super::sql::{OptionalExtension, params};
use rand::RngExt;

use super::{Conn, Error, Result, Tx};

use super::outbox::Item;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    pub tenant: String,
    pub url: String,
    pub secret: String,
}

/// Sets (or replaces) the tenant's webhook; returns the new signing secret.
pub fn set(tx: &Tx<'_>, tenant: &str, url: &str, now: i64) -> Result<String> {
    let secret = format!("whsec_{}", crate::hex(&rand::rng().random::<[u8; 24]>()));
    tx.sql().execute(
        "INSERT INTO webhooks (tenant, url, secret, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (tenant) DO UPDATE SET url = excluded.url, secret = excluded.secret,
                                            created_at = excluded.created_at",
        params![tenant, url, secret, now],
    )?;
    crate::store::audit::append(
        tx,
        tenant,
        crate::store::audit::Entry::tenant(now, "webhook-set", &serde_json::json!({ "url": url })),
    )?;
    Ok(secret)
}

pub fn remove(tx: &Tx<'_>, tenant: &str) -> Result<bool> {
    Ok(tx
        .sql()
        .execute("DELETE FROM webhooks WHERE tenant = ?1", [tenant])?
        > 0)
}

pub fn get(conn: &Conn, tenant: &str) -> Result<Option<Webhook>> {
    conn.sql()
        .query_row(
            "SELECT tenant, url, secret FROM webhooks WHERE tenant = ?1",
            [tenant],
            |r| {
                Ok(Webhook {
                    tenant: r.get(0)?,
                    url: r.get(1)?,
                    secret: r.get(2)?,
                })
            },
        )
        .optional()
        .map_err(Error::from)
}

/// Every tenant with a webhook.
pub fn all(conn: &Conn) -> Result<Vec<Webhook>> {
    let mut stmt = conn
        .sql()
        .prepare("SELECT tenant, url, secret FROM webhooks ORDER BY tenant")?;
    let rows = stmt.query_map((), |r| {
        Ok(Webhook {
            tenant: r.get(0)?,
            url: r.get(1)?,
            secret: r.get(2)?,
        })
    })?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

/// Which actions a deliverer takes: klar's own mailer takes the e-mail
/// requests and confirmations of tenants it mails for, the webhook
/// everything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Take {
    Everything,
    Mails,
    AllButMails,
}

/// Actions of `tenant` to deliver now, in order, with their failed attempts:
/// not acknowledged, not parked, due, and not held for the contact's spacing
/// past `now` (klar's clock, seconds; `now_ms` is the wall clock of retries).
pub fn due(
    conn: &Conn,
    tenant: &str,
    (now, now_ms): (i64, i64),
    limit: usize,
    take: Take,
) -> Result<Vec<(Item, i64)>> {
    let take = match take {
        Take::Everything => 0,
        Take::Mails => 1,
        Take::AllButMails => 2,
    };
    let mut stmt = conn.sql().prepare_cached(&format!(
        "SELECT {} FROM outbox
         WHERE tenant = ?1 AND acked_at IS NULL AND parked_at IS NULL
           AND (next_attempt_ms IS NULL OR next_attempt_ms <= ?2)
           AND (deliver_after IS NULL OR deliver_after <= ?5)
           AND (?4 = 0 OR (?4 = 1) = (kind IN ('send-request', 'send-confirmation')
                                      AND json_extract(payload, '$.channel') IS 'email'))
         ORDER BY seq LIMIT ?3",
        super::outbox::COLUMNS
    ))?;
    let rows = stmt.query_map(
        params![
            tenant,
            now_ms,
            i64::try_from(limit).unwrap_or(i64::MAX),
            take,
            now
        ],
        |r| {
            let item = super::outbox::read(r)?;
            let attempts = item.attempts;
            Ok((item, attempts))
        },
    )?;
    rows.collect::<crate::store::sql::Result<_>>()
        .map_err(Error::from)
}

/// The receiver took the action (or klar mailed it): it counts as
/// acknowledged, and its link secret, now delivered, is dropped.
pub fn delivered(conn: &Conn, tenant: &str, id: &str, now: i64) -> Result<()> {
    // PostgreSQL has no `json_remove`; jsonb's `-` drops the keys.
    let sql = if conn.sql().is_postgres() {
        "UPDATE outbox SET acked_at = ?3, last_error = NULL,
                           payload = (payload::jsonb - 'token' - 'personal_token')::text
         WHERE tenant = ?1 AND id = ?2"
    } else {
        "UPDATE outbox SET acked_at = ?3, last_error = NULL,
                           payload = json_remove(payload, '$.token', '$.personal_token')
         WHERE tenant = ?1 AND id = ?2"
    };
    conn.sql().execute(sql, params![tenant, id, now])?;
    Ok(())
}

/// A failed attempt: try again at `next_ms`, or park the action.
pub fn failed(
    conn: &Conn,
    tenant: &str,
    id: &str,
    error: &str,
    next_ms: Option<i64>,
    now: i64,
) -> Result<()> {
    conn.sql().execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?3, next_attempt_ms = ?4,
                           parked_at = CASE WHEN CAST(?4 AS BIGINT) IS NULL THEN CAST(?5 AS BIGINT) END
         WHERE tenant = ?1 AND id = ?2",
        params![tenant, id, error, next_ms, now],
    )?;
    Ok(())
}

/// Puts parked deliveries of `tenant` (or just action `id`) back in the
/// queue with a fresh count of attempts; returns how many.
pub fn requeue(tx: &Tx<'_>, tenant: &str, id: Option<&str>, now: i64) -> Result<usize> {
    let n = tx.sql().execute(
        "UPDATE outbox SET parked_at = NULL, attempts = 0, next_attempt_ms = NULL
         WHERE tenant = ?1 AND parked_at IS NOT NULL AND acked_at IS NULL
           AND (CAST(?2 AS TEXT) IS NULL OR id = ?2)",
        params![tenant, id],
    )?;
    if n > 0 {
        crate::store::audit::append(
            tx,
            tenant,
            crate::store::audit::Entry::tenant(
                now,
                "redelivery",
                &serde_json::json!({ "requeued": n, "id": id }),
            ),
        )?;
    }
    Ok(n)
}

/// Actions klar gave up delivering.
pub fn parked(conn: &Conn, tenant: &str) -> Result<i64> {
    conn.sql().query_row(
        "SELECT COUNT(*) FROM outbox WHERE tenant = ?1 AND parked_at IS NOT NULL AND acked_at IS NULL",
        [tenant],
        |r| r.get(0),
    ).map_err(Error::from)
}
