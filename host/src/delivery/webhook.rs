//! Delivering the outbox by webhook: each action is POSTed as JSON to the
//! tenant's URL, signed, and retried with exponential backoff until the
//! receiver answers 2xx; after `max_attempts` failures it is parked (counted
//! in `klar status`) and left for a person. At least once: a receiver must
//! de-duplicate by the `X-Klar-Delivery` id, which is the action's stable id.
//!
//! Signature: `X-Klar-Signature: sha256=HEX`, the HMAC-SHA256 with the
//! tenant's secret over `TIMESTAMP.BODY`, where TIMESTAMP is the
//! `X-Klar-Timestamp` header (Unix seconds); a receiver should also refuse
//! old timestamps.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::{Claim, Store, StoreError, webhooks};

/// How hard klar tries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// The wait after the first failure; it doubles after each further one.
    pub base_ms: u64,
    pub max_wait_ms: u64,
    /// Failures after which an action is parked.
    pub max_attempts: u32,
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            base_ms: 1_000,
            max_wait_ms: 3_600_000,
            max_attempts: 8,
            timeout: Duration::from_secs(10),
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `timestamp.body` under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    format!("sha256={}", crate::hex(&mac.finalize().into_bytes()))
}

/// What one round of deliveries did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Report {
    pub delivered: usize,
    pub failed: usize,
    pub parked: usize,
}

impl Report {
    fn add(&mut self, other: Report) {
        self.delivered += other.delivered;
        self.failed += other.failed;
        self.parked += other.parked;
    }
}

/// The wait before attempt `attempts + 1`.
fn backoff(retry: &Retry, attempts: u32) -> u64 {
    let factor = 1_u64.checked_shl(attempts.min(40)).unwrap_or(u64::MAX);
    retry.base_ms.saturating_mul(factor).min(retry.max_wait_ms)
}

/// Records a failed attempt: retried after the backoff, or parked once
/// `retry.max_attempts` are used up. Returns whether it was parked.
pub(crate) fn record_failure(
    conn: &crate::store::Conn,
    retry: &Retry,
    (tenant, id): (&str, &str),
    attempts_before: i64,
    error: &str,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let attempts = u32::try_from(attempts_before)
        .unwrap_or(u32::MAX)
        .saturating_add(1);
    let next = (attempts < retry.max_attempts).then(|| {
        now_ms.saturating_add(i64::try_from(backoff(retry, attempts - 1)).unwrap_or(i64::MAX))
    });
    tracing::warn!(tenant = %tenant, id = %id, attempts, "{error}");
    webhooks::failed(conn, tenant, id, error, next, now_ms / 1000)?;
    Ok(next.is_none())
}

/// Delivers every due action of every tenant with a webhook, once, to the
/// addresses `targets` allows (a refused address counts as a failed attempt).
/// Tenants for which `mailed` is true keep their e-mail requests for
/// [`crate::delivery::mail`].
pub fn deliver_due(
    store: &Store,
    retry: &Retry,
    targets: &super::target::Targets,
    public_url: &str,
    (now, now_ms): (i64, i64),
    mailed: impl Fn(&str) -> bool,
) -> Result<Report, StoreError> {
    let conn = store.connection();
    let agent = targets.agent(retry.timeout);
    let mut report = Report::default();
    for hook in webhooks::all(conn)? {
        // Another klar instance posts this tenant's actions right now.
        if !store.claim(Claim::Webhook, &hook.tenant)? {
            continue;
        }
        let posted = post_due(
            store,
            (&agent, &hook, retry),
            public_url,
            (now, now_ms),
            &mailed,
        );
        store.release(Claim::Webhook, &hook.tenant)?;
        report.add(posted?);
    }
    Ok(report)
}

/// Posts the due actions of one tenant to its webhook.
fn post_due(
    store: &Store,
    (agent, hook, retry): (&ureq::Agent, &webhooks::Webhook, &Retry),
    public_url: &str,
    (now, now_ms): (i64, i64),
    mailed: &impl Fn(&str) -> bool,
) -> Result<Report, StoreError> {
    let conn = store.connection();
    let mut report = Report::default();
    {
        let take = if mailed(&hook.tenant) {
            webhooks::Take::AllButMails
        } else {
            webhooks::Take::Everything
        };
        for (mut item, attempts) in webhooks::due(conn, &hook.tenant, (now, now_ms), 100, take)? {
            crate::delivery::add_response_url(&mut item, public_url);
            let body =
                serde_json::to_string(&crate::wire::Item::from(item.clone())).unwrap_or_default();
            let timestamp = now_ms / 1000;
            let result = agent
                .post(&hook.url)
                .header("Content-Type", "application/json")
                .header("X-Klar-Delivery", &item.id)
                .header("X-Klar-Timestamp", timestamp.to_string())
                .header("X-Klar-Signature", sign(&hook.secret, timestamp, &body))
                .send(&body);
            let error = match result {
                Ok(response) if response.status().is_success() => None,
                Ok(response) => Some(format!("the receiver answered {}", response.status())),
                Err(err) => Some(format!("the receiver could not be reached: {err}")),
            };
            match error {
                None => {
                    webhooks::delivered(conn, &hook.tenant, &item.id, timestamp)?;
                    report.delivered += 1;
                }
                Some(error) => {
                    let key = (hook.tenant.as_str(), item.id.as_str());
                    if record_failure(conn, retry, key, attempts, &error, now_ms)? {
                        report.parked += 1;
                    } else {
                        report.failed += 1;
                    }
                }
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_and_is_capped() {
        let retry = Retry {
            base_ms: 100,
            max_wait_ms: 1_000,
            ..Retry::default()
        };
        let waits: Vec<u64> = (0..6).map(|a| backoff(&retry, a)).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(backoff(&retry, 200), 1_000);
    }

    #[test]
    fn the_signature_is_the_hmac_of_timestamp_and_body() {
        // RFC 4231-style check against an independent computation.
        let sig = sign("key", 1_700_000_000, "{}");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").expect("key");
        mac.update(b"1700000000.{}");
        assert_eq!(
            sig,
            format!("sha256={}", crate::hex(&mac.finalize().into_bytes()))
        );
        assert_ne!(sign("other", 1_700_000_000, "{}"), sig);
    }
}
