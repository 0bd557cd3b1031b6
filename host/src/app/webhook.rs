//! Setting a tenant's webhook: the same rule for the CLI and the API. The URL
//! must pass [`crate::delivery::target`] (http(s), no credentials, public
//! addresses unless the operator allowed the host) before it is stored.

use crate::delivery::target::{TargetError, Targets};
use crate::store::{self, Store, webhooks};

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Checks `url` and makes it the tenant's webhook; returns the new signing
/// secret, shown once.
pub fn set(
    store: &mut Store,
    targets: &Targets,
    tenant: &str,
    url: &str,
    now: i64,
) -> Result<String, WebhookError> {
    targets.check(url)?;
    Ok(store.transaction(|tx| webhooks::set(tx, tenant, url, now))?)
}
