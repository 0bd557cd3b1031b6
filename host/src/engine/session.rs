//! A tenant's active policy (or the built-in default) opened in the plugin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::store::Conn;

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

/// The policy a tenant runs: its active version, or the built-in default
/// policy when it has none. The one place that rule is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunningPolicy {
    /// How people read it: `v3`, or "the built-in default policy".
    pub name: String,
    pub source: String,
    pub sha256: String,
    pub version: Option<i64>,
}

pub fn running_policy(conn: &Conn, tenant: &str) -> crate::store::Result<RunningPolicy> {
    Ok(match tenants::active_policy(conn, tenant)? {
        Some(v) => RunningPolicy {
            name: format!("v{}", v.version),
            source: v.source,
            sha256: v.sha256,
            version: Some(v.version),
        },
        None => RunningPolicy {
            name: "the built-in default policy".to_owned(),
            source: crate::DEFAULT_POLICY.to_owned(),
            sha256: crate::sha256_hex(crate::DEFAULT_POLICY.as_bytes()),
            version: None,
        },
    })
}

/// The tenant's active policy (or the built-in default) opened in the plugin,
/// with the policy's sha256 for the audit rows.
pub fn tenant_session(
    store: &Store,
    plugin: &Arc<LoadedPlugin>,
    tenant: &Tenant,
) -> Result<(Session, String), SessionError> {
    let running = running_policy(store.connection(), &tenant.id).map_err(|e| SessionError {
        tenant: tenant.id.clone(),
        policy: "its active policy".to_owned(),
        message: e.to_string(),
    })?;
    let name = match running.version {
        Some(v) => format!("{} policy v{v}", tenant.id),
        None => "built-in default policy".to_owned(),
    };
    let session = plugin
        .open(&name, &running.source)
        .map_err(|e| SessionError {
            tenant: tenant.id.clone(),
            policy: name.clone(),
            message: e.to_string(),
        })?;
    Ok((session, running.sha256))
}

/// A tenant's policy open in the plugin, with its SHA-256 for the audit rows.
pub struct OpenSession {
    pub sha256: String,
    pub session: Mutex<Session>,
}

impl OpenSession {
    /// The session, for one request at a time. A request that panicked
    /// while holding it left a session that is still whole (a trap is
    /// handled inside it), so the poison is ignored.
    pub fn lock(&self) -> std::sync::MutexGuard<'_, Session> {
        self.session.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// One open session per tenant, kept for the life of a server (opening one
/// costs a millisecond: a fresh plugin instance and the policy compiled in
/// it). Each use checks the tenant's active version, so that a new policy is
/// picked up at once; each tenant's session is used by one request at a
/// time.
pub struct Sessions {
    plugin: Arc<LoadedPlugin>,
    open: Mutex<HashMap<String, Arc<OpenSession>>>,
}

impl Sessions {
    pub fn new(plugin: Arc<LoadedPlugin>) -> Sessions {
        Sessions {
            plugin,
            open: Mutex::new(HashMap::new()),
        }
    }

    pub fn plugin(&self) -> &Arc<LoadedPlugin> {
        &self.plugin
    }

    /// The tenant's session on its running policy, opened now if there is
    /// none yet or the policy changed since.
    pub fn get(&self, store: &Store, tenant: &Tenant) -> Result<Arc<OpenSession>, SessionError> {
        let running = tenants::active_sha(store.connection(), &tenant.id)
            .map_err(|e| SessionError {
                tenant: tenant.id.clone(),
                policy: "its active policy".to_owned(),
                message: e.to_string(),
            })?
            .map(|(_, sha)| sha)
            .unwrap_or_else(|| crate::sha256_hex(crate::DEFAULT_POLICY.as_bytes()));
        let mut open = self.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(found) = open.get(&tenant.id).filter(|s| s.sha256 == running) {
            return Ok(Arc::clone(found));
        }
        let (session, sha256) = tenant_session(store, &self.plugin, tenant)?;
        let fresh = Arc::new(OpenSession {
            sha256,
            session: Mutex::new(session),
        });
        open.insert(tenant.id.clone(), Arc::clone(&fresh));
        Ok(fresh)
    }
}
