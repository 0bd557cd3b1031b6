//! A tenant's active policy (or the built-in default) opened in the plugin.

use std::sync::Arc;

use crate::runtime::{LoadedPlugin, Session};
use crate::store::Store;
use crate::store::tenants::{self, Tenant};

/// The tenant's active policy (or the built-in default) could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("{tenant}: failed to open {policy}: {message}")]
pub struct SessionError {
    pub tenant: String,
    pub policy: String,
    pub message: String,
}

/// The tenant's active policy (or the built-in default) opened in the plugin,
/// with the policy's sha256 for the audit rows.
pub fn tenant_session(
    store: &Store,
    plugin: &Arc<LoadedPlugin>,
    tenant: &Tenant,
) -> Result<(Session, String), SessionError> {
    let active =
        tenants::active_policy(store.connection(), &tenant.id).map_err(|e| SessionError {
            tenant: tenant.id.clone(),
            policy: "its active policy".to_owned(),
            message: e.to_string(),
        })?;
    let (name, source, sha256) = match active {
        Some(v) => (
            format!("{} policy v{}", tenant.id, v.version),
            v.source,
            v.sha256,
        ),
        None => {
            let source = crate::DEFAULT_POLICY.to_owned();
            let sha = crate::sha256_hex(source.as_bytes());
            ("built-in default policy".to_owned(), source, sha)
        }
    };
    let session = plugin.open(&name, &source).map_err(|e| SessionError {
        tenant: tenant.id.clone(),
        policy: name.clone(),
        message: e.to_string(),
    })?;
    Ok((session, sha256))
}
